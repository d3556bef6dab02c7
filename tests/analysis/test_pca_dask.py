"""PCA through Dask's linear algebra, on a two-worker dask.distributed cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import inspect_kit
from inspect_kit.analysis.embedding import _pca
from inspect_kit.analysis.embedding._pca import PCAEmbedding

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 real handwritten digits through a small random conv layer, full maps stored."""
    digits = load_digits()
    x = (digits.images[:600, None] / 16.0).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    path = tmp_path_factory.mktemp("dask_pca") / "digits.h5"
    with pytest.MonkeyPatch.context() as mp:  # several HDF5 chunks, so Dask has many blocks
        mp.setattr("inspect_kit.store.writer.CHUNK_BYTES", 64 * 576)
        inspect_kit.capture(
            model, x, ["1"], path, labels=digits.target[:600], batch_size=100, progress=False
        ).close()
    return path


def _fit(store: inspect_kit.ActivationStore, solver: str) -> PCAEmbedding:
    est = PCAEmbedding(5, solver=solver, reduce="flatten", metrics=False, progress=False)
    return est.fit(store["1"])  # (600, 4, 6, 6) maps -> 144 features


def _compare(a: PCAEmbedding, b: PCAEmbedding, rtol: float) -> None:
    np.testing.assert_allclose(b.explained_variance_, a.explained_variance_, rtol=rtol)
    np.testing.assert_allclose(b.explained_variance_ratio_, a.explained_variance_ratio_, rtol=rtol)
    np.testing.assert_allclose(b.mean_, a.mean_, rtol=1e-5, atol=1e-7)
    # both fix each axis's sign (largest loading positive): the axes themselves agree
    np.testing.assert_allclose(b.components_, a.components_, atol=rtol * 10)
    scale = np.abs(a.embedding_).max()
    np.testing.assert_allclose(b.embedding_, a.embedding_, atol=rtol * 10 * scale)


def test_dask_pca_on_a_local_cluster_equals_exact_pca(digits_store: Path) -> None:
    with inspect_kit.open_store(digits_store) as store:
        exact = _fit(store, "covariance")  # float64 accumulation: the oracle
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            with distributed.Client(cluster) as client:
                assert len(client.scheduler_info()["workers"]) == 2
                est = _fit(store, "dask")
        finally:
            cluster.close()
    assert est.solver_ == "dask" and est.embedding_.shape == (600, 5)
    _compare(exact, est, rtol=1e-5)  # float32 store rows, float64 SVD in both


def test_dask_randomized_svd_above_the_exact_limit(
    digits_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pca, "DASK_EXACT_MAX_FEATURES", 16)  # 144 features: svd_compressed
    with inspect_kit.open_store(digits_store) as store:
        exact = _fit(store, "memory")
        approx = _fit(store, "dask")
    # 4 power iterations: the leading variances and axes to ~1e-3
    _compare(exact, approx, rtol=1e-3)
