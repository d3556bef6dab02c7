"""Capture under torchrun (two gloo ranks on CPU) equals a single-process capture."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import inspect_kit
from inspect_kit.store import parts

sys.path.insert(0, str(Path(__file__).parent))
import _dist_worker as worker  # noqa: E402

WORKER = Path(__file__).parent / "_dist_worker.py"
N = 13  # odd: rank 0 holds 7 samples, rank 1 holds 6
LAYERS = ["1", "3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(path: Path, mode: str, **env: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        str(WORKER), str(path), str(N), mode,
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(inspect_kit.__file__).parents[1]),
        **env,
    }
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, x, labels, meta = worker.build(N)
    path = tmp_path_factory.mktemp("single") / "single.h5"
    inspect_kit.capture(
        model, x, LAYERS, path, labels=labels, metadata=meta, batch_size=2, progress=False
    ).close()
    return path


def assert_same_store(one: Path, joined: Path) -> None:
    with inspect_kit.open_store(one) as a, inspect_kit.open_store(joined) as b:
        assert b.complete and b.n_samples == N
        assert b.layers == a.layers
        for name in LAYERS:
            np.testing.assert_array_equal(b[name][:], a[name][:])  # same forward, same bits
            np.testing.assert_array_equal(b[name][[12, 0, 5]], a[name][[12, 0, 5]])
        np.testing.assert_array_equal(b.index, np.arange(N))
        np.testing.assert_array_equal(b.labels, a.labels)
        np.testing.assert_array_equal(b.predictions, a.predictions)
        np.testing.assert_array_equal(b.logits, a.logits)
        np.testing.assert_array_equal(b.thumbnails, a.thumbnails)
        assert set(b.metadata) == {"site", "age"}
        for k in b.metadata:
            np.testing.assert_array_equal(b.metadata[k], a.metadata[k])
        assert b.provenance["model_sha256"] == a.provenance["model_sha256"]
        assert b.provenance["config"]["data"]["n_samples"] == N


@pytest.mark.slow
def test_two_ranks_equal_single_process(tmp_path: Path, single: Path) -> None:
    path = tmp_path / "joined.h5"
    run = torchrun(path, "new")
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_store(single, path)
    folder = parts.parts_dir(path)
    assert sorted(p.name for p in folder.iterdir()) == ["rank-00000.h5", "rank-00001.h5"]
    # each part holds every other sample, with the samples' positions in the dataset
    for rank in (0, 1):
        with h5py.File(parts.part_path(folder, rank), "r") as f:
            np.testing.assert_array_equal(f["samples/index"][:], np.arange(rank, N, 2))
            assert f.attrs["world_size"] == 2 and f.attrs["rank"] == rank
    # plain h5py reads the joined store as one array in the dataset's order
    with h5py.File(path, "r") as f, h5py.File(single, "r") as g:
        assert f["layers/1"].is_virtual
        np.testing.assert_array_equal(f["layers/1"][:], g["layers/1"][:])
        np.testing.assert_array_equal(f["layers/3"][3:11:3], g["layers/3"][3:11:3])
        assert bool(f.attrs["complete"])


@pytest.mark.slow
def test_killed_rank_then_resume_completes_exactly(tmp_path: Path, single: Path) -> None:
    path = tmp_path / "joined.h5"
    killed = torchrun(path, "new", IK_TEST_KILL_RANK="1", IK_TEST_KILL_AFTER="2")
    assert killed.returncode != 0
    assert not path.exists()  # no master over an unfinished job
    part = parts.part_path(parts.parts_dir(path), 1)
    if part.exists():  # a part takes its name once its first batch is committed
        with h5py.File(part, "r", swmr=True, locking=False) as f:
            assert f["samples/index"].shape[0] <= 4  # rank 1 died after 2 batches of 2 of 6
    resumed = torchrun(path, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_store(single, path)
