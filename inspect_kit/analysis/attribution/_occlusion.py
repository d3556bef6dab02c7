"""Occlusion: the drop in the target's score when a window of the input is replaced by a
baseline value, averaged over the windows that cover each voxel (as captum's ``Occlusion``).

Windows and strides are given in voxels, or in millimetres with the image's spacing.
Occluded copies go through the model ``rows`` at a time (many windows per call), not one
window per call as MONAI's occlusion sensitivity does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

from ._budget import spans
from ._gradients import Runner

__all__ = ["occlusion", "to_voxels", "window_starts"]


def to_voxels(
    size: int | Sequence[int] | None,
    size_mm: float | Sequence[float] | None,
    spacing: Sequence[float] | None,
    n_spatial: int,
    what: str,
) -> tuple[int, ...]:
    """A window or stride in voxels per spatial axis, from voxels or from mm and the spacing.

    Examples
    --------
    >>> to_voxels(None, 10.0, (2.0, 2.5, 1.0), 3, "window")
    (5, 4, 10)
    """
    if size_mm is not None:
        if spacing is None:
            raise ValueError(f"{what}_mm needs spacing= (mm per voxel along each spatial axis)")
        mm = [float(size_mm)] * n_spatial if isinstance(size_mm, int | float) else list(size_mm)
        if len(mm) != n_spatial or len(spacing) != n_spatial:
            raise ValueError(f"{what}_mm and spacing need {n_spatial} values, one per spatial axis")
        return tuple(max(1, round(m / float(s))) for m, s in zip(mm, spacing, strict=True))
    if size is None:
        raise ValueError(f"give {what}= in voxels or {what}_mm= with spacing=")
    v = [int(size)] * n_spatial if isinstance(size, int) else [int(s) for s in size]
    if len(v) != n_spatial or min(v) < 1:
        raise ValueError(f"{what}={size!r} needs {n_spatial} positive values, one per spatial axis")
    return tuple(v)


def window_starts(
    shape: Sequence[int], window: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, ...]]:
    """Start corners of every window (captum's positions: ``ceil((L - w) / s) + 1`` per axis).

    Examples
    --------
    >>> window_starts((5,), (2,), (2,))
    [(0,), (2,), (4,)]
    """
    per_axis = []
    for length, w, s in zip(shape, window, stride, strict=True):
        if w > length:
            raise ValueError(f"window {tuple(window)} is larger than the input {tuple(shape)}")
        per_axis.append([k * s for k in range(math.ceil((length - w) / s) + 1)])
    return list(itertools.product(*per_axis))


def _box(
    lead: tuple[int | slice, ...], corner: tuple[int, ...], window: tuple[int, ...]
) -> tuple[int | slice, ...]:
    return lead + tuple(slice(a, a + w) for a, w in zip(corner, window, strict=True))


def occlusion(
    run: Runner,
    x: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    value: float,
    progress: Callable[[int], None] | None = None,
    base: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlusion maps ``(N, 1, *spatial)`` (all channels occluded together) and f(x)
    (``base``, when the caller has it already)."""
    n, spatial = len(x), tuple(x.shape[2:])
    starts = window_starts(spatial, window, stride)
    owner_all = torch.arange(n, device=x.device)
    base = run.scores(x, owner_all) if base is None else base
    total = torch.zeros((n, 1, *spatial), dtype=x.dtype, device=x.device)
    count = torch.zeros((1, 1, *spatial), dtype=x.dtype, device=x.device)
    for c in starts:
        count[_box((0, 0), c, window)] += 1
    pairs = [(i, c) for i in range(n) for c in starts]
    for s, e in spans(len(pairs), run.rows):
        chunk = pairs[s:e]
        idx = torch.tensor([i for i, _ in chunk], device=x.device)
        rows = x[idx].clone()
        for r, (_, c) in enumerate(chunk):
            rows[_box((r, slice(None)), c, window)] = value
        drop = base[idx] - run.scores(rows, idx)
        for r, (i, c) in enumerate(chunk):
            total[_box((i, 0), c, window)] += drop[r]
        if progress is not None:
            progress(len(chunk))
    return total / count.clamp(min=1), base
