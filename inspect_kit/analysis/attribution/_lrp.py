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


def default_composite(epsilon: float = 1e-6) -> Any:
    """zennit's ``EpsilonPlusFlat`` with BatchNorm layers merged into the layer before them."""
    zennit = _zennit()
    from zennit.canonizers import SequentialMergeBatchNorm

    return zennit.composites.EpsilonPlusFlat(
        epsilon=epsilon, canonizers=[SequentialMergeBatchNorm()]
    )


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
    """Relevance maps (same shape as ``x``) and the layers no rule covered."""
    _zennit()
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
