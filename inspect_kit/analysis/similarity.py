"""Representation similarity: CKA and RSA between the layers of one store or of two stores.

Centered kernel alignment (Kornblith et al., ICML 2019) compares two representations of the
same samples through their centred Gram matrices ``K`` and ``L``::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

with the linear kernel ``K = X X^T`` (then ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on
centred features) or an RBF kernel whose bandwidth is ``sigma`` times the median distance
between samples. The debiased form replaces HSIC by its unbiased estimator (Song et al., 2012),
as Nguyen, Raghu & Kornblith (ICLR 2021) recommend, and is what the minibatch estimator of
:func:`similarity` averages: the unbiased HSIC of each minibatch of a seeded permutation,
numerator and denominators averaged separately, so that memory stays at a few ``batch x batch``
matrices per layer however many samples a store holds or however wide its layers are.

Representational similarity analysis (Kriegeskorte et al., 2008) compares representational
dissimilarity matrices (1 - Pearson correlation, or Euclidean distance, between samples) by the
Spearman correlation of their upper triangles, on a seeded subset of samples.

Everything is computed in float64; nothing here plots (see
:func:`inspect_kit.figures.plot_similarity`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from inspect_kit._version import __version__
from inspect_kit.store import schema

logger = logging.getLogger(__name__)

__all__ = ["Similarity", "cka", "hsic", "rdm", "similarity"]

METHODS = ("cka", "rsa")
KERNELS = ("linear", "rbf")
RDM_METRICS = ("correlation", "euclidean")
REDUCTIONS = ("flatten", "mean", "max")
#: group under which :func:`similarity` caches its results in a store
RESULT_GROUP = schema.SIMILARITY
#: bumped when a change makes earlier cached results wrong
CACHE_VERSION = 1
#: bytes of float64 features converted at once (a slice of channels)
BLOCK_BYTES = 64 * 2**20
#: a minibatch's rows are read from the file at once up to this many bytes as stored
RAW_BYTES = 256 * 2**20


# -- in-memory estimators ----------------------------------------------------------------------
def _as_features(X: Any, name: str) -> np.ndarray:
    if hasattr(X, "detach"):  # a torch tensor, without importing torch here
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"{name} must be (N, ...) with N > 0 samples, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    X = X.reshape(X.shape[0], -1).astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or impute them first")
    features: np.ndarray = X
    return features


def _check_kernel(kernel: str, sigma: float) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is not one of {', '.join(map(repr, KERNELS))}")
    if not (isinstance(sigma, int | float | np.number) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"sigma must be a positive number (the RBF bandwidth in median distances), got {sigma!r}"
        )


def _rbf_from_linear(
    G: np.ndarray, sigma: float, bandwidth: float | None = None
) -> tuple[np.ndarray, float]:
    """RBF Gram from a linear one: ``exp(-d^2 / (2 bw^2))``, ``bw = sigma * median distance``.

    The median is over distinct pairs (off-diagonal); ``bandwidth`` given reuses one.
    """
    sq = np.diag(G)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0)
    if bandwidth is None:
        iu = np.triu_indices(len(G), k=1)
        median = float(np.median(np.sqrt(d2[iu]))) if len(iu[0]) else 0.0
        bandwidth = float(sigma) * median
    if bandwidth <= 0:
        # every sample has the same features: any bandwidth gives a constant kernel
        return np.ones_like(G), 0.0
    return np.exp(-d2 / (2.0 * bandwidth**2)), float(bandwidth)


def _centre_gram(K: np.ndarray) -> np.ndarray:
    means = K.mean(axis=0)
    centred: np.ndarray = K - means[None, :] - means[:, None] + means.mean()
    return centred


@dataclass
class _Prepared:
    """Gram matrices of several representations of one batch, ready for HSIC products.

    ``flat`` holds ``HKH`` (biased) or ``K`` with a zero diagonal (unbiased), one row each;
    ``rows``/``totals`` are the unbiased estimator's row sums and grand totals.
    """

    flat: np.ndarray
    rows: np.ndarray
    totals: np.ndarray
    n: int
    debiased: bool


def _prepare(grams: Sequence[np.ndarray], debiased: bool) -> _Prepared:
    n = len(grams[0])
    flat = np.empty((len(grams), n * n))
    rows = np.empty((len(grams), n))
    for i, K in enumerate(grams):
        if debiased:
            K = K.copy()
            np.fill_diagonal(K, 0.0)
        else:
            K = _centre_gram(K)
        flat[i] = K.ravel()
        rows[i] = K.sum(axis=0)
    return _Prepared(flat, rows, rows.sum(axis=1), n, debiased)


def _cross_hsic(a: _Prepared, b: _Prepared) -> np.ndarray:
    """HSIC of every representation of ``a`` with every one of ``b`` (same batch)."""
    n = a.n
    prod: np.ndarray = a.flat @ b.flat.T
    if not a.debiased:
        return prod / (n - 1) ** 2
    unbiased: np.ndarray = (
        prod
        + np.outer(a.totals, b.totals) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (a.rows @ b.rows.T)
    ) / (n * (n - 3))
    return unbiased


def _self_hsic(a: _Prepared) -> np.ndarray:
    n = a.n
    prod: np.ndarray = np.einsum("ij,ij->i", a.flat, a.flat)
    if not a.debiased:
        return prod / (n - 1) ** 2
    unbiased: np.ndarray = (
        prod
        + a.totals**2 / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * np.einsum("ij,ij->i", a.rows, a.rows)
    ) / (n * (n - 3))
    return unbiased


def _check_n(n: int, debiased: bool) -> None:
    if debiased and n < 4:
        raise ValueError(
            f"the debiased (unbiased HSIC) estimator needs at least 4 samples, got {n}"
        )
    if n < 2:
        raise ValueError(f"CKA needs at least 2 samples, got {n}")


def hsic(K: Any, L: Any, *, debiased: bool = False) -> float:
    """Hilbert-Schmidt independence criterion of two (N, N) Gram matrices.

    Parameters
    ----------
    K, L : array-like of shape (N, N)
        Gram (kernel) matrices of two representations of the same N samples.
    debiased : bool
        The unbiased estimator of Song et al. (2012) instead of ``tr(KHLH) / (N-1)^2``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> hsic(X @ X.T, X @ X.T) > 0
    True
    """
    K = np.asarray(K, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape != L.shape:
        raise ValueError(f"K and L must be square and of one shape, got {K.shape} and {L.shape}")
    _check_n(len(K), debiased)
    prep = _prepare([K, L], debiased)
    return float(_cross_hsic(prep, prep)[0, 1])


def _linear_feature_hsic(
    X: np.ndarray, Y: np.ndarray, debiased: bool
) -> tuple[float, float, float]:
    """HSIC(X,Y), HSIC(X,X), HSIC(Y,Y) of the linear kernel from features, without N x N."""
    n = len(X)
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)

    def pair(A: np.ndarray, B: np.ndarray) -> float:
        cross = float(np.sum((A.T @ B) ** 2))  # ||B^T A||_F^2 = tr(K L)
        if not debiased:
            return cross / (n - 1) ** 2
        da, db = np.einsum("ij,ij->i", A, A), np.einsum("ij,ij->i", B, B)
        # K~ (zero diagonal) from features: tr(K~ L~), 1'K~1 and K~1 (columns were centred)
        trace = cross - float(da @ db)
        ta, tb = -float(da.sum()), -float(db.sum())
        ra, rb = -da, -db
        return (trace + ta * tb / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(ra @ rb)) / (
            n * (n - 3)
        )

    return pair(X, Y), pair(X, X), pair(Y, Y)


def _ratio(xy: Any, xx: Any, yy: Any) -> np.ndarray:
    """``xy / sqrt(xx yy)``, NaN where a representation has no variance (or a negative estimate)."""
    xy, xx, yy = np.asarray(xy, float), np.asarray(xx, float), np.asarray(yy, float)
    denom = xx * yy
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, xy / np.sqrt(np.where(denom > 0, denom, 1.0)), np.nan)
    return out


def cka(
    X: Any,
    Y: Any,
    *,
    kernel: Literal["linear", "rbf"] = "linear",
    debiased: bool = False,
    sigma: float = 1.0,
) -> float:
    """Centered kernel alignment of two representations of the same samples.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` of the samples' Gram matrices (Kornblith
    et al., ICML 2019). It is 1 for representations that differ by a rotation, a reflection or
    an isotropic scaling, and near 0 for unrelated ones. Computed in float64.

    Parameters
    ----------
    X, Y : array-like of shape (N, ...)
        The same N samples, in the same order; everything after the first axis is flattened.
        Widths may differ.
    kernel : {'linear', 'rbf'}
        Linear CKA is computed from the feature matrices (``||Y^T X||_F^2 / (||X^T X||_F
        ||Y^T Y||_F)`` on centred features) or the N x N Grams, whichever is cheaper. ``'rbf'``:
        ``exp(-||x_i - x_j||^2 / (2 bw^2))`` with ``bw = sigma * median distance``.
    debiased : bool
        Use the unbiased HSIC estimator (Nguyen, Raghu & Kornblith, ICLR 2021): removes the
        upward bias of CKA when features are wide compared to N. Needs N >= 4.
    sigma : float
        RBF bandwidth as a multiple of the median distance between samples.

    Returns
    -------
    float
        NaN when one representation is constant across samples.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 10))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    >>> round(cka(X, 3 * X @ Q), 6)
    1.0
    >>> cka(X, rng.normal(size=(200, 10)), debiased=True) < 0.05
    True
    """
    _check_kernel(kernel, sigma)
    X = _as_features(X, "X")
    Y = _as_features(Y, "Y")
    if len(X) != len(Y):
        raise ValueError(f"X and Y must hold the same samples: X has {len(X)} rows, Y has {len(Y)}")
    n = len(X)
    _check_n(n, debiased)
    px, py = X.shape[1], Y.shape[1]
    if kernel == "linear" and px * py + n * (px + py) <= n * n:
        xy, xx, yy = _linear_feature_hsic(X, Y, debiased)
        return float(_ratio(xy, xx, yy))
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    K, L = X @ X.T, Y @ Y.T
    if kernel == "rbf":
        K, _ = _rbf_from_linear(K, sigma)
        L, _ = _rbf_from_linear(L, sigma)
    prep = _prepare([K, L], debiased)
    diag = _self_hsic(prep)
    return float(_ratio(_cross_hsic(prep, prep)[0, 1], diag[0], diag[1]))


def rdm(X: Any, metric: Literal["correlation", "euclidean"] = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix of N samples, (N, N), float64.

    Parameters
    ----------
    X : array-like of shape (N, ...)
    metric : {'correlation', 'euclidean'}
        ``1 - Pearson correlation`` between two samples' feature vectors, or their Euclidean
        distance.

    Returns
    -------
    ndarray of shape (N, N)

    Examples
    --------
    >>> rdm([[1.0, 2.0, 3.0], [2.0, 4.0, 6.1], [3.0, 1.0, 0.0]]).round(2)[0]
    array([0.  , 0.  , 1.98])
    """
    X = _as_features(X, "X")
    G = X @ X.T
    return _rdm_from_gram(G, X.sum(axis=1), X.shape[1], metric)


def _rdm_from_gram(G: np.ndarray, row_sums: np.ndarray, n_features: int, metric: str) -> np.ndarray:
    if metric not in RDM_METRICS:
        raise ValueError(f"rdm={metric!r} is not one of {', '.join(map(repr, RDM_METRICS))}")
    sq = np.diag(G)
    if metric == "euclidean":
        return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0))
    mean = row_sums / n_features
    cov = G - n_features * np.outer(mean, mean)
    var = np.maximum(np.diag(cov), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.sqrt(np.outer(var, var))
    corr = np.clip(corr, -1.0, 1.0)  # NaN where a sample's features are constant
    out: np.ndarray = 1.0 - corr
    np.fill_diagonal(out, 0.0)
    return out


def _ranked_upper(D: np.ndarray) -> np.ndarray:
    """Standardised ranks of the upper triangle: their dot products / m are Spearman's rho."""
    from scipy.stats import rankdata

    upper = D[np.triu_indices(len(D), k=1)]
    if np.isnan(upper).any():
        return np.full(upper.shape, np.nan)
    r = rankdata(upper)
    r -= r.mean()
    norm = np.sqrt(np.mean(r**2))
    return r / norm if norm > 0 else np.full(upper.shape, np.nan)


# -- the result ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Similarity:
    """Similarity of every layer pair: ``matrix[i, j]`` compares ``layers[i]`` with ``other_layers[j]``.

    Attributes
    ----------
    matrix : ndarray of shape (len(layers), len(other_layers))
    layers : list of str
        Rows: layers of ``store``.
    other_layers : list of str
        Columns: layers of ``other`` (or of ``store`` itself when there is no other store).
    n_samples : int
        Samples compared (both stores hold them).
    method : {'cka', 'rsa'}
    params : dict
        Every parameter that changes the values (kernel, debiased, batch size, seed, ...).
    store, other : str or None
        The stores' files (``other`` is None for the layers of one store).
    bandwidths, other_bandwidths : ndarray or None
        RBF bandwidth used for each layer (CKA with ``kernel='rbf'``).
    from_cache : bool
        Read back from the store rather than computed.

    Examples
    --------
    >>> sim = similarity("acts.h5")                    # doctest: +SKIP
    >>> sim["conv1", "conv2"], sim.diagonal()          # doctest: +SKIP
    """

    matrix: np.ndarray
    layers: list[str]
    other_layers: list[str]
    n_samples: int
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    other: str | None = None
    bandwidths: np.ndarray | None = field(default=None, repr=False)
    other_bandwidths: np.ndarray | None = field(default=None, repr=False)
    from_cache: bool = False

    def __repr__(self) -> str:
        return (
            f"<Similarity {self.description}: {len(self.layers)} x {len(self.other_layers)} "
            f"layers, {self.n_samples} samples{' (cached)' if self.from_cache else ''}>"
        )

    @property
    def description(self) -> str:
        """What the values are, e.g. ``'linear CKA (debiased)'`` or ``'RSA (Spearman ρ)'``."""
        p = self.params
        if self.method == "cka":
            kernel = p.get("kernel", "linear")
            name = f"{kernel} CKA" if kernel == "linear" else f"RBF CKA (σ={p.get('sigma', 1.0):g})"
            return name + (" (debiased)" if p.get("debiased") else "")
        return f"RSA (Spearman ρ, {p.get('rdm', 'correlation')} RDMs)"

    def __getitem__(self, key: tuple[str, str]) -> float:
        a, b = key
        if a not in self.layers:
            raise KeyError(f"{a!r} is not a row layer; rows: {self.layers}")
        if b not in self.other_layers:
            raise KeyError(f"{b!r} is not a column layer; columns: {self.other_layers}")
        return float(self.matrix[self.layers.index(a), self.other_layers.index(b)])

    def diagonal(self) -> np.ndarray:
        """Values of each row layer against the column layer of the same name (NaN if none)."""
        return np.array(
            [
                self.matrix[i, self.other_layers.index(name)]
                if name in self.other_layers
                else np.nan
                for i, name in enumerate(self.layers)
            ],
            dtype=float,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, e.g. for JSON (NaN becomes None)."""
        return {
            "method": self.method,
            "description": self.description,
            "layers": list(self.layers),
            "other_layers": list(self.other_layers),
            "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in self.matrix],
            "n_samples": int(self.n_samples),
            "params": dict(self.params),
            "store": self.store,
            "other": self.other,
        }


# -- streaming from stores -------------------------------------------------------------------
class _LayerReader:
    """The rows of one layer at given sample positions, as float64 slices of channels.

    Yields ``(n, width)`` blocks whose concatenation along axis 1 is the (reduced) feature
    matrix, each at most about ``block_bytes``. The rows are read from the file once when they
    take at most ``raw_bytes`` as stored (HDF5 reads whole chunks, so slicing channels on disk
    would read each chunk once per slice); wider rows are read a slice of channels at a time.
    """

    def __init__(
        self,
        view: Any,
        reduction: str,
        block_bytes: int | None = None,
        raw_bytes: int | None = None,
    ):
        self.view = view
        self.name = view.name
        self.reduction = reduction
        shape = tuple(view.shape[1:])
        self.source_shape = shape
        self.block_bytes = int(BLOCK_BYTES if block_bytes is None else block_bytes)
        self.raw_bytes = int(RAW_BYTES if raw_bytes is None else raw_bytes)
        self.row_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(view.dtype).itemsize
        if not shape:
            self.n_features = 1
        elif len(shape) == 1 or reduction == "flatten":
            self.n_features = int(np.prod(shape, dtype=np.int64))
        else:
            self.n_features = int(shape[0])

    def _features(self, rows: np.ndarray, n: int) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim > 2 and self.reduction == "mean":
            rows = rows.reshape(n, rows.shape[1], -1).mean(axis=2)
        elif rows.ndim > 2 and self.reduction == "max":
            rows = rows.reshape(n, rows.shape[1], -1).max(axis=2)
        else:
            rows = rows.reshape(n, -1)
        if not np.all(np.isfinite(rows)):
            raise ValueError(
                f"layer {self.name!r} holds NaN or infinite values; similarity needs finite "
                "features"
            )
        return rows

    def blocks(self, positions: np.ndarray) -> Iterator[np.ndarray]:
        n = len(positions)
        shape = self.source_shape
        if not shape:
            yield self._features(self._read(positions, None), n).reshape(n, 1)
            return
        if len(shape) == 1:
            per_unit, units = 1, shape[0]
        else:
            per_unit, units = int(np.prod(shape[1:], dtype=np.int64)), shape[0]
        step = max(1, self.block_bytes // max(1, n * per_unit * 8))
        whole = self._read(positions, None) if n * self.row_bytes <= self.raw_bytes else None
        for start in range(0, units, step):
            stop = min(units, start + step)
            rows = (
                whole[:, start:stop] if whole is not None else self._read(positions, (start, stop))
            )
            yield self._features(rows, n)

    def _read(self, positions: np.ndarray, units: tuple[int, int] | None) -> np.ndarray:
        """Rows at ``positions`` (in that order), optionally channels ``units[0]:units[1]``.

        Sorted positions are read as runs of contiguous rows (h5py's fancy indexing reads row
        by row, ~10x slower than slices): the next position joins a run when the rows skipped
        cost less than about 1 MiB to read, and a run stays under :data:`BLOCK_BYTES`.
        """
        shape = self.source_shape
        width = 1 if units is None else (units[1] - units[0]) / max(1, shape[0])
        row_bytes = max(1, int(self.row_bytes * width))
        gap = max(1, 2**20 // row_bytes)
        cap = max(1, BLOCK_BYTES // row_bytes)
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        out: np.ndarray | None = None
        i = 0
        while i < len(ordered):
            j = i + 1
            while (
                j < len(ordered)
                and ordered[j] - ordered[j - 1] <= gap
                and ordered[j] - ordered[i] < cap
            ):
                j += 1
            span = slice(int(ordered[i]), int(ordered[j - 1]) + 1)
            block = self.view[span] if units is None else self.view[span, units[0] : units[1]]
            if out is None:
                out = np.empty((len(positions),) + block.shape[1:], dtype=block.dtype)
            out[order[i:j]] = block[ordered[i:j] - ordered[i]]
            i = j
        assert out is not None  # positions is never empty
        return out

    def gram(self, positions: np.ndarray, centre: bool) -> tuple[np.ndarray, np.ndarray]:
        """Linear Gram ``X X^T`` of the rows at ``positions`` and their row sums."""
        n = len(positions)
        G = np.zeros((n, n))
        sums = np.zeros(n)
        for block in self.blocks(positions):
            if centre:
                block = block - block.mean(axis=0)
            G += block @ block.T
            sums += block.sum(axis=1)
        return G, sums


def _open(store: Any) -> tuple[Any, bool]:
    if isinstance(store, str | os.PathLike):
        from inspect_kit.store import open_store

        return open_store(Path(store)), True
    return store, False


def _resolve_layers(store: Any, layers: Any, what: str) -> list[str]:
    if layers is None:
        layers = store.layers
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError(f"no layers to compare in {what}: it stores none and none were given")
    for name in layers:
        store[name]  # an unknown name raises KeyError listing the close matches
    return list(layers)


def _match_samples(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``a`` and ``b`` of the samples both hold, ordered by dataset index."""
    ia, ib = np.asarray(a.index, dtype=np.int64), np.asarray(b.index, dtype=np.int64)
    for s, idx in ((a, ia), (b, ib)):
        if len(np.unique(idx)) != len(idx):
            raise ValueError(
                f"{s.path} holds some samples more than once (/samples/index has duplicates); "
                "samples cannot be matched between stores"
            )
    common, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    if not len(common):

        def span(idx: np.ndarray) -> str:
            return f"{idx.min()}..{idx.max()}" if len(idx) else "none"

        raise ValueError(
            f"{a.path} and {b.path} hold no sample in common: their /samples/index values do "
            f"not overlap (dataset indices {span(ia)} and {span(ib)}); compare stores captured "
            "from the same dataset"
        )
    if len(common) < max(len(ia), len(ib)):
        logger.info(
            "comparing the %d samples both stores hold (%s has %d, %s has %d)",
            len(common),
            a.path.name,
            len(ia),
            b.path.name,
            len(ib),
        )
    return pa.astype(np.int64), pb.astype(np.int64)


def _store_identity(store: Any) -> dict[str, Any]:
    prov = store.provenance
    return {
        "path": str(store.path.resolve()),
        "model_sha256": prov.get(schema.MODEL_SHA256_ATTR),
        "created": prov.get(schema.CREATED_ATTR),
        "n_samples": int(store.n_samples),
    }


def _batches(
    n: int, batch_size: int | None, n_epochs: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Disjoint minibatches of a fresh seeded permutation per epoch.

    ``n // batch_size`` batches whose sizes differ by at most one: every sample is used, and no
    batch is smaller than ``batch_size``.
    """
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]  # the full-data value: every epoch would repeat it
    n_batches = max(1, n // batch_size)
    out: list[np.ndarray] = []
    for _ in range(n_epochs):
        out += np.array_split(rng.permutation(n), n_batches)
    return out


def _minibatch_cka(
    readers_a: list[_LayerReader],
    readers_b: list[_LayerReader] | None,
    pos_a: np.ndarray,
    pos_b: np.ndarray,
    *,
    kernel: str,
    sigma: float,
    debiased: bool,
    batches: list[np.ndarray],
    progress: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    la = len(readers_a)
    lb = la if readers_b is None else len(readers_b)
    cross = np.zeros((la, lb))
    self_a, self_b = np.zeros(la), np.zeros(lb)
    bw_a: list[float | None] = [None] * la
    bw_b: list[float | None] = [None] * lb

    def prepared(readers: list[_LayerReader], positions: np.ndarray, bws: list[Any]) -> _Prepared:
        grams = []
        for i, reader in enumerate(readers):
            G, _ = reader.gram(positions, centre=True)
            if kernel == "rbf":
                # the first batch fixes each layer's bandwidth: one kernel for every batch
                G, bws[i] = _rbf_from_linear(G, sigma, bws[i])
            grams.append(G)
        return _prepare(grams, debiased)

    for batch in tqdm(
        batches, desc="CKA minibatches", unit="batch", disable=not progress, leave=False
    ):
        _check_n(len(batch), debiased)
        pa = prepared(readers_a, pos_a[batch], bw_a)
        pb = pa if readers_b is None else prepared(readers_b, pos_b[batch], bw_b)
        cross += _cross_hsic(pa, pb)
        self_a += _self_hsic(pa)
        self_b += _self_hsic(pb)
    k = len(batches)
    matrix = _ratio(cross / k, (self_a / k)[:, None], (self_b / k)[None, :])
    if readers_b is None:
        np.fill_diagonal(matrix, np.where(self_a > 0, 1.0, np.nan))  # exactly 1, not 1 - 1e-16
    bands = (np.array(bw_a, float), np.array(bw_b if readers_b is not None else bw_a, float))
    return matrix, *(bands if kernel == "rbf" else (None, None))


def _rsa(
    readers_a: list[_LayerReader],
    readers_b: list[_LayerReader] | None,
    pos_a: np.ndarray,
    pos_b: np.ndarray,
    metric: str,
    progress: bool,
) -> np.ndarray:
    def ranked(readers: list[_LayerReader], positions: np.ndarray) -> np.ndarray:
        out = []
        for reader in tqdm(readers, desc="RDMs", unit="layer", disable=not progress, leave=False):
            G, sums = reader.gram(positions, centre=False)
            out.append(_ranked_upper(_rdm_from_gram(G, sums, reader.n_features, metric)))
        return np.stack(out)

    za = ranked(readers_a, pos_a)
    zb = za if readers_b is None else ranked(readers_b, pos_b)
    rho: np.ndarray = np.clip(za @ zb.T / za.shape[1], -1.0, 1.0)
    return rho


def similarity(
    store: Any,
    other: Any = None,
    *,
    layers: Sequence[str] | str | None = None,
    other_layers: Sequence[str] | str | None = None,
    method: Literal["cka", "rsa"] = "cka",
    kernel: Literal["linear", "rbf"] = "linear",
    sigma: float = 1.0,
    debiased: bool = True,
    reduction: Literal["flatten", "mean", "max"] | None = None,
    batch_size: int | None = 512,
    n_epochs: int = 1,
    n_samples: int | None = None,
    rdm: Literal["correlation", "euclidean"] = "correlation",
    random_state: int | None = 0,
    cache: bool = True,
    refresh: bool = False,
    progress: bool = True,
) -> Similarity:
    """Similarity of every layer pair of one store, or between the layers of two stores.

    Two stores are matched by their sample index (``/samples/index``: each sample's position
    in the user's dataset), so two captures of the same dataset compare sample by sample
    whatever order they were written in; samples only one store holds are left out. Features
    are streamed from the stores: memory stays at a few ``batch_size x batch_size`` matrices
    per layer (CKA) or ``n_samples x n_samples`` (RSA), plus one layer's rows of the minibatch
    (at most 256 MiB as stored: wider rows are read a slice of channels at a time) and a
    64 MiB float64 slice of them, however many samples there are and however wide the layers.

    Parameters
    ----------
    store : ActivationStore or path
    other : ActivationStore or path, optional
        A second store (another model, seed, or site's fine-tune) holding the same samples.
        Without it, the layers of ``store`` are compared with each other.
    layers : list of str, optional
        Rows of the matrix: layers of ``store`` (default all, in capture order).
    other_layers : list of str, optional
        Columns: layers of ``other`` (default all), or of ``store`` when there is no other
        (default ``layers``).
    method : {'cka', 'rsa'}
        Centered kernel alignment (minibatch estimator) or representational similarity
        analysis (Spearman correlation of RDMs).
    kernel : {'linear', 'rbf'}
        CKA kernel. The RBF bandwidth is ``sigma`` times the median distance between the
        samples of the first minibatch, then kept for every minibatch.
    sigma : float
        RBF bandwidth in median distances.
    debiased : bool
        CKA from the unbiased HSIC estimator (Nguyen et al., 2021). The minibatch average of
        unbiased HSIC converges to the full-data value; the biased one (``False``) is inflated
        by an amount that depends on ``batch_size``.
    reduction : {'flatten', 'mean', 'max'}, optional
        How spatial maps ``(C, *spatial)`` become feature vectors: flattened (default: the
        whole map is the representation) or pooled per channel. Layers stored already pooled
        pass through.
    batch_size : int or None
        CKA minibatch size: ``N // batch_size`` minibatches of at least this many samples.
        ``None`` (or a size above N / 2) computes the full-data value in one batch (memory
        N x N per layer).
    n_epochs : int
        Passes over the samples, each with a new permutation; more passes lower the variance.
    n_samples : int, optional
        Use a seeded random subset of this many samples. RSA defaults to 1000 (its RDMs are
        ``n_samples x n_samples``); CKA to all.
    rdm : {'correlation', 'euclidean'}
        RSA dissimilarity: ``1 - Pearson r`` between samples, or Euclidean distance.
    random_state : int or None
        Seed of the minibatch permutation and of the sample subset; recorded.
    cache : bool
        Save the result in ``store`` under ``similarity/<method>/<key>`` (keyed by every
        parameter and, with two stores, the other store's identity) and reuse a saved one.
    refresh : bool
        Recompute even if a cached result exists.
    progress : bool
        Progress bar over minibatches (RSA: over layers).

    Returns
    -------
    Similarity

    Raises
    ------
    ValueError
        When the two stores share no sample, or for bad parameters.
    KeyError
        For a layer the store does not hold (with close matches).

    Examples
    --------
    >>> sim = similarity("run1.h5", "run2.h5", layers=["conv1", "conv2", "fc"])  # doctest: +SKIP
    >>> sim.matrix.shape                                                          # doctest: +SKIP
    (3, 3)
    >>> within = similarity("run1.h5", method="rsa", n_samples=500)              # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(map(repr, METHODS))}")
    _check_kernel(kernel, sigma)
    if rdm not in RDM_METRICS:
        raise ValueError(f"rdm={rdm!r} is not one of {', '.join(map(repr, RDM_METRICS))}")
    reduction = "flatten" if reduction is None else reduction
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))} (or None)"
        )
    if batch_size is not None and (not isinstance(batch_size, int | np.integer) or batch_size < 4):
        raise ValueError(f"batch_size must be an integer >= 4 or None, got {batch_size!r}")
    if not isinstance(n_epochs, int | np.integer) or n_epochs < 1:
        raise ValueError(f"n_epochs must be a positive integer, got {n_epochs!r}")
    if n_samples is not None and (not isinstance(n_samples, int | np.integer) or n_samples < 4):
        raise ValueError(f"n_samples must be an integer >= 4 or None, got {n_samples!r}")

    store, own_a = _open(store)
    own_b = False
    try:
        if other is not None:
            other, own_b = _open(other)
            if os.path.realpath(other.path) == os.path.realpath(store.path):
                other_store = None  # the same file: compare within it
            else:
                other_store = other
        else:
            other_store = None
        rows = _resolve_layers(store, layers, f"store {store.path}")
        if other_store is None:
            cols = (
                rows
                if other_layers is None
                else _resolve_layers(store, other_layers, f"store {store.path}")
            )
            pos_a = pos_b = np.arange(store.n_samples, dtype=np.int64)
        else:
            cols = _resolve_layers(other_store, other_layers, f"store {other_store.path}")
            pos_a, pos_b = _match_samples(store, other_store)
        n_total = len(pos_a)
        if method == "rsa" and n_samples is None:
            n_samples = 1000
        rng = np.random.default_rng(random_state)
        if n_samples is not None and n_samples < n_total:
            chosen = np.sort(rng.choice(n_total, size=n_samples, replace=False))
            pos_a, pos_b = pos_a[chosen], pos_b[chosen]
        n = len(pos_a)
        params: dict[str, Any] = {"reduction": reduction, "random_state": random_state}
        if method == "cka":
            params.update(
                kernel=kernel,
                debiased=bool(debiased),
                batch_size=None if batch_size is None or batch_size >= n else int(batch_size),
                n_epochs=int(n_epochs) if batch_size is not None and batch_size < n else 1,
            )
            if kernel == "rbf":
                params["sigma"] = float(sigma)
        else:
            params["rdm"] = rdm
        if n_samples is not None:
            params["n_samples"] = int(n_samples)
        key = _cache_key(store, other_store, method, rows, cols, params, n)
        group = f"{RESULT_GROUP}/{method}/{key[:16]}"
        other_name = None if other_store is None else str(other_store.path)
        if cache and not refresh:
            found = _load_cached(store, group, key, rows, cols, method, params, other_name)
            if found is not None:
                return found

        same = other_store is None and cols == rows
        src_b = store if other_store is None else other_store
        readers_a = [_LayerReader(store[name], reduction) for name in rows]
        readers_b = None if same else [_LayerReader(src_b[name], reduction) for name in cols]
        bands: list[Any] = [None, None]
        if method == "cka":
            batches = _batches(n, params["batch_size"], n_epochs, rng)
            matrix, *bands = _minibatch_cka(
                readers_a,
                readers_b,
                pos_a,
                pos_b,
                kernel=kernel,
                sigma=sigma,
                debiased=debiased,
                batches=batches,
                progress=progress,
            )
        else:
            matrix = _rsa(readers_a, readers_b, pos_a, pos_b, rdm, progress)
        if np.isnan(matrix).any():
            logger.warning(
                "some similarities are undefined (NaN): a layer's features are constant over "
                "the samples compared"
            )
        result = Similarity(
            matrix=matrix,
            layers=rows,
            other_layers=list(cols),
            n_samples=n,
            method=method,
            params=params,
            store=str(store.path),
            other=other_name,
            bandwidths=bands[0],
            other_bandwidths=bands[1],
        )
        if cache:
            _save_cached(store, group, key, result)
        return result
    finally:
        if own_b:
            other.close()
        if own_a:
            store.close()


# -- cache -----------------------------------------------------------------------------------
def _cache_key(
    store: Any,
    other: Any,
    method: str,
    rows: list[str],
    cols: list[str],
    params: dict[str, Any],
    n: int,
) -> str:
    key = {
        "cache_version": CACHE_VERSION,
        "method": method,
        "layers": rows,
        "other_layers": cols,
        "params": params,
        "n_samples": n,
        "store_n_samples": int(store.n_samples),
        "other": None if other is None else _store_identity(other),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _load_cached(
    store: Any,
    group: str,
    key: str,
    rows: list[str],
    cols: list[str],
    method: str,
    params: dict[str, Any],
    other: str | None,
) -> Similarity | None:
    found = store.load_result(group)
    if found is None:
        return None
    data, attrs = found
    if attrs.get("key") != key or "matrix" not in data:
        return None
    logger.info("reusing the cached %s similarity in %s", method, group)
    return Similarity(
        matrix=np.asarray(data["matrix"], dtype=float),
        layers=rows,
        other_layers=cols,
        n_samples=int(attrs["n_samples"]),
        method=method,
        params=params,
        store=str(store.path),
        other=other,
        bandwidths=data.get("bandwidths"),
        other_bandwidths=data.get("other_bandwidths"),
        from_cache=True,
    )


def _save_cached(store: Any, group: str, key: str, result: Similarity) -> None:
    data: dict[str, np.ndarray] = {
        "matrix": result.matrix,
        "layers": np.asarray(result.layers, dtype=object),
        "other_layers": np.asarray(result.other_layers, dtype=object),
    }
    if result.bandwidths is not None and result.other_bandwidths is not None:
        data["bandwidths"] = result.bandwidths
        data["other_bandwidths"] = result.other_bandwidths
    attrs = {
        "key": key,
        "method": result.method,
        "description": result.description,
        "params": result.params,
        "n_samples": result.n_samples,
        "other": result.other or "",
        "inspect_kit_version": __version__,
    }
    try:
        store.save_result(group, data, attrs)
    except OSError as err:  # a capture still writing it, or a read-only file system
        logger.warning("could not cache the similarity in %s: %s", store.path, err)
