"""Localisation: do attribution maps point at the region that holds the answer? (2D and 3D)

Against a ground-truth mask per sample (a lesion, an organ):

- pointing game (Zhang et al., ECCV 2016): is the map's maximum inside the mask? Its chance
  level here is the *centre baseline*: pointing at the image centre.
- relevance mass accuracy (Arras et al., Information Fusion 2022): share of the positive
  relevance inside the mask; compare with the mask's share of the image.
- relevance rank accuracy (Arras et al.): share of the ``K = |mask|`` top-ranked voxels inside
  the mask.
- IoU and Dice of the mask with the map thresholded at Otsu's threshold (Otsu 1979) and at its
  top ``k`` voxels (default ``k = |mask|``).
- AUPRC: average precision of the map's values as a voxel-wise detector of the mask.
- mass outside a region (e.g. the brain mask): where a shortcut would show.

Volumes are reported in mm^3 (mm^2 for 2D maps) from the voxel spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._maps import spatial_maps, spatial_masks
from .results import TrustResult

__all__ = [
    "Localization",
    "average_precision",
    "localization_scores",
    "mass_outside",
    "otsu_threshold",
]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of ``scores`` as a detector of ``labels`` (scikit-learn's definition).

    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds, highest first. NaN without
    positives.

    Examples
    --------
    >>> average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1]))
    0.8333333333333333
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of the values (256 bins; the value itself when they are all equal).

    Examples
    --------
    >>> otsu_threshold(np.r_[np.zeros(50), np.ones(50)]) < 1
    True
    """
    from skimage.filters import threshold_otsu

    v = np.asarray(values, dtype=np.float64).ravel()
    if np.ptp(v) == 0:
        return float(v[0])
    # scikit-image ships no type information for threshold_otsu
    return float(threshold_otsu(v))  # type: ignore[no-untyped-call]


def _overlap(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    inter = float(np.logical_and(pred, truth).sum())
    union = float(np.logical_or(pred, truth).sum())
    total = float(pred.sum() + truth.sum())
    return (inter / union if union else float("nan"), 2 * inter / total if total else float("nan"))


@dataclass
class Localization(TrustResult):
    """Per-sample localisation scores against masks (samples with an empty mask are NaN).

    Attributes
    ----------
    pointing_game : ndarray (N,) of float
        1.0 when the map's maximum lies in the mask (dilated by ``tolerance`` voxels), else 0.
    centre_baseline : ndarray (N,)
        The same for a map that points at the image centre.
    relevance_mass : ndarray (N,)
        Positive relevance inside the mask / all positive relevance.
    mask_share : ndarray (N,)
        The mask's share of the image: the relevance mass of a uniform map.
    relevance_rank : ndarray (N,)
    iou_otsu, dice_otsu, iou_topk, dice_topk : ndarray (N,)
    auprc : ndarray (N,)
    mask_volume, otsu_volume : ndarray (N,)
        Volume of the mask and of the map's Otsu region, in ``volume_unit``.
    spacing : tuple of float
    volume_unit : str
        ``"mm^3"`` / ``"mm^2"`` with a spacing, else ``"voxels"``.
    """

    pointing_game: np.ndarray
    centre_baseline: np.ndarray
    relevance_mass: np.ndarray
    mask_share: np.ndarray
    relevance_rank: np.ndarray
    iou_otsu: np.ndarray
    dice_otsu: np.ndarray
    iou_topk: np.ndarray
    dice_topk: np.ndarray
    auprc: np.ndarray
    mask_volume: np.ndarray
    otsu_volume: np.ndarray
    spacing: tuple[float, ...] | None
    volume_unit: str
    method: str = "attribution"
    params: dict[str, Any] = field(default_factory=dict)

    _SCORES = (
        "pointing_game",
        "centre_baseline",
        "relevance_mass",
        "mask_share",
        "relevance_rank",
        "iou_otsu",
        "dice_otsu",
        "iou_topk",
        "dice_topk",
        "auprc",
        "mask_volume",
        "otsu_volume",
    )

    def means(self) -> dict[str, float]:
        """The mean of every score over the samples that have one."""
        out = {}
        for name in self._SCORES:
            v = np.asarray(getattr(self, name), dtype=np.float64)
            out[name] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One row: the method, the mean scores and the volume unit."""
        return [{"method": self.method, **self.means(), "volume_unit": self.volume_unit}]


def _centre_hit(mask: np.ndarray) -> float:
    centre = tuple((n - 1) // 2 for n in mask.shape)
    # the geometric centre may fall between voxels: count a hit on any of the central ones
    sl = tuple(slice(c, c + (2 - n % 2)) for c, n in zip(centre, mask.shape, strict=True))
    return float(mask[sl].any())


def localization_scores(
    maps: Any,
    masks: Any,
    *,
    spacing: Sequence[float] | None = None,
    top_k: int | None = None,
    tolerance: int = 0,
    positive_only: bool = True,
    method: str = "attribution",
) -> Localization:
    """Score attribution maps against ground-truth masks (2D ``(N, H, W)`` or 3D ``(N, D, H, W)``).

    Parameters
    ----------
    maps : ndarray or tensor, (N, *S) or (N, C, *S)
        Channels are summed.
    masks : ndarray or tensor of bool, (N, *S) or (N, 1, *S)
    spacing : sequence of float, optional
        Voxel size in mm per spatial axis; volumes are then in mm^3 (mm^2 in 2D).
    top_k : int, optional
        Voxels kept for ``iou_topk`` / ``dice_topk``; default each mask's size.
    tolerance : int, default=0
        The pointing game counts a maximum within this many voxels of the mask (Zhang et al.
        used 15 pixels on 224-pixel images).
    positive_only : bool, default=True
        Score the positive part of the map (relevance *for* the target, Arras et al.); False
        scores its absolute value.
    method : str

    Returns
    -------
    Localization

    Examples
    --------
    >>> mask = np.zeros((1, 8, 8), bool); mask[0, 1:3, 1:3] = True
    >>> res = localization_scores(mask.astype(float), mask, spacing=(2.0, 2.0))
    >>> float(res.pointing_game[0]), float(res.relevance_mass[0]), float(res.mask_volume[0])
    (1.0, 1.0, 16.0)
    """
    m = spatial_maps(maps)
    masks_b = spatial_masks(masks, m.shape[1:])
    if len(masks_b) != len(m):
        raise ValueError(f"{len(m)} maps but {len(masks_b)} masks")
    if spacing is not None and len(spacing) != m.ndim - 1:
        raise ValueError(
            f"spacing needs one value per spatial axis ({m.ndim - 1}), got {spacing!r}"
        )
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be an int >= 0 (voxels), got {tolerance!r}")
    voxel = float(np.prod(spacing)) if spacing is not None else 1.0
    unit = "voxels" if spacing is None else ("mm^3" if m.ndim == 4 else "mm^2")
    rel = np.clip(m, 0, None) if positive_only else np.abs(m)
    n = len(m)
    out = {name: np.full(n, np.nan) for name in Localization._SCORES}
    from scipy import ndimage

    for i in range(n):
        truth = masks_b[i]
        out["mask_volume"][i] = truth.sum() * voxel
        r = rel[i]
        th = otsu_threshold(r)
        region = r > th
        out["otsu_volume"][i] = region.sum() * voxel
        if not truth.any():
            continue
        hit_region = ndimage.binary_dilation(truth, iterations=tolerance) if tolerance else truth
        peak = np.unravel_index(int(np.argmax(m[i])), truth.shape)
        out["pointing_game"][i] = float(hit_region[peak])
        out["centre_baseline"][i] = _centre_hit(hit_region)
        total = r.sum()
        out["relevance_mass"][i] = r[truth].sum() / total if total > 0 else 0.0
        out["mask_share"][i] = truth.mean()
        k_mask = int(truth.sum())
        order = np.argsort(-r.ravel(), kind="stable")
        out["relevance_rank"][i] = truth.ravel()[order[:k_mask]].mean()
        out["iou_otsu"][i], out["dice_otsu"][i] = _overlap(region, truth)
        k = k_mask if top_k is None else int(top_k)
        top = np.zeros(truth.size, bool)
        top[order[:k]] = True
        out["iou_topk"][i], out["dice_topk"][i] = _overlap(top.reshape(truth.shape), truth)
        out["auprc"][i] = average_precision(r.ravel(), truth.ravel())
    return Localization(
        **out,
        spacing=None if spacing is None else tuple(float(s) for s in spacing),
        volume_unit=unit,
        method=method,
        params={"top_k": top_k, "tolerance": tolerance, "positive_only": positive_only},
    )


def mass_outside(maps: Any, region: Any, *, absolute: bool = True) -> np.ndarray:
    """Share of each map's attribution mass outside ``region`` (e.g. the brain mask).

    A model that reads a marker outside the anatomy (Zech et al., 2018) puts its mass there.

    Parameters
    ----------
    maps : (N, *S) or (N, C, *S)
    region : bool (N, *S) or (N, 1, *S)
    absolute : bool, default=True
        Mass of ``|map|``; False: of the positive part.

    Examples
    --------
    >>> m = np.zeros((1, 4, 4)); m[0, 0, 0] = 3.0; m[0, 2, 2] = 1.0
    >>> brain = np.zeros((1, 4, 4), bool); brain[0, 1:, 1:] = True
    >>> mass_outside(m, brain).tolist()
    [0.75]
    """
    m = spatial_maps(maps)
    inside = spatial_masks(region, m.shape[1:])
    r = np.abs(m) if absolute else np.clip(m, 0, None)
    flat = r.reshape(len(r), -1)
    total = flat.sum(axis=1)
    outside = (flat * ~inside.reshape(len(r), -1)).sum(axis=1)
    return np.asarray(np.divide(outside, total, out=np.full(len(r), np.nan), where=total > 0))
