"""Memory bounds: how many model evaluations (IG steps, SmoothGrad samples, occlusion
windows) go through the model at once.

The cost of one row (one input through forward and backward) is measured once per model
and input shape: a forward pass of one sample with hooks summing the bytes every module
outputs. Backward roughly doubles what the forward keeps, so one row costs about
``2 x activations + 3 x input`` bytes; a batch holds as many rows as the budget allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch
from torch import nn

from inspect_kit.hooks import flatten_output

__all__ = [
    "DEFAULT_BUDGET",
    "estimate_row_bytes",
    "forward_measured",
    "parse_bytes",
    "rows_per_batch",
    "spans",
]

DEFAULT_BUDGET = 2 * 1024**3
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_bytes(value: int | float | str | None) -> int:
    """A memory size in bytes from ``2e9``, ``"512MiB"``, ``"4 GB"`` (binary units).

    Examples
    --------
    >>> parse_bytes("512MiB"), parse_bytes(1000), parse_bytes(None) == DEFAULT_BUDGET
    (536870912, 1000, True)
    """
    if value is None:
        return DEFAULT_BUDGET
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"memory_budget must be positive, got {value!r}")
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ValueError(
        f"memory_budget={value!r} is not a size; give bytes or a string like '512MiB', '4GiB'"
    )


def forward_measured(model: nn.Module, x: torch.Tensor) -> tuple[object, int]:
    """One no-grad forward of ``x`` and the bytes one row costs through forward and backward
    (what every leaf module outputs, per row, doubled for the backward, plus the input's)."""
    total = 0
    seen: set[int] = set()

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        for _, t in flatten_output(out):
            key = t.untyped_storage().data_ptr() if t.device.type != "meta" else id(t)
            if key not in seen:
                seen.add(key)
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    n = max(len(x), 1)
    return out, int(2 * total / n + 3 * x[:1].numel() * x.element_size())


def estimate_row_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes one input row costs through forward and backward (measured on ``x[:1]``).

    Examples
    --------
    >>> estimate_row_bytes(nn.Linear(4, 2), torch.zeros(3, 4)) > 0
    True
    """
    return forward_measured(model, x[:1])[1]


def rows_per_batch(row_bytes: int, budget: int, batch_size: int | None = None) -> int:
    """Rows per model call: ``batch_size`` when given, else what ``budget`` holds (>= 1).

    Examples
    --------
    >>> rows_per_batch(100, 1000), rows_per_batch(5000, 1000), rows_per_batch(1, 10, 3)
    (10, 1, 3)
    """
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return int(batch_size)
    return max(1, budget // max(row_bytes, 1))


def spans(total: int, step: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``step``.

    Examples
    --------
    >>> list(spans(5, 2))
    [(0, 2), (2, 4), (4, 5)]
    """
    for s in range(0, total, step):
        yield s, min(s + step, total)
