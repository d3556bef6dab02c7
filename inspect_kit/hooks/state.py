"""Where the user's model lives and how it comes back: device and state helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["model_device", "model_state_preserved", "on_device"]


@contextmanager
def model_state_preserved(model: nn.Module, *, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and give it back exactly as it came.

    Every submodule's ``training`` flag and every parameter's ``requires_grad`` is restored,
    also when the block raises (KeyboardInterrupt included).

    Examples
    --------
    >>> net = nn.Linear(2, 2).train()
    >>> with model_state_preserved(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    training = {m: m.training for m in model.modules()}
    grads = {p: p.requires_grad for p in model.parameters()}
    try:
        if eval_mode:
            model.eval()
        yield model
    finally:
        for m, flag in training.items():
            m.training = flag
        for p, flag in grads.items():
            p.requires_grad_(flag)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (cpu for a model without any).

    Examples
    --------
    >>> model_device(nn.Linear(2, 2))
    device(type='cpu')
    """
    for t in model.parameters():
        return t.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@contextmanager
def on_device(model: nn.Module, device: str | torch.device | None) -> Iterator[torch.device]:
    """Run the block with ``model`` on ``device`` and move it back afterwards.

    ``device=None`` uses the device the model is on and moves nothing.

    Examples
    --------
    >>> net = nn.Linear(2, 2)
    >>> with on_device(net, "cpu") as dev:
    ...     dev
    device(type='cpu')
    """
    home = model_device(model)
    target = home if device is None else torch.device(device)
    moved = target != home
    try:
        if moved:
            model.to(target)
        yield target
    finally:
        if moved:
            model.to(home)
