"""``inspect-kit layers``: a model's layers, the names capture and featurevis take."""

from __future__ import annotations

import argparse

from ._common import (
    add_common,
    add_model,
    model_source,
    positive_int,
    print_json,
    run_options,
    split_list,
)

HELP = "List a model's layers (names to use with capture and featurevis)."
EXAMPLES = """examples:
  inspect-kit layers torchvision.models:resnet18 --types Conv2d
  inspect-kit layers inspect_kit.models:SmallCNN --model-args '{"n_classes": 3}' --input-shape 1 16 16"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model(p)
    p.add_argument("--types", nargs="+", default=None, help="only these module types (Conv2d,...)")
    p.add_argument(
        "--include",
        nargs="+",
        default=None,
        help="glob patterns names must match ('*' within one dotted name, '**' across dots)",
    )
    p.add_argument("--exclude", nargs="+", default=None, help="glob patterns names must not match")
    p.add_argument(
        "--input-shape",
        type=positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="one sample's shape (C H W or C D H W): also show output shapes",
    )
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import layer_table

    rows, model = layer_table(
        model_source(args),
        include=args.include,
        exclude=args.exclude,
        types=split_list(args.types),
        input_shape=args.input_shape,
        run=run_options(args),
    )
    if args.json:
        print_json(rows)
        return 0
    shapes = bool(args.input_shape)
    w = max([len(r["name"]) for r in rows] + [5])
    print(f"{'layer':<{w}}  {'type':<22} {'params':>10}" + ("  output" if shapes else ""))
    for r in rows:
        line = f"{r['name']:<{w}}  {r['type']:<22} {r['params']:>10,}"
        print(line + (f"  {r['output']}" if shapes else ""))
    total = sum(p.numel() for p in model.parameters())
    print(f"{len(rows)} layers, {total:,} parameters in {type(model).__name__}")
    return 0
