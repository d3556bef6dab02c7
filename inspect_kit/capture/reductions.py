"""Reductions applied to activations on their device, before the copy to the host."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..arrays import spatial_pool

Reduction = Callable[[torch.Tensor], torch.Tensor]

#: names users may pass as ``reduce=``
REDUCTIONS = ("none", "mean", "max", "flatten")


def _spatial_mean(t: torch.Tensor) -> torch.Tensor:
    pooled: torch.Tensor = spatial_pool(t, "mean")
    return pooled


def _spatial_max(t: torch.Tensor) -> torch.Tensor:
    pooled: torch.Tensor = spatial_pool(t, "max")
    return pooled


def _flatten(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def resolve_reduction(reduce: str | Reduction | None) -> tuple[str, Reduction | None]:
    """Return ``(description, function)`` for a ``reduce=`` argument.

    ``None``/``"none"`` keeps full maps; ``"mean"``/``"max"`` pool over every axis after the
    channel axis (H, W or D, H, W), so (N, C, ...) becomes (N, C); ``"flatten"`` gives
    (N, C*H*W); a callable maps a (N, ...) tensor to a (N, ...) tensor.
    """
    if reduce is None or reduce == "none":
        return "none", None
    if callable(reduce):
        return f"callable:{getattr(reduce, '__qualname__', repr(reduce))}", reduce
    table = {"mean": _spatial_mean, "max": _spatial_max, "flatten": _flatten}
    if reduce not in table:
        raise ValueError(
            f"unknown reduce={reduce!r}; use one of {', '.join(map(repr, REDUCTIONS))}, "
            "None, or a callable mapping a (N, ...) tensor to a (N, ...) tensor"
        )
    return reduce, table[reduce]


_DTYPES = {
    None: None,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    torch.float32: torch.float32,
    torch.float16: torch.float16,
    torch.bfloat16: torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Storage dtype for floating activations: None keeps the model's, or float32/16, bfloat16."""
    if dtype not in _DTYPES:
        raise ValueError(
            f"unsupported storage dtype={dtype!r}; use None, 'float32', 'float16' or 'bfloat16'"
        )
    return _DTYPES[dtype]
