"""The report's representation-similarity section: trained vs randomised copy, per layer."""

from __future__ import annotations

import numpy as np
import pytest

import inspect_kit as ik
from inspect_kit.analysis.randomization import random_similarity_verdict, randomize_weights
from inspect_kit.workflows import ProbeOptions, ReportOptions, RunOptions, build_report

LAYERS = ["relu1", "relu2", "relu3", "fc"]


@pytest.mark.slow
def test_report_compares_the_trained_network_with_its_randomised_copy(digits, digits_cnn, tmp_path):
    X, y = digits.X_test[:240], digits.y_test[:240]
    ik.capture(
        digits_cnn, X, LAYERS, tmp_path / "acts.h5", labels=y, thumbnails=None, progress=False
    ).close()
    opts = ReportOptions(
        embedding=None,
        featurevis=None,
        latent=None,
        formats=(),
        probe=ProbeOptions(cv=3),
        run=RunOptions(random_state=0, threads=1, progress=False),
    )
    result = build_report(
        tmp_path / "acts.h5", tmp_path / "report.html", model=digits_cnn, inputs=X, options=opts
    )
    got = result.summary["similarity"]["trained_vs_random"]
    assert list(got) == LAYERS
    # oracle: the same randomised copy (seed + 1), channel means, full-batch debiased CKA
    rand = randomize_weights(digits_cnn, random_state=opts.run.random_state + 1).eval()
    with (
        ik.capture(
            rand, X, LAYERS, tmp_path / "rand.h5", reduce="mean", thumbnails=None, progress=False
        ) as rs,
        ik.open_store(tmp_path / "acts.h5") as store,
    ):
        for layer in LAYERS:
            trained = store.to_numpy(layer).astype(np.float64)
            if trained.ndim > 2:
                trained = trained.mean(axis=(2, 3))
            want = ik.cka(trained, rs.to_numpy(layer), debiased=True)
            assert got[layer] == pytest.approx(want, rel=1e-9), layer
    # trained weights move the deep layers further from random ones than the first
    assert got["fc"] < got["relu1"]
    within = result.summary["similarity"]["layers"]
    np.testing.assert_allclose(np.diag(np.array(within["matrix"], float)), 1.0)
    html = (tmp_path / "report.html").read_text()
    assert "Representation similarity" in html and "Trained vs randomised weights" in html
    assert html.index("Sanity check: randomised weights") < html.index("Representation similarity")


def test_random_similarity_verdict():
    text, warn = random_similarity_verdict(["a", "b"], np.array([0.97, 0.95]))
    assert warn and "architecture" in text
    text, warn = random_similarity_verdict(["a", "b"], np.array([0.9, 0.3]))
    assert not warn and "0.30 at b" in text
