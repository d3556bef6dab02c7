"""``inspect-kit demo``: the whole profile on a CNN trained on brain MRI patches."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._common import add_common, add_random_state, print_json, run_options, split_list

HELP = "The whole profile on a CNN trained on brain MRI patches (MNI152)."
EXAMPLES = """examples:
  inspect-kit demo --out demo_out
  inspect-kit demo --out /tmp/quick --quick

Trains a small CNN on tissue-labelled brain MRI patches of nilearn's MNI152 template (no
download), captures its layers into OUT/activations.h5 and writes OUT/report.html and every
figure as PNG (300 dpi) and SVG under OUT/figures/."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from inspect_kit.workflows.options import EmbeddingOptions

    from ._options import add_options

    p.add_argument("-o", "--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test, ~1 min)")
    add_options(p, EmbeddingOptions, skip=("n_components", "refresh"), defaults={"methods": None})
    p.add_argument(
        "--formats", nargs="+", default=None, help="static figure formats (default: png svg)"
    )
    add_random_state(p)
    add_common(p, threads=1)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.demo import run_demo

    start = time.perf_counter()
    result = run_demo(
        args.out,
        quick=args.quick,
        methods=split_list(args.methods),
        formats=split_list(args.formats),
        run=run_options(args),
    )
    took = time.perf_counter() - start
    if args.json:
        print_json(
            {
                "store": str(result.store),
                "report": str(result.report),
                "figures": [str(p) for p in result.figures],
                "seconds": round(took, 1),
            }
        )
        return 0
    print(f"store   {result.store}")
    print(f"report  {result.report}")
    print(f"figures {len(result.figures)} files in {result.figures_dir}")
    print(f"done in {took:.0f} s")
    return 0
