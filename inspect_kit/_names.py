"""The one rule for "no such name" errors: close matches of a mistyped name.

Dependency-free, so that every layer of the package (the store included, which needs no
torch) raises the same error with the same suggestions for an unknown layer, target, colour
or parameter.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "unknown_name_error"]

#: similarity (difflib ratio) a known name needs to be suggested
CUTOFF = 0.5
#: known names listed in full when there are at most this many
LIST_ALL = 12


def close_matches(name: str, known: Iterable[str], n: int = 5) -> list[str]:
    """The known names a user most likely meant by ``name``, best first.

    One rule everywhere: a case-insensitive exact match first, then names similar by
    :func:`difflib.get_close_matches` (ratio >= 0.5), then names of which ``name`` is the
    last dotted component or a part (``"conv1"`` -> ``"features.conv1"``).

    Examples
    --------
    >>> close_matches("layer1.0.conv_1", ["layer1.0.conv1", "layer1.0.bn1", "fc"])
    ['layer1.0.conv1', 'layer1.0.bn1']
    >>> close_matches("conv1", ["features.conv1", "classifier"])
    ['features.conv1']
    """
    known = [str(k) for k in known]
    lowered = name.lower()
    out = [k for k in known if k.lower() == lowered and k != name]
    out += difflib.get_close_matches(name, known, n=n, cutoff=CUTOFF)
    if name:
        out += [k for k in known if k.endswith("." + name)]
        out += [k for k in known if name in k and k != name]
    return list(dict.fromkeys(out))[:n]


def unknown_name_error(
    name: str,
    known: Iterable[str],
    *,
    kind: str = "layer",
    where: str = "the model",
    see: str | None = None,
    error: type[Exception] = KeyError,
) -> Exception:
    """The error for an unknown ``name``: what was asked, the close matches, what exists.

    Parameters
    ----------
    name : str
        What the user asked for.
    known : iterable of str
        What exists.
    kind : str
        What a name is (``"layer"``, ``"target"``, ``"parameter"`` ...).
    where : str
        Where it was looked up (``"the model"``, ``"store acts.h5"`` ...).
    see : str, optional
        Where to find all names (a function to call)
        (``"inspect_kit.list_layers(model)"``).
    error : exception class
        KeyError by default.

    Returns
    -------
    Exception
        Raise it: ``raise unknown_name_error(...)``.

    Examples
    --------
    >>> unknown_name_error("conv_1", ["conv1", "relu"]).args[0]
    "no layer named 'conv_1' in the model (did you mean 'conv1'?); available: 'conv1', 'relu'"
    """
    known = [str(k) for k in known]
    close = close_matches(name, known)
    msg = f"no {kind} named {name!r} in {where}"
    if close:
        msg += f" (did you mean {', '.join(map(repr, close))}?)"
    if len(known) <= LIST_ALL:
        msg += f"; available: {', '.join(map(repr, known)) or 'none'}"
    if see:
        msg += f"; {see} lists all {len(known)}"
    return error(msg)
