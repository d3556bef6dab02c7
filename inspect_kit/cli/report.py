"""``inspect-kit report``: one self-contained HTML report of a store (and its model)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._common import (
    add_common,
    add_layers,
    add_model,
    add_random_state,
    model_source,
    positive_int,
    print_json,
    run_options,
    split_list,
)

HELP = "One self-contained HTML report of a store (and its model)."
EXAMPLES = """examples:
  inspect-kit report acts.h5 --out report.html
  inspect-kit report acts.h5 --model inspect_kit.models:SmallCNN --weights net.pt \\
      --model-args '{"n_classes": 3}' --data patches.npz --out report.html

The model and data recorded by `inspect-kit capture` are used when not given."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from inspect_kit.workflows.options import EmbeddingOptions

    from ._options import add_options

    p.add_argument("store", type=Path, help="activation store (.h5)")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="report file (default: report.html next to the store)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="package.module:factory (default: as recorded by inspect-kit capture)",
    )
    add_model(p, required=False)
    p.add_argument(
        "--data",
        default=None,
        help="inputs for the autoencoder probe (default: as recorded by capture)",
    )
    add_layers(p)
    add_options(p, EmbeddingOptions, skip=("n_components", "refresh"), defaults={"methods": None})
    p.add_argument(
        "--formats",
        nargs="+",
        default=None,
        help="also export every figure as png/svg/pdf under figures/",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=192,
        help="feature visualization steps (the sanity check uses half)",
    )
    p.add_argument("--no-featurevis", action="store_true", help="skip feature visualization")
    p.add_argument("--no-latent", action="store_true", help="skip the autoencoder probe")
    add_random_state(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.options import EmbeddingOptions, ReportOptions
    from inspect_kit.workflows.pipeline import report_from_store

    defaults = ReportOptions()
    methods = split_list(args.methods)
    featurevis = None
    if not args.no_featurevis and defaults.featurevis is not None:
        featurevis = dataclasses.replace(
            defaults.featurevis, steps=args.steps, sanity_steps=max(1, args.steps // 2)
        )
    opts = ReportOptions(
        layers=split_list(args.layers),
        formats=tuple(split_list(args.formats) or ()),
        embedding=EmbeddingOptions(methods=tuple(methods)) if methods else defaults.embedding,
        featurevis=featurevis,
        latent=None if args.no_latent else defaults.latent,
        run=run_options(args),
    )
    result = report_from_store(
        args.store,
        out=args.out,
        model=model_source(args) if args.model else None,
        data=args.data,
        options=opts,
    )
    if args.json:
        print_json({"report": str(result.report)})
    else:
        print(result.report)
    return 0
