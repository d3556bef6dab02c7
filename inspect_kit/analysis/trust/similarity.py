"""Similarity of two attribution maps, for the randomisation tests (2D and 3D).

Four scores, per pair of maps: Spearman rank correlation of the signed values and of their
absolute values (Adebayo et al., NeurIPS 2018), structural similarity (SSIM, Wang et al. 2004;
:func:`skimage.metrics.structural_similarity`, which is N-dimensional) and the Pearson
correlation of histograms of oriented gradients (HOG, Dalal & Triggs 2005; 2D, so a volume
scores the mean over its axial slices). SSIM and HOG see each map divided by its largest
absolute value, so they compare shapes, not scales.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ._maps import spatial_maps

__all__ = ["SIMILARITY_METRICS", "map_similarity", "random_pair_baseline"]

#: the scores :func:`map_similarity` knows
SIMILARITY_METRICS: tuple[str, ...] = ("spearman", "spearman_abs", "ssim", "hog")


def _rank_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of (N, P) arrays (0 where a row is constant)."""
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    num = (ra * rb).sum(axis=1)
    out = np.zeros(len(a))
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _normalise(m: np.ndarray) -> np.ndarray:
    peak = float(np.abs(m).max())
    return m / peak if peak > 0 else m


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    a, b = _normalise(a), _normalise(b)
    rng = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    win = min(7, *a.shape)
    win -= 1 - win % 2  # odd
    if win < 3:
        raise ValueError(f"SSIM needs maps of at least 3 voxels per side, got {a.shape}")
    # scikit-image ships no type information for structural_similarity
    return float(
        structural_similarity(a, b, data_range=rng or 1.0, win_size=win)  # type: ignore[no-untyped-call]
    )


def _hog(m: np.ndarray, cell: int) -> np.ndarray:
    from skimage.feature import hog

    return np.asarray(
        hog(m, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)),
        dtype=np.float64,
    )


def _hog_sim(a: np.ndarray, b: np.ndarray) -> float:
    cell = max(2, min(8, min(a.shape[-2:]) // 4))
    slices_a = a[None] if a.ndim == 2 else a
    slices_b = b[None] if b.ndim == 2 else b
    scores = []
    for sa, sb in zip(slices_a, slices_b, strict=True):
        ha, hb = _hog(_normalise(sa), cell), _hog(_normalise(sb), cell)
        if ha.std() == 0 or hb.std() == 0:
            continue  # a flat slice has no gradients to compare
        scores.append(float(np.corrcoef(ha, hb)[0, 1]))
    return float(np.mean(scores)) if scores else 0.0


def map_similarity(a: Any, b: Any, metric: str = "spearman") -> np.ndarray:
    """Similarity of each pair of maps ``a[i]``, ``b[i]``, 2D ``(N, H, W)`` or 3D ``(N, D, H, W)``.

    Parameters
    ----------
    a, b : ndarray or tensor
        Maps of the same shape, ``(N, *S)`` or ``(N, C, *S)`` (channels are summed).
    metric : {"spearman", "spearman_abs", "ssim", "hog"}
        Spearman rank correlation of the values or of their absolute values; SSIM (7-voxel
        windows, or the largest odd size that fits); HOG similarity (Pearson correlation of
        the two maps' HOG descriptors; 3D maps: mean over the axial slices with any gradient).

    Returns
    -------
    ndarray (N,)
        Between -1 and 1; 1 for identical maps.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.random((2, 16, 16))
    >>> map_similarity(m, m, "ssim").round(3).tolist()
    [1.0, 1.0]
    >>> float(map_similarity(m, -m, "spearman")[0])
    -1.0
    """
    if metric not in SIMILARITY_METRICS:
        raise ValueError(f"metric must be one of {SIMILARITY_METRICS}, got {metric!r}")
    x, y = spatial_maps(a), spatial_maps(b)
    if x.shape != y.shape:
        raise ValueError(f"the two batches of maps differ in shape: {x.shape} vs {y.shape}")
    if metric in ("spearman", "spearman_abs"):
        fx, fy = x.reshape(len(x), -1), y.reshape(len(y), -1)
        if metric == "spearman_abs":
            fx, fy = np.abs(fx), np.abs(fy)
        return _rank_corr(fx, fy)
    fn = _ssim if metric == "ssim" else _hog_sim
    return np.array([fn(p, q) for p, q in zip(x, y, strict=True)])


def random_pair_baseline(
    maps: Any, metric: str = "spearman", *, n_pairs: int = 100, random_state: int = 0
) -> float:
    """Mean similarity of random pairs of *different* samples' maps (Arun et al., 2021).

    What two unrelated maps of this method score: a map of a randomised model that is no more
    similar to the trained model's map than this is as good as unrelated to it.

    Parameters
    ----------
    maps : ndarray or tensor, (N, *S) or (N, C, *S), N >= 2
    metric : str
        As :func:`map_similarity`.
    n_pairs : int, default=100
        Pairs drawn (with replacement among the N * (N - 1) ordered pairs).
    random_state : int, default=0

    Examples
    --------
    >>> m = np.random.default_rng(0).random((10, 8, 8))
    >>> abs(random_pair_baseline(m, "spearman")) < 0.1
    True
    """
    x = spatial_maps(maps)
    n = len(x)
    if n < 2:
        raise ValueError("the random-pair baseline needs maps of at least 2 samples")
    rng = np.random.default_rng(random_state)
    i = rng.integers(0, n, size=n_pairs)
    j = (i + rng.integers(1, n, size=n_pairs)) % n  # never i itself
    return float(map_similarity(x[i], x[j], metric).mean())
