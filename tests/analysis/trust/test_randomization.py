"""Randomisation tests on the lesion task: an "attribution" that ignores the model fails, a
real gradient passes; the trained model is never modified."""

import numpy as np
import pytest
import torch

from inspect_kit.analysis.trust import data_randomization, model_randomization

from . import _lesion_models as L


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("dim", [2, 3])
def test_sobel_fails_and_gradient_passes_model_randomisation(dim):
    net = L.model(dim)
    x = torch.from_numpy(L.task(dim, "test").X[:12])
    before = _state(net)
    sobel = model_randomization(net, x, L.sobel, method="sobel", progress=False)
    grad = model_randomization(net, x, L.gradient, method="gradient", progress=False)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not sobel.passed and "do not read them" in sobel.reason
    assert sobel.final_scores["ssim"] == pytest.approx(1.0)
    assert sobel.final_scores["spearman"] == pytest.approx(1.0)
    assert grad.passed, grad.reason
    # the gradient of the fully random network is about as related as two different samples'
    assert grad.final_scores["ssim"] < grad.baseline["ssim"] + 0.1
    assert grad.stages[-1] == "fc+conv3+conv2+conv1"
    rows = grad.to_records()
    assert len(rows) == 4 and {"ssim", "ssim_baseline", "hog", "spearman_abs"} <= set(rows[0])


def test_independent_randomisation_and_summary():
    net = L.model(2)
    x = torch.from_numpy(L.task(2, "test").X[:8])
    res = model_randomization(
        net,
        x,
        L.input_x_gradient,
        method="input x gradient",
        mode="independent",
        metrics=("spearman_abs", "ssim"),
        progress=False,
    )
    assert res.stages == ["fc", "conv3", "conv2", "conv1"]
    assert res.scores["ssim"].shape == (4, 8)
    summary = res.summary()
    assert summary["score"] == pytest.approx(res.scores["ssim"].mean())
    assert summary["passed"] == (
        summary["score"] <= summary["baseline"] + 0.25 * (1 - summary["baseline"])
    )


def test_data_randomisation_with_a_permuted_labels_model():
    net, permuted = L.model(2), L.model(2, "permuted")
    x = torch.from_numpy(L.task(2, "test").X[:12])
    sobel = data_randomization(net, permuted, x, L.sobel, method="sobel")
    grad = data_randomization(net, permuted, x, L.gradient, method="gradient")
    assert not sobel.passed
    assert grad.passed, grad.reason
    assert grad.stages == ["permuted labels"]


def test_bad_arguments_are_named():
    net = L.model(2)
    x = torch.from_numpy(L.task(2, "test").X[:4])
    with pytest.raises(ValueError, match="mode"):
        model_randomization(net, x, L.gradient, mode="sideways")
    with pytest.raises(ValueError, match="verdict_metric"):
        model_randomization(net, x, L.gradient, metrics=("spearman",), verdict_metric="ssim")
    with pytest.raises(ValueError, match="at least 2"):
        model_randomization(net, x[:1], L.gradient)
    with pytest.raises(ValueError, match="maps for"):
        model_randomization(net, x, lambda m, t: np.zeros((1, *t.shape[2:])), progress=False)
