"""Tissue-labelled patches of the MNI152 T1 template that ships with nilearn.

nilearn bundles the ICBM152 2009 (symmetric) T1 template and its grey- and white-matter
probability maps inside its package data, so these loaders never download anything.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from inspect_kit.data._optional import require
from inspect_kit.seeding import RandomState

TISSUE_CLASSES: tuple[str, ...] = ("csf", "grey matter", "white matter")


@dataclass(frozen=True)
class _Volumes:
    """The template and tissue maps, reoriented to (D, H, W) and read-only."""

    t1: np.ndarray  # float32 in [0, 1]
    prob: np.ndarray  # float32 (3, D, H, W): csf, grey, white probability inside the brain
    mask: np.ndarray  # bool brain mask (t1 > 0.2, nilearn's default)
    affine: np.ndarray  # voxel (i, j, k) -> MNI mm of the original template array
    source_shape: tuple[int, int, int]  # (I, J, K) of the original array
    mean: float  # intensity statistics inside the brain mask, used to standardise
    std: float


def _to_dhw(arr: np.ndarray) -> np.ndarray:
    # nilearn arrays are (i, j, k) = (x: left->right, y: posterior->anterior, z: inferior->superior).
    # (D, H, W) = (inferior->superior, anterior->posterior, left->right) puts anterior at the top
    # of an axial slice, as radiology viewers show it.
    return np.ascontiguousarray(arr.transpose(2, 1, 0)[:, ::-1, :])


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=2)
def _mni_volumes(resolution: int) -> _Volumes:
    datasets = require("nilearn.datasets", "nilearn")
    t1_img = datasets.load_mni152_template(resolution=resolution)
    gm_img = datasets.load_mni152_gm_template(resolution=resolution)
    wm_img = datasets.load_mni152_wm_template(resolution=resolution)
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    gm = np.clip(np.asarray(gm_img.dataobj, dtype=np.float32), 0.0, 1.0)
    wm = np.clip(np.asarray(wm_img.dataobj, dtype=np.float32), 0.0, 1.0)
    if not (t1.shape == gm.shape == wm.shape):
        raise RuntimeError(
            f"nilearn's MNI152 template {t1.shape} and tissue maps {gm.shape}/{wm.shape} differ "
            "in shape; this nilearn version is not supported"
        )
    mask = t1 > 0.2  # nilearn's load_mni152_brain_mask threshold
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    prob = np.stack([csf, gm, wm]) * mask
    mean = float(t1[mask].mean(dtype=np.float64))
    std = float(t1[mask].std(dtype=np.float64))
    return _Volumes(
        t1=_readonly(_to_dhw(t1)),
        prob=_readonly(np.stack([_to_dhw(p) for p in prob]).astype(np.float32)),
        mask=_readonly(_to_dhw(mask)),
        affine=_readonly(np.asarray(t1_img.affine, dtype=np.float64)),
        source_shape=(int(t1.shape[0]), int(t1.shape[1]), int(t1.shape[2])),
        mean=mean,
        std=std,
    )


@functools.lru_cache(maxsize=8)
def _candidates(
    resolution: int, purity: float, margins: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, ...]:
    """Flat (D, H, W) indices of valid patch centres, one array per tissue class."""
    vol = _mni_volumes(resolution)
    best = vol.prob.max(axis=0)
    label = vol.prob.argmax(axis=0)
    valid = vol.mask & (best >= purity)
    fits = np.zeros_like(valid)
    (d0, d1), (h0, h1), (w0, w1) = margins
    D, H, W = valid.shape
    fits[d0 : D - d1, h0 : H - h1, w0 : W - w1] = True
    valid &= fits
    return tuple(
        _readonly(np.flatnonzero(valid & (label == k))) for k in range(len(TISSUE_CLASSES))
    )


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class MNIPatches:
    """Tissue-labelled MNI152 patches with where each came from (see :func:`mni_patches`).

    Attributes
    ----------
    X : ndarray of float32, (N, 1, p, p) or (N, 1, p, p, p)
    y : ndarray of int64, (N,)
    class_names : list of str
    info : dict of str to ndarray
        Per sample: ``center_voxel`` ((N, 3) int64 indices into the arrays of nilearn's
        template images), ``center_mm`` ((N, 3) MNI coordinates), ``tissue_probability``
        ((N, 3) csf/grey/white at the centre) and ``gain`` ((N,)).
    """

    X: np.ndarray
    y: np.ndarray
    class_names: list[str]
    info: dict[str, np.ndarray]


def load_mni_patches(
    dim: int = 2,
    patch: int = 16,
    n_per_class: int = 400,
    random_state: RandomState = 0,
    *,
    resolution: int = 1,
    purity: float = 0.8,
    intensity_jitter: float = 0.25,
    noise: float = 0.02,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``X, y, class_names`` of :func:`mni_patches` (same parameters), for training.

    Examples
    --------
    >>> from inspect_kit.data import load_mni_patches
    >>> X, y, names = load_mni_patches(dim=2, patch=16, n_per_class=100)
    >>> X.shape, names
    ((300, 1, 16, 16), ['csf', 'grey matter', 'white matter'])
    """
    p = mni_patches(
        dim,
        patch,
        n_per_class,
        random_state,
        resolution=resolution,
        purity=purity,
        intensity_jitter=intensity_jitter,
        noise=noise,
    )
    return p.X, p.y, p.class_names


def mni_patches(
    dim: int = 2,
    patch: int = 16,
    n_per_class: int = 400,
    random_state: RandomState = 0,
    *,
    resolution: int = 1,
    purity: float = 0.8,
    intensity_jitter: float = 0.25,
    noise: float = 0.02,
) -> MNIPatches:
    """Sample tissue-labelled patches from the MNI152 T1 template (shipped with nilearn).

    Each sample is an axial 2D patch or a 3D cube centred on a brain voxel. Its label is the
    tissue at the centre voxel according to nilearn's MNI152 grey- and white-matter
    probability maps: ``0 = csf`` (inside the brain mask, neither grey nor white matter),
    ``1 = grey matter``, ``2 = white matter``. Only centres whose tissue probability is at
    least ``purity`` are used, and every class gets exactly ``n_per_class`` samples.

    In the template the centre intensity alone nearly gives the class away, so each patch is
    multiplied by a random gain in ``[1 - intensity_jitter, 1 + intensity_jitter]`` (scanner
    gain differences) and gets Gaussian noise: a classifier then has to compare the centre with
    its surroundings. Intensities are finally standardised with the template's mean and standard
    deviation inside the brain, so brain voxels are roughly zero-mean with unit variance.

    Parameters
    ----------
    dim : {2, 3}, default=2
        2 for axial slices ``(N, 1, patch, patch)``, 3 for cubes ``(N, 1, patch, patch, patch)``
        with axes (D, H, W) = (inferior->superior, anterior->posterior, left->right).
    patch : int, default=16
        Side of a patch in voxels (1 mm voxels at ``resolution=1``).
    n_per_class : int, default=400
        Samples per class; the result has ``3 * n_per_class`` rows in shuffled order.
    random_state : int, numpy Generator or None, default=0
        Seed of the sampling, gain and noise; the same arguments always give the same arrays.
    resolution : int, default=1
        Voxel size in mm passed to nilearn (1 is the shipped template; other values resample).
    purity : float, default=0.8
        Minimum tissue probability at a patch centre (in (1/3, 1]).
    intensity_jitter : float, default=0.25
        Half-width of the random per-patch gain (0 disables it).
    noise : float, default=0.02
        Standard deviation of the added Gaussian noise, in template units (template is in [0, 1]).

    Returns
    -------
    MNIPatches
        ``X`` float32 ``(N, 1, patch, patch)`` or ``(N, 1, patch, patch, patch)``, ``y`` int64
        ``(N,)``, ``class_names`` ``['csf', 'grey matter', 'white matter']`` and per-sample
        ``info`` (centres in voxels and mm, tissue probabilities, gains).

    Examples
    --------
    >>> from inspect_kit.data import mni_patches
    >>> p = mni_patches(dim=2, patch=16, n_per_class=10)
    >>> p.X.shape, p.info["center_mm"].shape
    ((30, 1, 16, 16), (30, 3))
    """
    if dim not in (2, 3) or isinstance(dim, bool):
        raise ValueError(f"dim must be 2 (axial slices) or 3 (cubes), got {dim!r}")
    patch = _check_int("patch", patch, 1)
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    resolution = _check_int("resolution", resolution, 1)
    if not 1.0 / 3.0 < float(purity) <= 1.0:
        raise ValueError(f"purity must be in (1/3, 1] (e.g. 0.6), got {purity!r}")
    if not 0.0 <= float(intensity_jitter) < 1.0:
        raise ValueError(f"intensity_jitter must be in [0, 1), got {intensity_jitter!r}")
    if float(noise) < 0.0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")

    vol = _mni_volumes(resolution)
    lo, hi = patch // 2, patch - patch // 2 - 1  # voxels before / after the centre
    in_plane = ((lo, hi), (lo, hi))
    margins = (((lo, hi),) if dim == 3 else ((0, 0),)) + in_plane
    if any(lo + hi + 1 > n for n in vol.t1.shape[1 if dim == 2 else 0 :]):
        raise ValueError(f"patch={patch} is larger than the template {vol.t1.shape}")
    cands = _candidates(resolution, round(float(purity), 6), margins)
    for name, c in zip(TISSUE_CLASSES, cands, strict=True):
        if len(c) < n_per_class:
            raise ValueError(
                f"only {len(c)} '{name}' centres with purity >= {purity} fit a {patch}-voxel "
                f"patch; ask for n_per_class <= {len(c)} or lower purity"
            )

    rng = np.random.default_rng(random_state)
    flat = np.concatenate([rng.choice(c, size=n_per_class, replace=False) for c in cands])
    y = np.repeat(np.arange(len(TISSUE_CLASSES), dtype=np.int64), n_per_class)
    order = rng.permutation(len(y))
    flat, y = flat[order], y[order]
    centers = np.stack(np.unravel_index(flat, vol.t1.shape), axis=1)  # (N, 3) in (D, H, W)

    offsets = np.arange(-lo, hi + 1)
    d = centers[:, 0, None, None, None] + (offsets[:, None, None] if dim == 3 else 0)
    h = centers[:, 1, None, None, None] + offsets[None, :, None]
    w = centers[:, 2, None, None, None] + offsets[None, None, :]
    X = vol.t1[d, h, w]  # (N, patch or 1, patch, patch)
    if dim == 2:
        X = X[:, 0]

    gain = rng.uniform(1.0 - intensity_jitter, 1.0 + intensity_jitter, size=len(y))
    X = X * gain.reshape((-1,) + (1,) * (X.ndim - 1)).astype(np.float32)
    if noise > 0:
        X = X + rng.normal(0.0, float(noise), size=X.shape).astype(np.float32)
    X = ((X - vol.mean) / vol.std).astype(np.float32)[:, None]

    # Back to the indices of nilearn's own arrays: i = W, j = flipped H, k = D.
    n_j = vol.source_shape[1]
    ijk = np.stack([centers[:, 2], n_j - 1 - centers[:, 1], centers[:, 0]], axis=1).astype(np.int64)
    mm = ijk @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    info = {
        "center_voxel": ijk,
        "center_mm": mm,
        "tissue_probability": vol.prob[:, centers[:, 0], centers[:, 1], centers[:, 2]].T.copy(),
        "gain": gain,
    }
    return MNIPatches(X, y, list(TISSUE_CLASSES), info)
