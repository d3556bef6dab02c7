"""`inspect-kit embed --pca-solver/--scheduler`: PCA computed on a running Dask cluster from the
command line equals the exact PCA, is cached under the solver that made it, and the cluster's
client is gone when the command returns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import inspect_kit
from inspect_kit.analysis.embedding._pca import SOLVERS
from inspect_kit.cli import main

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

N = 400


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 real digits through a random conv + ReLU: full (6, 6, 6) maps in several chunks."""
    d = load_digits()
    x = (d.images[:N, None] / 16.0).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU())
    path = tmp_path_factory.mktemp("embed_cli_dask") / "digits.h5"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("inspect_kit.store.writer.CHUNK_BYTES", 50 * 216 * 4)
        inspect_kit.capture(
            model, x, ["1"], path, labels=d.target[:N], batch_size=50, progress=False
        ).close()
    return path


def test_embed_pca_on_a_scheduler_equals_exact_pca(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None, timeout=60
    )
    try:
        with distributed.Client(cluster, set_as_default=False) as watcher:
            capsys.readouterr()
            with distributed.get_task_stream(watcher) as stream:
                code = main(
                    [
                        "embed", str(store_path), "--layers", "1", "--methods", "pca",
                        "--pca-solver", "dask", "--scheduler", cluster.scheduler_address,
                        "--out", str(tmp_path / "fig"), "--formats", "html", "--json", "-q",
                    ]
                )  # fmt: skip
            out, err = capsys.readouterr()
            # the command's own client is closed: only the watcher is connected
            assert len(watcher.scheduler_info()["workers"]) == 2
    finally:
        cluster.close(timeout=30)
    assert code == 0, err
    [row] = json.loads(out)
    assert row["method"] == "pca" and row["layer"] == "1" and "error" not in row
    # the layer was read and pooled as tasks of the cluster
    assert any("reduce_block" in str(t["key"]) for t in stream.data)
    assert distributed.client._get_global_client() is None
    assert (tmp_path / "fig").is_dir()
    with inspect_kit.open_store(store_path) as store:
        # cached under the parameters the command used ...
        cached = inspect_kit.embed(store, "1", method="pca", solver="dask", progress=False)
        assert cached.from_cache and cached.params["solver"] == "dask", cached.params
        exact = inspect_kit.embed(
            store, "1", method="pca", solver="covariance", cache=False, progress=False
        )
    # ... and equal to the exact (float64 scatter matrix) PCA; both fix each axis's sign
    scale = np.abs(exact.coords).max()
    np.testing.assert_allclose(cached.coords, exact.coords, atol=1e-4 * scale)


def test_pca_solver_choices_are_the_estimators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", "s.h5", "--pca-solver", "qr"]) == 2
    err = capsys.readouterr().err
    for solver in SOLVERS:
        assert solver in err


def test_scheduler_that_does_not_answer_is_one_line(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "embed", str(store_path), "--methods", "pca", "--scheduler", "tcp://127.0.0.1:9",
            "--out", str(tmp_path / "fig"), "--formats", "html", "-q",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "no dask scheduler answered at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err


def test_the_embed_examples_of_help_and_readme_parse() -> None:
    """Every `inspect-kit embed` line of `--help` and of the README is a valid command."""
    import re
    import shlex

    from inspect_kit.cli import build_parser, examples

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    lines = re.findall(r"^\s*inspect-kit (embed .*)$", examples()["embed"] + "\n" + readme, re.M)
    assert sum("--scheduler" in line for line in lines) >= 2
    for line in lines:
        args = build_parser().parse_args(shlex.split(line.split("#")[0]))
        assert args.command == "embed", line
