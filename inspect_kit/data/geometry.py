"""Voxel geometry of medical volumes: canonical orientation, resampling to a spacing, crop/pad.

A volume here is an array ``(C, I, J, K)`` in the voxel order of its file plus a 4x4 affine
that maps voxel indices ``(i, j, k)`` to millimetres in RAS+ world coordinates (the NIfTI
convention; DICOM's LPS positions are converted by the reader). The geometry itself is
nibabel's: :mod:`nibabel.orientations` for the exact axis permutation/flip to a canonical
orientation (what ``nibabel.as_closest_canonical`` does), and :func:`nibabel.processing.resample_from_to`
(scipy spline interpolation through the affines) for resampling. Downsampling is preceded by a
Gaussian pre-filter with ``sigma = (factor - 1) / 2`` voxels per axis, the rule scikit-image's
``rescale(anti_aliasing=True)`` uses, so that a 1 mm volume taken to 3 mm does not alias.
``benchmarks/geometry.py`` measures this choice against MONAI's ``Spacing`` and plain
trilinear interpolation on the MNI152 template (see benchmarks/RESULTS.md).

Samples leave in the layout of :func:`inspect_kit.data.load_mni_patches`: ``(C, D, H, W)`` with
D = inferior->superior, H = anterior->posterior, W = left->right for the RAS orientation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from inspect_kit.data._optional import require

#: What ``orientation=`` accepts besides None (keep the file's voxel order).
CANONICAL = "RAS"


@dataclass(frozen=True)
class Volume:
    """A volume's voxels and where they lie.

    Attributes
    ----------
    array : ndarray (C, I, J, K) float32
        Voxels in the order of ``affine``'s columns, channels first.
    affine : ndarray (4, 4)
        Voxel index (i, j, k) -> RAS+ millimetres.
    """

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        i, j, k = (float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        return (i, j, k)

    @property
    def axcodes(self) -> str:
        """Where each voxel axis points, e.g. ``'RAS'`` or ``'LPS'``."""
        nib = require("nibabel")
        return "".join(nib.orientations.aff2axcodes(self.affine))


@overload
def check_orientation(orientation: str) -> str: ...
@overload
def check_orientation(orientation: None) -> None: ...
def check_orientation(orientation: str | None) -> str | None:
    """Validate axis codes such as ``'RAS'``, ``'LPS'``; None keeps the stored order."""
    if orientation is None:
        return None
    codes = str(orientation).upper()
    axes = sorted("LR PA IS".split().index(p) for c in codes for p in ("LR", "PA", "IS") if c in p)
    if len(codes) != 3 or axes != [0, 1, 2]:
        raise ValueError(
            f"orientation={orientation!r} is not three axis codes, one of each of L/R, P/A, "
            "I/S; use e.g. 'RAS' (the neuroimaging canonical), 'LPS' (DICOM's) or None"
        )
    return codes


def reorient(volume: Volume, orientation: str = CANONICAL) -> Volume:
    """Permute and flip voxel axes so they point along ``orientation`` (no interpolation).

    Parameters
    ----------
    volume : Volume
    orientation : str, default 'RAS'
        Target axis codes; 'RAS' is the closest canonical orientation of
        ``nibabel.as_closest_canonical``.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((1, 2, 3, 4), np.float32), np.diag([-2.0, 2.0, 2.0, 1.0]))
    >>> reorient(v).axcodes, reorient(v).array.shape
    ('RAS', (1, 2, 3, 4))
    """
    transform, _, affine = reorient_plan(volume.array.shape[1:4], volume.affine, orientation)
    if transform is None:
        return volume
    nib = require("nibabel")
    arr = nib.orientations.apply_orientation(np.moveaxis(volume.array, 0, -1), transform)
    return Volume(np.ascontiguousarray(np.moveaxis(arr, -1, 0)), affine)


def reorient_plan(
    shape: Sequence[int], affine: np.ndarray, orientation: str = CANONICAL
) -> tuple[np.ndarray | None, tuple[int, int, int], np.ndarray]:
    """What :func:`reorient` does to a grid, from its header alone.

    Returns ``(transform, shape, affine)``: nibabel's orientation transform (None when the axes
    already point along ``orientation``), and the reoriented grid's shape and affine.
    """
    nib = require("nibabel")
    ornt = nib.orientations
    target = check_orientation(orientation)
    i, j, k = (int(n) for n in shape[:3])
    transform = ornt.ornt_transform(ornt.io_orientation(affine), ornt.axcodes2ornt(tuple(target)))
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return None, (i, j, k), np.asarray(affine, dtype=np.float64)
    new_shape = [0, 0, 0]
    for src, (dst, _) in enumerate(transform):
        new_shape[int(dst)] = (i, j, k)[src]
    new_affine = np.asarray(affine, dtype=np.float64) @ ornt.inv_ornt_aff(transform, (i, j, k))
    return transform, (new_shape[0], new_shape[1], new_shape[2]), new_affine


def spacing_plan(
    shape: Sequence[int], affine: np.ndarray, spacing: Sequence[float]
) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray]:
    """The grid of :func:`resample_to_spacing`: ``(shape, affine, zoom)`` for a target spacing.

    An axis one voxel long (a single slice) keeps its spacing.
    """
    target = np.asarray([float(s) for s in spacing], dtype=np.float64)
    if target.shape != (3,) or not np.all(target > 0):
        raise ValueError(f"spacing={tuple(spacing)} must be three positive sizes in mm")
    shape = tuple(int(n) for n in shape[:3])
    old = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    zoom = np.where(np.asarray(shape) > 1, target / old, 1.0)
    ni, nj, nk = (max(1, int(round(n / z))) for n, z in zip(shape, zoom, strict=True))
    # new voxel centre j sits at old index -0.5 + zoom * (j + 0.5)
    step = np.eye(4)
    step[:3, :3] = np.diag(zoom)
    step[:3, 3] = -0.5 + zoom / 2
    return (ni, nj, nk), np.asarray(affine, dtype=np.float64) @ step, zoom


def resample_to_spacing(
    volume: Volume,
    spacing: Sequence[float],
    *,
    order: int = 1,
    antialias: bool = True,
) -> Volume:
    """Resample to a voxel size in mm along the volume's own axes, keeping its field of view.

    Parameters
    ----------
    volume : Volume
    spacing : (si, sj, sk) float
        Target voxel size along the i, j, k axes (mm).
    order : int, default 1
        Spline order of the interpolation (1 = trilinear, 3 = cubic).
    antialias : bool, default True
        Gaussian pre-filter along axes that get coarser, ``sigma = (factor - 1) / 2`` voxels.

    Returns
    -------
    Volume
        ``round(n * old / new)`` voxels per axis; the first and last voxel's outer edges stay
        where they were (the convention of ``F.interpolate(align_corners=False)``).

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.ones((1, 4, 4, 4), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    >>> resample_to_spacing(v, (1, 1, 1)).array.shape
    (1, 8, 8, 8)
    """
    nib = require("nibabel")
    from nibabel.processing import resample_from_to
    from scipy import ndimage

    shape, affine, zoom = spacing_plan(volume.array.shape[1:4], volume.affine, spacing)
    if np.allclose(zoom, 1.0, rtol=1e-6) and shape == volume.array.shape[1:4]:
        return volume
    sigma = np.maximum(0.0, (zoom - 1.0) / 2.0) if antialias else np.zeros(3)
    channels = []
    for chan in volume.array:
        src = chan.astype(np.float32, copy=False)
        if np.any(sigma > 0):
            src = ndimage.gaussian_filter(src, sigma=sigma, mode="nearest")
        img = nib.Nifti1Image(src, volume.affine)
        # nibabel's resample_from_to is unannotated
        out = resample_from_to(img, (shape, affine), order=order, mode="nearest")  # type: ignore[no-untyped-call]
        channels.append(np.asarray(out.dataobj, dtype=np.float32))
    return Volume(np.stack(channels), affine)


def resample_like(
    volume: Volume, shape: Sequence[int], affine: np.ndarray, order: int = 1
) -> Volume:
    """Resample onto another volume's grid (multi-sequence MRI: T2 onto the T1 grid)."""
    nib = require("nibabel")
    from nibabel.processing import resample_from_to

    shape = tuple(int(s) for s in shape)
    if shape == volume.array.shape[1:4] and np.allclose(affine, volume.affine, atol=1e-4):
        return volume
    out = [
        np.asarray(
            resample_from_to(  # type: ignore[no-untyped-call]  # unannotated in nibabel
                nib.Nifti1Image(c.astype(np.float32, copy=False), volume.affine),
                (shape, affine),
                order=order,
                mode="nearest",
            ).dataobj,
            dtype=np.float32,
        )
        for c in volume.array
    ]
    return Volume(np.stack(out), np.asarray(affine, dtype=np.float64))


def crop_or_pad(array: np.ndarray, size: Sequence[int], fill: float | None = None) -> np.ndarray:
    """Centre-crop or pad the trailing axes of ``array`` to ``size`` (no interpolation).

    Padding uses ``fill``, by default the array's minimum (air in CT, background in MR).

    Examples
    --------
    >>> import numpy as np
    >>> crop_or_pad(np.arange(6.0).reshape(1, 6), (4,)).tolist()
    [[1.0, 2.0, 3.0, 4.0]]
    """
    size = tuple(int(s) for s in size)
    lead = array.ndim - len(size)
    if lead < 0:
        raise ValueError(f"size {size} has more axes than the array {array.shape}")
    value = float(array.min()) if fill is None and array.size else float(fill or 0.0)
    crop, pad = [slice(None)] * lead, [(0, 0)] * lead
    for n, s in zip(array.shape[lead:], size, strict=True):
        start = max(0, (n - s) // 2)
        crop.append(slice(start, start + min(n, s)))
        before = max(0, (s - n) // 2)
        pad.append((before, max(0, s - n) - before))
    out = array[tuple(crop)]
    if any(p != (0, 0) for p in pad):
        out = np.pad(out, pad, mode="constant", constant_values=value)
    return np.ascontiguousarray(out)


def to_dhw(array: np.ndarray) -> np.ndarray:
    """Voxel axes (i, j, k) of a RAS volume -> (D, H, W) = (inf->sup, ant->post, left->right).

    Works on ``(C, I, J, K)``; the layout of :func:`inspect_kit.data.load_mni_patches`.
    """
    return array.transpose(0, 3, 2, 1)[:, :, ::-1, :]


def spacing_dhw(volume: Volume) -> tuple[float, float, float]:
    """Voxel size in the order of :func:`to_dhw`'s (D, H, W) axes."""
    si, sj, sk = volume.spacing
    return (sk, sj, si)


def prepare_volume(
    volume: Volume,
    *,
    orientation: str | None = CANONICAL,
    spacing: Sequence[float] | None = None,
    order: int = 1,
) -> Volume:
    """Reorient, then resample to ``spacing`` given in (D, H, W) order (k, j, i axes).

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.ones((1, 4, 4, 2), np.float32), np.diag([-1.0, 1.0, 2.0, 1.0]))
    >>> prepare_volume(v, spacing=(1, 1, 1)).array.shape
    (1, 4, 4, 4)
    """
    if orientation is not None:
        volume = reorient(volume, orientation)
    if spacing is not None:
        sd, sh, sw = (float(s) for s in spacing)
        volume = resample_to_spacing(volume, (sw, sh, sd), order=order)
    return volume
