"""Noisy linear imputation and map similarity against independent oracles (Quantus, scipy,
scikit-image)."""

import warnings

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import structural_similarity

from inspect_kit.analysis.trust import (
    imputation,
    map_similarity,
    noisy_linear_impute,
    random_pair_baseline,
)


def test_imputation_matches_quantus_2d():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    x = rng.random((3, 20, 20))
    removed = rng.random((20, 20)) < 0.4
    ours = noisy_linear_impute(x, removed, noise=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = quantus.functions.perturb_func.noisy_linear_imputation(
            x.copy(), np.flatnonzero(removed.ravel()), noise=0.0
        )
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(ours[:, ~removed], x[:, ~removed])


def test_each_imputed_voxel_is_the_weighted_mean_of_its_26_neighbours():
    rng = np.random.default_rng(1)
    x = rng.random((1, 6, 7, 8))
    removed = rng.random((6, 7, 8)) < 0.5
    out = noisy_linear_impute(x, removed, noise=0.0)[0]
    for d, h, w in np.argwhere(removed)[:40]:
        num = den = 0.0
        for off in np.ndindex(3, 3, 3):
            o = np.array(off) - 1
            if not o.any():
                continue
            q = np.array([d, h, w]) + o
            if (q < 0).any() or (q >= out.shape).any():
                continue
            wgt = 0.5 ** np.count_nonzero(o)
            num += wgt * out[tuple(q)]
            den += wgt
        assert out[d, h, w] == pytest.approx(num / den, abs=1e-10)


def test_identical_slices_impute_as_the_2d_slice():
    rng = np.random.default_rng(2)
    x2 = rng.random((1, 12, 12))
    r2 = rng.random((12, 12)) < 0.6
    x3 = np.repeat(x2[:, None], 5, axis=1)
    r3 = np.repeat(r2[None], 5, axis=0)
    a = noisy_linear_impute(x2, r2, noise=0.0)
    b = noisy_linear_impute(x3, r3, noise=0.0)
    np.testing.assert_allclose(b, np.repeat(a[:, None], 5, axis=1), atol=1e-10)


def test_iterative_solver_agrees_with_direct(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.random((2, 10, 10, 10))
    removed = rng.random((10, 10, 10)) < 0.7
    monkeypatch.setattr(imputation, "_DIRECT_LIMIT", {2: 10**6, 3: 10**6})
    direct = noisy_linear_impute(x, removed, noise=0.0)
    monkeypatch.setattr(imputation, "_DIRECT_LIMIT", {2: 10, 3: 10})
    iterative = noisy_linear_impute(x, removed, noise=0.0)
    np.testing.assert_allclose(iterative, direct, atol=1e-6)


def test_noise_is_added_only_to_imputed_voxels():
    x = np.zeros((1, 10, 10))
    removed = np.zeros((10, 10), bool)
    removed[3:7, 3:7] = True
    out = noisy_linear_impute(x, removed, noise=0.1, random_state=0)
    assert out[0, ~removed].std() == 0
    assert out[0, removed].std() == pytest.approx(0.1, rel=0.35)
    with pytest.raises(ValueError, match="every voxel"):
        noisy_linear_impute(x, np.ones((10, 10), bool))


def test_spearman_matches_scipy_and_abs_variant():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 9, 9)), rng.normal(size=(3, 9, 9))
    b[0] = a[0] + 0.5 * b[0]
    got = map_similarity(a, b, "spearman")
    ref = [stats.spearmanr(p.ravel(), q.ravel()).statistic for p, q in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, ref, atol=1e-12)
    got_abs = map_similarity(a, b, "spearman_abs")
    ref_abs = [
        stats.spearmanr(abs(p.ravel()), abs(q.ravel())).statistic for p, q in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(got_abs, ref_abs, atol=1e-12)
    assert map_similarity(a, -a, "spearman_abs") == pytest.approx([1, 1, 1])


@pytest.mark.parametrize("shape", [(2, 16, 16), (2, 8, 10, 12)])
def test_ssim_matches_skimage_on_max_normalised_maps(shape):
    rng = np.random.default_rng(5)
    a = rng.random(shape)
    b = a + 0.3 * rng.random(shape)
    got = map_similarity(a, b, "ssim")
    for k in range(shape[0]):
        p, q = a[k] / abs(a[k]).max(), b[k] / abs(b[k]).max()
        rng_ = max(p.max(), q.max()) - min(p.min(), q.min())
        assert got[k] == pytest.approx(structural_similarity(p, q, data_range=rng_), abs=1e-12)
    assert 0 < got.max() < 1


def test_ssim_agrees_with_quantus_similarity_function():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(6)
    a, b = rng.random((1, 16, 16)), rng.random((1, 16, 16))
    ours = float(map_similarity(a, b, "ssim")[0])
    ref = quantus.similarity_func.ssim(a[0] / a[0].max(), b[0] / b[0].max())
    assert ours == pytest.approx(float(ref), abs=1e-6)


def test_hog_of_a_volume_is_the_mean_over_axial_slices():
    rng = np.random.default_rng(7)
    a, b = rng.random((1, 4, 16, 16)), rng.random((1, 4, 16, 16))
    b[0, :2] = a[0, :2]  # two identical slices (HOG 1), two unrelated ones
    vol = float(map_similarity(a, b, "hog")[0])
    per_slice = [float(map_similarity(a[:, k], b[:, k], "hog")[0]) for k in range(4)]
    assert per_slice[0] == pytest.approx(1.0)
    assert vol == pytest.approx(np.mean(per_slice))
    assert abs(per_slice[2]) < 0.5


def test_random_pair_baseline_pairs_different_samples():
    maps = np.stack([np.full((8, 8), k, float) + np.eye(8) * k for k in range(1, 6)])
    # identical maps up to scale: every pair of different samples has Spearman 1
    assert random_pair_baseline(maps, "spearman") == pytest.approx(1.0)
    rng = np.random.default_rng(8)
    assert abs(random_pair_baseline(rng.random((20, 8, 8)), "spearman", n_pairs=200)) < 0.05
    with pytest.raises(ValueError, match="at least 2"):
        random_pair_baseline(maps[:1])
