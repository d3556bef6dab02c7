"""Reports carry caveats with the numbers that triggered them (found by analysis/caveats.py)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture
from inspect_kit.workflows import (
    EmbeddingOptions,
    ProbeOptions,
    ReportOptions,
    RunOptions,
    build_report,
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
        embedding=EmbeddingOptions(methods=("pca",)),
        featurevis=None,
        random_baseline=False,
        latent=None,
        probe=ProbeOptions(cv=4),
        run=RunOptions(threads=1, progress=False),
        formats=(),
    )
    res = build_report(tmp_path / "s.h5", tmp_path / "report.html", options=opts)
    html = res.report.read_text()
    assert "Caveats" in html
    assert "small N: the probes use 40 samples" in html
    assert "class imbalance: 0 has 32 samples, 1 8 (4.0:1)" in html


def test_report_of_a_store_captured_without_weights_says_the_network_is_untrained(tmp_path):
    """`inspect-kit capture` of a factory without --weights (random init), on 4 folder
    classes the model does not have: the report says the network is untrained and draws no
    misclassification rings, instead of calling it "trained" and every point "misclassified"."""
    from PIL import Image

    from inspect_kit.workflows import CaptureOptions, DataOptions, ModelSource
    from inspect_kit.workflows.commands import capture_user_data

    d = load_digits()
    for k in range(48):
        folder = tmp_path / "png" / f"class{d.target[k] % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((d.images[k] * 15).astype(np.uint8)).save(folder / f"{k}.png")
    capture_user_data(
        ModelSource("inspect_kit.models:SmallCNN", model_args={"n_classes": 10}),
        tmp_path / "png",
        tmp_path / "s.h5",
        data_options=DataOptions(size=(16, 16), channels=1),
        capture_options=CaptureOptions(layers=("relu2", "fc")),
    )
    opts = ReportOptions(
        embedding=EmbeddingOptions(methods=("pca",)),
        featurevis=None,
        random_baseline=False,
        latent=None,
        similarity=None,
        probe=ProbeOptions(cv=3),
        run=RunOptions(threads=1, progress=False),
        formats=(),
    )
    res = build_report(tmp_path / "s.h5", tmp_path / "report.html", options=opts)
    html = res.report.read_text()
    assert "no weights: the store was captured from inspect_kit.models:SmallCNN" in html
    assert "no point is marked misclassified: the labels are not the model" in html
    assert "ringed points are misclassified" not in html
