"""Embeddings of a trained digits CNN's features: oracles, quality thresholds, cache, errors.

The model is a SmallCNN trained on scikit-learn's digits (real data shipped with sklearn); its
features are captured to an HDF5 store exactly as a user would. t-SNE and UMAP are each fitted
once per module (UMAP's numba JIT is paid once).
"""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest

from inspect_kit.analysis.embedding import (
    Features,
    PCAEmbedding,
    TSNEEmbedding,
    UMAPEmbedding,
    embed,
    reduce_rows,
)
from inspect_kit.analysis.metrics import knn_accuracy, trustworthiness
from inspect_kit.capture import capture
from inspect_kit.models import evaluate_classifier
from tests.numeric import EPS32, EPS64, assert_close

LAYERS = ["relu1", "relu2", "flatten"]


@pytest.fixture(scope="module")
def stores(digits, digits_cnn, tmp_path_factory):
    """Stores of the trained digits CNN's features: its training split and held-out split."""
    d = tmp_path_factory.mktemp("digits_store")
    site = np.where(np.arange(len(digits.y_train)) % 2 == 0, "A", "B")
    train = capture(
        digits_cnn,
        digits.X_train,
        LAYERS,
        d / "train.h5",
        labels=digits.y_train,
        metadata={"site": site},
        progress=False,
    )
    test = capture(
        digits_cnn, digits.X_test, LAYERS, d / "test.h5", labels=digits.y_test, progress=False
    )
    yield {
        "train": train,
        "test": test,
        "y_train": digits.y_train,
        "y_test": digits.y_test,
        "test_accuracy": evaluate_classifier(digits_cnn, digits.X_test, digits.y_test)["accuracy"],
    }
    train.close()
    test.close()


@pytest.fixture(scope="module")
def tsne_map(stores):
    # one thread: on 2 shared cores, more threads only spin-wait on each other
    return embed(stores["train"], "flatten", "tsne", n_jobs=1, progress=False)


@pytest.fixture(scope="module")
def umap_map(stores):
    return embed(stores["train"], "flatten", "umap", progress=False)


# -- the trained model is what we think it is --------------------------------------------------
def test_trained_model_is_good(stores):
    # The thresholds below assume features that separate the digits; check that first.
    assert stores["test_accuracy"] > 0.95
    gap = stores["train"].to_numpy("flatten")
    assert knn_accuracy(gap, stores["y_train"], 10) > 0.9


# -- PCA oracles ------------------------------------------------------------------------------
def _svd_reference(X: np.ndarray, k: int):
    X64 = X.astype(np.float64)
    Xc = X64 - X64.mean(axis=0)  # a float64 mean: float32's own is off by ~1 ulp per feature
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    comps = vt[:k] * np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])[:, None]
    var = s**2 / (len(X) - 1)
    return comps, var[:k], var[:k] / var.sum(), Xc @ comps.T


# Tolerances follow what each solver computes in. "memory" is scikit-learn's PCA on float32
# input, float32 throughout; "covariance" accumulates the covariance and solves it in float64.
# Eigenvector error scales with eps * lambda_1 / (smallest gap between the kept eigenvalues)
# and with sqrt(D) for the sums over the D features. Coordinates come back as float32 either
# way, so they can never be closer than float32 rounding of the largest coordinate.
@pytest.mark.parametrize(("solver", "eps"), [("memory", EPS32), ("covariance", EPS64)])
def test_pca_matches_numpy_svd(stores, solver, eps):
    X = stores["train"].to_numpy("flatten")
    k = 5
    comps, var, ratio, proj = _svd_reference(X, k)
    pca = PCAEmbedding(k, solver=solver, metrics=False, progress=False).fit(
        stores["train"]["flatten"]
    )
    assert pca.solver_ == solver
    assert pca.embedding_.dtype == np.float32
    d = X.shape[1]
    gap = np.min(-np.diff(_svd_reference(X, k + 1)[1]))  # between kept and next eigenvalues
    rel = 16 * eps * np.sqrt(d)
    np.testing.assert_allclose(pca.components_, comps, atol=rel * var[0] / gap)
    np.testing.assert_allclose(pca.explained_variance_, var, rtol=rel * var[0] / gap)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ratio, rtol=rel * var[0] / gap)
    # float32 coordinates: at best float32 rounding, plus the solver's own error
    coord_rel = max(rel * var[0] / gap, 2 * EPS32)
    np.testing.assert_allclose(pca.embedding_, proj, atol=coord_rel * np.abs(proj).max())


def test_streamed_pca_from_store_matches_svd_and_stays_bounded(stores):
    store = stores["train"]
    full = store.to_numpy("relu1")  # (1347, 8, 16, 16): 11 MB of float32
    pooled = full.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)  # as reduce="mean"
    comps, var, ratio, proj = _svd_reference(pooled, 3)

    feats = Features(store["relu1"], reduce="mean", block_rows=100, progress=False)
    tracemalloc.start()
    try:
        cov = PCAEmbedding(3, solver="covariance", metrics=False, progress=False).fit(feats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the streamed mean pooling rounds to float32 in its own order: inputs differ by ~1 ulp,
    # which moves eigenvectors by eps32 * lambda_1 / gap
    gap = np.min(-np.diff(_svd_reference(pooled, 4)[1]))
    rel = 16 * EPS32 * np.sqrt(pooled.shape[1]) * var[0] / gap
    np.testing.assert_allclose(cov.components_, comps, atol=rel)
    np.testing.assert_allclose(cov.explained_variance_ratio_, ratio, rtol=rel)
    np.testing.assert_allclose(cov.embedding_, proj, atol=rel * np.abs(proj).max())
    # memory follows the 100-row block (0.8 MB of maps), not the 11 MB layer
    assert peak < full.nbytes / 4, (peak, full.nbytes)

    # IncrementalPCA keeps k directions between blocks: approximate, but close when the
    # spectrum has a gap. Compare subspaces (principal angles) and explained variance.
    inc = PCAEmbedding(3, solver="incremental", metrics=False, progress=False).fit(feats)
    cosines = np.linalg.svd(inc.components_[:2] @ comps[:2].T, compute_uv=False)
    assert cosines.min() > 0.99
    np.testing.assert_allclose(inc.explained_variance_[:2], var[:2], rtol=0.05)


def test_reduction_is_global_average_pooling_and_recorded(stores):
    store = stores["train"]
    raw = store["relu2"][:50]
    assert_close(reduce_rows(raw, "mean"), raw.mean(axis=(2, 3)), terms=raw[0, 0].size)
    np.testing.assert_allclose(reduce_rows(raw, "max"), raw.max(axis=(2, 3)))
    emb = embed(store, "relu2", "pca", samples=np.arange(300), cache=False, progress=False)
    assert emb.params["features"] == {
        "source_shape": [16, 8, 8],
        "reduce": "mean",
        "n_features": 16,
        "n_samples": 300,
    }
    emb_max = embed(
        store, "relu2", "pca", reduce="max", samples=np.arange(300), cache=False, progress=False
    )
    assert emb_max.params["features"]["reduce"] == "max"
    assert not np.allclose(emb.coords, emb_max.coords)
    flat = embed(
        store, "relu2", "pca", reduce="flatten", samples=np.arange(300), cache=False, progress=False
    )
    assert flat.params["features"]["n_features"] == 16 * 8 * 8


# -- quality on trained features ----------------------------------------------------------------
def _trust_by_definition(X, Z, k):
    # Venna & Kaski's sum, point by point: ranks in X of the neighbours Z invents
    n = len(X)
    dx = np.linalg.norm(X[:, None] - X[None], axis=2)
    dz = np.linalg.norm(Z[:, None] - Z[None], axis=2)
    penalty = 0.0
    for i in range(n):
        order_x = [j for j in np.argsort(dx[i], kind="stable") if j != i]
        rank = {j: r + 1 for r, j in enumerate(order_x)}
        near_z = [j for j in np.argsort(dz[i], kind="stable") if j != i][:k]
        penalty += sum(max(0, rank[j] - k) for j in near_z)
    return 1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty


def test_trustworthiness_matches_its_definition(stores):
    X = stores["train"].to_numpy("flatten")[:150].astype(np.float64)
    Z = PCAEmbedding(2, metrics=False, progress=False).fit_transform(X)
    for k in (5, 10):
        assert trustworthiness(X, Z, k) == pytest.approx(_trust_by_definition(X, Z, k), abs=1e-9)
    with pytest.raises(ValueError, match="n_neighbors"):
        trustworthiness(X, Z, 75)


def test_tsne_quality_on_trained_digits(tsne_map, stores):
    m = tsne_map.metrics
    # Thresholds: a random map scores ~0.5 trustworthiness and ~0.1 (chance) kNN accuracy
    # (checked below). t-SNE keeps local neighbourhoods: its 10-NN accuracy should be within
    # a few points of the features' own (>0.98 here, as the classifier's 97% test accuracy
    # suggests). Measured: trustworthiness 0.995, kNN accuracy 0.994 vs 0.993 in features.
    assert m["trustworthiness"] > 0.97
    assert m["knn_accuracy"] > 0.95
    assert m["knn_accuracy"] > m["knn_accuracy_original"] - 0.03
    assert m["n_samples"] == 1347  # metric_samples=2000 > N: every sample used
    shuffled = np.random.default_rng(0).permutation(tsne_map.coords)
    assert trustworthiness(stores["train"].to_numpy("flatten"), shuffled) < 0.6
    assert knn_accuracy(shuffled, stores["y_train"]) < 0.2
    assert tsne_map.params["pre_pca"] is None  # 32 features < 50: no pre-reduction
    assert tsne_map.params["negative_gradient_method"] == "bh"  # openTSNE's rule below 10k
    assert tsne_map.params["random_state"] == 0


@pytest.mark.slow
def test_umap_quality_on_trained_digits(umap_map):
    m = umap_map.metrics
    # UMAP trades some local faithfulness for global layout: slightly looser than t-SNE.
    # Measured: trustworthiness 0.990, kNN accuracy 0.995 vs 0.993 in features.
    assert m["trustworthiness"] > 0.95
    assert m["knn_accuracy"] > 0.95
    assert m["knn_accuracy"] > m["knn_accuracy_original"] - 0.03
    assert umap_map.params["versions"]["umap-learn"]


def test_neighbour_maps_keep_classes_better_than_pca(tsne_map, stores):
    pca = embed(stores["train"], "flatten", "pca", cache=False, progress=False)
    # 2 linear components of 32-d features cannot separate 10 classes; t-SNE can.
    assert pca.metrics["knn_accuracy"] < tsne_map.metrics["knn_accuracy"] - 0.1
    assert pca.metrics["trustworthiness"] < tsne_map.metrics["trustworthiness"]


# -- placing held-out samples -----------------------------------------------------------------
def test_tsne_transform_places_held_out_digits_near_their_class(tsne_map, stores):
    placed = tsne_map.transform(stores["test"])
    assert placed.coords.shape == (450, 2)
    assert placed.layer == "flatten"
    np.testing.assert_array_equal(placed.labels, stores["y_test"])
    # a held-out digit's nearest training points share its label about as often as the
    # classifier is right (97.6%); chance is 10%. Measured: 0.982.
    assert placed.metrics["knn_transfer_accuracy"] > 0.9


@pytest.mark.slow
def test_umap_transform_places_held_out_digits_near_their_class(umap_map, stores):
    placed = umap_map.transform(stores["test"])
    assert placed.metrics["knn_transfer_accuracy"] > 0.9  # measured 0.984


def test_pca_transform_is_the_projection(stores):
    emb = embed(stores["train"], "flatten", "pca", cache=False, progress=False)
    est = emb.estimator
    Xt = stores["test"].to_numpy("flatten")
    # float32 coordinates against a float64 projection over the D features
    assert_close(
        emb.transform(stores["test"]).coords,
        (Xt - est.mean_) @ est.components_.T,
        terms=Xt.shape[1],
    )


def test_tsne_3d_uses_barnes_hut_and_sklearn_backend_is_selectable(stores):
    sub = np.arange(200)
    e3 = embed(
        stores["train"],
        "flatten",
        "tsne",
        n_components=3,
        samples=sub,
        perplexity=10,
        n_iter=100,
        n_jobs=1,
        cache=False,
        progress=False,
    )
    assert e3.coords.shape == (200, 3)
    assert e3.params["negative_gradient_method"] == "bh"
    fft = embed(
        stores["train"],
        "flatten",
        "tsne",
        samples=sub,
        perplexity=10,
        n_iter=50,
        n_jobs=1,
        cache=False,
        progress=False,
        backend_params={"negative_gradient_method": "fft", "early_exaggeration_iter": 50},
    )
    assert fft.params["negative_gradient_method"] == "fft"
    assert fft.metrics["knn_accuracy"] > 0.8
    with pytest.raises(ValueError, match="FFT gradients support at most 2"):
        embed(
            stores["train"],
            "flatten",
            "tsne",
            n_components=3,
            samples=sub,
            perplexity=10,
            cache=False,
            backend_params={"negative_gradient_method": "fft"},
        )
    sk = embed(
        stores["train"],
        "flatten",
        "tsne",
        backend="sklearn",
        samples=sub,
        perplexity=10,
        n_iter=0,
        n_jobs=1,
        cache=False,
        progress=False,
    )
    assert sk.coords.shape == (200, 2)
    assert sk.metrics["knn_accuracy"] > 0.5  # 250 iterations: rough but structured
    with pytest.raises(ValueError, match="backend='opentsne'"):
        sk.transform(stores["test"])


# -- cache --------------------------------------------------------------------------------------
def test_cache_reuses_identical_coordinates_without_recomputing(tsne_map, stores, monkeypatch):
    store = stores["train"]
    assert "embeddings/flatten/tsne" in store.results("embeddings")
    data, attrs = store.load_result("embeddings/flatten/tsne")
    assert attrs["random_state"] == 0
    assert attrs["params"]["perplexity"] == 30.0
    assert attrs["metrics"]["trustworthiness"] == pytest.approx(tsne_map.metrics["trustworthiness"])

    def boom(self, feats):
        raise AssertionError("recomputed instead of reusing the cache")

    monkeypatch.setattr(TSNEEmbedding, "_fit", boom)
    again = embed(store, "flatten", "tsne", n_jobs=2, progress=False)  # n_jobs: not in the key
    assert again.from_cache
    np.testing.assert_array_equal(again.coords, tsne_map.coords)
    np.testing.assert_array_equal(again.labels, tsne_map.labels)
    assert again.metrics == tsne_map.metrics
    with pytest.raises(ValueError, match="cache='refresh'"):
        again.transform(stores["test"])
    # other parameters: recomputed
    with pytest.raises(AssertionError, match="recomputed"):
        embed(store, "flatten", "tsne", perplexity=20, progress=False)


def test_pca_cache_round_trip_keeps_transform(stores):
    store = stores["test"]
    first = embed(store, "flatten", "pca", progress=False)
    second = embed(store, "flatten", "pca", progress=False)
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    assert_close(second.transform(store).coords, first.coords, terms=store["flatten"].shape[1])
    refreshed = embed(store, "flatten", "pca", cache="refresh", progress=False)
    assert not refreshed.from_cache
    other = embed(store, "flatten", "pca", samples=np.arange(100), progress=False)
    assert not other.from_cache and len(other) == 100


def test_store_path_and_metadata_come_along(stores):
    emb = embed(stores["train"].path, "flatten", "pca", progress=False)
    assert emb.source == str(stores["train"].path)
    assert set(emb.metadata) == {"site"}
    assert emb.thumbnails.shape == (1347, 16, 16) and emb.thumbnails.dtype == np.uint8
    np.testing.assert_array_equal(emb.index, np.arange(1347))
    assert emb.predictions is not None and emb.correct.mean() > 0.9


# -- errors -------------------------------------------------------------------------------------
def test_unknown_layer_lists_close_matches(stores):
    with pytest.raises(KeyError, match="relu2"):
        embed(stores["train"], "relu_2", "pca", progress=False)
    with pytest.raises(ValueError, match="pick one with layer="):
        embed(stores["train"], method="pca", progress=False)


def test_too_few_samples_for_perplexity_or_neighbours(stores):
    few = np.arange(50)
    with pytest.raises(ValueError, match=r"perplexity=30 needs at least 91 samples.*50"):
        embed(stores["train"], "flatten", "tsne", samples=few, cache=False, progress=False)
    with pytest.raises(ValueError, match=r"n_neighbors=60 needs at least 61 samples.*50"):
        embed(
            stores["train"],
            "flatten",
            "umap",
            samples=few,
            n_neighbors=60,
            cache=False,
            progress=False,
        )


def test_non_finite_features_are_counted():
    X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    X[5, 1] = np.nan
    X[5, 2] = np.inf
    X[200, 0] = np.nan
    with pytest.raises(ValueError, match=r"3 non-finite values .* in 2 of 300 samples.*5, 200"):
        embed(X, method="pca", progress=False)
    with pytest.raises(ValueError, match="2 of 300"):
        PCAEmbedding(solver="covariance", progress=False).fit(Features(X, block_rows=64))
    ok = embed(X, method="pca", samples=np.setdiff1d(np.arange(300), [5, 200]), progress=False)
    assert len(ok) == 298


def test_missing_method_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(ImportError, match="pip install umap-learn"):
        UMAPEmbedding(progress=False).fit(np.random.default_rng(0).normal(size=(40, 3)))


def test_bad_arguments_say_what_would_be_right():
    X = np.random.default_rng(0).normal(size=(100, 4, 3, 3))
    with pytest.raises(ValueError, match="unknown method='isomap'"):
        embed(X, method="isomap")
    with pytest.raises(TypeError, match="did you mean 'perplexity'"):
        embed(X, method="tsne", perplexty=5)
    with pytest.raises(ValueError, match="reduce='mean'"):
        embed(X, method="pca", reduce=None, progress=False)
    with pytest.raises(ValueError, match="n_components=5 exceeds"):
        embed(X, method="pca", n_components=5, progress=False)
    with pytest.raises(ValueError, match="cache must be"):
        embed(X, method="pca", cache="yes")
