"""Reports carry caveats with the numbers that triggered them."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture
from inspect_kit.analysis.probes import ProbeProfile, linear_probe
from inspect_kit.report.caveats import report_caveats
from inspect_kit.workflows import ReportOptions, build_report


def _profile(scores, n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = np.arange(n) % 2
    base = linear_probe(X, y, cv=4, refit=False)
    results = [base.__class__(**{**base.__dict__, "score": s}) for s in scores]
    return ProbeProfile([f"l{i}" for i in range(len(scores))], results, "label", "mean")


def test_each_caveat_with_its_number():
    trained, random = _profile([0.62, 1.0], n=16), _profile([0.71, 0.5], n=16)
    notes = report_caveats(
        profile=trained,
        random_profile=random,
        labels=np.r_[np.zeros(30), np.ones(5)].astype(int),
        class_names=["normal", "lesion"],
        history={"val_loss": [1.06, 0.95, 1.2, 1.78]},
    )
    text = "\n".join(notes)
    assert "small N: the probes use 16 samples" in text and "l1's 1.000" in text
    assert (
        "at l0 the randomly initialised network's probe (0.710) beats the trained one (0.620)"
        in text
    )
    assert "at l1 the randomly" not in text  # trained 1.000 beats random 0.500 there
    assert "class imbalance: normal has 30 samples, lesion 5 (6.0:1)" in text
    assert "validation loss rose from 0.95 (epoch 2) to 1.78 (epoch 4)" in text
    # nothing fragile: no caveats
    assert (
        report_caveats(
            profile=_profile([0.9], n=400),
            labels=np.arange(400) % 4,
            history={"val_loss": [1.0, 0.8, 0.79]},
        )
        == []
    )


def test_report_on_a_small_imbalanced_store_states_its_caveats(tmp_path):
    d = load_digits()
    y = d.target
    idx = np.r_[np.flatnonzero(y == 0)[:32], np.flatnonzero(y == 1)[:8]]
    X = torch.tensor(d.images[idx, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)).eval()
    capture(
        model, X, ["1", "3"], tmp_path / "s.h5", labels=y[idx], overwrite=True, progress=False
    ).close()
    opts = ReportOptions(
        methods=("pca",),
        featurevis=False,
        random_baseline=False,
        latent=False,
        probe_cv=4,
        progress=False,
        formats=(),
    )
    res = build_report(tmp_path / "s.h5", tmp_path / "report.html", options=opts)
    html = res.report.read_text()
    assert "Caveats" in html
    assert "small N: the probes use 40 samples" in html
    assert "class imbalance: 0 has 32 samples, 1 8 (4.0:1)" in html
