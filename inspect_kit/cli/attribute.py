"""``inspect-kit attribute MODEL DATA``: attribution maps of a user's data into a store.

The model and data flags are capture's; the attribution flags come from
:class:`~inspect_kit.workflows.attribution.AttributeOptions`, field by field.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_common, add_model, model_source, print_json, run_options
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any = None) -> None:
    from inspect_kit.workflows.attribution import AttributeOptions
    from inspect_kit.workflows.options import DataOptions

    add_model(p)
    p.add_argument("data", help="folder of images/NIfTI/DICOM, file.npz[:key] or file.h5:dataset")
    p.add_argument("-o", "--out", type=Path, required=True, help="store of maps to write (.h5)")
    add_options(p, AttributeOptions)
    add_options(p, DataOptions)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.attribution import (
        AttributeOptions,
        attribute_user_data,
        attribution_summary,
    )
    from inspect_kit.workflows.options import DataOptions

    path = attribute_user_data(
        model_source(args),
        args.data,
        args.out,
        data_options=options_from_args(DataOptions, args),
        options=options_from_args(AttributeOptions, args),
        run=run_options(args),
    )
    found = attribution_summary(path)
    if args.json:
        print_json({"store": str(path), "attributions": found})
        return 0
    for item in found:
        print(item["description"])
    print(f"attribution maps written to {path}")
    return 0
