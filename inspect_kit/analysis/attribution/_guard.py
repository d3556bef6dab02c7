"""The model guard: the user's model comes back exactly as it went in.

Attribution needs gradients, hooks and (for guided backpropagation and LRP) modified
backward rules; none of that may outlive the call. :func:`model_guard` records what a method
could change and restores it on exit, also when the method raises or the user interrupts.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["GuardReport", "model_guard", "train_mode_batchnorms"]

logger = logging.getLogger(__name__)

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks",
)
_BN = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def train_mode_batchnorms(model: nn.Module) -> list[str]:
    """Names of normalisation layers that are in training mode (they would use the batch's
    statistics, and update their running buffers, during an attribution).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    >>> train_mode_batchnorms(net)
    ['1']
    >>> train_mode_batchnorms(net.eval())
    []
    """
    return [
        name or type(model).__name__
        for name, m in model.named_modules()
        if isinstance(m, _BN)
        and m.training
        and (m.track_running_stats or isinstance(m, nn.modules.batchnorm._BatchNorm))
    ]


@dataclass
class GuardReport:
    """What the guard found on entry (named for the attribution's warnings)."""

    train_mode_batchnorms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _hook_keys(model: nn.Module) -> dict[int, dict[str, set[int]]]:
    out: dict[int, dict[str, set[int]]] = {}
    for m in model.modules():
        out[id(m)] = {h: set(getattr(m, h, {}) or {}) for h in _HOOK_DICTS}
    return out


@contextmanager
def model_guard(model: nn.Module, *, batchnorm: str = "eval") -> Iterator[GuardReport]:
    """Run the block on ``model`` and give it back exactly as it came.

    On exit, whatever happened (an exception, ``KeyboardInterrupt``): every submodule's
    ``training`` flag, every parameter's ``requires_grad`` and ``.grad``, every module's
    ``inplace`` flag, every parameter's and buffer's values (BatchNorm running statistics,
    ``num_batches_tracked``) are restored; hooks added during the block are removed.
    Attribution never writes parameters, but a third-party rule (an LRP canonizer) may, and
    may fail half-way: the guard keeps one copy of the weights to put back.

    Parameters
    ----------
    model : nn.Module
        The user's network.
    batchnorm : {"eval", "train"}
        ``"eval"`` (default) runs the block in eval mode, so normalisation layers use their
        running statistics and the explanation of one sample does not depend on the others
        in its batch; a model that came in training mode is named in a warning. ``"train"``
        keeps the model's own flags (batch statistics; the buffers it updates are restored
        on exit).

    Yields
    ------
    GuardReport
        The train-mode normalisation layers found on entry and the warnings issued.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True)).train()
    >>> with model_guard(net):
    ...     net.training, net[1].inplace
    (False, True)
    >>> net.training
    True
    """
    if batchnorm not in ("eval", "train"):
        raise ValueError(f"batchnorm must be 'eval' or 'train', got {batchnorm!r}")
    training = {m: m.training for m in model.modules()}
    inplace = {
        m: m.inplace for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)
    }
    params = list(model.parameters())
    grads = {p: (p.requires_grad, p.grad) for p in params}
    # a canonizer that fails half-way (zennit merging BatchNorm into the wrong layer) leaves
    # weights rewritten: keep a copy to put back (one copy of the weights, host or device)
    weights = {p: p.detach().clone() for p in params}
    buffers = {
        (mod_name, b_name): b.detach().clone()
        for mod_name, m in model.named_modules()
        for b_name, b in m.named_buffers(recurse=False)
        if b is not None
    }
    hooks = _hook_keys(model)
    report = GuardReport(train_mode_batchnorms=train_mode_batchnorms(model))
    if report.train_mode_batchnorms:
        names = ", ".join(report.train_mode_batchnorms[:6])
        more = len(report.train_mode_batchnorms) - 6
        msg = (
            f"the model came in training mode with normalisation layers {names}"
            f"{f' and {more} more' if more > 0 else ''}: "
            + (
                "the attribution runs in eval mode (running statistics); the model's flags are "
                "restored afterwards"
                if batchnorm == "eval"
                else "batchnorm='train' explains batch statistics, so each sample's map depends "
                "on its batch; the updated running buffers are restored afterwards"
            )
        )
        report.warnings.append(msg)
        warnings.warn(msg, stacklevel=3)
    try:
        if batchnorm == "eval":
            model.eval()
        for p in params:
            p.requires_grad_(False)  # gradients flow to the input only; weights stay clean
        yield report
    finally:
        for m, flag in training.items():
            m.training = flag
        for mod, inplace_flag in inplace.items():
            setattr(mod, "inplace", inplace_flag)  # noqa: B010  (Module.__setattr__ is typed for tensors)
        for p, (flag, grad) in grads.items():
            p.requires_grad_(flag)
            p.grad = grad
        named = dict(model.named_modules())
        with torch.no_grad():
            for p, saved in weights.items():
                if p.data.shape != saved.shape or not torch.equal(p.data, saved):
                    p.data = saved
            for (mod_name, b_name), saved in buffers.items():
                current = getattr(named[mod_name], b_name, None)
                if isinstance(current, torch.Tensor) and not torch.equal(current, saved):
                    current.copy_(saved)
        for m in model.modules():
            before = hooks.get(id(m))
            for h in _HOOK_DICTS:
                d = getattr(m, h, None)
                if not d:
                    continue
                for key in set(d) - (before[h] if before else set()):
                    logger.debug("removing a hook left on %s", type(m).__name__)
                    d.pop(key, None)
