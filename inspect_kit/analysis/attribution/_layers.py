"""The CAM layer: which layer's maps a class activation map is built from, and a tap that
records its activations (attached to the graph) during the forward pass.

One grammar with capture (:mod:`inspect_kit.hooks.spec`): ``"layer4"``, ``"block.relu:1"``
(the second call of a module called twice), ``"encoder[0]"`` (one output of a tuple).

The default layer is the *deepest* layer whose output keeps at least ``min_resolution``
(4) positions on every spatial axis (capped by the input's own size): deeper layers are more
class-specific, but a 1x1x1 map (the last block of a 3D DenseNet121 on a 48-voxel cube)
shows nothing. Transformers' token outputs ``(N, T, D)`` are reshaped to the patch grid
when the model says what it is (timm's ``patch_embed.grid_size`` and
``num_prefix_tokens``) or when ``token_grid`` is given.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from inspect_kit.hooks import parse_layer_spec, resolve_layers, select_outputs

__all__ = ["CamLayer", "TokenGrid", "activation_tap", "choose_cam_layer", "find_token_grid"]

logger = logging.getLogger(__name__)

MIN_RESOLUTION = 4


@dataclass(frozen=True)
class TokenGrid:
    """How a token sequence ``(N, prefix + rows*cols, D)`` maps to the patch grid."""

    grid: tuple[int, ...]
    prefix: int = 0

    def to_maps(self, t: torch.Tensor, spec: str) -> torch.Tensor:
        n, tokens, dim = t.shape
        need = self.prefix + math.prod(self.grid)
        if tokens != need:
            raise ValueError(
                f"layer {spec!r} has {tokens} tokens; the patch grid {self.grid} with "
                f"{self.prefix} prefix token(s) needs {need}: give token_grid=(rows, cols) and "
                "prefix_tokens= that match"
            )
        return t[:, self.prefix :].transpose(1, 2).reshape(n, dim, *self.grid)


def find_token_grid(
    model: nn.Module, token_grid: tuple[int, ...] | None = None, prefix_tokens: int | None = None
) -> TokenGrid | None:
    """The token grid given, or read from a timm-style model (None when there is none).

    Examples
    --------
    >>> find_token_grid(nn.Linear(2, 2)) is None
    True
    >>> find_token_grid(nn.Linear(2, 2), (14, 14), 1)
    TokenGrid(grid=(14, 14), prefix=1)
    """
    if token_grid is not None:
        return TokenGrid(tuple(int(g) for g in token_grid), int(prefix_tokens or 0))
    pe = getattr(model, "patch_embed", None)
    grid = getattr(pe, "grid_size", None)
    if grid is None:
        return None
    prefix = prefix_tokens
    if prefix is None:
        prefix = int(getattr(model, "num_prefix_tokens", 1 if hasattr(model, "cls_token") else 0))
    return TokenGrid(tuple(int(g) for g in grid), int(prefix))


@dataclass(frozen=True)
class CamLayer:
    """The layer a CAM is computed at: its spec, the call, the output and its resolution."""

    spec: str
    module: nn.Module
    call: int
    output: str
    resolution: tuple[int, ...]
    calls: int
    tokens: TokenGrid | None = None


def _spatial(t: torch.Tensor, n_spatial: int, tokens: TokenGrid | None) -> tuple[int, ...] | None:
    if t.ndim == n_spatial + 2:
        return tuple(int(s) for s in t.shape[2:])
    if tokens is not None and t.ndim == 3 and t.shape[1] == tokens.prefix + math.prod(tokens.grid):
        return tokens.grid
    return None


def _probe(model: nn.Module, x: torch.Tensor) -> list[tuple[str, int, str, torch.Size]]:
    """Every (module, call, output suffix, shape) of one forward, in completion order."""
    seen: list[tuple[str, int, str, torch.Size]] = []
    calls: dict[str, int] = {}
    handles = []

    def make(name: str) -> Any:
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            k = calls.get(name, 0)
            calls[name] = k + 1
            for suffix, t in select_outputs(out, parse_layer_spec(name), name):
                seen.append((name, k, suffix, t.shape))

        return hook

    try:
        for name, m in model.named_modules():
            if name:
                handles.append(m.register_forward_hook(make(name)))
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return seen


def choose_cam_layer(
    model: nn.Module,
    x: torch.Tensor,
    layer: str | None = None,
    *,
    min_resolution: int = MIN_RESOLUTION,
    tokens: TokenGrid | None = None,
) -> CamLayer:
    """Resolve ``layer`` (or choose the default) and measure its resolution for input ``x``.

    Parameters
    ----------
    model : nn.Module
    x : tensor (N, C, *spatial)
    layer : str, optional
        A layer spec; ``None`` picks the deepest layer whose maps have at least
        ``min_resolution`` positions per spatial axis (capped by the input's size).
    min_resolution : int
    tokens : TokenGrid, optional
        How token outputs map to the patch grid (vision transformers).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(4), nn.Conv2d(4, 4, 3, padding=1),
    ...                     nn.MaxPool2d(4), nn.Flatten(), nn.LazyLinear(2))
    >>> choose_cam_layer(net, torch.zeros(1, 1, 32, 32)).spec
    '2'
    """
    n_spatial = x.ndim - 2
    records = _probe(model, x)
    counts: dict[str, int] = {}
    for name, k, _, _ in records:
        counts[name] = max(counts.get(name, 0), k + 1)
    if layer is not None:
        resolve_layers(model, [layer])  # unknown names: close matches
        spec = parse_layer_spec(layer)
        module = dict(model.named_modules())[spec.module]
        call = spec.call if spec.call is not None else 0
        n_calls = counts.get(spec.module, 0)
        if n_calls == 0:
            raise RuntimeError(f"layer {layer!r} did not run in the forward pass")
        if call >= n_calls:
            raise ValueError(
                f"layer {spec.module!r} runs {n_calls} time(s) per forward; {layer!r} asks for "
                f"call {call} (use {spec.module!r}:0 .. :{n_calls - 1})"
            )
        if n_calls > 1 and spec.call is None:
            msg = (
                f"layer {spec.module!r} runs {n_calls} times per forward; the CAM uses its first "
                f"call. Name another with '{spec.module}:1' ... '{spec.module}:{n_calls - 1}'"
            )
            warnings.warn(msg, stacklevel=3)
        shapes = [(s, sh) for nm, k, s, sh in records if nm == spec.module and k == call]
        chosen = [(s, sh) for s, sh in shapes if s == spec.output] if spec.output else shapes
        if len(chosen) != 1:
            raise ValueError(
                f"layer {layer!r} returns {len(shapes)} tensors; name one: "
                + ", ".join(f"{spec.module}{s} {tuple(sh)}" for s, sh in shapes)
            )
        shape = chosen[0][1]
        res = _spatial(torch.empty(shape, device="meta"), n_spatial, tokens)
        if res is None:
            if len(shape) == 3 and n_spatial == 2:
                raise ValueError(
                    f"layer {layer!r} outputs tokens {tuple(shape)}, not maps: a CAM needs them "
                    "reshaped to the patch grid; give token_grid=(rows, cols) and prefix_tokens= "
                    "(the class/register tokens before the patches)"
                )
            raise ValueError(
                f"layer {layer!r} outputs {tuple(shape)}, which has no {n_spatial}-D spatial grid "
                f"for an input of shape {tuple(x.shape)}; pick a layer with maps (N, C, *spatial)"
            )
        return CamLayer(
            spec.key if spec.call is not None else spec.module + spec.output,
            module,
            call,
            spec.output,
            res,
            n_calls,
            tokens if len(shape) == 3 else None,
        )
    modules = dict(model.named_modules())
    floor = [min(min_resolution, s) for s in x.shape[2:]]
    cands = []
    for name, k, suffix, shape in records:
        res = _spatial(torch.empty(shape, device="meta"), n_spatial, tokens)
        if res is None:
            continue
        is_tokens = len(shape) == 3
        if tokens is not None and not is_tokens:
            continue  # a transformer's maps are its tokens (the patch embedding is not a CAM layer)
        if is_tokens and not name.endswith("norm1"):
            continue  # the last block's output reaches the head through the class token only
        cands.append((name, k, suffix, res, is_tokens))
    if not cands:
        raise ValueError(
            "no layer of this model outputs spatial maps (N, C, *spatial) for an input of shape "
            f"{tuple(x.shape)}; give layer= (a vision transformer needs token_grid=)"
        )
    good = [c for c in cands if all(r >= f for r, f in zip(c[3], floor, strict=True))]
    if good:
        name, k, suffix, res, is_tok = good[-1]
    else:
        best = max(min(c[3]) for c in cands)
        name, k, suffix, res, is_tok = [c for c in cands if min(c[3]) == best][-1]
    spec_str = name + (f":{k}" if k else "") + suffix
    return CamLayer(
        spec_str, modules[name], k, suffix, res, counts[name], tokens if is_tok else None
    )


def _replace(out: Any, path: list[str], value: torch.Tensor) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(out, dict):
        new = dict(out)
        new[head] = _replace(out[head], rest, value)
        return type(out)(new) if type(out) is not dict else new
    items = list(out)
    items[int(head)] = _replace(items[int(head)], rest, value)
    return (
        type(out)(items)
        if isinstance(out, tuple) and type(out) is tuple
        else (items if isinstance(out, list) else type(out)(*items))
    )


@contextmanager
def activation_tap(layer: CamLayer, store: list[torch.Tensor]) -> Iterator[None]:
    """Record the CAM layer's output (attached to the graph) into ``store``.

    The output the rest of the model sees is a clone of what is recorded, so a later in-place
    op cannot change it. The hook is removed on exit.
    """
    count = [0]
    path = [p for p in layer.output.replace("]", "").split("[") if p]

    def hook(_m: nn.Module, _i: object, out: Any) -> Any:
        k = count[0]
        count[0] += 1
        if k != layer.call:
            return None
        t = select_outputs(out, parse_layer_spec(layer.spec), layer.spec, single=True)[0][1]
        t = t.clone()
        store.append(t)  # tokens are reshaped to maps after the gradient is taken
        return _replace(out, path, t)

    handle = layer.module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
