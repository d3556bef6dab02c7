"""Shape checks and conversions shared by the trust metrics (2D and 3D alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

#: ``attribute_fn(model, x) -> maps``: any attribution method, as a callable
AttributeFn = Callable[[nn.Module, torch.Tensor], Any]


def to_numpy(a: Any, name: str) -> np.ndarray:
    """A tensor or array as a float64 numpy array (detached, on the CPU)."""
    if isinstance(a, torch.Tensor):
        return np.asarray(a.detach().cpu().double().numpy())
    if isinstance(a, np.ndarray):
        return a.astype(np.float64, copy=False)
    raise TypeError(f"{name} must be a torch tensor or a numpy array, got {type(a).__name__}")


def spatial_maps(maps: Any, spatial_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Attribution maps as ``(N, *S)`` float64: a channel axis is summed (per-voxel relevance).

    ``maps`` may be ``(N, *S)`` or ``(N, C, *S)`` with ``S`` 2D or 3D. Without
    ``spatial_shape`` a 4-D array is read as ``(N, C, H, W)`` when its second axis is 1 and as
    ``(N, D, H, W)`` otherwise; pass ``spatial_shape`` (the input's) to remove the doubt.
    """
    a = to_numpy(maps, "maps")
    if spatial_shape is not None:
        s = tuple(spatial_shape)
        if a.shape[1:] == s:
            return a
        if a.ndim == len(s) + 2 and a.shape[2:] == s:
            return np.asarray(a.sum(axis=1))
        raise ValueError(
            f"maps of shape {a.shape} do not match the spatial shape {s}: expected (N, *S) or "
            "(N, C, *S)"
        )
    if a.ndim == 5 or (a.ndim == 4 and a.shape[1] == 1):
        return np.asarray(a.sum(axis=1))
    if a.ndim in (3, 4):
        return a
    raise ValueError(
        f"maps must be (N, H, W), (N, D, H, W), (N, C, H, W) or (N, C, D, H, W), got {a.shape}"
    )


def spatial_masks(masks: Any, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Masks as ``(N, *S)`` bool (a singleton channel axis is dropped)."""
    m = np.asarray(masks.detach().cpu() if isinstance(masks, torch.Tensor) else masks)
    s = tuple(spatial_shape)
    if m.ndim == len(s) + 2 and m.shape[1] == 1:
        m = m[:, 0]
    if m.shape[1:] != s:
        raise ValueError(f"masks of shape {m.shape} do not match the maps' spatial shape {s}")
    return m.astype(bool)


def input_tensor(x: Any) -> torch.Tensor:
    """The inputs as a float tensor ``(N, C, H, W)`` or ``(N, C, D, H, W)``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor or a numpy array, got {type(x).__name__}")
    if x.ndim not in (4, 5):
        raise ValueError(
            f"x must be images (N, C, H, W) or volumes (N, C, D, H, W), got shape {tuple(x.shape)}"
        )
    return x.float() if not x.is_floating_point() else x


def call_attribute(fn: AttributeFn, model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """``fn(model, x)`` as ``(N, *S)`` float64 maps, checked against the input."""
    if not callable(fn):
        raise TypeError("attribute_fn must be a callable (model, x) -> maps")
    maps = spatial_maps(fn(model, x), tuple(x.shape[2:]))
    if maps.shape[0] != x.shape[0]:
        raise ValueError(f"attribute_fn returned {maps.shape[0]} maps for {x.shape[0]} inputs")
    return maps


def check_fraction_grid(values: Any, name: str, *, closed: bool) -> np.ndarray:
    f = np.asarray(values, dtype=np.float64).ravel()
    lo_ok = f >= 0 if closed else f > 0
    hi_ok = f <= 1 if closed else f < 1
    if f.size == 0 or not (lo_ok & hi_ok).all() or np.any(np.diff(f) <= 0):
        bounds = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be increasing fractions in {bounds}, got {values!r}")
    return f
