"""Max-sensitivity and seed-to-seed agreement against hand-computed values."""

import numpy as np
import pytest
import torch

from inspect_kit.analysis.trust import max_sensitivity, seed_agreement

from . import _lesion_models as L


def test_max_sensitivity_of_the_identity_map_is_the_relative_noise_norm():
    # attribution = the input: the change of the map is the noise itself, whose norm over
    # P voxels of U(-r, r) noise is about r * sqrt(P / 3)
    x = torch.ones(3, 1, 20, 20)
    res = max_sensitivity(torch.nn.Identity(), x, lambda m, t: t, radius=0.05, n_perturbations=5)
    expected = 0.05 * np.sqrt(400 / 3) / np.sqrt(400)
    np.testing.assert_allclose(res.values, expected, rtol=0.08)
    assert res.values.max() <= 0.05 + 1e-6  # never more than the sup-norm bound


def test_max_sensitivity_of_a_scale_free_method_ignores_the_scale():
    x = torch.rand(2, 1, 10, 10, 10)
    a = max_sensitivity(torch.nn.Identity(), x, lambda m, t: t**2, radius=0.01, n_perturbations=3)
    b = max_sensitivity(
        torch.nn.Identity(), x, lambda m, t: 7 * t**2, radius=0.01, n_perturbations=3
    )
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5)


def test_gradient_maps_move_more_than_sobel_under_noise_on_the_lesion_model():
    net = L.model(2)
    x = torch.from_numpy(L.positives(2, n=8).X)
    grad = max_sensitivity(net, x, L.gradient, radius=0.05, n_perturbations=4)
    sobel = max_sensitivity(net, x, L.sobel, radius=0.05, n_perturbations=4)
    assert np.isfinite(grad.values).all()
    # Sobel of the input changes only with the noise's own edges; a gradient map of this
    # network moves more under the same noise
    assert sobel.values.mean() < grad.values.mean()
    assert grad.to_records()[0]["max_sensitivity"] == pytest.approx(grad.values.mean())


def test_seed_agreement_of_deterministic_and_noise_dominated_methods():
    x = torch.rand(4, 1, 12, 12)

    def deterministic(m, t, seed):
        return t

    def pure_noise(m, t, seed):
        return torch.randn(t.shape, generator=torch.Generator().manual_seed(seed))

    assert seed_agreement(None, x, deterministic).mean == pytest.approx(1.0)
    noise = seed_agreement(None, x, pure_noise, seeds=(0, 1, 2, 3))
    assert noise.scores.shape == (6, 4)
    assert abs(noise.mean) < 0.1
    with pytest.raises(ValueError, match="two different seeds"):
        seed_agreement(None, x, deterministic, seeds=(1, 1))
