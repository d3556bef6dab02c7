"""Forward hooks that collect (reduced) layer outputs, and restoring a model to how it came."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .layers import parse_layer_spec


def flatten_output(out: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(suffix, tensor)`` for every tensor in a (nested) tuple/list/dict output.

    A plain tensor has the empty suffix; ``(a, (b, c))`` gives ``[0]``, ``[1][0]``, ``[1][1]``;
    a dict gives ``[key]``. Non-tensor leaves are skipped.
    """
    if isinstance(out, torch.Tensor):
        yield prefix, out
    elif isinstance(out, Mapping):
        for k, v in out.items():
            yield from flatten_output(v, f"{prefix}[{k}]")
    elif isinstance(out, list | tuple):
        for i, v in enumerate(out):
            yield from flatten_output(v, f"{prefix}[{i}]")


@dataclass
class Captured:
    tensor: torch.Tensor
    module_path: str
    module_type: str
    call_index: int
    source_shape: tuple[int, ...]


def _shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    except RuntimeError:
        return False


class LayerRecorder:
    """Register forward hooks on named modules and keep what they produced in one forward.

    Every call of a hooked module is recorded: the first as ``name``, later ones as
    ``name:1``, ``name:2`` ... A spec with an explicit call (``"name:1"``) records only that
    call. ``transform`` runs inside the hook, on the output's device, so a reduction happens
    before anything is copied; its result never aliases the module's output, so a later
    in-place op (``nn.ReLU(inplace=True)``) cannot change what was recorded.

    Use as a context manager: the hooks are removed on exit, whatever happened.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self._modules = modules
        self._transform = transform
        self._handles: list[Any] = []
        self._calls: dict[int, int] = {}
        self.outputs: dict[str, Captured] = {}
        # one hook per module even if several specs name it
        self._specs: dict[int, list[tuple[str, int | None]]] = {}
        self._by_id: dict[int, nn.Module] = {}
        for spec, module in modules.items():
            name, call = parse_layer_spec(spec)
            self._specs.setdefault(id(module), []).append((name, call))
            self._by_id[id(module)] = module

    def _record(self, module: nn.Module, out: Any) -> None:
        call = self._calls.get(id(module), 0)
        self._calls[id(module)] = call + 1
        for name, wanted in self._specs[id(module)]:
            if wanted is not None and wanted != call:
                continue
            base = name if call == 0 and wanted is None else f"{name}:{call}"
            for suffix, t in flatten_output(out):
                t = t.detach()
                kept = self._transform(t) if self._transform is not None else t
                if _shares_storage(kept, t):
                    kept = kept.clone()
                self.outputs[base + suffix] = Captured(
                    kept, name, type(module).__name__, call, tuple(t.shape)
                )

    def __enter__(self) -> LayerRecorder:
        try:
            for module in self._by_id.values():
                self._handles.append(
                    module.register_forward_hook(lambda m, _i, o: self._record(m, o))
                )
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Forget the last forward's outputs and call counts."""
        self._calls.clear()
        self.outputs = {}

    def fired(self) -> set[str]:
        """Base names (without call suffix) of the modules that ran in the last forward."""
        return {c.module_path for c in self.outputs.values()}


@contextmanager
def model_state_preserved(model: nn.Module, *, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and give it back exactly as it came.

    Every submodule's ``training`` flag and every parameter's ``requires_grad`` is restored,
    also when the block raises (KeyboardInterrupt included).
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
    """The device of the model's first parameter or buffer (cpu for a model without any)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextmanager
def on_device(model: nn.Module, device: str | torch.device | None) -> Iterator[torch.device]:
    """Run the block with ``model`` on ``device`` and move it back afterwards.

    ``device=None`` uses the device the model is on and moves nothing.
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
