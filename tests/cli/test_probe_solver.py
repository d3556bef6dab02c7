"""`inspect-kit probe --solver/--batch-size/--epochs/--scheduler`: the command's streamed probe
is the library's streamed probe (same seed, same numbers), its parameters are recorded in the
store, and `--scheduler` computes on a running Dask cluster and disconnects afterwards."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture
from inspect_kit.analysis.probes import probe_profile
from inspect_kit.cli import main
from inspect_kit.store import open_store

N = 600


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 real digits through a random conv + ReLU: full (4, 6, 6) maps, two layers."""
    d = load_digits()
    x = torch.tensor(d.images[:N, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    path = tmp_path_factory.mktemp("probe_solver") / "digits.h5"
    capture(model, x, ["0", "1"], path, labels=d.target[:N], reduce=None, progress=False).close()
    return path


def _probe(path: Path, out: Path, *extra: str) -> int:
    args = ["probe", str(path), "--out", str(out), "--formats", "html", "--json", "-q"]
    return main([*args, "--reduce", "flatten", "--groups", "none", *extra])


def test_cli_streamed_scores_equal_the_library_and_are_recorded(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(store_path) as store:
        oracle = probe_profile(
            store, ["0", "1"], reduce="flatten", solver="streaming", batch_size=100, epochs=3,
            random_state=7, progress=False,
        )  # fmt: skip
        memory = probe_profile(store, ["1"], reduce="flatten", random_state=7, progress=False)
    capsys.readouterr()
    code = _probe(
        store_path, tmp_path / "o", "--solver", "streaming", "--batch-size", "100",
        "--epochs", "3", "--random-state", "7",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["layer"]: r for r in json.loads(out)}
    for layer, result in zip(oracle.layers, oracle.results, strict=True):
        assert rows[layer]["solver"] == "streaming"
        assert rows[layer]["balanced_accuracy"] == pytest.approx(result.score, abs=1e-12)
        assert rows[layer]["chance"] == pytest.approx(0.1)
    # a real probe (10 classes, chance 0.1), and not the in-memory one under another name
    assert rows["1"]["balanced_accuracy"] > 0.6
    assert rows["1"]["balanced_accuracy"] != pytest.approx(memory.scores[0], abs=1e-9)
    with open_store(store_path) as store:
        arrays, attrs = store.load_result("probes/label")
    np.testing.assert_allclose(arrays["score"], oracle.scores, atol=1e-12)
    assert attrs["solver"] == "streaming"
    assert list(attrs["layer_solvers"]) == ["streaming", "streaming"]
    assert attrs["batch_size"] == 100 and attrs["epochs"] == 3 and attrs["random_state"] == 7
    assert attrs["scheduler"] == ""
    # other epochs give other scores: the option reaches the SGD
    code = _probe(
        store_path, tmp_path / "o", "--solver", "streaming", "--batch-size", "100",
        "--epochs", "1", "--random-state", "7", "--layers", "1",
    )  # fmt: skip
    assert code == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["balanced_accuracy"] != pytest.approx(rows["1"]["balanced_accuracy"], abs=1e-9)


def test_auto_solver_probes_small_layers_in_memory_and_records_it(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(store_path) as store:
        memory = probe_profile(store, ["1"], reduce="flatten", progress=False)
        # a layer larger than the memory limit is streamed by 'auto'
        tight = probe_profile(
            store, ["1"], reduce="flatten", solver="auto", memory_limit=1000, batch_size=100,
            progress=False,
        )  # fmt: skip
    assert tight.results[0].solver == "streaming"
    capsys.readouterr()
    code = _probe(store_path, tmp_path / "o", "--layers", "1")  # --solver auto
    out, err = capsys.readouterr()
    assert code == 0, err
    [row] = json.loads(out)
    assert row["solver"] == "memory"
    assert row["balanced_accuracy"] == pytest.approx(memory.scores[0], abs=1e-12)
    with open_store(store_path) as store:
        _, attrs = store.load_result("probes/label")
    assert attrs["solver"] == "auto" and list(attrs["layer_solvers"]) == ["memory"]
    assert attrs["batch_size"] == -1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--solver", "streaming", "--chance", "permutation"], "--chance permutation"),
        (["--solver", "memory", "--epochs", "3"], "--batch-size and --epochs"),
        (["--batch-size", "0"], "expected a positive integer"),
    ],
)
def test_contradictory_solver_options_are_usage_errors(
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    capsys.readouterr()
    code = _probe(store_path, tmp_path / "o", *extra)
    assert code == 2
    assert message in capsys.readouterr().err


def test_scheduler_without_distributed_names_the_extra(
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    capsys.readouterr()
    code = _probe(store_path, tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 1
    assert "pip install 'inspect-kit[scale]'" in capsys.readouterr().err


def test_scheduler_runs_the_streamed_probe_on_a_local_cluster(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distributed = pytest.importorskip("distributed")
    from inspect_kit.analysis._dask import active_client

    def library() -> float:
        with open_store(store_path) as store:
            return probe_profile(
                store, ["1"], reduce="flatten", solver="streaming", batch_size=100,
                progress=False,
            ).scores[0]  # fmt: skip

    on_one_machine = library()
    # bounded: the cluster must be up within 60 s, and is closed whatever happens
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", timeout=60
    )
    try:
        with distributed.Client(cluster):  # the library's own call on the same cluster
            oracle = library()
        with distributed.Client(cluster, set_as_default=False) as watcher:
            assert len(watcher.scheduler_info()["workers"]) == 2
            capsys.readouterr()
            with distributed.get_task_stream(watcher) as stream:
                code = _probe(
                    store_path, tmp_path / "o", "--layers", "1", "--solver", "streaming",
                    "--batch-size", "100", "--scheduler", cluster.scheduler_address,
                )  # fmt: skip
            out, err = capsys.readouterr()
    finally:
        cluster.close(timeout=30)
    assert code == 0, err
    [row] = json.loads(out)
    # the blocks were read and pooled on the workers ...
    assert any("reduce_block" in str(t["key"]) for t in stream.data)
    # ... by the same streamed probe as the library's on that cluster (same seed) ...
    assert row["solver"] == "streaming"
    assert row["balanced_accuracy"] == pytest.approx(oracle, abs=1e-12)
    # ... which the cluster's Dask chunks (the store's HDF5 chunks) may order differently
    # from one machine's blocks: SGD then ends close by, not bit for bit
    assert row["balanced_accuracy"] == pytest.approx(on_one_machine, abs=0.03)
    # ... the store says where it ran, and the command disconnected when it was done
    with open_store(store_path) as store:
        _, attrs = store.load_result("probes/label")
    assert attrs["scheduler"] == cluster.scheduler_address
    assert active_client() is None


def test_the_probe_examples_of_help_and_readme_parse() -> None:
    """Every `inspect-kit probe` line of `--help` and of the README is a valid command."""
    import re
    import shlex

    from inspect_kit.cli import build_parser, examples

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    lines = re.findall(r"^\s*inspect-kit (probe .*)$", examples()["probe"] + "\n" + readme, re.M)
    assert any("--scheduler" in line for line in lines)
    for line in lines:
        args = build_parser().parse_args(shlex.split(line.split("#")[0]))
        assert args.command == "probe", line
