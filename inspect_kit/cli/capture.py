"""``inspect-kit capture``: run a user's data through a model into an activation store.

The capture flags come from :class:`~inspect_kit.workflows.options.CaptureOptions` and the
data flags from :class:`~inspect_kit.workflows.options.DataOptions`, field by field.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_common, add_model, model_source, print_json, run_options
from ._options import add_options, options_from_args

HELP = "Run data through a model and store layer activations in HDF5."
EXAMPLES = """examples:
  inspect-kit capture torchvision.models:resnet18 scans/ --weights best.pt \\
      --model-args '{"num_classes": 2}' --channels 3 --size 224 224 --normalize imagenet \\
      --layers layer3,layer4,fc --reduce mean --out acts.h5
  inspect-kit capture mynet.py:Net volumes/ --labels labels.csv --out acts.h5

data: a folder of PNG/JPEG/TIFF images, of NIfTI volumes or of DICOM files (searched
recursively; labels from sub-folder names unless --labels), a .npz (file.npz or
file.npz:key), or an HDF5 dataset (file.h5:dataset)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from inspect_kit.workflows.options import CaptureOptions, DataOptions

    add_model(p)
    p.add_argument("data", help="folder of images/NIfTI/DICOM, file.npz[:key] or file.h5:dataset")
    p.add_argument("-o", "--out", type=Path, required=True, help="store to write (.h5)")
    add_options(p, CaptureOptions)
    add_options(p, DataOptions)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import (
        capture_user_data,
        store_description,
        store_summary,
    )
    from inspect_kit.workflows.options import CaptureOptions, DataOptions

    store_path = capture_user_data(
        model_source(args),
        args.data,
        args.out,
        data_options=options_from_args(DataOptions, args),
        capture_options=options_from_args(CaptureOptions, args),
        run=run_options(args),
    )
    summary = store_summary(store_path)
    if summary is None:  # under torchrun, rank 0 alone reports the joined store
        return 0
    if args.json:
        print_json(store_description(store_path))
    else:
        print(summary)
    return 0
