"""The command of a registered analysis without a command module of its own.

Its arguments follow from the registration (:mod:`inspect_kit.workflows.registry`): the
inputs it needs (STORE; or MODEL, ``--data`` with the data flags of
:class:`~inspect_kit.workflows.options.DataOptions` and ``--store``), one flag per field of
its options dataclass, ``--layers``, ``--out``/``--formats`` when it draws a figure, and the
run options. It prints the rows of its result as a table (or JSON) and the figures written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    add_common,
    add_layers,
    add_model,
    add_output,
    add_random_state,
    model_source,
    print_json,
    print_table,
    run_options,
    split_list,
)
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any) -> None:
    from inspect_kit.workflows.options import DataOptions

    if spec.needs == "model":
        add_model(p)
        p.add_argument(
            "--data",
            required=True,
            help="folder of images/NIfTI/DICOM, file.npz[:key] or file.h5:dataset",
        )
        p.add_argument("--store", type=Path, default=None, help="activation store (.h5)")
    else:
        p.add_argument("store", type=Path, help="activation store (.h5)")
    add_layers(p)
    add_options(p, spec.options)
    if spec.needs == "model":
        add_options(p, DataOptions)
    if spec.figure is not None:
        add_output(p, ["html"])
    add_random_state(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.options import DataOptions
    from inspect_kit.workflows.registered import run_analysis

    spec = args.spec
    needs_model = spec.needs == "model"
    done = run_analysis(
        spec,
        options_from_args(spec.options, args),
        store=args.store,
        model=model_source(args) if needs_model else None,
        data=args.data if needs_model else None,
        data_options=options_from_args(DataOptions, args) if needs_model else None,
        layers=split_list(args.layers),
        out=getattr(args, "out", None),
        formats=split_list(getattr(args, "formats", None)) or ["html"],
        run=run_options(args),
    )
    if args.json:
        print_json({"rows": done.rows, "figures": [str(p) for p in done.figures]})
        return 0
    print_table(done.rows)
    for path in done.figures:
        print(path)
    return 0
