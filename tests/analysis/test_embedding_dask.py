"""The embeddings' feature reduction on a dask.distributed cluster equals the in-memory one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import inspect_kit
from inspect_kit.analysis.embedding import PCAEmbedding

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def digits_maps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 real digits through a random conv + ReLU: full (6, 6, 6) maps, several chunks."""
    d = load_digits()
    x = (d.images[:500, None] / 16.0).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU())
    path = tmp_path_factory.mktemp("embed_dask") / "digits.h5"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("inspect_kit.store.writer.CHUNK_BYTES", 50 * 216 * 4)
        inspect_kit.capture(
            model, x, ["1"], path, labels=d.target[:500], batch_size=50, progress=False
        ).close()
    return path


def _tsne(store, solver: str, reduce: str, k: int = 8) -> inspect_kit.Embedding:
    return inspect_kit.embed(
        store, "1", method="tsne", backend="sklearn", perplexity=10, n_iter=250,
        pca_components=k, pca_solver=solver, reduce=reduce, cache=False, progress=False,
        metrics=False,
    )  # fmt: skip


@pytest.mark.parametrize(("reduce", "k"), [("flatten", 8), ("mean", 4)])  # 216 or 6 features
def test_tsne_pre_reduction_on_a_cluster_equals_exact_pca(
    digits_maps: Path, reduce: str, k: int
) -> None:
    with inspect_kit.open_store(digits_maps) as store:
        exact = _tsne(store, "covariance", reduce, k).estimator.pca_  # float64 scatter matrix
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
            distributed.get_task_stream(client) as stream,
        ):
            emb = _tsne(store, "dask", reduce, k)
    pca = emb.estimator.pca_
    # the pooling and the reduction ran as tasks of the cluster
    assert any("reduce_block" in str(t["key"]) for t in stream.data)
    assert pca.solver_ == "dask" and emb.params["pre_pca"]["solver"] == "dask"
    assert emb.params["pre_pca"]["n_components"] == k
    np.testing.assert_allclose(pca.explained_variance_, exact.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(pca.mean_, exact.mean_, rtol=1e-5, atol=1e-7)
    # both fix each axis's sign (largest loading positive)
    np.testing.assert_allclose(pca.components_, exact.components_, atol=1e-4)
    scale = np.abs(exact.embedding_).max()
    np.testing.assert_allclose(pca.embedding_, exact.embedding_, atol=1e-5 * scale)
    assert emb.coords.shape == (500, 2) and np.isfinite(emb.coords).all()


#: 500 x 216 float32 features (x 3 for scikit-learn's copies) do not fit; a 216^2 matrix does
LIMIT = 800_000


def test_auto_solver_uses_an_active_cluster_only_when_features_do_not_fit(
    digits_maps: Path,
) -> None:
    with inspect_kit.open_store(digits_maps) as store:
        small = PCAEmbedding(3, reduce="flatten", memory_limit=LIMIT, metrics=False, progress=False)
        assert small.fit(store["1"]).solver_ == "covariance"  # no client: streamed
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):
            big = PCAEmbedding(
                3, reduce="flatten", memory_limit=LIMIT, metrics=False, progress=False
            )
            assert big.fit(store["1"]).solver_ == "dask"
            fits = PCAEmbedding(3, reduce="flatten", metrics=False, progress=False)
            assert fits.fit(store["1"]).solver_ == "memory"  # 1 GiB budget: in memory
    np.testing.assert_allclose(big.explained_variance_, small.explained_variance_, rtol=1e-5)


def test_pca_solver_is_validated_and_keyed(digits_maps: Path) -> None:
    from inspect_kit.analysis.embedding import make_estimator
    from inspect_kit.analysis.embedding._api import _cache_key, _Given, _resolve_input

    with inspect_kit.open_store(digits_maps) as store:
        src = _resolve_input(store, "1", None, "mean", _Given(), False)
        auto = make_estimator("tsne", pca_components=4)
        dask_est = make_estimator("tsne", pca_components=4, pca_solver="dask")
        assert _cache_key(auto, src) != _cache_key(dask_est, src)
        assert "pca_solver" in auto.get_params()
        with pytest.raises(ValueError, match="solver"):
            _tsne(store, "qr", "mean")
