"""``inspect-kit probe``: linear probes of every stored layer.

The analysis's flags come from :class:`~inspect_kit.workflows.options.ProbeOptions`; its
registration gives the help and examples. This module adds the store, the layers, the
Dask scheduler and the output, and refuses combinations argparse cannot see.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    UsageError,
    add_common,
    add_layers,
    add_output,
    add_random_state,
    print_table,
    run_options,
    split_list,
)
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any) -> None:
    p.add_argument("store", type=Path, help="activation store (.h5)")
    add_layers(p)
    add_options(p, spec.options)
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler (tcp://host:8786) on whose workers streamed probes "
        "read and pool the layers (they must see the store's file); needs inspect-kit[scale]",
    )
    add_output(p, ["html", "png"], out_help="folder for the figure")
    add_random_state(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import probe_layers
    from inspect_kit.workflows.options import ProbeOptions

    if args.solver == "streaming" and args.chance == "permutation":
        raise UsageError(
            "--chance permutation refits every probe --permutations times, in memory only: "
            "use --solver memory (or auto), or --chance balanced with --solver streaming"
        )
    if args.solver == "memory" and (args.batch_size is not None or args.epochs is not None):
        raise UsageError(
            "--batch-size and --epochs set the streamed SGD probe: use them with --solver "
            "streaming (or auto), not memory"
        )
    table = probe_layers(
        args.store,
        options_from_args(ProbeOptions, args),
        layers=split_list(args.layers),
        scheduler=args.scheduler,
        out=args.out,
        formats=split_list(args.formats),
        run=run_options(args),
    )
    print_table(table, args.json)
    return 0
