"""``inspect-kit compare``: CKA or RSA between the layers of one store, or of two.

The analysis's flags come from :class:`~inspect_kit.workflows.options.SimilarityOptions`;
its registration gives the help and examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    add_common,
    add_layers,
    add_output,
    add_random_state,
    print_json,
    run_options,
    split_list,
)
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any) -> None:
    p.add_argument("store", type=Path, help="activation store (.h5)")
    p.add_argument(
        "other", type=Path, nargs="?", default=None, help="a second store with the same samples"
    )
    add_layers(p, "layers of STORE (default: all)")
    p.add_argument(
        "--other-layers",
        nargs="+",
        default=None,
        help="layers of OTHER (default: all; without OTHER: --layers)",
    )
    add_options(p, spec.options)
    add_output(
        p,
        ["html"],
        out_help="folder for the heatmap (default: figures/ next to STORE)",
        formats_help="html (interactive), png, svg, pdf",
    )
    add_random_state(p, "seed of the minibatches and the subset")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.compare import compare_stores, format_matrix
    from inspect_kit.workflows.options import SimilarityOptions

    sim, paths = compare_stores(
        args.store,
        args.other,
        options_from_args(SimilarityOptions, args),
        layers=split_list(args.layers),
        other_layers=split_list(args.other_layers),
        out=args.out,
        formats=split_list(args.formats) or ["html"],
        run=run_options(args),
    )
    if args.json:
        print_json({**sim.to_dict(), "figures": [str(p) for p in paths]})
        return 0
    print(format_matrix(sim))
    for p in paths:
        print(p)
    return 0
