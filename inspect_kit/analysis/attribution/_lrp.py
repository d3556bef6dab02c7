"""Layer-wise relevance propagation through zennit (an optional extra: ``pip install zennit``).

zennit has what LRP needs and captum lacks: rules for ``Conv3d``, ``AvgPool3d`` and
BatchNorm canonizers, applied in a context that restores the model. This module chooses a
default composite (``EpsilonPlusFlat`` with BatchNorm merged into the preceding layer),
starts the relevance at the explained score (so a conserving rule set sums to f(x)), and
names the layers no rule covers: their relevance passes through as a plain gradient,
which is not LRP.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._budget import spans
from ._gradients import Runner

__all__ = ["default_composite", "lrp", "uncovered_layers"]

# Layers with no parameters whose gradient is a fine LRP pass-through
_PASS = (
    nn.ReLU,
    nn.Identity,
    nn.Flatten,
    nn.Dropout,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


def _zennit() -> Any:
    try:
        import zennit.composites
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "method='lrp' needs zennit: pip install 'inspect-kit[attribution]' (or pip install zennit)"
        ) from None
    return zennit


def default_composite(model: nn.Module, epsilon: float = 1e-6) -> tuple[Any, str | None]:
    """zennit's ``EpsilonPlusFlat`` with BatchNorm layers merged into the layer before them,
    and a note when some cannot be (then no BatchNorm is merged: zennit passes them)."""
    zennit = _zennit()
    from zennit.canonizers import SequentialMergeBatchNorm

    bad = unmergeable_batchnorms(model)
    if bad:
        note = (
            f"BatchNorm layers {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} do not follow "
            "a layer they can be merged into (BN-ReLU-Conv, as in DenseNet): LRP runs without the "
            "BatchNorm canonizer, and relevance passes BatchNorm layers unchanged"
        )
        return zennit.composites.EpsilonPlusFlat(epsilon=epsilon), note
    canon = [SequentialMergeBatchNorm()]
    return zennit.composites.EpsilonPlusFlat(epsilon=epsilon, canonizers=canon), None


def _hook_count(m: nn.Module) -> int:
    return len(m._forward_hooks) + len(m._forward_pre_hooks)


def uncovered_layers(model: nn.Module, before: dict[nn.Module, int]) -> list[str]:
    """Leaf layers with no rule while a composite is registered (``before``: hook counts)."""
    out = []
    for name, m in model.named_modules():
        if list(m.children()) or isinstance(m, _PASS):
            continue
        if _hook_count(m) <= before.get(m, 0):
            has_params = any(True for _ in m.parameters(recurse=False))
            is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)  # merged by the canonizer
            if (has_params and not is_bn) or type(m).__name__ in (
                "GELU",
                "SiLU",
                "Softmax",
                "LayerNorm",
            ):
                out.append(f"{name} ({type(m).__name__})")
    return out


def lrp(run: Runner, x: torch.Tensor, composite: Any) -> tuple[torch.Tensor, list[str]]:
    """Relevance maps (same shape as ``x``) and notes naming the layers no rule covered."""
    _zennit()
    maps, uncovered = _run(run, x, composite)
    notes = []
    if uncovered:
        notes.append(
            "no LRP rule covers " + ", ".join(uncovered) + ": relevance passes these layers "
            "as a plain gradient (give a composite with rules for them)"
        )
    return maps, notes


def unmergeable_batchnorms(model: nn.Module) -> list[str]:
    """BatchNorm layers that do not directly follow a layer they can be merged into (the
    previous leaf module is not a conv/linear with as many outputs): DenseNet's BN-ReLU-Conv
    after a concatenation, pre-activation ResNets."""
    bad, prev = [], None
    for name, m in model.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            out = getattr(prev, "out_channels", getattr(prev, "out_features", None))
            if not isinstance(prev, nn.modules.conv._ConvNd | nn.Linear) or out != m.num_features:
                bad.append(name)
        prev = m
    return bad


def _run(run: Runner, x: torch.Tensor, composite: Any) -> tuple[torch.Tensor, list[str]]:
    before = {m: _hook_count(m) for m in run.model.modules()}
    maps = []
    with composite.context(run.model) as modified:
        uncovered = uncovered_layers(run.model, before)
        for s, e in spans(len(x), run.rows):
            xi = x[s:e].detach().requires_grad_(True)
            with torch.enable_grad():
                sc = run.target.scores(modified(xi), torch.arange(s, e, device=x.device))
                (r,) = torch.autograd.grad(sc, xi, grad_outputs=sc.detach())
            maps.append(r)
    return torch.cat(maps), uncovered
