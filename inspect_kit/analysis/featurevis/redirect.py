"""Redirected ReLU gradients, so that units that are off for the starting image still move.

A ReLU passes no gradient where its input is negative. A unit that is zero everywhere on the
starting image therefore gets no gradient at all and its visualization stays flat. Following
Lucid (``lucid/misc/redirected_relu_grad.py``), while :func:`redirected_relu` is active the
backward pass of every ReLU (and ReLU6) treats each batch element separately: where the true
ReLU gradient of that element is non-zero it is used unchanged; where it is zero everywhere
(the element is dead at this ReLU), the gradient is passed through also where the input is
negative, but only in the direction that would raise the input, so the unit is pushed to
turn on. The forward pass is exact.

It covers ``nn.ReLU`` / ``nn.ReLU6`` modules wherever they are called (twice in a resnet
block included) and the functional forms (``F.relu``, ``torch.relu``, ``x.relu()``, their
in-place variants, ``F.relu6``, ``F.hardtanh(x, 0, ...)``), through a
``torch.overrides.TorchFunctionMode`` that exists only inside the ``with`` block: nothing is
patched globally and nothing stays behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["redirected_relu"]


class _RedirectedClamp(torch.autograd.Function):
    """``clamp(x, 0, upper)`` whose backward redirects the gradient of dead elements."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, upper: float | None) -> torch.Tensor:
        out = x.clamp(min=0) if upper is None else x.clamp(min=0, max=upper)
        ctx.save_for_backward(out)
        ctx.upper = upper
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        low = out <= 0
        high = out >= ctx.upper if ctx.upper is not None else torch.zeros_like(low)
        true_grad = grad.masked_fill(low | high, 0)
        # The loss is minimised: a negative gradient asks the output to go up. Below the
        # kink pass only that; above ReLU6's ceiling pass only the push down.
        wrong_way = (low & (grad > 0)) | (high & (grad < 0))
        redirected = grad.masked_fill(wrong_way, 0)
        if grad.ndim == 0:
            return (true_grad if bool(true_grad != 0) else redirected), None
        alive = true_grad.reshape(grad.shape[0], -1).abs().amax(dim=1) > 0
        alive = alive.reshape((-1,) + (1,) * (grad.ndim - 1))
        return torch.where(alive, true_grad, redirected), None


def _redirect(x: torch.Tensor, upper: float | None, inplace: bool) -> torch.Tensor:
    out = _RedirectedClamp.apply(x, upper)
    if inplace:
        # In-place semantics for callers that keep using x; autograd records the copy.
        x.copy_(out)
        return x
    return out


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


# func -> (upper bound or None, always in place)
_RELUS: dict[Callable, tuple[float | None, bool]] = {
    F.relu: (None, False),
    torch.relu: (None, False),
    torch.relu_: (None, True),
    torch.Tensor.relu: (None, False),
    torch.Tensor.relu_: (None, True),
    F.relu6: (6.0, False),
}


class _RedirectMode(TorchFunctionMode):
    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        x = _arg(args, kwargs, 0, "input", None)
        if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point():
            if func in _RELUS:
                upper, always_inplace = _RELUS[func]
                inplace = always_inplace or bool(_arg(args, kwargs, 1, "inplace", False))
                return _redirect(x, upper, inplace)
            if func is F.hardtanh:  # nn.ReLU6 is hardtanh(x, 0, 6)
                lo = float(_arg(args, kwargs, 1, "min_val", -1.0))
                hi = float(_arg(args, kwargs, 2, "max_val", 1.0))
                if lo == 0.0:
                    return _redirect(x, hi, bool(_arg(args, kwargs, 3, "inplace", False)))
        return func(*args, **kwargs)


@contextmanager
def redirected_relu(enabled: bool = True) -> Iterator[None]:
    """Within the block, ReLU backward passes redirect the gradient of dead units.

    Parameters
    ----------
    enabled : bool
        False makes the block a no-op (convenient in loops).

    Examples
    --------
    >>> x = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    >>> with redirected_relu():
    ...     y = torch.relu(x)
    >>> (-y.sum()).backward()          # maximise y: both inputs are negative
    >>> x.grad                          # a plain ReLU would give zeros
    tensor([[-1., -1.]])
    """
    if not enabled:
        yield
        return
    with _RedirectMode():
        yield
