"""The ``inspect-kit`` command: profile a trained network from the shell.

Each step on its own (``layers``, ``capture``, ``embed``, ``featurevis``, ``probe``,
``compare``, ``report``) for a user's model and data, and ``demo``, the whole profile on a
small CNN trained on real brain MRI patches. ``inspect-kit COMMAND --help`` explains each.

One module per command holds its arguments, its handler and (for the commands that are not
analyses) its examples. The analyses' commands follow from their registration
(:mod:`inspect_kit.workflows.registry`): the flags from their options dataclass, the help
and examples from the registration; an analysis registered without a command module here
gets the generic one (:mod:`.analysis`).

Errors are one line on stderr (``inspect-kit: error: ...``) with exit status 2 for bad
arguments and 1 for failures; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from inspect_kit.analysis.embedding.registry import method_names, normalise

from ._common import PROG, Formatter, Parser, UsageError, add_global, split_list

__all__ = ["PROG", "UsageError", "build_parser", "examples", "main"]

logger = logging.getLogger("inspect_kit.cli")

#: commands that are not analyses, before and after the analyses' commands in --help
_BEFORE = ("layers", "capture")
_AFTER = ("report", "demo")
#: analyses whose command has a module of its own here (the others use .analysis)
_ANALYSIS_MODULES = ("embed", "featurevis", "probe", "compare", "attribute")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _commands() -> list[tuple[str, str, str, ModuleType, Any]]:
    """``(name, help, epilog, module, spec)`` of every command, in the order --help lists them."""
    from inspect_kit.workflows.registry import analyses

    out: list[tuple[str, str, str, ModuleType, Any]] = []
    for name in _BEFORE:
        mod = _module(name)
        out.append((name, mod.HELP, mod.EXAMPLES, mod, None))
    for spec in analyses(commands_only=True):
        mod = _module(spec.name if spec.name in _ANALYSIS_MODULES else "analysis")
        out.append((spec.name, spec.summary, spec.epilog(), mod, spec))
    for name in _AFTER:
        mod = _module(name)
        out.append((name, mod.HELP, mod.EXAMPLES, mod, None))
    return out


def examples() -> dict[str, str]:
    """Each command's ``--help`` examples (the text after its arguments).

    Examples
    --------
    >>> "inspect-kit probe acts.h5" in examples()["probe"]
    True
    """
    return {name: epilog for name, _, epilog, _, _ in _commands()}


def build_parser() -> argparse.ArgumentParser:
    """The ``inspect-kit`` argument parser (with every registered analysis's command)."""
    from inspect_kit._version import __version__

    parser = Parser(
        prog=PROG,
        description="Understand what a trained PyTorch network has learned: capture layer "
        "activations, embed them, visualise units, probe and compare layers, and write a report.",
        epilog="examples:\n  inspect-kit demo --out demo_out\n"
        "  inspect-kit layers torchvision.models:resnet18\n"
        "  inspect-kit capture MODEL DATA --out acts.h5 && inspect-kit report acts.h5\n\n"
        "Run 'inspect-kit COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"inspect-kit {__version__}")
    add_global(
        parser.add_argument_group("global options (before or after the command)"), suppress=False
    )
    import shtab

    shtab.add_argument_to(
        parser,
        ["--print-completion"],
        help="print a bash/zsh/tcsh "
        'completion script: eval "$(inspect-kit --print-completion bash)"',
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help_, epilog, mod, spec in _commands():
        p = sub.add_parser(
            name, help=help_, description=help_, epilog=epilog, formatter_class=Formatter
        )
        p.set_defaults(func=mod.run, spec=spec)
        if spec is None:
            mod.add_arguments(p)
        else:
            mod.add_arguments(p, spec)
    return parser


# -- entry point ------------------------------------------------------------------------------------
@contextmanager
def _logging(quiet: bool, verbose: int = 0) -> Iterator[None]:
    """Step messages of the pipeline on stderr; library details only when they are warnings.

    ``verbose`` 1 adds every library module's INFO messages, 2 their DEBUG messages.

    The previous configuration comes back afterwards, so ``main()`` called in-process (tests,
    notebooks) leaves logging as it found it.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[inspect-kit] %(message)s"))
    root = logging.getLogger("inspect_kit")
    names = ("inspect_kit.workflows", "inspect_kit.cli")
    saved = (
        root.handlers[:],
        root.level,
        root.propagate,
        [logging.getLogger(n).level for n in names],
    )
    root.handlers[:] = [handler]
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    root.propagate = False
    for name in names:
        logging.getLogger(name).setLevel(
            logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
        )
    try:
        yield
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
        for name, level in zip(names, saved[3], strict=True):
            logging.getLogger(name).setLevel(level)


_FORMATS = ("html", "png", "svg", "pdf", "jpg", "jpeg", "webp")


def _validate(args: argparse.Namespace) -> None:
    """Checks argparse cannot make on comma-separated lists (exit status 2, before any work)."""
    for attr, valid, what, key in (
        ("formats", _FORMATS, "figure format", lambda v: v.lower().lstrip(".")),
        ("methods", method_names(), "embedding method", normalise),
    ):
        values = split_list(getattr(args, attr, None)) or []
        bad = [v for v in values if key(v) not in valid]
        if bad:
            raise UsageError(f"unknown {what}(s) {', '.join(bad)}; use {', '.join(valid)}")


#: terminal escape sequences (colours, cursor moves) some libraries put in their messages
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err)
    text = _ESCAPES.sub("", text)
    text = "".join(c if c.isprintable() else " " for c in text)  # no control characters
    text = " ".join(text.split())  # one line
    return text or type(err).__name__


#: commands whose --out is one file in an existing folder; the others make their folder
_FILE_OUT = ("capture", "attribute", "report")


def _check_out(args: argparse.Namespace) -> None:
    """Fail before any work when ``--out`` cannot be written (a file in the way, no access).

    The message names the path and the reason, like every data error.
    """
    out = getattr(args, "out", None)
    if out is None:
        return
    out = Path(out)
    if args.command in _FILE_OUT:
        if out.is_dir():
            raise ValueError(f"{out}: is a folder; give the file to write, e.g. {out / 'out.h5'}")
        folder = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: is a file; give a folder for the output")
        folder = out
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{out}: cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: cannot be written: no permission to write in {existing}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 bad arguments).

    Examples
    --------
    >>> main(["layers", "torchvision.models:resnet18", "--types", "Conv2d"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        sys.stderr.write(f"{PROG}: error: no command given\n")
        return 2
    debug = getattr(args, "debug", False) or os.environ.get("INSPECT_KIT_DEBUG") == "1"
    try:
        _validate(args)
        _check_out(args)
        with _logging(getattr(args, "quiet", False), getattr(args, "verbose", 0)):
            if getattr(args, "threads", None) is None:
                return int(args.func(args) or 0)
            from inspect_kit.workflows.output import limit_threads

            with limit_threads(args.threads):
                return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except UsageError as err:
        if debug:
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {_message(err)}\n")
        return 2
    except Exception as err:  # every failure becomes one line; --debug shows the traceback
        if debug:
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {_message(err)}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
