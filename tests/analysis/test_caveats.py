"""Caveats: fragile results found with the number (and threshold) that triggered each."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_kit.analysis.caveats import SMALL_N, find_caveats
from inspect_kit.analysis.probes import ProbeProfile, linear_probe


def _profile(scores, n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = np.arange(n) % 2
    base = linear_probe(X, y, cv=4, refit=False)
    results = [base.__class__(**{**base.__dict__, "score": s}) for s in scores]
    return ProbeProfile([f"l{i}" for i in range(len(scores))], results, "label", "mean")


def test_each_caveat_with_its_number():
    trained, random = _profile([0.62, 1.0], n=16), _profile([0.71, 0.5], n=16)
    notes = find_caveats(
        profile=trained,
        random_profile=random,
        labels=np.r_[np.zeros(30), np.ones(5)].astype(int),
        class_names=["normal", "lesion"],
        history={"val_loss": [1.06, 0.95, 1.2, 1.78]},
    )
    text = "\n".join(map(str, notes))
    kinds = {c.kind: c for c in notes}
    assert set(kinds) == {
        "small_n",
        "probe_warning",
        "random_beats_trained",
        "class_imbalance",
        "val_loss_rise",
    }
    assert "smallest test fold has 4 samples" in kinds["probe_warning"].text
    assert (kinds["small_n"].value, kinds["small_n"].threshold) == (16, SMALL_N)
    assert kinds["random_beats_trained"].layer == "l0"
    assert kinds["random_beats_trained"].value == pytest.approx(0.71)
    assert kinds["class_imbalance"].value == pytest.approx(6.0)
    assert kinds["val_loss_rise"].value == pytest.approx(1.78 / 0.95 - 1)
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
        find_caveats(
            profile=_profile([0.9], n=400),
            labels=np.arange(400) % 4,
            history={"val_loss": [1.0, 0.8, 0.79]},
        )
        == []
    )
