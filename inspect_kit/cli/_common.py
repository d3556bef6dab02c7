"""What every command shares: the parser classes, argument types, the general options
(``--threads``, ``--device``, ``-q``/``-v``/``--debug``/``--json``), the model arguments,
and printing results as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

PROG = "inspect-kit"


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``inspect-kit capture: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout; shows defaults that say something (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and action.option_strings
        ):
            shown = " ".join(map(str, default)) if isinstance(default, list) else default
            text += f" (default: {shown})"
        return text


# -- argument types ---------------------------------------------------------------------------
def split_list(values: Sequence[Any] | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; None or nothing -> None."""
    if values is None:
        return None
    out = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
    return out or None


def json_dict(text: str) -> dict[str, Any]:
    """``--model-args``: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"--model-args must be a JSON object such as '{{\"num_classes\": 3}}' ({err.msg})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"--model-args must be a JSON object (a dict), got {type(value).__name__}"
        )
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


# -- arguments every command shares -------------------------------------------------------------
#: every command that draws random numbers: random_state, as in the library
RANDOM_STATE = ("--random-state",)
RANDOM_STATE_KW: dict[str, Any] = {
    "dest": "random_state",
    "type": int,
    "default": 0,
    "metavar": "N",
    "help": "seed of every random draw (default: 0)",
}


def add_random_state(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--random-state N``."""
    p.add_argument(*RANDOM_STATE, **{**RANDOM_STATE_KW, **({"help": help} if help else {})})


def add_common(p: argparse.ArgumentParser, threads: int | None = None) -> None:
    """``--threads``, ``--device`` and the global options, in a "general" group."""
    g = p.add_argument_group("general")
    g.add_argument(
        "--threads",
        type=positive_int,
        default=threads,
        help="CPU threads for torch and BLAS (default: the libraries' own choice for all "
        "commands but demo; on a busy machine 1 is often fastest)",
    )
    add_global(g, suppress=True)
    g.add_argument(
        "--device",
        default=None,
        help="torch device, e.g. cpu or cuda:0 (default: where the model is)",
    )


def add_global(g: Any, *, suppress: bool) -> None:
    """Options that work before or after the command: ``inspect-kit -q demo`` = ``demo -q``.

    The top-level parser holds the defaults; a command's copy uses ``SUPPRESS`` so that an
    option given before the command is not reset by the command's own parser.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress bars or step messages",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more messages: -v the library's steps, -vv debugging details",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the full traceback on errors",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the command's results as JSON on stdout (messages stay on stderr)",
    )


def add_model(p: argparse.ArgumentParser, required: bool = True) -> None:
    """MODEL (a factory), ``--weights`` and ``--model-args``."""
    if required:
        p.add_argument(
            "model",
            help="model factory as package.module:factory (torchvision.models:resnet18) "
            "or path/to/file.py:factory",
        )
    p.add_argument("--weights", type=Path, default=None, help="state_dict file (torch.save)")
    p.add_argument(
        "--model-args",
        type=json_dict,
        default=None,
        metavar="JSON",
        help="keyword arguments of the factory, e.g. '{\"num_classes\": 3}'",
    )


def add_layers(p: argparse.ArgumentParser, help: str = "layers (default: all stored)") -> None:
    """``--layers`` of a store (comma or space separated)."""
    p.add_argument("--layers", nargs="+", default=None, help=help)


def add_output(
    p: argparse.ArgumentParser,
    formats: Sequence[str] | None,
    *,
    out_help: str = "folder for the figures (default: figures/ next to the store)",
    formats_help: str = "html, png, svg, pdf",
    required: bool = False,
) -> None:
    """``-o/--out`` and ``--formats``."""
    p.add_argument("-o", "--out", type=Path, default=None, required=required, help=out_help)
    p.add_argument(
        "--formats",
        nargs="+",
        default=list(formats) if formats is not None else None,
        help=formats_help,
    )


# -- option objects from the parsed arguments ---------------------------------------------------
def progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


def run_options(args: argparse.Namespace) -> Any:
    """The :class:`~inspect_kit.workflows.options.RunOptions` of a command."""
    from inspect_kit.workflows.options import RunOptions

    return RunOptions(
        random_state=getattr(args, "random_state", 0),
        device=args.device,
        threads=args.threads,
        progress=progress(args),
    )


def model_source(args: argparse.Namespace) -> Any:
    """The :class:`~inspect_kit.workflows.options.ModelSource` of MODEL/--weights/--model-args."""
    from inspect_kit.workflows.options import ModelSource

    return ModelSource(args.model, weights=args.weights, model_args=args.model_args)


# -- printing results ---------------------------------------------------------------------------
def print_json(data: Any) -> None:
    print(json.dumps(data, indent=1, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def print_table(table: list[dict[str, Any]], as_json: bool = False) -> None:
    """Rows as aligned columns (every row's columns, in order), or as JSON."""
    if as_json:
        print_json(table)
        return
    if not table:
        return
    cols = list(dict.fromkeys(c for r in table for c in r))

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
