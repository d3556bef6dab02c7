"""Guided backpropagation's ReLU, for module and functional ReLUs alike.

captum's guided backprop hooks ``nn.ReLU`` modules, so a functional ``F.relu`` (or
``torch.relu``, ``x.relu()``) is skipped silently. Here the redirect happens at the function
level, for the duration of the call only: a :class:`torch.overrides.TorchFunctionMode`
routes every ``relu`` (out-of-place and in-place, modules included since ``nn.ReLU`` calls
``F.relu``) through :class:`GuidedReLU`, whose backward passes only positive gradients
where the input was positive. Nonlinearities it does not rewrite (``gelu``, ``silu``,
``leaky_relu``, ``clamp`` ...) are recorded with the module that called them, so the
result can name what guided backpropagation did not see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["GuidedReLU", "GuidedReLUInplace", "guided_relus"]


class GuidedReLU(torch.autograd.Function):
    """ReLU forward; backward keeps gradients that are positive where the input was positive."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return torch.as_tensor(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.as_tensor(grad.clamp(min=0) * (out > 0).to(grad.dtype))


class GuidedReLUInplace(torch.autograd.Function):
    """The in-place form (``nn.ReLU(inplace=True)``, ``x.relu_()``): same backward, and the
    input tensor is modified as the model expects."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return torch.as_tensor(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.as_tensor(grad.clamp(min=0) * (out > 0).to(grad.dtype))


_RELU = {F.relu, torch.relu, torch.Tensor.relu, torch.nn.functional.relu}
_RELU_INPLACE = {torch.relu_, torch.Tensor.relu_, F.relu_}
_UNSEEN = {
    F.gelu: "gelu",
    F.silu: "silu",
    F.leaky_relu: "leaky_relu",
    F.elu: "elu",
    F.relu6: "relu6",
    F.hardtanh: "hardtanh",
    F.hardswish: "hardswish",
    F.mish: "mish",
    F.prelu: "prelu",
    F.selu: "selu",
    F.softplus: "softplus",
    torch.clamp: "clamp",
    torch.Tensor.clamp: "clamp",
    torch.clamp_min: "clamp_min",
    torch.Tensor.clamp_min: "clamp_min",
    torch.maximum: "maximum",
    torch.Tensor.clamp_: "clamp_",
    F.leaky_relu_: "leaky_relu_",
}


class _GuidedMode(TorchFunctionMode):
    def __init__(self, where: list[str], unseen: dict[str, set[str]]):
        super().__init__()
        self.where = where
        self.unseen = unseen
        self.redirected = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _RELU:
            inplace = bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            self.redirected += 1
            return (GuidedReLUInplace if inplace else GuidedReLU).apply(args[0])
        if func in _RELU_INPLACE:
            self.redirected += 1
            return GuidedReLUInplace.apply(args[0])
        name = _UNSEEN.get(func)
        if name is not None:
            self.unseen.setdefault(name, set()).add(self.where[-1] if self.where else "<model>")
        return func(*args, **kwargs)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[_GuidedMode]:
    """Within the block, every ReLU the model calls is a :class:`GuidedReLU`.

    Yields the mode: ``mode.redirected`` counts the ReLUs seen, ``mode.unseen`` maps other
    nonlinearities to the modules that called them.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 3), nn.GELU())
    >>> with guided_relus(net) as mode:
    ...     _ = net(torch.randn(1, 3))
    >>> mode.redirected, sorted(mode.unseen)
    (0, ['gelu'])
    """
    where: list[str] = []
    unseen: dict[str, set[str]] = {}
    handles = []

    def enter(name: str) -> Any:
        def hook(_m: nn.Module, _i: object) -> None:
            where.append(name or "<model>")

        return hook

    def leave(_m: nn.Module, _i: object, _o: object) -> None:
        if where:
            where.pop()

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(enter(name)))
        handles.append(m.register_forward_hook(leave))
    mode = _GuidedMode(where, unseen)
    try:
        with mode:
            yield mode
    finally:
        for h in handles:
            h.remove()
