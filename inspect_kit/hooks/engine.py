"""The one forward-hook engine: capture, feature visualization and the sanity check use it.

:class:`LayerRecorder` registers one forward hook per module named by a set of layer specs
(see :mod:`inspect_kit.hooks.spec`), keeps what those modules produced in one forward pass
under the names the store uses (``name``, ``name:1``, ``name[0]`` ...), and removes every
hook on exit, whatever happened. Options cover what the users need: a reduction applied
inside the hook (capture), outputs kept attached to the autograd graph (feature
visualization), and a forward pass stopped as soon as the last needed layer has run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .spec import LayerSpec, parse_layer_spec

__all__ = ["Captured", "LayerRecorder", "StopForward", "flatten_output", "select_outputs"]


def flatten_output(out: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(suffix, tensor)`` for every tensor in a (nested) tuple/list/dict output.

    The one rule for modules that return several things: a plain tensor has the empty
    suffix; ``(a, (b, c))`` gives ``[0]``, ``[1][0]``, ``[1][1]``; a dict gives ``[key]``.
    Non-tensor leaves are skipped. ``name + suffix`` is the layer spec of that output.

    Examples
    --------
    >>> t = torch.zeros(1)
    >>> [k for k, _ in flatten_output((t, {"a": t}))]
    ['[0]', '[1][a]']
    """
    if isinstance(out, torch.Tensor):
        yield prefix, out
    elif isinstance(out, Mapping):
        for k, v in out.items():
            yield from flatten_output(v, f"{prefix}[{k}]")
    elif isinstance(out, list | tuple):
        for i, v in enumerate(out):
            yield from flatten_output(v, f"{prefix}[{i}]")


class StopForward(Exception):
    """Raised from a hook once every needed output was recorded: the rest of the model is
    skipped. :meth:`LayerRecorder.run` catches it."""


@dataclass
class Captured:
    """One recorded output: the tensor and where it came from."""

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


def _describe(leaves: list[tuple[str, torch.Tensor]], name: str) -> str:
    return ", ".join(f"{name + s!r} {tuple(t.shape)}" for s, t in leaves) or "no tensors"


def select_outputs(
    out: Any, spec: LayerSpec, base: str | None = None, *, single: bool = False
) -> list[tuple[str, torch.Tensor]]:
    """The ``(suffix, tensor)`` pairs of a module output that ``spec`` names.

    ``spec.output`` (``"[1]"``) picks one output and everything under it; without it every
    tensor of the output is taken. ``single=True`` demands exactly one tensor: a module that
    returns several and is named without ``[i]`` is an error listing its outputs.

    Examples
    --------
    >>> a, b = torch.zeros(2, 3), torch.ones(2, 5)
    >>> [s for s, _ in select_outputs((a, b), parse_layer_spec("lstm[1]"), single=True)]
    ['[1]']
    """
    base = spec.key[: len(spec.key) - len(spec.output)] if base is None else base
    leaves = list(flatten_output(out))
    if spec.output:
        chosen = [(s, t) for s, t in leaves if s == spec.output or s.startswith(spec.output + "[")]
        if not chosen:
            raise KeyError(
                f"layer {spec.module!r} has no output {spec.output}; its outputs are "
                f"{_describe(leaves, base)}"
            )
    else:
        chosen = leaves
    if single and (len(chosen) != 1 or chosen[0][0] != spec.output):
        raise ValueError(
            f"layer {spec.key!r} returns a {type(out).__name__} of {len(chosen)} tensors, not "
            f"one tensor; name the output you mean: {_describe(chosen, base)}"
        )
    if not chosen:
        raise TypeError(f"layer {spec.key!r} returned {type(out).__name__}, which holds no tensor")
    return chosen


class LayerRecorder:
    """Register forward hooks on named modules and keep what they produced in one forward.

    Parameters
    ----------
    modules : mapping of layer spec to nn.Module
        What :func:`~inspect_kit.hooks.resolve_layers` returns.
    transform : callable, optional
        Runs inside the hook, on the output's device, so a reduction happens before anything
        is copied.
    keep_grad : bool
        Keep outputs attached to the autograd graph (feature visualization); by default they
        are detached.
    every_call : bool
        A spec without ``:k`` records every call of its module (``name``, ``name:1`` ...),
        as capture does; False records only the first call (``name``), as an objective
        reads it.
    flatten : bool
        A module returning a tuple/list/dict is recorded per output (``name[0]``,
        ``name[1]`` ...), as capture stores it. False asks for exactly one tensor per spec:
        a spec naming a module with several outputs and no ``[i]`` is an error that lists
        the outputs to choose from.
    stop_early : bool
        Stop the forward pass (from within the hook) once every spec was recorded; use
        :meth:`run`, which catches the stop. Needs ``every_call=False``.

    Notes
    -----
    A recorded tensor never aliases the module's output while the forward goes on, so a
    later in-place op (``nn.ReLU(inplace=True)``) cannot change what was recorded.

    Use as a context manager: the hooks are removed on exit, whatever happened.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> from inspect_kit.hooks import resolve_layers
    >>> with LayerRecorder(resolve_layers(net, ["1"]), stop_early=True, every_call=False) as rec:
    ...     out = rec.run(net, torch.zeros(5, 3))
    >>> out is None, tuple(rec.outputs["1"].tensor.shape)
    (True, (5, 4))
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        keep_grad: bool = False,
        every_call: bool = True,
        flatten: bool = True,
        stop_early: bool = False,
    ):
        if stop_early and every_call:
            raise ValueError("stop_early needs every_call=False: later calls are never known")
        self._transform = transform
        self._keep_grad = keep_grad
        self._every_call = every_call
        self._flatten = flatten
        self._stop_early = stop_early
        self._handles: list[Any] = []
        self._calls: dict[int, int] = {}
        self.outputs: dict[str, Captured] = {}
        self._fired: set[str] = set()
        # one hook per module even if several specs name it
        self._specs: dict[int, list[tuple[str, LayerSpec]]] = {}
        self._by_id: dict[int, nn.Module] = {}
        for key, module in modules.items():
            spec = parse_layer_spec(key)
            self._specs.setdefault(id(module), []).append((spec.key, spec))
            self._by_id[id(module)] = module
        self.specs = [key for pairs in self._specs.values() for key, _ in pairs]

    def _record(self, module: nn.Module, out: Any) -> None:
        call = self._calls.get(id(module), 0)
        self._calls[id(module)] = call + 1
        fresh: list[tuple[str, torch.Tensor]] = []
        for key, spec in self._specs[id(module)]:
            if spec.call is None:
                if call > 0 and not self._every_call:
                    continue
                base = spec.module if call == 0 else f"{spec.module}:{call}"
            elif spec.call != call:
                continue
            else:
                base = f"{spec.module}:{call}"
            self._fired.add(key)
            for suffix, t in select_outputs(out, spec, base, single=not self._flatten):
                kept = t if self._keep_grad else t.detach()
                if self._transform is not None:
                    kept = self._transform(kept)
                name = base + suffix
                self.outputs[name] = Captured(
                    kept, spec.module, type(module).__name__, call, tuple(t.shape)
                )
                fresh.append((name, t))
        if self._stop_early and len(self._fired) == len(self.specs):
            raise StopForward
        # The forward goes on: keep copies that later in-place ops cannot change.
        for name, t in fresh:
            kept = self.outputs[name].tensor
            if _shares_storage(kept, t):
                self.outputs[name].tensor = kept.clone()

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
        """Remove every hook (also done on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Forget the last forward's outputs and call counts."""
        self._calls.clear()
        self._fired = set()
        self.outputs = {}

    def fired(self) -> set[str]:
        """Base names (without call suffix) of the modules that ran in the last forward."""
        return {c.module_path for c in self.outputs.values()}

    def missing(self) -> list[str]:
        """The specs that recorded nothing in the last forward (a module that never ran, or
        ran fewer times than its ``:k`` asks)."""
        return [key for key in self.specs if key not in self._fired]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The recorded outputs as ``{name: tensor}``."""
        return {k: c.tensor for k, c in self.outputs.items()}

    def run(self, model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """One forward pass: reset, call ``model``, check every spec was recorded.

        Returns the model's output, or None when the forward was stopped early.

        Raises
        ------
        RuntimeError
            When a spec recorded nothing, naming it.
        """
        self.reset()
        try:
            out = model(*args, **kwargs)
        except StopForward:
            out = None
        missing = self.missing()
        if missing:
            raise RuntimeError(
                f"layer(s) {', '.join(map(repr, missing))} did not run in the forward pass (or "
                "ran fewer times than their ':k' suffix asks); check the names with "
                "inspect_kit.list_layers(model)"
            )
        return out
