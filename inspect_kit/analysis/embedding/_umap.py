"""UMAP of features through umap-learn."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..blocks import Features
from ._base import BaseEmbedding, package_version, require
from ._prereduce import PCAPreReduction

logger = logging.getLogger(__name__)


class UMAPEmbedding(PCAPreReduction, BaseEmbedding):
    """Uniform manifold approximation and projection of (pooled) activations (umap-learn).

    Parameters
    ----------
    n_components : int
    n_neighbors : int
        Size of the local neighbourhood; needs at least ``n_neighbors + 1`` samples.
    min_dist : float
        How tightly points may pack in the map.
    metric : str
        Distance in feature space.
    pca_components : int or None
        PCA pre-reduction (default 50); None skips it. Recorded in ``params_``.
    pca_solver : {'auto', 'memory', 'covariance', 'incremental', 'dask'}
        Solver of the PCA pre-reduction (see :class:`PCAEmbedding`): ``'dask'`` reads,
        pools and reduces a store layer on the active ``dask.distributed`` cluster; 'auto'
        does so when a client is active and the features do not fit in memory.
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        Reduction of spatial maps.
    n_jobs : int
        Threads; umap-learn runs single-threaded when ``random_state`` is set (reproducible).
    random_state : int or None
        None allows parallel, non-reproducible optimisation.
    backend_params : dict, optional
        Further keyword arguments of :class:`umap.UMAP` (e.g. ``{"spread": 2.0}``).
    metrics, metric_samples, metric_neighbors, progress
        See :class:`PCAEmbedding`.

    Attributes
    ----------
    embedding_ : ndarray (N, n_components)
        float64 for float64 array input, float32 otherwise (store layers, float32 input).
    umap_ : umap.UMAP
        The fitted model (used by ``transform``).
    pca_ : PCAEmbedding or None
    params_, metrics_ : dict

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(300, 20))
    >>> UMAPEmbedding(n_neighbors=10, progress=False).fit(X).embedding_.shape  # doctest: +SKIP
    (300, 2)
    """

    method = "umap"

    #: scikit-learn checks this estimator fails by design (see ``check_estimator``)
    SKLEARN_EXPECTED_FAILED_CHECKS: ClassVar[dict[str, str]] = {
        "check_methods_sample_order_invariance": (
            "umap-learn's transform optimises the new points together (they share the "
            "negative-sampling epochs), so where a point lands depends on the others placed "
            "with it and on their order"
        ),
        "check_methods_subset_invariance": (
            "the same joint optimisation: placing a subset gives other coordinates than "
            "placing the whole batch"
        ),
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        pca_components: int | None = 50,
        pca_solver: str = "auto",
        reduce: str | Callable[..., Any] | None = "mean",
        n_jobs: int = -1,
        random_state: int | None = 0,
        backend_params: dict[str, Any] | None = None,
        metrics: bool = True,
        metric_samples: int = 2000,
        metric_neighbors: int = 10,
        progress: bool = True,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.pca_components = pca_components
        self.pca_solver = pca_solver
        self.reduce = reduce
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.backend_params = backend_params
        self.metrics = metrics
        self.metric_samples = metric_samples
        self.metric_neighbors = metric_neighbors
        self.progress = progress

    def _check_n_samples(self, n: int) -> None:
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
            raise ValueError(f"n_neighbors must be an integer >= 2, got {k!r}")
        if n < k + 1:
            raise ValueError(
                f"n_neighbors={k} needs at least {k + 1} samples, but there are {n}; "
                f"use n_neighbors <= {max(2, n - 1)}"
            )

    def _backend_versions(self) -> dict[str, str | None]:
        return {"umap-learn": package_version("umap-learn")}

    def _fit(self, feats: Features) -> np.ndarray:
        umap = require("umap", "umap-learn", "umap")
        X = self._pre_reduce(feats)
        kwargs = dict(
            n_components=int(self.n_components),
            n_neighbors=int(self.n_neighbors),
            min_dist=float(self.min_dist),
            metric=self.metric,
            # umap-learn is single-threaded when seeded, and warns if told otherwise
            n_jobs=1 if self.random_state is not None else self.n_jobs,
            random_state=self.random_state,
            verbose=False,
        )
        kwargs.update(self.backend_params or {})
        self.umap_ = umap.UMAP(**kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*force_all_finite.*")
            coords: np.ndarray = self.umap_.fit_transform(np.ascontiguousarray(X, dtype=np.float32))
        return coords

    def _transform(self, feats: Features) -> np.ndarray:
        X = self._pre_transform(feats)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*force_all_finite.*")
            placed: np.ndarray = self.umap_.transform(np.ascontiguousarray(X, dtype=np.float32))
        return placed
