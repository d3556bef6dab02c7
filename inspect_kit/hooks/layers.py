"""Layer naming and selection: dotted names of ``model.named_modules()`` and the spec grammar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from torch import nn

from inspect_kit._names import unknown_name_error

from .spec import glob_regex, is_glob, parse_layer_spec

__all__ = ["list_layers", "resolve_layers", "unknown_layer_error"]


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


def _matches(name: str, pattern: str) -> bool:
    return glob_regex(pattern).fullmatch(name) is not None


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
        Glob patterns a name must match / must not match. ``*`` and ``?`` match within one
        dotted component (``"layer2.*"`` is the blocks of ``layer2``, ``"*bn*"`` a top-level
        name containing ``bn``); ``**`` crosses dots (``"layer2.**"`` is every module under
        ``layer2``, ``"**.*bn*"`` every module whose own name contains ``bn``).
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
    >>> list_layers(m, include="layer4.*")
    ['layer4.0', 'layer4.1']
    >>> list_layers(m, include="layer4.**", types="Conv2d")[:2]
    ['layer4.0.conv1', 'layer4.0.conv2']
    """
    inc, exc = _as_list(include), _as_list(exclude)
    type_list = [types] if isinstance(types, type | str) else types
    names = []
    for name, module in model.named_modules():
        if not name:
            continue
        if inc and not any(_matches(name, p) for p in inc):
            continue
        if exc and any(_matches(name, p) for p in exc):
            continue
        if type_list is not None and not _type_matches(module, type_list):
            continue
        names.append(name)
    return names


def unknown_layer_error(name: str, known: Sequence[str], what: str = "model") -> KeyError:
    """A KeyError for an unknown layer of a model that lists the closest known names."""
    return cast(
        KeyError,
        unknown_name_error(
            name, known, kind="layer", where=f"the {what}", see="inspect_kit.list_layers(model)"
        ),
    )


def resolve_layers(model: nn.Module, names: str | Iterable[str]) -> dict[str, nn.Module]:
    """Map layer specs (or glob patterns) to the model's modules, in the order given.

    Parameters
    ----------
    model : nn.Module
        The network.
    names : str or iterable of str
        Layer specs (see :mod:`inspect_kit.hooks.spec`): dotted module names or globs,
        optionally with a call (``"block.relu:1"``) and an output (``"lstm[0]"``), both kept
        in the key. A unit (``"#3"``) is not a layer and is refused here.

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
    >>> list(resolve_layers(m, ["0", "1:1"]))
    ['0', '1:1']
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
        parsed = parse_layer_spec(spec)
        if parsed.unit is not None:
            raise ValueError(
                f"{spec!r} names unit {parsed.unit} of a layer; layers are captured whole: "
                f"give {parsed.key!r} and pick the unit in the analysis"
            )
        if is_glob(parsed.module):
            matched = [n for n in known if _matches(n, parsed.module)]
            if not matched:
                raise unknown_layer_error(parsed.module, known)
            for n in matched:
                out[parsed._replace(module=n).key] = modules[n]
            continue
        if parsed.module not in modules:
            raise unknown_layer_error(parsed.module, known)
        out[parsed.key] = modules[parsed.module]
    return out
