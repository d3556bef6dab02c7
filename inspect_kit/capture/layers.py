"""Layer naming and selection: dotted names of ``model.named_modules()``."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Sequence

from torch import nn

_CALL = re.compile(r"^(?P<name>.*?):(?P<call>\d+)$")


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _type_matches(module: nn.Module, types: Sequence[type | str]) -> bool:
    for t in types:
        if isinstance(t, str):
            if type(module).__name__ == t:
                return True
        elif isinstance(module, t):
            return True
    return False


def list_layers(
    model: nn.Module,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    types: type | str | Sequence[type | str] | None = None,
) -> list[str]:
    """List a model's layer names, the dotted names of ``model.named_modules()``.

    Parameters
    ----------
    model : nn.Module
        The network.
    include, exclude : str or list of str, optional
        Glob patterns (``"layer2.*"``, ``"*conv*"``) a name must match / must not match.
    types : type, str or sequence of them, optional
        Keep only modules of these classes (``nn.Conv2d`` or ``"Conv2d"``).

    Returns
    -------
    list of str
        Names in registration order; the root module (``""``) is not listed.

    Examples
    --------
    >>> import torchvision
    >>> m = torchvision.models.resnet18()
    >>> list_layers(m, include="layer4.*", types="Conv2d")[:2]
    ['layer4.0.conv1', 'layer4.0.conv2']
    """
    inc, exc = _as_list(include), _as_list(exclude)
    if types is not None and not isinstance(types, list | tuple):
        types = [types]
    names = []
    for name, module in model.named_modules():
        if not name:
            continue
        if inc and not any(fnmatch.fnmatchcase(name, p) for p in inc):
            continue
        if exc and any(fnmatch.fnmatchcase(name, p) for p in exc):
            continue
        if types is not None and not _type_matches(module, types):
            continue
        names.append(name)
    return names


def unknown_layer_error(name: str, known: Sequence[str], what: str = "model") -> KeyError:
    """A KeyError for an unknown layer that lists the closest known names."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if not close:  # also try suffix matches: 'conv1' -> 'features.conv1'
        close = [k for k in known if k.endswith("." + name) or k.endswith(name)][:5]
    if close:
        hint = f"; close matches: {', '.join(map(repr, close))}"
    elif len(known) <= 12:
        hint = f"; its layers are {', '.join(map(repr, known))}"
    else:
        hint = ""
    return KeyError(
        f"no layer named {name!r} in the {what}{hint}. "
        f"See inspect_kit.list_layers(model) for all {len(known)} names"
    )


def parse_layer_spec(spec: str) -> tuple[str, int | None]:
    """Split ``"block.relu:1"`` into ``("block.relu", 1)``; no suffix gives ``None`` (all calls)."""
    m = _CALL.match(spec)
    if m:
        return m.group("name"), int(m.group("call"))
    return spec, None


def resolve_layers(model: nn.Module, names: str | Iterable[str]) -> dict[str, nn.Module]:
    """Map layer names (or glob patterns) to the model's modules, in the order given.

    Parameters
    ----------
    model : nn.Module
        The network.
    names : str or iterable of str
        Dotted module names; glob patterns expand to every matching name; a ``:k`` suffix
        (``"block.relu:1"``) is kept in the key and selects the k-th call of that module.

    Returns
    -------
    dict of str to nn.Module

    Raises
    ------
    KeyError
        For an unknown name or a pattern that matches nothing, listing close matches.

    Examples
    --------
    >>> import torch.nn as nn
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> list(resolve_layers(m, ["0", "1"]))
    ['0', '1']
    """
    modules = dict(model.named_modules())
    known = [n for n in modules if n]
    out: dict[str, nn.Module] = {}
    specs = _as_list(names)
    if not specs:
        raise ValueError(
            "no layers given; name at least one, e.g. layers=['conv1'] "
            f"(this model has {', '.join(known[:8])}{' ...' if len(known) > 8 else ''})"
        )
    for spec in specs:
        if not isinstance(spec, str):
            raise TypeError(f"layer names must be strings, got {type(spec).__name__}: {spec!r}")
        name, call = parse_layer_spec(spec)
        if any(c in name for c in "*?["):
            matched = [n for n in known if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise unknown_layer_error(name, known)
            for n in matched:
                out[n if call is None else f"{n}:{call}"] = modules[n]
            continue
        if name not in modules or not name:
            raise unknown_layer_error(name, known)
        out[spec] = modules[name]
    return out
