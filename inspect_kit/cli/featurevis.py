"""``inspect-kit featurevis``: activation maximization of a layer's units, with exemplars.

The analysis's flags come from :class:`~inspect_kit.workflows.options.FeatureVisOptions`;
its registration gives the help and examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    add_common,
    add_model,
    add_output,
    add_random_state,
    model_source,
    print_json,
    run_options,
    split_list,
)
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any) -> None:
    add_model(p)
    add_options(p, spec.options)
    p.add_argument(
        "--store",
        type=Path,
        default=None,
        help="store captured from this model: exemplars, unit selection, input shape. Its "
        "model_sha256 is checked: a store from other weights gives no exemplars (a warning says "
        "so) unless --ignore-model-mismatch",
    )
    p.add_argument(
        "--ignore-model-mismatch",
        action="store_true",
        help="use the store's exemplars even when it was captured from other weights",
    )
    add_output(p, ["html", "png"], out_help="folder for the figures", required=True)
    add_random_state(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import featurevis_units
    from inspect_kit.workflows.options import FeatureVisOptions

    paths = featurevis_units(
        model_source(args),
        options_from_args(FeatureVisOptions, args),
        args.out,
        store=args.store,
        formats=split_list(args.formats),
        ignore_model_mismatch=args.ignore_model_mismatch,
        run=run_options(args),
    )
    if args.json:
        print_json({"figures": [str(p) for p in paths]})
        return 0
    for p in paths:
        print(p)
    return 0
