"""A lesion-detection task on real anatomy with known answers, from nilearn's MNI152 template.

Each sample is an axial slice (2D) or a cube (3D) resampled from the ICBM152 2009 T1 template
that ships with nilearn. Half of them (``prevalence``) get one lesion-like hyperintense blob
of a measured radius (in mm) placed in white matter (nilearn's bundled white-matter
probability map), and the label says whether a lesion is present. The lesion's mask is
returned, so an attribution map can be scored against where the answer really is.

The *shortcut* variant adds a bright, scanner-like tag in a corner outside the brain that
correlates with the label (as a hospital's or a portable scanner's marker did in Zech et al.,
PLoS Medicine 2018): a model trained on it can be right for the wrong reason, and an
attribution method should show it. The brain mask is returned too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspect_kit.data._optional import require
from inspect_kit.data.mni import _mni_volumes
from inspect_kit.seeding import RandomState, resolve_seed

__all__ = ["LESION_CLASSES", "LesionTask", "make_lesion_task"]

LESION_CLASSES: tuple[str, ...] = ("no lesion", "lesion")

_DEFAULT_SIZE = {2: 32, 3: 16}  # voxels per side
_DEFAULT_VOXEL_MM = {2: 6.0, 3: 12.0}  # 192 mm fields of view: corners outside the brain


@dataclass
class LesionTask:
    """Images of a lesion task, their labels and the masks that hold the answers.

    Attributes
    ----------
    X : ndarray of float32, shape (N, 1, H, W) or (N, 1, D, H, W)
        Template intensities (about 0.87 in white matter, 0 outside the head) times a per-sample
        gain, plus the lesion and Gaussian noise.
    y : ndarray of int64, shape (N,)
        1 = a lesion is present (``LESION_CLASSES``).
    lesion_mask : ndarray of bool, shape (N, *S)
        The voxels within ``radius_mm`` of the lesion centre (all False without a lesion).
    brain_mask : ndarray of bool, shape (N, *S)
        The template's brain mask on each sample's grid.
    tag_mask : ndarray of bool, shape (N, *S)
        Where the shortcut tag was drawn (all False on clean data or untagged samples).
    spacing : tuple of float
        Voxel size in mm along each spatial axis (D, H, W order).
    radius_mm : ndarray of float, shape (N,)
        Lesion radius in mm (NaN without a lesion).
    lesion_volume : ndarray of float, shape (N,)
        Measured size of the lesion mask: voxel count times the voxel size, in mm^3 for 3D and
        mm^2 (an area) for 2D slices; 0 without a lesion.
    lesion_center : ndarray of int64, shape (N, dim)
        Centre voxel of the lesion (-1 without one).
    has_tag : ndarray of bool, shape (N,)
    params : dict
        Every argument that made the task (the seed included), for provenance.
    """

    X: np.ndarray
    y: np.ndarray
    lesion_mask: np.ndarray
    brain_mask: np.ndarray
    tag_mask: np.ndarray
    spacing: tuple[float, ...]
    radius_mm: np.ndarray
    lesion_volume: np.ndarray
    lesion_center: np.ndarray
    has_tag: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """2 for slices, 3 for volumes."""
        return int(self.X.ndim - 2)

    @property
    def volume_unit(self) -> str:
        """``"mm^2"`` for slices, ``"mm^3"`` for volumes."""
        return "mm^3" if self.dim == 3 else "mm^2"

    def __len__(self) -> int:
        return int(len(self.y))

    def subset(self, index: Any) -> LesionTask:
        """The samples at ``index`` (a slice, integer array or boolean mask), as a new task.

        Examples
        --------
        >>> task = make_lesion_task(dim=2, n_samples=10, random_state=0)
        >>> len(task.subset(slice(0, 4)))
        4
        """
        return LesionTask(
            X=self.X[index],
            y=self.y[index],
            lesion_mask=self.lesion_mask[index],
            brain_mask=self.brain_mask[index],
            tag_mask=self.tag_mask[index],
            spacing=self.spacing,
            radius_mm=self.radius_mm[index],
            lesion_volume=self.lesion_volume[index],
            lesion_center=self.lesion_center[index],
            has_tag=self.has_tag[index],
            params=dict(self.params),
        )


@functools.lru_cache(maxsize=1)
def _fields() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """T1, white-matter probability, brain mask (float) and the brain's centroid, 1 mm (D,H,W)."""
    vol = _mni_volumes(1)
    centroid = np.array(np.nonzero(vol.mask)).mean(axis=1)
    return vol.t1, vol.prob[2], vol.mask.astype(np.float32), centroid


def _axial_band() -> tuple[int, int]:
    """Axial indices (1 mm) whose slice holds at least half the largest white-matter area."""
    _, wm, _, _ = _fields()
    area = (wm > 0.5).sum(axis=(1, 2))
    rows = np.flatnonzero(area >= 0.5 * area.max())
    return int(rows[0]), int(rows[-1])


def _grid(dim: int, size: int, voxel_mm: float, origin: np.ndarray) -> np.ndarray:
    """Template coordinates (3, *S) of a grid of ``size`` voxels per side around ``origin``."""
    offs = (np.arange(size) - (size - 1) / 2.0) * voxel_mm
    if dim == 2:
        hh, ww = np.meshgrid(offs, offs, indexing="ij")
        return np.asarray(np.stack([np.zeros_like(hh), hh, ww]) + origin[:, None, None])
    dd, hh, ww = np.meshgrid(offs, offs, offs, indexing="ij")
    return np.asarray(np.stack([dd, hh, ww]) + origin[:, None, None, None])


def _sample(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ndimage = require("scipy.ndimage", "scipy")
    t1, wm, mask, _ = _fields()
    kw = {"order": 1, "mode": "constant", "cval": 0.0}
    return (
        ndimage.map_coordinates(t1, coords, **kw).astype(np.float32),
        ndimage.map_coordinates(wm, coords, **kw).astype(np.float32),
        ndimage.map_coordinates(mask, coords, **kw) > 0.5,
    )


_TAG_SIDE = {2: 3, 3: 2}  # voxels
_SHIFT = {2: 2.0, 3: 1.5}  # largest random shift of the grid, in voxels


def _tag_box(dim: int) -> tuple[slice, ...]:
    return tuple(slice(0, _TAG_SIDE[dim]) for _ in range(dim))


def _check_range(name: str, value: Any, lo: float, hi: float) -> float:
    v = float(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v


def make_lesion_task(
    dim: int = 2,
    n_samples: int = 400,
    *,
    size: int | None = None,
    voxel_mm: float | None = None,
    radius_mm: tuple[float, float] | None = None,
    contrast: float = 0.8,
    noise: float = 0.05,
    gain_jitter: float = 0.15,
    prevalence: float = 0.5,
    shortcut: float | None = None,
    random_state: RandomState = 0,
) -> LesionTask:
    """Lesion-present / lesion-absent images of real anatomy (nilearn's MNI152 T1 template).

    Each sample is resampled (trilinear) from the 1 mm template on a grid of ``size`` voxels
    per side of ``voxel_mm`` mm, centred on the brain's centroid with a random shift of up to
    two voxels (1.5 in 3D; and, for 2D, a random axial level among the slices rich in white matter). A
    positive sample gets one hyperintense blob: its centre is a white-matter voxel (probability
    >= 0.9 in nilearn's bundled white-matter map), its radius is drawn uniformly from
    ``radius_mm`` and the whole blob lies inside the brain; its intensity is ``contrast`` at the
    centre, falling off smoothly over half a voxel at the rim. Every sample is then multiplied
    by a random gain in ``1 +- gain_jitter`` and gets Gaussian noise.

    With ``shortcut=p`` a bright square tag (3 pixels per side in 2D, 2 voxels in 3D, intensity
    1.5) is drawn in the first corner, outside the brain, on a positive sample with probability ``p`` and on a
    negative one with probability ``1 - p``: the tag predicts the label as a scanner's marker
    did in Zech et al. (2018).

    Parameters
    ----------
    dim : {2, 3}, default=2
        2 for axial slices ``(N, 1, size, size)``, 3 for cubes ``(N, 1, size, size, size)``.
    n_samples : int, default=400
    size : int, optional
        Voxels per side (default 32 for 2D, 16 for 3D).
    voxel_mm : float, optional
        Voxel size in mm (default 6 for 2D, 12 for 3D: the grid covers the brain and its corners
        lie outside it).
    radius_mm : (float, float), optional
        Range of lesion radii in mm (default 1.2 to 2.2 voxels).
    contrast : float, default=0.8
        Lesion intensity added at its centre (white matter is about 0.87).
    noise : float, default=0.05
        Standard deviation of the Gaussian noise.
    gain_jitter : float, default=0.15
    prevalence : float, default=0.5
        Share of samples with a lesion (drawn per sample).
    shortcut : float in [0.5, 1], optional
        Probability that the tag agrees with the label (None: no tag anywhere).
    random_state : int, numpy Generator or None, default=0
        The same arguments and seed always give the same task.

    Returns
    -------
    LesionTask

    Examples
    --------
    >>> task = make_lesion_task(dim=2, n_samples=20, random_state=0)
    >>> task.X.shape, task.spacing, task.volume_unit
    ((20, 1, 32, 32), (6.0, 6.0), 'mm^2')
    >>> bool((task.lesion_mask.any(axis=(1, 2)) == (task.y == 1)).all())
    True
    """
    if dim not in (2, 3) or isinstance(dim, bool):
        raise ValueError(f"dim must be 2 (axial slices) or 3 (cubes), got {dim!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    size = _DEFAULT_SIZE[dim] if size is None else size
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 8:
        raise ValueError(f"size must be an int >= 8 (voxels per side), got {size!r}")
    voxel_mm = _DEFAULT_VOXEL_MM[dim] if voxel_mm is None else float(voxel_mm)
    if not voxel_mm > 0:
        raise ValueError(f"voxel_mm must be > 0, got {voxel_mm!r}")
    radius_mm = (1.2 * voxel_mm, 2.2 * voxel_mm) if radius_mm is None else radius_mm
    r_lo, r_hi = (float(r) for r in radius_mm)
    if not 0 < r_lo <= r_hi:
        raise ValueError(f"radius_mm must be (low, high) with 0 < low <= high, got {radius_mm!r}")
    _check_range("prevalence", prevalence, 0.0, 1.0)
    _check_range("gain_jitter", gain_jitter, 0.0, 0.9)
    if noise < 0 or contrast <= 0:
        raise ValueError(f"noise must be >= 0 and contrast > 0, got {noise!r}, {contrast!r}")
    if shortcut is not None:
        _check_range("shortcut", shortcut, 0.5, 1.0)

    seed = resolve_seed(random_state)
    rng = np.random.default_rng(seed)
    _, _, _, centroid = _fields()
    band = _axial_band()
    shape = (size,) * dim
    spacing = (voxel_mm,) * dim
    n = int(n_samples)
    X = np.empty((n, 1, *shape), np.float32)
    lesion = np.zeros((n, *shape), bool)
    brain = np.zeros((n, *shape), bool)
    tag = np.zeros((n, *shape), bool)
    y = (rng.random(n) < prevalence).astype(np.int64)
    radius = np.full(n, np.nan)
    volume = np.zeros(n)
    center = np.full((n, dim), -1, np.int64)
    has_tag = np.zeros(n, bool)
    if shortcut is not None:
        agree = rng.random(n) < shortcut
        has_tag = np.where(agree, y == 1, y == 0)
    idx = np.indices(shape).reshape(dim, -1).T  # (V, dim) voxel indices
    box = _tag_box(dim)

    for i in range(n):
        origin = centroid + rng.uniform(-_SHIFT[dim], _SHIFT[dim], size=3) * voxel_mm
        if dim == 2:
            origin[0] = rng.integers(band[0], band[1] + 1)
        t1, wm, bmask = _sample(_grid(dim, size, voxel_mm, origin))
        img = t1.astype(np.float64)
        if bmask[box].any():
            raise ValueError(
                f"the corner tag would overlap the brain at size={size}, voxel_mm={voxel_mm}; "
                "use a larger field of view (size * voxel_mm of about 170 mm or more)"
            )
        if y[i]:
            r = rng.uniform(r_lo, r_hi)
            cands = np.flatnonzero(wm.ravel() >= 0.9)
            if len(cands) == 0:
                raise ValueError(f"no white matter on the grid at voxel_mm={voxel_mm}")
            for c in rng.permutation(cands)[:200]:
                dist = np.sqrt((((idx - idx[c]) * voxel_mm) ** 2).sum(axis=1)).reshape(shape)
                m = dist <= r
                if bmask[m].all():
                    break
            else:
                raise ValueError(
                    f"no lesion of radius {r:.1f} mm fits inside the brain; lower radius_mm"
                )
            edge = max(0.25 * voxel_mm, 1e-6)
            img += contrast / (1.0 + np.exp(np.clip((dist - r) / edge, -50, 50)))
            lesion[i], radius[i] = m, r
            volume[i] = float(m.sum()) * float(np.prod(spacing))
            center[i] = idx[c]
        if has_tag[i]:
            img[box] = 1.5
            tag[i][box] = True
        gain = rng.uniform(1 - gain_jitter, 1 + gain_jitter)
        img = img * gain + rng.normal(0.0, noise, size=shape)
        X[i, 0] = img.astype(np.float32)
        brain[i] = bmask

    params = {
        "dim": dim,
        "n_samples": n,
        "size": int(size),
        "voxel_mm": voxel_mm,
        "radius_mm": (r_lo, r_hi),
        "contrast": float(contrast),
        "noise": float(noise),
        "gain_jitter": float(gain_jitter),
        "prevalence": float(prevalence),
        "shortcut": None if shortcut is None else float(shortcut),
        "random_state": seed,
    }
    return LesionTask(
        X=X,
        y=y,
        lesion_mask=lesion,
        brain_mask=brain,
        tag_mask=tag,
        spacing=spacing,
        radius_mm=radius,
        lesion_volume=volume,
        lesion_center=center,
        has_tag=has_tag,
        params=params,
    )
