"""LinearProbe keeps scikit-learn's estimator contract, reads stores through the base, and
gives linear_probe's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

import inspect_kit as ik
from inspect_kit import capture
from inspect_kit.analysis.linear import LinearProbe, StreamingOptions, probe_estimator


def _expected(est):
    return est.SKLEARN_EXPECTED_FAILED_CHECKS if est.cv == 5 else {}


@parametrize_with_checks([LinearProbe(), LinearProbe(cv=3)], expected_failed_checks=_expected)
def test_check_estimator(estimator, check):
    check(estimator)


def test_declared_exceptions_give_reasons():
    for name, reason in LinearProbe.SKLEARN_EXPECTED_FAILED_CHECKS.items():
        assert name.startswith("check_") and len(reason) > 40


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_fit_learns_attributes_and_predicts_held_out_samples(data):
    X, y = data
    probe = LinearProbe(cv=4, random_state=1)
    assert probe.fit(X[:200], y[:200]) is probe
    learned = {k for k in vars(probe) if k.endswith("_") and not k.startswith("_")}
    assert {"result_", "score_", "chance_", "fold_scores_", "estimator_", "task_"} <= learned
    assert probe.n_features_in_ == 10 and probe.task_ == "classification"
    assert probe.chance_ == 0.5 and probe.score_ > 0.85 and len(probe.fold_scores_) == 4
    assert probe.score(X[200:], y[200:]) > 0.85  # a linear rule: held-out samples too
    assert probe.result_.score == probe.score_ and probe.result_.random_state == 1
    # the same numbers as the convenience function
    r = ik.linear_probe(X[:200], y[:200], cv=4, random_state=1)
    np.testing.assert_allclose(r.fold_scores, probe.fold_scores_, rtol=1e-12)
    with pytest.raises(ValueError, match="refit=True"):
        LinearProbe(refit=False).fit(X, y).predict(X)
    with pytest.raises(ValueError, match="expecting 10 features"):
        probe.predict(X[:, :3])


def test_regression_and_parameters(data):
    X, _ = data
    target = X @ np.linspace(1, 0, 10) + 0.1 * np.random.default_rng(1).normal(size=len(X))
    probe = LinearProbe(alphas=(1e-3, 1.0)).fit(X, target)
    assert probe.task_ == "regression" and probe.score_ > 0.95 and probe.chance_ <= 0
    assert probe.score(X, target) > 0.95
    twin = clone(probe).set_params(C=0.1)
    assert twin.C == 0.1 and probe.C == 1.0 and not hasattr(twin, "result_")
    assert probe.get_params()["alphas"] == (1e-3, 1.0)


def test_convenience_parameters_and_streaming_shorthand(data):
    X, y = data
    probe = probe_estimator(cv=3, batch_size=64, epochs=2)
    assert probe.streaming == StreamingOptions(batch_size=64, epochs=2)
    with pytest.raises(TypeError, match="chance"):
        probe_estimator(chanse="balanced")
    streamed = ik.linear_probe(X, y, solver="streaming", batch_size=64, epochs=3)
    assert streamed.solver == "streaming" and streamed.score > 0.85
    # one feature as a 1-D array (the function reshapes; the estimator wants 2-D)
    assert ik.linear_probe(X[:, 0], y).n_features == 1
    with pytest.raises(ValueError, match="2D"):
        LinearProbe().fit(X[:, 0], y)


def test_fit_on_a_store_reads_the_layer_and_columns_through_the_base(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()).eval()
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 1, 6, 6)).astype(np.float32)
    y = (X[:, 0, :3].mean(axis=(1, 2)) > 0).astype(int)
    patients = np.repeat(np.arange(30), 4)
    batches = [
        {"x": torch.from_numpy(X[i : i + 40]), "y": torch.from_numpy(y[i : i + 40]),
         "patient": list(patients[i : i + 40])}
        for i in range(0, 120, 40)
    ]  # fmt: skip
    with capture(net, batches, ["1"], tmp_path / "s.h5", progress=False) as store:
        probe = LinearProbe(layer="1", reduce="flatten", cv=3).fit(store, "label", "patient")
        feats = store.to_numpy("1").reshape(120, -1)
        want = ik.linear_probe(feats, y, cv=3, groups=patients)
        np.testing.assert_allclose(probe.fold_scores_, want.fold_scores, rtol=1e-5)
        assert probe.result_.n_groups == 30 and probe.n_features_in_ == 4 * 36
        by_path = LinearProbe(layer="1", reduce="mean", cv=3).fit(str(store.path))
        pooled = ik.linear_probe(feats.reshape(120, 4, 36).mean(axis=2), y, cv=3)
        np.testing.assert_allclose(by_path.fold_scores_, pooled.fold_scores, rtol=1e-5)
        with pytest.raises(KeyError, match="patient"):
            LinearProbe(layer="1").fit(store, "label", "patients")
