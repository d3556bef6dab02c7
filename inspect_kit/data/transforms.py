"""What happens to every sample after it is read: channels, resize, intensity window, normalise.

2D resizing and per-channel normalisation are torchvision's
(:func:`torchvision.transforms.v2.functional.resize` with antialiasing,
:func:`~torchvision.transforms.v2.functional.normalize`). Volumes are resized with a Gaussian
anti-aliasing pre-filter of our own (torch has no 3D antialiasing): MONAI's ``Resize`` with
``anti_aliasing`` zero-pads its filter and darkens a volume's border by a fifth, measured in
``benchmarks/transforms.py``, and MONAI is an optional extra, not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: a parsed ``normalize=``: None, 'imagenet', 'zscore' or (means, stds)
Normalize = str | tuple[tuple[float, ...], tuple[float, ...]] | None


@dataclass(frozen=True)
class SampleTransform:
    """Channels, resize, window and normalisation of one sample, in that order.

    Parameters
    ----------
    size : tuple of int, optional
        ``(H, W)`` or ``(D, H, W)``; samples of another size are resized to it (bilinear with
        antialiasing for images, trilinear after a Gaussian pre-filter for volumes).
    window : (low, high), optional
        Clip to this intensity window and scale it to [0, 1].
    normalize : None, 'imagenet', 'zscore' or (means, stds)
        As parsed by :func:`parse_normalize`.
    channels : int, optional
        See :func:`adapt_channels`.

    Examples
    --------
    >>> import numpy as np
    >>> t = SampleTransform(size=(4, 4), window=(0.0, 2.0))(np.full((1, 8, 8), 3.0))
    >>> tuple(t.shape), float(t.max())
    ((1, 4, 4), 1.0)
    """

    size: tuple[int, ...] | None = None
    window: tuple[float, float] | None = None
    normalize: Normalize = None
    channels: int | None = None

    def __call__(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if self.channels is not None:
            t = adapt_channels(t, self.channels)
        if self.size is not None and tuple(t.shape[1:]) != self.size:
            t = resize(t, self.size)
        if self.window is not None:
            lo, hi = self.window
            t = ((t.clamp(lo, hi) - lo) / (hi - lo)).float()
        if self.normalize == "zscore":  # per sample, over all its voxels
            t = (t - t.mean()) / t.std().clamp_min(1e-8)
        elif self.normalize == "imagenet":
            t = normalise(t, IMAGENET_MEAN, IMAGENET_STD)
        elif isinstance(self.normalize, tuple):
            t = normalise(t, *self.normalize)
        return t.contiguous()


def resize(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize ``(C, H, W)`` (torchvision, antialiased) or ``(C, D, H, W)`` (anti-aliased
    trilinear) to ``size``.

    Examples
    --------
    >>> resize(torch.ones(1, 8, 8, 8), (4, 4, 4)).shape
    torch.Size([1, 4, 4, 4])
    """
    if t.ndim == 3:
        mode = TF.InterpolationMode.BILINEAR
        out: torch.Tensor = TF.resize(t, list(size), interpolation=mode, antialias=True)
        return out
    t = _antialias_3d(t, size)  # torch has no 3D antialiasing: a Gaussian pre-filter as skimage
    return F.interpolate(t[None], size=size, mode="trilinear", align_corners=False)[0]


def _antialias_3d(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    factors = np.asarray(t.shape[1:], dtype=np.float64) / np.asarray(size, dtype=np.float64)
    sigma = np.maximum(0.0, (factors - 1.0) / 2.0)
    if not np.any(sigma > 0):
        return t
    from scipy import ndimage

    arr = t.numpy()
    out = np.stack([ndimage.gaussian_filter(c, sigma=sigma, mode="nearest") for c in arr])
    return torch.from_numpy(out.astype(np.float32, copy=False))


def adapt_channels(t: torch.Tensor, channels: int) -> torch.Tensor:
    """One channel repeated to ``channels``, several averaged to one; equal counts kept.

    Examples
    --------
    >>> adapt_channels(torch.zeros(1, 2, 2), 3).shape
    torch.Size([3, 2, 2])
    """
    c = t.shape[0]
    if c == channels:
        return t
    if c == 1:
        return t.expand(channels, *t.shape[1:]).contiguous()
    if channels == 1:
        return t.mean(dim=0, keepdim=True)
    raise ValueError(
        f"samples have {c} channels; channels={channels} can only be made from 1 channel "
        f"(repeated) or {channels} (kept), and channels=1 averages any count"
    )


def channels_of(c: int, channels: int | None) -> int:
    """The channel count after :func:`adapt_channels` (raises like it does).

    Examples
    --------
    >>> channels_of(1, 3), channels_of(4, None)
    (3, 4)
    """
    if channels is None or c == channels:
        return c
    if c == 1 or channels == 1:
        return channels
    return int(adapt_channels(torch.zeros(c, 1), channels).shape[0])


def normalise(t: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(t - mean) / std`` per channel of ``(C, H, W)`` or ``(C, D, H, W)`` (torchvision's).

    Examples
    --------
    >>> normalise(torch.ones(2, 2, 2), (1.0, 0.0), (1.0, 2.0))[:, 0, 0]
    tensor([0.0000, 0.5000])
    """
    c = t.shape[0]
    mean_l, std_l = [float(v) for v in mean], [float(v) for v in std]
    if len(mean_l) not in (1, c) or len(std_l) not in (1, c):
        raise ValueError(
            f"normalize has {len(mean_l)} means / {len(std_l)} stds for samples with {c} "
            "channel(s); give one value, or one per channel"
        )
    # torchvision reads the channels at dim -3: a volume is viewed as (C, D*H, W)
    flat = t.reshape(c, -1, t.shape[-1])
    out: torch.Tensor = TF.normalize(flat, mean_l, std_l)
    return out.reshape(t.shape)


def parse_normalize(normalize: Any) -> Normalize:
    """``normalize=`` as given (None, 'imagenet', 'zscore', 'MEAN,STD', (mean, std)) parsed.

    Examples
    --------
    >>> parse_normalize("0.5:0.4,0.2:0.1")
    ((0.5, 0.4), (0.2, 0.1))
    """
    if normalize in (None, "none", "None"):
        return None
    if normalize in ("imagenet", "zscore"):
        return str(normalize)
    if isinstance(normalize, str):
        try:
            mean_s, std_s = normalize.split("/") if "/" in normalize else normalize.split(",")
            return (
                tuple(float(v) for v in mean_s.split(":")),
                tuple(float(v) for v in std_s.split(":")),
            )
        except ValueError:
            pass
    elif isinstance(normalize, tuple | list) and len(normalize) == 2:
        mean, std = normalize
        mean = (mean,) if np.isscalar(mean) else tuple(mean)
        std = (std,) if np.isscalar(std) else tuple(std)
        return (tuple(float(v) for v in mean), tuple(float(v) for v in std))
    raise ValueError(
        f"normalize={normalize!r} not understood; use None, 'imagenet', 'zscore' or "
        "'MEAN,STD' (per channel: 'M1:M2:M3,S1:S2:S3')"
    )


def scale_integers(arr: np.ndarray) -> np.ndarray:
    """uint8 -> [0, 1] by 255, uint16 by 65535; other types unchanged (as float32).

    Examples
    --------
    >>> scale_integers(np.array([255], dtype=np.uint8))
    array([1.], dtype=float32)
    """
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32, copy=False)
