"""Vessel / background patches of the colour fundus image that ships with scikit-image."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from inspect_kit.data._optional import require
from inspect_kit.seeding import RandomState

RETINA_CLASSES: tuple[str, ...] = ("background", "vessel")


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=2)
def _retina(scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) float32 in [0, 1], vesselness (H, W), field-of-view mask (H, W))."""
    skdata = require("skimage.data", "scikit-image")
    from skimage import filters, transform

    # skimage.data.retina() reads retina.jpg from skimage's own package data (no pooch fetch).
    rgb = skdata.retina()
    if scale != 1.0:
        image = transform.rescale(rgb, scale, channel_axis=-1, anti_aliasing=True)
    else:
        image = rgb / 255.0
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    # The fundus is a bright disc on black; erode so patch centres avoid its rim.
    fov = ndimage.binary_erosion(image.mean(axis=-1) > 0.08, iterations=5)
    # Vessels are dark ridges, best contrasted in the green channel.
    vesselness = filters.sato(  # type: ignore[no-untyped-call]  # unannotated in scikit-image
        image[..., 1], sigmas=(1, 2, 3), black_ridges=True
    )
    return _readonly(image), _readonly(vesselness.astype(np.float32)), _readonly(fov)


def load_retina_patches(
    patch: int = 32,
    n_per_class: int = 200,
    random_state: RandomState = 0,
    *,
    scale: float = 0.5,
    vessel_quantile: float = 0.95,
    background_quantile: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """RGB patches of scikit-image's retina photograph, labelled vessel or background.

    ``skimage.data.retina()`` is a 1411x1411 colour fundus image shipped inside scikit-image.
    It has no expert annotation, so the label of a patch comes from a Sato ridge filter on
    the green channel at the patch centre: *vessel* where the vesselness is in the top
    ``1 - vessel_quantile`` of the field of view, *background* where it is below its
    ``background_quantile``; centres in between are not used, so labels are unambiguous.
    It demonstrates three-channel input; the labels are a filter's, not a clinician's.

    Parameters
    ----------
    patch : int, default=32
        Side of a patch in pixels (of the image rescaled by ``scale``).
    n_per_class : int, default=200
    random_state : int, numpy Generator or None, default=0
        Seed of the sampling; equal arguments give equal arrays.
    scale : float, default=0.5
        Rescaling of the 1411x1411 image before sampling (0.5: 706x706).
    vessel_quantile, background_quantile : float
        Vesselness quantiles (within the field of view) that define the two classes.

    Returns
    -------
    X : np.ndarray of float32, shape (2 * n_per_class, 3, patch, patch)
        RGB in [0, 1].
    y : np.ndarray of int64
        0 = background, 1 = vessel; balanced and shuffled.
    class_names : list of str

    Examples
    --------
    >>> from inspect_kit.data import load_retina_patches
    >>> X, y, names = load_retina_patches(patch=32, n_per_class=50)
    >>> X.shape, names
    ((100, 3, 32, 32), ['background', 'vessel'])
    """
    if isinstance(patch, bool) or not isinstance(patch, int | np.integer) or patch < 1:
        raise ValueError(f"patch must be a positive int, got {patch!r}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int | np.integer):
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    if not 0.0 < float(scale) <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    if not 0.0 < background_quantile < vessel_quantile < 1.0:
        raise ValueError(
            "need 0 < background_quantile < vessel_quantile < 1, got "
            f"{background_quantile!r} and {vessel_quantile!r}"
        )
    image, vesselness, fov = _retina(float(scale))
    H, W = fov.shape
    lo, hi = patch // 2, patch - patch // 2 - 1
    if lo + hi + 1 > min(H, W):
        raise ValueError(f"patch={patch} is larger than the image {H}x{W}")
    fits = np.zeros_like(fov)
    fits[lo : H - hi, lo : W - hi] = True
    inside = fov & fits
    v_low, v_high = np.quantile(vesselness[fov], [background_quantile, vessel_quantile])
    cands = [
        np.flatnonzero(inside & (vesselness <= v_low)),
        np.flatnonzero(inside & (vesselness >= v_high)),
    ]
    for name, c in zip(RETINA_CLASSES, cands, strict=True):
        if len(c) < n_per_class:
            raise ValueError(
                f"only {len(c)} '{name}' centres available; ask for n_per_class <= {len(c)}"
            )

    rng = np.random.default_rng(random_state)
    flat = np.concatenate([rng.choice(c, size=n_per_class, replace=False) for c in cands])
    y = np.repeat(np.arange(2, dtype=np.int64), n_per_class)
    order = rng.permutation(len(y))
    flat, y = flat[order], y[order]
    rows, cols = np.unravel_index(flat, fov.shape)
    off = np.arange(-lo, hi + 1)
    X = image[rows[:, None, None] + off[None, :, None], cols[:, None, None] + off[None, None, :]]
    X = np.ascontiguousarray(X.transpose(0, 3, 1, 2), dtype=np.float32)  # (N, 3, p, p)
    return X, y, list(RETINA_CLASSES)
