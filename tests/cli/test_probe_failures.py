"""`inspect-kit probe`: a layer that cannot be probed is reported and skipped, the rest written;
folds, groups, C and the chance level come from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture
from inspect_kit.analysis.probes import linear_probe
from inspect_kit.cli import main
from inspect_kit.store import open_store


class _Overflow(nn.Module):
    """Activations too large for float32: every value becomes +inf (no probe can read them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() + 1.0) * 1e39


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    d = load_digits()
    n = 120
    X = torch.tensor(d.images[:n, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(216, 10), _Overflow()
    ).eval()
    path = tmp_path_factory.mktemp("probe") / "s.h5"
    # 12 "patients" of 10 images each
    patients = np.repeat([f"P{i:02d}" for i in range(12)], 10)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        capture(
            model,
            X,
            ["1", "3", "4"],
            path,
            labels=d.target[:n],
            metadata={"PatientID": patients},
            overwrite=True,
            progress=False,
        ).close()
    return path, d.images[:n].reshape(n, -1), d.target[:n], patients


def test_probe_skips_a_layer_that_cannot_run_and_writes_the_rest(digits_store, tmp_path, capsys):
    path, _, _, _ = digits_store
    with open_store(path) as store:
        assert np.isinf(store["4"][:4]).all()  # the overflowing layer really is infinite
    capsys.readouterr()
    code = main(
        ["probe", str(path), "--out", str(tmp_path / "out"), "--formats", "html", "--json", "-q"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["layer"]: r for r in json.loads(out)}
    assert "skipping the probe of 4" in err
    assert "NaN or infinite" in rows["4"]["error"]
    assert rows["4"]["balanced_accuracy"] is None
    # 10 classes: chance 0.1; the layers that can be probed are well above it
    assert rows["1"]["balanced_accuracy"] > 0.3 and rows["3"]["balanced_accuracy"] > 0.3
    assert (tmp_path / "out" / "probe_profile_label.html").exists()
    with open_store(path) as store:
        _, attrs = store.load_result("probes/label")
    assert list(attrs["layers"]) == ["1", "3"]


def test_probe_options_reach_the_probe(digits_store, tmp_path, capsys):
    path, _, y, patients = digits_store
    with open_store(path) as store:
        X1 = np.asarray(store["1"][:]).reshape(len(y), 6, -1).mean(-1)
    capsys.readouterr()
    args = ["probe", str(path), "--layers", "1", "--formats", "html", "--json", "-q"]
    args += ["--out", str(tmp_path / "o"), "--cv", "3", "--C", "0.01", "--groups", "PatientID"]
    assert main(args) == 0
    row = json.loads(capsys.readouterr().out)[0]
    oracle = linear_probe(X1, y, cv=3, C=0.01, groups=patients, refit=False)
    assert row["groups"] == 12
    assert row["balanced_accuracy"] == pytest.approx(oracle.score, abs=1e-6)
    # a different C gives a different score: the option is not ignored
    assert oracle.score != pytest.approx(
        linear_probe(X1, y, cv=3, C=10.0, groups=patients, refit=False).score, abs=1e-6
    )
    # the store's PatientID is used by default ('auto'), as the report does
    assert main(args[:-2]) == 0
    assert json.loads(capsys.readouterr().out)[0]["groups"] == 12
    assert main([*args[:-2], "--groups", "none"]) == 0
    assert "groups" not in json.loads(capsys.readouterr().out)[0]
    # permutation chance with its p-value
    assert main([*args, "--chance", "permutation", "--permutations", "5"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert 0.0 < row["chance"] < 0.3 and row["p"] == pytest.approx(1 / 6)


def test_probe_on_few_samples_says_its_score_is_fragile(tmp_path, capsys):
    """32 samples, cv=5: test folds of 6 samples. The row says so and a small-N caveat is
    logged, so a 1.000 is not read as a finding."""
    d = load_digits()
    keep = np.flatnonzero(d.target < 4)[:32]
    X = torch.tensor(d.images[keep, None] / 16.0, dtype=torch.float32)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU()).eval()
    path = tmp_path / "few.h5"
    capture(model, X, ["1"], path, labels=d.target[keep], progress=False).close()
    capsys.readouterr()
    args = ["probe", str(path), "--out", str(tmp_path / "o"), "--formats", "html", "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)
    assert row["chance"] == pytest.approx(0.25)  # 4 classes, balanced chance
    assert "smallest test fold has 6 samples" in row["warning"]
    assert "small N: the probes use 32 samples" in err
