"""scikit-learn's handwritten digits as small single-channel images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


def load_digits_images(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Load the 1,797 scikit-learn digits as ``(N, 1, size, size)`` images.

    The original 8x8 images (grey levels 0-16) are scaled to [0, 1] and resized with
    bilinear interpolation, so every value stays in [0, 1].

    Parameters
    ----------
    size : int, default=16
        Side of the returned images in pixels (>= 8 recommended; 8 returns the originals).

    Returns
    -------
    X : np.ndarray of float32, shape (1797, 1, size, size)
        Images in [0, 1]; 0 is background.
    y : np.ndarray of int64, shape (1797,)
        Digit labels 0-9 (about 180 per class).

    Examples
    --------
    >>> from inspect_kit.data import load_digits_images
    >>> X, y = load_digits_images(size=16)
    >>> X.shape, X.dtype, y[:5]
    ((1797, 1, 16, 16), dtype('float32'), array([0, 1, 2, 3, 4]))
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 2:
        raise ValueError(f"size must be an integer >= 2 (e.g. 16), got {size!r}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    if int(size) != images.shape[-1]:
        # antialias=False keeps pure bilinear weights (convex), so values stay in [0, 1].
        images = F.interpolate(
            images, size=(int(size), int(size)), mode="bilinear", align_corners=False
        )
    X = images.clamp_(0.0, 1.0).numpy().astype(np.float32, copy=False)
    y = digits.target.astype(np.int64)
    return np.ascontiguousarray(X), y
