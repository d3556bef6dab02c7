"""CKA and RSA: against independent numpy/scipy references, invariances, the minibatch
estimator from stores, sample matching between stores, caching, errors."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr
from torch import nn

import inspect_kit as ik
from inspect_kit import capture
from inspect_kit.analysis.similarity import hsic, rdm

# float64 results of the same float64 numbers: agreement to rounding
RTOL64 = 1e-10
# float32 inputs against a reference on the float64 originals: float32 precision
RTOL32 = 2e-5


# -- independent references (Kornblith et al.'s formulation, written from the papers) ---------
def ref_linear_cka(X, Y):
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    return np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def ref_center_gram(K, unbiased):
    """Centring of a Gram matrix; the unbiased form is the U-statistic centring (Song 2012)."""
    K = K.copy()
    n = len(K)
    if unbiased:
        np.fill_diagonal(K, 0)
        means = K.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        K -= means[:, None]
        K -= means[None, :]
        np.fill_diagonal(K, 0)
    else:
        H = np.eye(n) - np.ones((n, n)) / n
        K = H @ K @ H
    return K


def ref_gram_cka(K, L, debiased=False):
    Kc, Lc = ref_center_gram(K, debiased), ref_center_gram(L, debiased)
    return np.sum(Kc * Lc) / (np.linalg.norm(Kc) * np.linalg.norm(Lc))


def ref_rbf_gram(X, sigma=1.0):
    d = squareform(pdist(X))
    bw = sigma * np.median(pdist(X))
    return np.exp(-(d**2) / (2 * bw**2))


def related(rng, n=120, p=12, q=20, noise=1.0):
    X = rng.normal(size=(n, p)) + 2.0
    Y = np.tanh(X @ rng.normal(size=(p, q))) + noise * rng.normal(size=(n, q))
    return X, Y


# -- cka on arrays ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,rtol", [(np.float64, RTOL64), (np.float32, RTOL32)])
def test_linear_cka_matches_feature_and_gram_references(dtype, rtol):
    rng = np.random.default_rng(0)
    X, Y = related(rng)
    want = ref_linear_cka(X, Y)
    assert 0.2 < want < 0.95  # a value that could be wrong in either direction
    assert ik.cka(X.astype(dtype), Y.astype(dtype)) == pytest.approx(want, rel=rtol)
    # the same number from the Gram (kernel) form of the reference
    assert ref_gram_cka(X @ X.T, Y @ Y.T) == pytest.approx(want, rel=1e-10)
    # wide features take cka's Gram path, narrow ones the feature path: both agree
    wide_x, wide_y = np.repeat(X, 40, axis=1), np.repeat(Y, 40, axis=1)
    assert ik.cka(wide_x.astype(dtype), wide_y.astype(dtype)) == pytest.approx(want, rel=rtol)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, RTOL64), (np.float32, RTOL32)])
def test_debiased_linear_cka_matches_the_unbiased_gram_reference(dtype, rtol):
    rng = np.random.default_rng(1)
    X, Y = related(rng)
    want = ref_gram_cka(X @ X.T, Y @ Y.T, debiased=True)
    assert abs(want - ref_linear_cka(X, Y)) > 1e-3  # the debiasing changes the value
    assert ik.cka(X.astype(dtype), Y.astype(dtype), debiased=True) == pytest.approx(want, rel=rtol)
    wide_x, wide_y = np.repeat(X, 40, axis=1), np.repeat(Y, 40, axis=1)
    assert ik.cka(wide_x, wide_y, debiased=True) == pytest.approx(want, rel=RTOL64)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_rbf_cka_matches_the_gram_reference(debiased, sigma):
    rng = np.random.default_rng(2)
    X, Y = related(rng)
    want = ref_gram_cka(ref_rbf_gram(X, sigma), ref_rbf_gram(Y, sigma), debiased=debiased)
    got = ik.cka(X, Y, kernel="rbf", sigma=sigma, debiased=debiased)
    assert got == pytest.approx(want, rel=1e-9)
    assert got != pytest.approx(ik.cka(X, Y, debiased=debiased), abs=1e-3)


def test_hsic_matches_the_trace_formula():
    rng = np.random.default_rng(3)
    X, Y = related(rng, n=40)
    K, L = X @ X.T, Y @ Y.T
    H = np.eye(40) - 1 / 40
    assert hsic(K, L) == pytest.approx(np.trace(K @ H @ L @ H) / 39**2, rel=1e-10)
    # unbiased: the explicit formula of Song et al. (2012), eq. 5
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(40)
    want = (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / (39 * 38)
        - 2 / 38 * one @ Kt @ Lt @ one
    ) / (40 * 37)
    assert hsic(K, L, debiased=True) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_invariant_to_orthogonal_transforms_and_isotropic_scaling(kernel, debiased):
    rng = np.random.default_rng(4)
    X, Y = related(rng)
    base = ik.cka(X, Y, kernel=kernel, debiased=debiased)
    Q, _ = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    assert ik.cka(X @ Q, Y, kernel=kernel, debiased=debiased) == pytest.approx(base, rel=1e-9)
    assert ik.cka(7.5 * X, 0.01 * Y, kernel=kernel, debiased=debiased) == pytest.approx(
        base, rel=1e-9
    )
    assert ik.cka(
        X, Y @ np.linalg.qr(rng.normal(size=(20, 20)))[0] + 3.0, kernel=kernel, debiased=debiased
    ) == pytest.approx(base, rel=1e-9)
    # ... but not to anisotropic scaling: the test can fail
    D = np.diag(np.linspace(0.1, 10, X.shape[1]))
    assert abs(ik.cka(X @ D, Y, kernel=kernel, debiased=debiased) - base) > 1e-3
    assert ik.cka(X, 3 * X @ Q, kernel=kernel, debiased=debiased) == pytest.approx(1.0, rel=1e-9)


def test_debiased_cka_is_near_zero_for_unrelated_wide_features():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(100, 2000)), rng.normal(size=(100, 2000))
    assert ik.cka(X, Y) > 0.9  # the biased estimator: high-dimensional noise looks alike
    assert abs(ik.cka(X, Y, debiased=True)) < 0.02


def test_cka_input_errors():
    X = np.ones((10, 3))
    with pytest.raises(ValueError, match="same samples"):
        ik.cka(X, np.ones((11, 3)))
    with pytest.raises(ValueError, match="kernel"):
        ik.cka(X, X, kernel="poly")
    with pytest.raises(ValueError, match="at least 4"):
        ik.cka(X[:3], X[:3], debiased=True)
    with pytest.raises(ValueError, match="NaN"):
        ik.cka(np.full((10, 3), np.nan), X)
    assert np.isnan(ik.cka(X, np.random.default_rng(0).normal(size=(10, 3))))  # constant X


def test_rdm_matches_scipy():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 8)) + 1.0
    np.testing.assert_allclose(rdm(X), squareform(pdist(X, "correlation")), atol=1e-12)
    np.testing.assert_allclose(rdm(X, "euclidean"), squareform(pdist(X)), atol=1e-10)


# -- stores -------------------------------------------------------------------------------------
def _mlp() -> nn.Module:
    torch.manual_seed(0)  # inside fork_rng below
    return nn.Sequential(
        OrderedDict(
            lin1=nn.Linear(6, 24),
            act1=nn.Tanh(),
            lin2=nn.Linear(24, 16),
            act2=nn.ReLU(),
            out=nn.Linear(16, 3),
        )
    ).eval()


@pytest.fixture(scope="module")
def mlp():
    with torch.random.fork_rng(devices=[]):
        return _mlp()


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(7).normal(size=(150, 6)).astype(np.float32)


def _capture(model, X, path, order=None, index=None):
    order = np.arange(len(X)) if order is None else np.asarray(order)
    index = order if index is None else np.asarray(index)
    batches = [
        {"x": torch.from_numpy(X[order[i : i + 40]]), "index": torch.from_numpy(index[i : i + 40])}
        for i in range(0, len(order), 40)
    ]
    return capture(
        model, batches, ["lin1", "act1", "act2", "out"], path, thumbnails=None, progress=False
    )


def test_store_similarity_matches_in_memory_cka_and_rsa_references(mlp, inputs, tmp_path):
    store = _capture(mlp, inputs, tmp_path / "a.h5")
    feats = {name: store.to_numpy(name).astype(np.float64) for name in store.layers}
    sim = ik.similarity(store, batch_size=None, progress=False)
    want = [[ik.cka(feats[a], feats[b], debiased=True) for b in store.layers] for a in store.layers]
    np.testing.assert_allclose(sim.matrix, want, rtol=1e-9, atol=1e-12)
    # the reference on the stored float32 values, computed independently
    assert sim["act1", "act2"] == pytest.approx(
        ref_gram_cka(*(feats[k] @ feats[k].T for k in ("act1", "act2")), debiased=True), rel=1e-9
    )
    rbf = ik.similarity(store, kernel="rbf", batch_size=None, debiased=False, progress=False)
    assert rbf["lin1", "out"] == pytest.approx(
        ref_gram_cka(ref_rbf_gram(feats["lin1"]), ref_rbf_gram(feats["out"])), rel=1e-9
    )
    rsa = ik.similarity(store, method="rsa", rdm="correlation", progress=False)
    assert rsa.n_samples == 150
    for a, b in (("lin1", "act2"), ("act1", "out")):
        rho = spearmanr(pdist(feats[a], "correlation"), pdist(feats[b], "correlation"))[0]
        assert rsa[a, b] == pytest.approx(rho, rel=1e-9)
    rsa_e = ik.similarity(store, method="rsa", rdm="euclidean", n_samples=60, progress=False)
    assert rsa_e.n_samples == 60 and rsa_e.params["rdm"] == "euclidean"
    assert np.allclose(np.diag(rsa_e.matrix), 1.0)


@pytest.mark.slow
def test_minibatch_estimate_converges_to_the_full_debiased_value(digits, digits_cnn, tmp_path):
    X = np.concatenate([digits.X_train, digits.X_test])  # N = 1797
    store = capture(
        digits_cnn, X, ["relu2", "relu3", "fc"], tmp_path / "d.h5", thumbnails=None, progress=False
    )
    full = ik.similarity(store, batch_size=None, cache=False, progress=False)
    assert full.params["batch_size"] is None  # one batch of every sample: the full estimate

    def error(batch_size, seeds, debiased=True):
        return float(
            np.mean(
                [
                    np.abs(
                        ik.similarity(
                            store,
                            batch_size=batch_size,
                            random_state=s,
                            debiased=debiased,
                            cache=False,
                            progress=False,
                        ).matrix
                        - full.matrix
                    ).max()
                    for s in seeds
                ]
            )
        )

    # measured (mean over seeds of the largest error over the matrix): batch 32: 0.004,
    # batch 600 (two minibatches of ~900): 0.0003; values themselves 0.71 to 0.95
    small, large = error(32, range(2)), error(600, [0])
    assert large < 0.5 * small
    assert large < 1e-3 and small < 0.01
    # the biased per-batch HSIC does not converge at small batches: CKA comes out inflated
    assert error(32, [0], debiased=False) > 5 * small


@pytest.mark.slow
def test_a_trained_network_against_itself_gives_a_unit_diagonal(digits, digits_cnn, tmp_path):
    a = capture(
        digits_cnn,
        digits.X_test,
        ["relu1", "relu2", "relu3", "fc"],
        tmp_path / "a.h5",
        thumbnails=None,
        progress=False,
    )
    b = capture(
        digits_cnn,
        digits.X_test,
        ["relu1", "relu2", "relu3", "fc"],
        tmp_path / "b.h5",
        thumbnails=None,
        progress=False,
    )
    sim = ik.similarity(a, b, batch_size=128, progress=False)
    np.testing.assert_allclose(np.diag(sim.matrix), 1.0, rtol=1e-9)
    off = sim.matrix[~np.eye(4, dtype=bool)]
    assert off.max() < 0.999 and off.min() > 0.1
    within = ik.similarity(a, batch_size=128, progress=False)
    np.testing.assert_allclose(within.matrix, within.matrix.T, atol=1e-12)
    np.testing.assert_allclose(within.matrix, sim.matrix, rtol=1e-9, atol=1e-12)
    pooled = ik.similarity(a, b, reduction="mean", batch_size=None, progress=False)
    relu2 = a.to_numpy("relu2").astype(np.float64).mean(axis=(2, 3))
    relu3 = a.to_numpy("relu3").astype(np.float64).mean(axis=(2, 3))
    assert pooled["relu2", "relu3"] == pytest.approx(ik.cka(relu2, relu3, debiased=True), rel=1e-9)


@pytest.mark.slow
def test_wide_rows_read_in_slices_of_channels_give_the_same_values(
    digits, digits_cnn, tmp_path, monkeypatch
):
    from inspect_kit.analysis import blocks as module

    store = capture(
        digits_cnn,
        digits.X_test[:200],
        ["relu1", "relu3", "fc"],
        tmp_path / "s.h5",
        thumbnails=None,
        progress=False,
    )
    kwargs = dict(batch_size=64, cache=False, progress=False)
    want = [ik.similarity(store, reduction=r, **kwargs).matrix for r in ("flatten", "mean")]
    want.append(ik.similarity(store, method="rsa", **kwargs).matrix)
    # rows no longer read whole, and a few channels at a time
    monkeypatch.setattr(module, "RAW_BYTES", 0)
    monkeypatch.setattr(module, "BLOCK_BYTES", 64 * 3 * 64 * 8)
    got = [ik.similarity(store, reduction=r, **kwargs).matrix for r in ("flatten", "mean")]
    got.append(ik.similarity(store, method="rsa", **kwargs).matrix)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


def test_stores_matched_by_sample_index_in_another_order_give_the_same_matrix(
    mlp, inputs, tmp_path
):
    a = _capture(mlp, inputs, tmp_path / "a.h5")
    perm = np.random.default_rng(0).permutation(len(inputs))
    b = _capture(mlp, inputs, tmp_path / "b.h5", order=perm)
    assert not np.array_equal(a.index, b.index)
    same = ik.similarity(a, a.path, batch_size=32, progress=False)  # the same file: within
    ab = ik.similarity(a, b, batch_size=32, progress=False)
    np.testing.assert_allclose(ab.matrix, same.matrix, rtol=1e-9, atol=1e-12)
    ba = ik.similarity(b, a, batch_size=32, progress=False)
    np.testing.assert_allclose(ba.matrix, ab.matrix.T, rtol=1e-9, atol=1e-12)
    rsa = ik.similarity(a, b, method="rsa", n_samples=80, progress=False)
    np.testing.assert_allclose(np.diag(rsa.matrix), 1.0, atol=1e-12)
    # a partial overlap uses the samples both hold
    c = _capture(mlp, inputs[:90], tmp_path / "c.h5")
    ac = ik.similarity(a, c, batch_size=None, progress=False)
    assert ac.n_samples == 90
    np.testing.assert_allclose(np.diag(ac.matrix), 1.0, rtol=1e-9)


def test_stores_without_common_samples_are_an_error_naming_both(mlp, inputs, tmp_path):
    a = _capture(mlp, inputs[:50], tmp_path / "first.h5")
    b = _capture(mlp, inputs[:50], tmp_path / "second.h5", index=np.arange(1000, 1050))
    with pytest.raises(ValueError, match="no sample in common") as err:
        ik.similarity(a, b, progress=False)
    assert "first.h5" in str(err.value) and "second.h5" in str(err.value)
    assert "1000..1049" in str(err.value)


def test_results_are_cached_in_the_store_with_their_parameters(mlp, inputs, tmp_path):
    path = tmp_path / "a.h5"
    _capture(mlp, inputs, path).close()
    first = ik.similarity(path, batch_size=50, random_state=3, progress=False)
    assert not first.from_cache
    again = ik.similarity(path, batch_size=50, random_state=3, progress=False)
    assert again.from_cache
    np.testing.assert_array_equal(again.matrix, first.matrix)
    other_seed = ik.similarity(path, batch_size=50, random_state=4, progress=False)
    assert not other_seed.from_cache and not np.array_equal(other_seed.matrix, first.matrix)
    with ik.open_store(path) as store:
        groups = store.results("similarity")
        assert len(groups) == 2
        data, attrs = store.load_result(groups[0])
        assert attrs["params"]["batch_size"] == 50 and attrs["params"]["debiased"] is True
        assert list(data["layers"]) == ["lin1", "act1", "act2", "out"]
    refreshed = ik.similarity(path, batch_size=50, random_state=3, refresh=True, progress=False)
    assert not refreshed.from_cache


def test_similarity_errors_name_the_fix(mlp, inputs, tmp_path):
    store = _capture(mlp, inputs, tmp_path / "a.h5")
    with pytest.raises(KeyError, match="did you mean .*'act1'"):
        ik.similarity(store, layers=["act"], progress=False)
    with pytest.raises(ValueError, match="method"):
        ik.similarity(store, method="cca", progress=False)
    with pytest.raises(ValueError, match="reduction"):
        ik.similarity(store, reduction="median", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        ik.similarity(store, batch_size=2, progress=False)
