"""Small uint8 previews of image and volume inputs, made on the inputs' device at capture."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

THUMBNAIL_MODES = ("slice", "mip")


def make_thumbnails(
    x: torch.Tensor, *, mode: str = "slice", max_side: int = 64, spacing: Any = None
) -> torch.Tensor | None:
    """Return uint8 previews (N, h, w) or (N, h, w, 3), or None for non-image inputs.

    Images (N, C, H, W) keep their aspect ratio with the longer side at most ``max_side``.
    Volumes (N, C, D, H, W) show their middle axial slice (``mode="slice"``) or their
    maximum-intensity projection over depth (``mode="mip"``). Three channels stay RGB; one
    channel or any other count becomes grayscale (the channel mean). Each preview is scaled
    to its own 0.5-99.5 percentile range so that CT in HU and [0, 1] images both show.

    ``spacing`` ``(N, 2)`` gives each preview plane's row and column spacing (mm): each
    preview then keeps its physical aspect ratio (a stack of 5 mm slices is not squashed),
    centred in a square box whose side is the longer of H and W (at most ``max_side``).
    """
    if mode not in THUMBNAIL_MODES:
        raise ValueError(f"thumbnail mode {mode!r} unknown; use one of {THUMBNAIL_MODES}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() and x.dtype != torch.uint8:
        return None
    if x.ndim == 5:
        x = x.amax(dim=2) if mode == "mip" else x[:, :, x.shape[2] // 2]
    if x.ndim != 4:
        return None
    x = x.float()
    rgb = x.shape[1] == 3
    if not rgb:
        x = x.mean(dim=1, keepdim=True)
    h, w = x.shape[-2:]
    sp = _plane_spacing(spacing, x.shape[0])
    if sp is not None:
        x = _physical_aspect(x, sp, min(max_side, max(h, w)))
    else:
        scale = min(1.0, max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x, size=size, mode="area")
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] > 1:
        lo = torch.quantile(flat, 0.005, dim=1)
        hi = torch.quantile(flat, 0.995, dim=1)
    else:
        lo, hi = flat[:, 0], flat[:, 0]
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    shape = (-1,) + (1,) * (x.ndim - 1)
    x = ((x - lo.view(shape)) / span.view(shape)).clamp(0, 1)
    out = (x * 255).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1) if rgb else out[:, 0]


def _plane_spacing(spacing: Any, n: int) -> np.ndarray | None:
    if spacing is None:
        return None
    sp = np.asarray(spacing, dtype=np.float64).reshape(n, 2)
    if not np.all(np.isfinite(sp) & (sp > 0)):
        return None
    return sp


def _physical_aspect(x: torch.Tensor, spacing: np.ndarray, side: int) -> torch.Tensor:
    """Each (C, H, W) resampled to its physical aspect, centred in a (side, side) box."""
    h, w = x.shape[-2:]
    lo = x.flatten(1).amin(dim=1)
    out = lo.view(-1, 1, 1, 1).expand(x.shape[0], x.shape[1], side, side).clone()
    for i, (sh, sw) in enumerate(spacing):
        h_mm, w_mm = h * sh, w * sw
        scale = side / max(h_mm, w_mm)
        ph, pw = max(1, round(h_mm * scale)), max(1, round(w_mm * scale))
        img = F.interpolate(x[i : i + 1], size=(ph, pw), mode="bilinear", antialias=True)
        top, left = (side - ph) // 2, (side - pw) // 2
        out[i, :, top : top + ph, left : left + pw] = img[0]
    return out
