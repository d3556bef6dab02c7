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
    def forward(ctx: Any, x: torch.Tensor, upper: float | None, inplace: bool) -> torch.Tensor:
        if inplace:
            out = x.clamp_(min=0) if upper is None else x.clamp_(min=0, max=upper)
            ctx.mark_dirty(x)
        else:
            out = x.clamp(min=0) if upper is None else x.clamp(min=0, max=upper)
        ctx.save_for_backward(out)
        ctx.upper = upper
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (out,) = ctx.saved_tensors
        upper = ctx.upper
        live = out > 0 if upper is None else (out > 0) & (out < upper)
        zero = grad.new_zeros(())
        true_grad = torch.where(live, grad, zero)
        if grad.ndim == 0:
            return (true_grad if bool(live) else torch.where(grad < 0, grad, zero)), None, None
        alive = torch.count_nonzero(true_grad.reshape(grad.shape[0], -1), dim=1) > 0
        # On the CPU a check is free: most ReLUs have no dead batch element.
        if grad.device.type == "cpu" and bool(alive.all()):
            return true_grad, None, None
        # The loss is minimised: a negative gradient asks the output to go up. Below the
        # kink pass only that; above ReLU6's ceiling only the push down.
        push = grad < 0 if upper is None else torch.where(out <= 0, grad < 0, grad > 0)
        dead = ~alive.reshape((-1,) + (1,) * (grad.ndim - 1))
        return torch.where(live | (dead & push), grad, zero), None, None


def _redirect(x: torch.Tensor, upper: float | None, inplace: bool) -> torch.Tensor:
    out: torch.Tensor = _RedirectedClamp.apply(x, upper, inplace)
    return out


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


# func -> (upper bound or None, always in place)
_RELUS: dict[Callable[..., Any], tuple[float | None, bool]] = {
    F.relu: (None, False),
    torch.relu: (None, False),
    torch.relu_: (None, True),
    torch.Tensor.relu: (None, False),
    torch.Tensor.relu_: (None, True),
    F.relu6: (6.0, False),
}


class _RedirectMode(TorchFunctionMode):
    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        kind = _RELUS.get(func)
        if kind is None and func is not F.hardtanh:  # every other op: as fast as possible
            return func(*args, **kwargs)
        x = _arg(args, kwargs, 0, "input", None)
        if not (isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point()):
            return func(*args, **kwargs)
        if kind is not None:
            upper, always_inplace = kind
            inplace = always_inplace or bool(_arg(args, kwargs, 1, "inplace", False))
            return _redirect(x, upper, inplace)
        # nn.ReLU6 is hardtanh(x, 0, 6); other hardtanh ranges are left alone
        lo = float(_arg(args, kwargs, 1, "min_val", -1.0))
        hi = float(_arg(args, kwargs, 2, "max_val", 1.0))
        if lo != 0.0:
            return func(*args, **kwargs)
        return _redirect(x, hi, bool(_arg(args, kwargs, 3, "inplace", False)))


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
