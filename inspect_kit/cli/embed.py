"""``inspect-kit embed``: PCA, t-SNE and UMAP maps of stored layers.

The analysis's flags (``--methods``, ``--dims``, ``--refresh``) come from
:class:`~inspect_kit.workflows.options.EmbeddingOptions`; its registration
(:mod:`inspect_kit.workflows.registry`) gives the help and examples. This module adds the
methods' own parameters, which travel in ``EmbeddingOptions.method_params``.
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
    positive_int,
    print_table,
    run_options,
    split_list,
)
from ._options import add_options, options_from_args


def add_arguments(p: argparse.ArgumentParser, spec: Any) -> None:
    from inspect_kit.analysis.embedding.registry import PCA_SOLVERS

    p.add_argument("store", type=Path, help="activation store (.h5)")
    add_layers(p)
    add_options(p, spec.options)
    p.add_argument(
        "--color",
        default="auto",
        help="colour points by label, prediction, correct or a metadata column",
    )
    add_output(
        p,
        ["html", "png"],
        out_help="folder for the figures (default: next to the store)",
        formats_help="html (interactive, hover thumbnails), png, svg, pdf",
    )
    m = p.add_argument_group("method parameters")
    m.add_argument(
        "--perplexity",
        type=float,
        default=None,
        help="t-SNE perplexity (default: the method's, lowered for few samples)",
    )
    m.add_argument(
        "--n-neighbors",
        type=positive_int,
        default=None,
        help="UMAP neighbours (default: the method's)",
    )
    m.add_argument(
        "--pca-solver",
        choices=PCA_SOLVERS,
        default="auto",
        help="how PCA (and t-SNE's and UMAP's PCA pre-reduction) is fitted: in memory, "
        "streamed covariance or incremental, or 'dask' on the cluster of --scheduler (default "
        "auto: in memory when the features fit, else streamed; Dask when a cluster is given "
        "and they do not fit)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler (tcp://host:8786) on whose workers the layers are read, "
        "pooled and reduced by PCA (with --pca-solver dask, or auto for layers larger than "
        "memory; the workers must see the store's file); needs inspect-kit[scale]",
    )
    add_random_state(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import embed_layers
    from inspect_kit.workflows.options import EmbeddingOptions

    options = options_from_args(
        EmbeddingOptions,
        args,
        method_params={
            "perplexity": args.perplexity,
            "n_neighbors": args.n_neighbors,
            # PCA's own solver and t-SNE's/UMAP's pre-reduction solver: one choice for both
            **(
                {"solver": args.pca_solver, "pca_solver": args.pca_solver}
                if args.pca_solver != "auto"
                else {}
            ),
        },
    )
    table = embed_layers(
        args.store,
        options,
        layers=split_list(args.layers),
        out=args.out,
        formats=split_list(args.formats),
        color=args.color,
        run=run_options(args),
        scheduler=args.scheduler,
    )
    print_table(table, args.json)
    return 0
