"""The embedding estimators and LatentProbe keep scikit-learn's estimator contract."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import inspect_kit
from inspect_kit.analysis.embedding import PCAEmbedding, TSNEEmbedding, UMAPEmbedding

# The small-sample parameters scikit-learn's own suite gives its manifold learners
# (TSNE(perplexity=2), a few neighbours), without PCA pre-reduction of 3-10 features.
ESTIMATORS = [
    PCAEmbedding(progress=False),
    TSNEEmbedding(perplexity=2, n_iter=100, pca_components=None, n_jobs=1, progress=False),
    UMAPEmbedding(n_neighbors=3, pca_components=None, progress=False),
]


def _expected(est):
    return est.SKLEARN_EXPECTED_FAILED_CHECKS


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_check_estimator(estimator, check, request):
    if isinstance(estimator, UMAPEmbedding):
        # numba compiles UMAP once per process: keep every UMAP check in one worker
        request.applymarker(pytest.mark.xdist_group("sklearn_umap"))
    check(estimator)


def test_pca_declares_no_expected_failures():
    assert PCAEmbedding.SKLEARN_EXPECTED_FAILED_CHECKS == {}
    for est in ESTIMATORS[1:]:
        for name, reason in est.SKLEARN_EXPECTED_FAILED_CHECKS.items():
            assert name.startswith("check_") and len(reason) > 40


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 6)) + np.repeat(np.eye(6)[:3] * 4, 20, axis=0)


@pytest.mark.parametrize("output", ["pandas", "polars"])
def test_set_output_frames_name_the_components(X, output):
    frames = pytest.importorskip(output)
    pca = PCAEmbedding(progress=False).set_output(transform=output)
    out = pca.fit_transform(X)
    assert isinstance(out, frames.DataFrame)
    assert list(out.columns) == ["pca0", "pca1"]
    np.testing.assert_allclose(np.asarray(out), pca.embedding_, rtol=1e-12, atol=1e-12)
    placed = pca.transform(X[:5])
    assert isinstance(placed, frames.DataFrame) and placed.shape == (5, 2)
    tsne = TSNEEmbedding(perplexity=5, n_iter=100, n_jobs=1, progress=False)
    out = tsne.set_output(transform=output).fit_transform(X)
    assert list(out.columns) == ["tsne0", "tsne1"]


def test_global_pandas_config_for_estimators_and_embed(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"unit{i}" for i in range(6)], index=np.arange(100, 160))
    with sklearn.config_context(transform_output="pandas"):
        out = PCAEmbedding(progress=False).fit_transform(frame)
        assert isinstance(out, pd.DataFrame)
        assert list(out.index) == list(range(100, 160))  # the input's index is kept
        est = TSNEEmbedding(perplexity=5, n_iter=100, n_jobs=1, progress=False).fit(X)
        assert isinstance(est.transform(X[:3]), pd.DataFrame)
        emb = inspect_kit.embed(X, method="pca", progress=False)
    ref = PCAEmbedding(progress=False).fit(X)
    np.testing.assert_allclose(emb.coords, ref.embedding_.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert est.get_feature_names_out().tolist() == ["tsne0", "tsne1"]


def test_dtype_follows_input(X):
    assert PCAEmbedding(progress=False).fit_transform(X).dtype == np.float64
    assert PCAEmbedding(progress=False).fit_transform(X.astype(np.float32)).dtype == np.float32
    maps = np.random.default_rng(1).normal(size=(30, 4, 3, 3)).astype(np.float32)
    pca = PCAEmbedding(progress=False).fit(maps)  # spatial maps: pooled, then PCA
    assert pca.embedding_.dtype == np.float32 and pca.n_features_in_ == 4


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.arange(10.0), "Expected 2D array"),
        (np.array([[0.0, np.nan]] * 10), "NaN"),
        (np.array([[0.0, np.inf]] * 10), "infinity"),
    ],
)
def test_invalid_input_refused_with_sklearn_messages(bad, match):
    for est in (PCAEmbedding(progress=False), TSNEEmbedding(perplexity=2, progress=False)):
        with pytest.raises(ValueError, match=match):
            est.fit(bad)


def test_sparse_refused():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="[Ss]parse"):
        PCAEmbedding(progress=False).fit(sparse.random(20, 5, density=0.5, format="csr"))


def test_clone_keeps_parameters():
    est = TSNEEmbedding(perplexity=7, random_state=3, progress=False)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est


def test_latent_probe_is_an_estimator():
    from inspect_kit.models import ConvAutoencoder

    probe = inspect_kit.LatentProbe(ConvAutoencoder((1, 8, 8), latent_dim=3), batch_size=7)
    params = probe.get_params()
    assert params["batch_size"] == 7 and params["n_worst"] == 16
    twin = clone(probe).set_params(n_worst=4)
    assert twin.n_worst == 4 and probe.n_worst == 16
    assert twin.autoencoder is not probe.autoencoder  # an unfitted copy, weights included
    a = dict(probe.autoencoder.state_dict())
    b = dict(twin.autoencoder.state_dict())
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    X = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
    twin.set_params(progress=False).fit(X)
    assert twin.codes_.shape == (20, 3) and not hasattr(probe, "codes_")
