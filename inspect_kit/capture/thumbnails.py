"""Small uint8 previews of image and volume inputs, made on the inputs' device at capture."""

from __future__ import annotations

import torch
import torch.nn.functional as F

THUMBNAIL_MODES = ("slice", "mip")


def make_thumbnails(
    x: torch.Tensor, *, mode: str = "slice", max_side: int = 64
) -> torch.Tensor | None:
    """Return uint8 previews (N, h, w) or (N, h, w, 3), or None for non-image inputs.

    Images (N, C, H, W) keep their aspect ratio with the longer side at most ``max_side``.
    Volumes (N, C, D, H, W) show their middle axial slice (``mode="slice"``) or their
    maximum-intensity projection over depth (``mode="mip"``). Three channels stay RGB; one
    channel or any other count becomes grayscale (the channel mean). Each preview is scaled
    to its own 0.5-99.5 percentile range so that CT in HU and [0, 1] images both show.
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
