"""CKA and RSA maths on in-memory features and Gram matrices (no store I/O).

Centered kernel alignment (Kornblith et al., ICML 2019) compares two representations of the
same samples through their centred Gram matrices ``K`` and ``L``::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

with the linear kernel ``K = X X^T`` (then ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on
centred features) or an RBF kernel whose bandwidth is ``sigma`` times the median distance
between samples. The debiased form replaces HSIC by its unbiased estimator (Song et al.,
2012), as Nguyen, Raghu & Kornblith (ICLR 2021) recommend.

Representational similarity analysis (Kriegeskorte et al., 2008) compares representational
dissimilarity matrices (1 - Pearson correlation, or Euclidean distance, between samples) by
the Spearman correlation of their upper triangles.

:func:`inspect_kit.analysis.similarity.similarity` streams stores through these functions;
everything is float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .base import check_features

__all__ = ["KERNELS", "RDM_METRICS", "cka", "hsic", "rdm"]

KERNELS = ("linear", "rbf")
RDM_METRICS = ("correlation", "euclidean")


def _as_features(X: Any, name: str) -> np.ndarray:
    return check_features(X, name=name, float64=True)


def check_kernel(kernel: str, sigma: float) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is not one of {', '.join(map(repr, KERNELS))}")
    if not (isinstance(sigma, int | float | np.number) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"sigma must be a positive number (the RBF bandwidth in median distances), got {sigma!r}"
        )


def rbf_from_linear(
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
class Prepared:
    """Gram matrices of several representations of one batch, ready for HSIC products.

    ``flat`` holds ``HKH`` (biased) or ``K`` with a zero diagonal (unbiased), one row each;
    ``rows``/``totals`` are the unbiased estimator's row sums and grand totals.
    """

    flat: np.ndarray
    rows: np.ndarray
    totals: np.ndarray
    n: int
    debiased: bool


def prepare(grams: Sequence[np.ndarray], debiased: bool) -> Prepared:
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
    return Prepared(flat, rows, rows.sum(axis=1), n, debiased)


def cross_hsic(a: Prepared, b: Prepared) -> np.ndarray:
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


def self_hsic(a: Prepared) -> np.ndarray:
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


def check_n(n: int, debiased: bool) -> None:
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
    check_n(len(K), debiased)
    prep = prepare([K, L], debiased)
    return float(cross_hsic(prep, prep)[0, 1])


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


def ratio(xy: Any, xx: Any, yy: Any) -> np.ndarray:
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
    check_kernel(kernel, sigma)
    X = _as_features(X, "X")
    Y = _as_features(Y, "Y")
    if len(X) != len(Y):
        raise ValueError(f"X and Y must hold the same samples: X has {len(X)} rows, Y has {len(Y)}")
    n = len(X)
    check_n(n, debiased)
    px, py = X.shape[1], Y.shape[1]
    if kernel == "linear" and px * py + n * (px + py) <= n * n:
        xy, xx, yy = _linear_feature_hsic(X, Y, debiased)
        return float(ratio(xy, xx, yy))
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    K, L = X @ X.T, Y @ Y.T
    if kernel == "rbf":
        K, _ = rbf_from_linear(K, sigma)
        L, _ = rbf_from_linear(L, sigma)
    prep = prepare([K, L], debiased)
    diag = self_hsic(prep)
    return float(ratio(cross_hsic(prep, prep)[0, 1], diag[0], diag[1]))


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
    return rdm_from_gram(G, X.sum(axis=1), X.shape[1], metric)


def rdm_from_gram(G: np.ndarray, row_sums: np.ndarray, n_features: int, metric: str) -> np.ndarray:
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


def ranked_upper(D: np.ndarray) -> np.ndarray:
    """Standardised ranks of the upper triangle: their dot products / m are Spearman's rho."""
    from scipy.stats import rankdata

    upper = D[np.triu_indices(len(D), k=1)]
    if np.isnan(upper).any():
        return np.full(upper.shape, np.nan)
    r = rankdata(upper)
    r -= r.mean()
    norm = np.sqrt(np.mean(r**2))
    return r / norm if norm > 0 else np.full(upper.shape, np.nan)
