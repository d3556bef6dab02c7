"""The CKA/RSA maths module against a direct numpy HSIC formula (an independent oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from inspect_kit.analysis.cka_rsa import cka, hsic, rdm


def hsic_direct(K, L, unbiased):
    """tr(KHLH)/(n-1)^2, or Song et al. (2012)'s unbiased estimator, written out."""
    n = len(K)
    if not unbiased:
        H = np.eye(n) - np.full((n, n), 1.0 / n)
        return np.trace(K @ H @ L @ H) / (n - 1) ** 2
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def cka_direct(K, L, unbiased):
    return hsic_direct(K, L, unbiased) / np.sqrt(
        hsic_direct(K, K, unbiased) * hsic_direct(L, L, unbiased)
    )


def rbf(X, sigma):
    d = squareform(pdist(X))
    return np.exp(-(d**2) / (2 * (sigma * np.median(pdist(X))) ** 2))


@pytest.fixture
def pair():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 6))
    Y = np.tanh(X @ rng.normal(size=(6, 9))) + 0.8 * rng.normal(size=(40, 9))
    return X, Y


@pytest.mark.parametrize("unbiased", [False, True])
def test_hsic_matches_the_direct_formula(pair, unbiased):
    X, Y = pair
    K, L = X @ X.T, Y @ Y.T
    want = hsic_direct(K, L, unbiased)
    assert abs(want) > 1e-3
    assert hsic(K, L, debiased=unbiased) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("wide", [False, True])
def test_linear_cka_matches_the_direct_formula(pair, unbiased, wide):
    X, Y = pair
    if wide:  # more features than samples: the Gram path instead of the feature path
        X, Y = np.repeat(X, 10, axis=1), np.repeat(Y, 10, axis=1)
    want = cka_direct(X @ X.T, Y @ Y.T, unbiased)
    assert 0.1 < want < 0.95
    assert cka(X, Y, debiased=unbiased) == pytest.approx(want, rel=1e-9)
    # float32 inputs: float32 precision
    got32 = cka(X.astype(np.float32), Y.astype(np.float32), debiased=unbiased)
    assert got32 == pytest.approx(want, rel=2e-5)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_rbf_cka_matches_the_direct_formula(pair, sigma):
    X, Y = pair
    for unbiased in (False, True):
        want = cka_direct(rbf(X, sigma), rbf(Y, sigma), unbiased)
        assert cka(X, Y, kernel="rbf", sigma=sigma, debiased=unbiased) == pytest.approx(
            want, rel=1e-9
        )


def test_rdm_and_rsa_match_scipy(pair):
    X, Y = pair
    np.testing.assert_allclose(rdm(X), squareform(pdist(X, "correlation")), atol=1e-12)
    np.testing.assert_allclose(rdm(X, "euclidean"), squareform(pdist(X)), atol=1e-12)
    # what similarity(method='rsa') computes, from the module's pieces
    from inspect_kit.analysis.cka_rsa import ranked_upper

    za, zb = ranked_upper(rdm(X)), ranked_upper(rdm(Y))
    want = spearmanr(pdist(X, "correlation"), pdist(Y, "correlation")).statistic
    assert float(za @ zb / len(za)) == pytest.approx(want, rel=1e-10)


def test_errors_say_what_is_needed():
    X = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(ValueError, match="at least 4 samples"):
        cka(X, X, debiased=True)
    with pytest.raises(ValueError, match="same samples"):
        cka(X, X[:2])
    with pytest.raises(ValueError, match="kernel="):
        cka(X, X, kernel="poly")  # type: ignore[arg-type]
