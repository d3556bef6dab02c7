"""Command-line flags generated from option dataclasses, and the options read back.

A field of an options dataclass (:mod:`inspect_kit.workflows.options`) declared with
:func:`~inspect_kit.workflows.options.option` metadata is one flag: ``--field-name`` (or its
``flag``), its help, type, choices and ``--help`` group. :func:`add_options` adds them to a
parser; :func:`options_from_args` builds the dataclass from the parsed arguments. So an
option is spelled once, in its dataclass, for the CLI and for Python.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from ._common import positive_float, positive_int, split_list

__all__ = ["add_options", "cli_fields", "flags_of", "options_from_args"]

_TYPES = {"positive_int": positive_int, "positive_float": positive_float}


def cli_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    """The fields of ``cls`` that are command-line flags (those with a help text)."""
    return [
        f
        for f in dataclasses.fields(cls)
        if f.metadata.get("help") and f.metadata.get("cli", True) is not False
    ]


def flags_of(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    """The flag spellings of a field: its ``flag`` metadata, else ``--field-name``."""
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    return (flag,) if isinstance(flag, str) else tuple(flag)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    if value is None and f.metadata.get("none"):
        return f.metadata["none"]  # the word that means None shows as the default
    return list(value) if isinstance(value, tuple) else value


def add_options(
    parser: argparse.ArgumentParser,
    cls: type[Any],
    *,
    skip: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add one flag per command-line field of the dataclass ``cls`` to ``parser``.

    ``skip`` leaves fields out (the command spells them itself); ``defaults`` overrides
    the dataclass's defaults for this command. The destination of each flag is the field's
    name, so :func:`options_from_args` finds it.
    """
    groups: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    for f in cli_fields(cls):
        if f.name in skip:
            continue
        md = f.metadata
        title = md.get("group")
        target: Any = parser
        if title:
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            target = groups[title]
        if md.get("exclusive"):
            key = md["exclusive"]
            if key not in exclusive:
                exclusive[key] = target.add_mutually_exclusive_group()
            target = exclusive[key]
        help_ = md["help"]
        kw: dict[str, Any] = {
            "dest": f.name,
            "help": help_() if callable(help_) else help_,
            "default": (defaults or {}).get(f.name, _default(f)),
        }
        if kw["default"] is False and "type" not in md and "nargs" not in md:
            kw["action"] = "store_true"
        else:
            typ = md.get("type")
            typ = _TYPES.get(typ, typ) if isinstance(typ, str) else typ
            if typ is not None and not md.get("split"):
                kw["type"] = typ
            for key in ("nargs", "choices", "metavar", "required"):
                if key in md:
                    kw[key] = md[key]
        target.add_argument(*flags_of(f), **kw)


def options_from_args(cls: type[Any], args: argparse.Namespace, **given: Any) -> Any:
    """The dataclass ``cls`` from the parsed ``args`` (its command-line fields), plus ``given``.

    ``split`` fields are split on commas (``a,b c`` -> ``a b c``) and converted with their
    ``type``; the ``none`` word of a field becomes None; lists become tuples.
    """
    values: dict[str, Any] = {}
    for f in cli_fields(cls):
        if f.name in given or not hasattr(args, f.name):
            continue
        md = f.metadata
        value = getattr(args, f.name)
        if md.get("split"):
            value = split_list(value)
            typ = md.get("type")
            if value is not None and callable(typ):
                value = [typ(v) for v in value]
        none = md.get("none")
        if none is not None and isinstance(value, str) and value.lower() == none:
            value = None
        if isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values, **given)
