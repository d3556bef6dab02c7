"""PCA of features: in memory through scikit-learn, or streamed from a store block by block."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from ..blocks import Features, dask_features
from ._base import BaseEmbedding
from .registry import PCA_SOLVERS

logger = logging.getLogger(__name__)

SOLVERS = PCA_SOLVERS
#: above this many features the Dask solver uses a randomized SVD instead of the exact tsqr
DASK_EXACT_MAX_FEATURES = 4096


def _qr_r(*blocks: np.ndarray) -> np.ndarray:
    """R of the QR decomposition of the stacked blocks (module level: picklable)."""
    # numpy's stubs give every mode the QRResult pair; mode="r" returns R alone
    return cast(np.ndarray, np.linalg.qr(np.concatenate(blocks, axis=0), mode="r"))


def _tsqr_r_svd(x: Any, k: int, split_every: int = 8) -> tuple[np.ndarray, np.ndarray, float]:
    """Singular values and right vectors of a tall-skinny Dask array from its R factor alone.

    The tall-skinny QR's R, reduced in a tree: each task holds one chunk and returns its
    (D, D) R; R's of ``split_every`` tasks are stacked and factored again. ``x = Q R`` with
    orthonormal Q, so ``x``'s singular values and right vectors are R's and its total sum
    of squares is R's. ``dask.array.linalg.svd`` computes the same R but keeps every
    chunk's Q factor, several times the data in memory.
    """
    from dask.base import compute
    from dask.delayed import delayed

    level = [delayed(_qr_r)(b) for b in x.to_delayed().ravel()]
    while len(level) > 1:
        level = [
            delayed(_qr_r)(*level[i : i + split_every]) for i in range(0, len(level), split_every)
        ]
    r: np.ndarray
    (r,) = compute(level[0])
    _, s, vt = np.linalg.svd(r, full_matrices=False)
    return s[:k], vt[:k], float(np.sum(r * r))


def _signs(components: np.ndarray) -> np.ndarray:
    """Signs that make each component's largest-magnitude loading positive (deterministic)."""
    idx = np.argmax(np.abs(components), axis=1)
    signs: np.ndarray = np.sign(components[np.arange(len(components)), idx])
    signs[signs == 0] = 1
    return signs


class PCAEmbedding(BaseEmbedding):
    """Principal component analysis of (pooled) activations.

    Parameters
    ----------
    n_components : int
        Dimensions kept.
    solver : {'auto', 'memory', 'covariance', 'incremental', 'dask'}
        ``'memory'`` reads all features and runs :class:`sklearn.decomposition.PCA`.
        ``'covariance'`` streams blocks of rows, accumulating the mean and covariance in
        float64 (exact; memory O(block + D^2)). ``'incremental'`` streams blocks through
        :class:`sklearn.decomposition.IncrementalPCA` (approximate; memory O(block + k D)).
        ``'dask'`` computes with Dask on whatever scheduler is active (a
        ``dask.distributed`` ``Client`` included): the exact tall-skinny QR of the centred
        rows in float64, its R factors reduced in a tree (one chunk and a D x D matrix
        a task), then the SVD of R, or ``svd_compressed``
        (randomized, 4 power iterations) above 4096 features; store layers are read
        through :meth:`ActivationStore.to_dask`. ``pip install 'inspect-kit[scale]'``.
        ``'auto'`` picks 'memory' when the features fit in ``memory_limit``, else 'dask'
        when a ``dask.distributed`` client is active, else 'covariance' when a D x D matrix
        fits, else 'incremental'.
    memory_limit : int
        Bytes that ``'auto'`` may spend on the features (or the covariance matrix).
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        Reduction of spatial maps before PCA (global average pooling by default).
    random_state : int or None
        Seed of scikit-learn's randomized SVD (used for large inputs) and of the metrics'
        sample.
    metrics : bool
        Measure trustworthiness and kNN accuracy after fitting (``metrics_``).
    metric_samples : int
        Samples (drawn at random) on which the metrics are computed.
    metric_neighbors : int
        k of the metrics' neighbourhoods.
    progress : bool
        Show progress bars while streaming.

    Attributes
    ----------
    embedding_ : ndarray (N, n_components)
        float64 for float64 array input, float32 otherwise (store layers, float32 input).
    components_ : ndarray (n_components, D)
        Principal axes, each with its largest loading positive.
    mean_ : ndarray (D,)
    explained_variance_, explained_variance_ratio_ : ndarray (n_components,)
    solver_ : str
        The solver used.
    params_ : dict
        Effective parameters, feature description and library versions.
    metrics_ : dict
        See :func:`inspect_kit.analysis.metrics.embedding_quality`.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(500, 64, 4, 4)).astype(np.float32)
    >>> pca = PCAEmbedding(n_components=2, progress=False).fit(X)   # pooled to (500, 64)
    >>> pca.embedding_.shape, pca.explained_variance_ratio_.shape
    ((500, 2), (2,))
    """

    method = "pca"
    _needs_pre_pca = False

    def __init__(
        self,
        n_components: int = 2,
        *,
        solver: str = "auto",
        memory_limit: int = 2**30,
        reduce: str | Callable[..., Any] | None = "mean",
        random_state: int | None = 0,
        metrics: bool = True,
        metric_samples: int = 2000,
        metric_neighbors: int = 10,
        progress: bool = True,
    ):
        self.n_components = n_components
        self.solver = solver
        self.memory_limit = memory_limit
        self.reduce = reduce
        self.random_state = random_state
        self.metrics = metrics
        self.metric_samples = metric_samples
        self.metric_neighbors = metric_neighbors
        self.progress = progress

    # -- fitting -------------------------------------------------------------------------------
    def _resolve_solver(self, feats: Features) -> str:
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver={self.solver!r}; use one of {SOLVERS}")
        if self.solver != "auto":
            return self.solver
        if feats.nbytes * 3 <= self.memory_limit:  # rows, scikit-learn's centred copy, slack
            return "memory"
        from inspect_kit.analysis._dask import active_client

        if active_client() is not None:  # the user made a cluster active: compute there
            return "dask"
        if 2 * feats.n_features**2 * 8 <= self.memory_limit:
            return "covariance"
        return "incremental"

    def _check_n_samples(self, n: int) -> None:
        pass

    def _fit(self, feats: Features) -> np.ndarray:
        k = int(self.n_components)
        if k > min(feats.n_samples, feats.n_features):
            raise ValueError(
                f"n_components={k} exceeds min(n_samples, n_features) = "
                f"{min(feats.n_samples, feats.n_features)} (n_samples = {feats.n_samples}, "
                f"n_features = {feats.n_features}); use n_components <= "
                f"{min(feats.n_samples, feats.n_features)}"
            )
        self.solver_ = self._resolve_solver(feats)
        logger.debug("PCA of %s with solver %s", feats.name, self.solver_)
        if self.solver_ == "memory":
            return self._fit_memory(feats)
        if self.solver_ == "dask":
            return self._fit_dask(feats)
        if self.solver_ == "covariance":
            self._fit_covariance(feats)
        else:
            self._fit_incremental(feats)
        return self._project_blocks(feats)

    def _fit_memory(self, feats: Features) -> np.ndarray:
        from sklearn.decomposition import PCA

        # float32 as scikit-learn keeps it: as fast as calling it directly, ~1e-4 relative
        # precision (far below what a map shows). The streamed solvers accumulate in float64.
        X = feats.to_numpy()
        pca = PCA(n_components=int(self.n_components), random_state=self.random_state)
        coords: np.ndarray = pca.fit_transform(X)
        signs = self._set(
            pca.components_, pca.mean_, pca.explained_variance_, pca.explained_variance_ratio_
        )
        signed: np.ndarray = coords * signs.astype(coords.dtype)
        return signed

    def _fit_covariance(self, feats: Features) -> None:
        d = feats.n_features
        n = 0
        mean = np.zeros(d)
        m2 = np.zeros((d, d))
        for _, rows in feats.blocks(desc=f"PCA {feats.name} (covariance)"):
            centred = rows.astype(np.float64)
            del rows
            b = len(centred)
            mean_b = centred.mean(axis=0)
            centred -= mean_b
            delta = mean_b - mean
            total = n + b
            # Chan et al.'s pairwise update of mean and scatter matrix
            m2 += centred.T @ centred + np.outer(delta, delta) * (n * b / total)
            del centred
            mean += delta * (b / total)
            n = total
        cov = m2 / max(n - 1, 1)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1][: int(self.n_components)]
        evals = np.clip(evals[order], 0, None)
        total_var = float(np.clip(np.trace(cov), 1e-300, None))
        self._set(evecs[:, order].T, mean, evals, evals / total_var)

    def _fit_dask(self, feats: Features) -> np.ndarray:
        try:
            import dask.array as da
            from dask.base import compute
        except ImportError as err:  # pragma: no cover - dask is in the scale extra
            raise ImportError(
                "solver='dask' needs dask; install it with pip install 'inspect-kit[scale]'"
            ) from err
        k = int(self.n_components)
        # chunks of about feats.block_rows raw rows (embed's batch_size), on HDF5 chunks
        raw_row = max(1, int(np.prod(feats.source_shape, dtype=np.int64))) * feats.dtype.itemsize
        x = dask_features(feats, chunk_bytes=feats.block_rows * raw_row, dtype=np.float64)
        # NaN and inf propagate into the mean: one pass, and no chunk is held for a second
        # reduction (two reductions over x make Dask keep every chunk until both are done)
        mean = x.mean(axis=0).compute()
        if not np.isfinite(mean).all():
            feats.to_numpy()  # names the non-finite rows (raises ValueError)
        centred = x - mean
        n = feats.n_samples
        if feats.n_features <= DASK_EXACT_MAX_FEATURES:
            s, vt, total = _tsqr_r_svd(centred, k)
        else:
            _, s, vt = da.linalg.svd_compressed(
                centred, k, n_power_iter=4, seed=self.random_state, compute=False
            )
            s, vt, total = compute(s[:k], vt[:k], (centred**2).sum())
        var = s**2 / max(n - 1, 1)
        total_var = float(total) / max(n - 1, 1)
        self._set(vt, mean, var, var / max(total_var, 1e-300))
        coords: np.ndarray = (centred @ da.from_array(self.components_.T)).compute()
        return coords.astype(feats.dtype)

    def _fit_incremental(self, feats: Features) -> None:
        from sklearn.decomposition import IncrementalPCA

        k = int(self.n_components)
        ipca = IncrementalPCA(n_components=k)
        pending: np.ndarray | None = None
        # partial_fit needs >= k rows: a short block is merged with the one before it.
        for _, rows in feats.blocks(desc=f"PCA {feats.name} (incremental)"):
            if pending is None:
                pending = rows
            elif len(rows) < k:
                pending = np.concatenate([pending, rows])
            else:
                ipca.partial_fit(pending)
                pending = rows
        if pending is not None:
            ipca.partial_fit(pending)
        self._set(
            ipca.components_, ipca.mean_, ipca.explained_variance_, ipca.explained_variance_ratio_
        )

    def _set(
        self, components: np.ndarray, mean: np.ndarray, var: np.ndarray, ratio: np.ndarray
    ) -> np.ndarray:
        components = np.asarray(components, dtype=np.float64)
        signs = _signs(components)
        self.components_ = components * signs[:, None]
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.explained_variance_ = np.asarray(var, dtype=np.float64)
        self.explained_variance_ratio_ = np.asarray(ratio, dtype=np.float64)
        return signs

    def _project_blocks(self, feats: Features) -> np.ndarray:
        out = np.empty((feats.n_samples, int(self.n_components)), dtype=feats.dtype)
        for start, rows in feats.blocks(desc=f"PCA {feats.name} (projecting)"):
            out[start : start + len(rows)] = (rows - self.mean_) @ self.components_.T
        return out

    def _transform(self, feats: Features) -> np.ndarray:
        return self._project_blocks(feats)

    def _effective_params(self, feats: Features) -> dict[str, Any]:
        params = super()._effective_params(feats)
        params["solver"] = self.solver_
        params["explained_variance_ratio"] = [float(v) for v in self.explained_variance_ratio_]
        return params

    @classmethod
    def from_arrays(
        cls,
        components: np.ndarray,
        mean: np.ndarray,
        explained_variance: np.ndarray,
        explained_variance_ratio: np.ndarray,
        **params: Any,
    ) -> PCAEmbedding:
        """A fitted projection rebuilt from saved arrays (used to reload cached results)."""
        est = cls(n_components=len(components), **params)
        est._set(components, mean, explained_variance, explained_variance_ratio)
        est.solver_ = "loaded"
        est.n_features_in_ = int(np.asarray(components).shape[1])
        est.embedding_ = np.zeros((0, len(components)), dtype=np.float32)
        return est
