"""t-SNE of features through openTSNE (FFT or Barnes-Hut), or scikit-learn's TSNE."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from ..blocks import Features
from ._base import BaseEmbedding, package_version, require
from ._prereduce import PCAPreReduction

logger = logging.getLogger(__name__)

BACKENDS = ("opentsne", "sklearn")


def min_samples(perplexity: float) -> int:
    """The fewest samples t-SNE runs on at ``perplexity``: ``3 x perplexity + 1``.

    Examples
    --------
    >>> min_samples(30)
    91
    """
    return int(np.floor(3 * perplexity)) + 1


def largest_perplexity(n: int) -> float:
    """The largest whole perplexity ``n`` samples allow (the inverse of :func:`min_samples`).

    Examples
    --------
    >>> largest_perplexity(60), min_samples(largest_perplexity(60)) <= 60
    (19.0, True)
    """
    return float(np.floor((n - 1) / 3))


class TSNEEmbedding(PCAPreReduction, BaseEmbedding):
    """t-distributed stochastic neighbour embedding of (pooled) activations.

    Parameters
    ----------
    n_components : int
        2 or 3. openTSNE uses FFT-accelerated gradients for 2 components from 10,000 samples
        on, Barnes-Hut below that (where it is faster) and for 3 components; force one with
        ``backend_params={"negative_gradient_method": "fft"}``.
    perplexity : float
        Effective neighbourhood size; needs at least ``3 * perplexity + 1`` samples.
    backend : {'opentsne', 'sklearn'}
        openTSNE (fast, multithreaded, can place new samples with ``transform``) or
        :class:`sklearn.manifold.TSNE` (Barnes-Hut; no ``transform``).
    n_iter : int
        Iterations after the 250 of early exaggeration (openTSNE's default 500; scikit-learn
        gets ``max_iter = 250 + n_iter``).
    learning_rate : float or 'auto'
    initialization : {'pca', 'random', 'spectral'}
        'spectral' is openTSNE only.
    metric : str
        Distance in feature space.
    pca_components : int or None
        PCA pre-reduction before t-SNE (default 50); None skips it. Recorded in ``params_``.
    pca_solver : {'auto', 'memory', 'covariance', 'incremental', 'dask'}
        Solver of the PCA pre-reduction (see :class:`PCAEmbedding`): ``'dask'`` reads,
        pools and reduces a store layer on the active ``dask.distributed`` cluster; 'auto'
        does so when a client is active and the features do not fit in memory.
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        Reduction of spatial maps.
    n_jobs : int
        Threads (-1: all cores).
    random_state : int or None
    backend_params : dict, optional
        Further keyword arguments of the backend's constructor (e.g. ``{"dof": 0.8}``).
    metrics, metric_samples, metric_neighbors, progress
        See :class:`PCAEmbedding`.

    Attributes
    ----------
    embedding_ : ndarray (N, n_components)
        float64 for float64 array input, float32 otherwise (store layers, float32 input).
    tsne_ : openTSNE.TSNEEmbedding or sklearn.manifold.TSNE
        The backend's fitted object.
    pca_ : PCAEmbedding or None
        The pre-reduction.
    params_, metrics_ : dict

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(80, 20))
    >>> tsne = TSNEEmbedding(perplexity=10, n_iter=50, backend="sklearn", progress=False)
    >>> tsne.fit(X).embedding_.shape
    (80, 2)

    The default openTSNE backend also places new samples on the map (its numba code is
    compiled on first use, ~20 s, so this line is not run as a doctest):

    >>> TSNEEmbedding(perplexity=10).fit(X).transform(X[:5]).shape   # doctest: +SKIP
    (5, 2)
    """

    method = "tsne"

    #: scikit-learn checks this estimator fails by design (see ``check_estimator``)
    SKLEARN_EXPECTED_FAILED_CHECKS: ClassVar[dict[str, str]] = {
        "check_transformer_general": (
            "t-SNE is non-parametric: fit_transform returns the optimised map, while "
            "transform places points against that map one by one (openTSNE's "
            "prepare_partial), so training points land near, not on, their map positions"
        ),
        "check_transformer_data_not_an_array": (
            "the same fit_transform/transform comparison as check_transformer_general"
        ),
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        backend: str = "opentsne",
        n_iter: int = 500,
        learning_rate: float | str = "auto",
        initialization: str = "pca",
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
        self.perplexity = perplexity
        self.backend = backend
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.initialization = initialization
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
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend={self.backend!r}; use one of {BACKENDS}")
        if not self.perplexity > 0:
            raise ValueError(f"perplexity must be > 0, got {self.perplexity!r}")
        need = min_samples(self.perplexity)
        if n < need:
            raise ValueError(
                f"perplexity={self.perplexity:g} needs at least {need} samples "
                f"(3 x perplexity + 1), but there are {n}; use perplexity <= {(n - 1) / 3:.3g}"
            )
        if self.backend == "opentsne" and self.n_components > 2 and self._gradient(n) == "fft":
            raise ValueError("openTSNE's FFT gradients support at most 2 components")

    def _gradient(self, n: int) -> str:
        """openTSNE's own rule: Barnes-Hut below 10,000 samples (faster there) or for 3D."""
        method = (self.backend_params or {}).get("negative_gradient_method", "auto")
        if method == "auto":
            method = "bh" if self.n_components > 2 or n < 10_000 else "fft"
        return str(method)

    def _backend_versions(self) -> dict[str, str | None]:
        name = "openTSNE" if self.backend == "opentsne" else "scikit-learn"
        return {name: package_version(name)}

    def _fit(self, feats: Features) -> np.ndarray:
        X = self._pre_reduce(feats)
        if self.backend == "sklearn":
            return self._fit_sklearn(X)
        return self._fit_opentsne(X)

    def _fit_opentsne(self, X: np.ndarray) -> np.ndarray:
        opentsne = require("openTSNE", "openTSNE", "tsne")
        early = 250
        every = 50
        bar = tqdm(
            total=early + int(self.n_iter),
            desc="t-SNE",
            unit="it",
            disable=not self.progress,
            leave=False,
        )

        def tick(iteration: int, error: float, embedding: Any) -> bool:
            bar.update(every)
            bar.set_postfix(kl=f"{error:.3f}")
            return False

        kwargs = dict(
            n_components=int(self.n_components),
            perplexity=float(self.perplexity),
            learning_rate=self.learning_rate,
            early_exaggeration_iter=early,
            n_iter=int(self.n_iter),
            initialization=self.initialization,
            metric=self.metric,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            negative_gradient_method=self._gradient(len(X)),
            callbacks=tick if self.progress else None,
            callbacks_every_iters=every,
            verbose=False,
        )
        kwargs.update(self.backend_params or {})
        try:
            self.tsne_ = opentsne.TSNE(**kwargs).fit(np.ascontiguousarray(X, dtype=np.float64))
        finally:
            bar.close()
        return np.asarray(self.tsne_)

    def _fit_sklearn(self, X: np.ndarray) -> np.ndarray:
        from sklearn.manifold import TSNE

        init = self.initialization
        if init not in ("pca", "random"):
            raise ValueError(
                f"backend='sklearn' takes initialization 'pca' or 'random', not {init!r}"
            )
        kwargs = dict(
            n_components=int(self.n_components),
            perplexity=float(self.perplexity),
            learning_rate=self.learning_rate,
            max_iter=250 + int(self.n_iter),
            init=init,
            metric=self.metric,
            method="barnes_hut" if self.n_components < 4 else "exact",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        kwargs.update(self.backend_params or {})
        self.tsne_ = TSNE(**kwargs)
        coords: np.ndarray = self.tsne_.fit_transform(np.ascontiguousarray(X, dtype=np.float32))
        return coords

    def _transform(self, feats: Features) -> np.ndarray:
        if self.backend == "sklearn":
            raise ValueError(
                "backend='sklearn' cannot place new samples in an existing t-SNE map; "
                "fit with backend='opentsne' to use transform"
            )
        X = self._pre_transform(feats)
        return np.asarray(self.tsne_.transform(np.ascontiguousarray(X, dtype=np.float64)))

    def _effective_params(self, feats: Features) -> dict[str, Any]:
        params = super()._effective_params(feats)
        if self.backend == "opentsne":
            params["negative_gradient_method"] = self._gradient(feats.n_samples)
        return params
