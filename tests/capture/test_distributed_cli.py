"""``torchrun --nproc_per_node 2 -m inspect_kit capture ...`` equals the single-process CLI.

Two gloo ranks on CPU run the command line itself (model file, .npz data, labels), with an
odd sample count so the last shard is shorter; the joined store is compared row for row with
the store of the same command run in one process, through the reader and through plain h5py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.datasets import load_digits

import inspect_kit

N = 13  # odd: rank 0 captures 7 samples, rank 1 six
MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn


    def Net():
        torch.manual_seed(0)  # the same weights in every process
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(prefix: list[str], args: list[str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(inspect_kit.__file__).parents[1]),
    }
    return subprocess.run(
        [sys.executable, *prefix, "-m", "inspect_kit", "capture", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_torchrun_cli_capture_equals_single_process_cli(tmp_path: Path) -> None:
    digits = load_digits()
    (tmp_path / "net.py").write_text(MODEL)
    np.savez(
        tmp_path / "digits.npz",
        x=(digits.images[:N, None] / 16.0).astype(np.float32),
        y=digits.target[:N],
    )
    common = [
        f"{tmp_path / 'net.py'}:Net", str(tmp_path / "digits.npz"), "--layers", "1", "3",
        "--reduce", "none", "--batch-size", "3", "-q",
    ]  # fmt: skip
    single = run([], [*common, "--out", str(tmp_path / "single.h5")])
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = [
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
    ]  # fmt: skip
    joined = run(torchrun, [*common, "--out", str(tmp_path / "joined.h5")])
    assert joined.returncode == 0, joined.stderr[-3000:]

    assert sorted(p.name for p in (tmp_path / "joined.h5.parts").iterdir()) == [
        "rank-00000.h5",
        "rank-00001.h5",
    ]
    with (
        inspect_kit.open_store(tmp_path / "single.h5") as a,
        inspect_kit.open_store(tmp_path / "joined.h5") as b,
    ):
        assert b.complete and len(b) == len(a) == N
        assert b.layers == a.layers == ["1", "3"]
        for name in b.layers:
            np.testing.assert_array_equal(b[name][:], a[name][:])  # same forward, same bits
        np.testing.assert_array_equal(b.index, np.arange(N))
        np.testing.assert_array_equal(b.labels, digits.target[:N])
        np.testing.assert_array_equal(b.predictions, a.predictions)
        np.testing.assert_array_equal(b.thumbnails, a.thumbnails)
        assert b.provenance["model_sha256"] == a.provenance["model_sha256"]
        assert b.provenance["distributed"]["world_size"] == 2
        # the CLI's record of its inputs (rank 0 writes it into the joined store)
        (shape_b, rec_b), (shape_a, rec_a) = (s.load_result("inputs") for s in (b, a))
        np.testing.assert_array_equal(shape_b["sample_shape"], shape_a["sample_shape"])
        assert rec_b["kind"] == rec_a["kind"] and rec_b["data"] == rec_a["data"]
    # plain h5py reads the joined master as one array, in the dataset's order
    with h5py.File(tmp_path / "joined.h5", "r") as f, h5py.File(tmp_path / "single.h5") as g:
        assert f["layers/1"].is_virtual
        np.testing.assert_array_equal(f["layers/1"][:N], g["layers/1"][:N])
        np.testing.assert_array_equal(f["layers/3"][[0, 7, 12]], g["layers/3"][[0, 7, 12]])
