"""The ``inspect-kit`` command: profile a trained network from the shell.

Each step on its own (``layers``, ``capture``, ``embed``, ``featurevis``, ``probe``,
``compare``, ``report``) for a user's model and data, and ``demo``, the whole profile on a
small CNN trained on real brain MRI patches. ``inspect-kit COMMAND --help`` explains each.

Errors are one line on stderr (``inspect-kit: error: ...``) with exit status 2 for bad
arguments and 1 for failures; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from inspect_kit.analysis.embedding.registry import (
    PCA_SOLVERS,
    default_methods,
    method_names,
    normalise,
)

PROG = "inspect-kit"
logger = logging.getLogger("inspect_kit.cli")


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``inspect-kit capture: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout; shows defaults that say something (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and action.option_strings
        ):
            shown = " ".join(map(str, default)) if isinstance(default, list) else default
            text += f" (default: {shown})"
        return text


# -- argument helpers -------------------------------------------------------------------------------
def _split_list(values: Sequence[str] | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``."""
    if values is None:
        return None
    out = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
    return out or None


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"--model-args must be a JSON object such as '{{\"num_classes\": 3}}' ({err.msg})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"--model-args must be a JSON object (a dict), got {type(value).__name__}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser, threads: int | None = None) -> None:
    g = p.add_argument_group("general")
    g.add_argument(
        "--threads",
        type=_positive_int,
        default=threads,
        help="CPU threads for torch and BLAS (default: the libraries' own choice for all "
        "commands but demo; on a busy machine 1 is often fastest)",
    )
    _add_global(g, suppress=True)
    g.add_argument(
        "--device",
        default=None,
        help="torch device, e.g. cpu or cuda:0 (default: where the model is)",
    )


#: every command that draws random numbers: random_state, as in the library (--seed: its old name)
_RANDOM_STATE = ("--random-state", "--seed")
_RANDOM_STATE_KW: dict[str, Any] = {
    "dest": "random_state",
    "type": int,
    "default": 0,
    "metavar": "N",
    "help": "seed of every random draw (default: 0)",
}


def _add_global(g: Any, *, suppress: bool) -> None:
    """Options that work before or after the command: ``inspect-kit -q demo`` = ``demo -q``.

    The top-level parser holds the defaults; a command's copy uses ``SUPPRESS`` so that an
    option given before the command is not reset by the command's own parser.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress bars or step messages",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more messages: -v the library's steps, -vv debugging details",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the full traceback on errors",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the command's results as JSON on stdout (messages stay on stderr)",
    )


def _add_model(p: argparse.ArgumentParser, required: bool = True) -> None:
    if required:
        p.add_argument(
            "model",
            help="model factory as package.module:factory (torchvision.models:resnet18) "
            "or path/to/file.py:factory",
        )
    p.add_argument("--weights", type=Path, default=None, help="state_dict file (torch.save)")
    p.add_argument(
        "--model-args",
        type=_json_dict,
        default=None,
        metavar="JSON",
        help="keyword arguments of the factory, e.g. '{\"num_classes\": 3}'",
    )


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--labels",
        default=None,
        help="labels: CSV of filename,label rows, or file.npz:key / file.h5:dataset "
        "(default: sub-folder names, or the .npz's y)",
    )
    g.add_argument(
        "--size",
        type=_positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="resize samples to H W (or D H W)",
    )
    g.add_argument(
        "--channels",
        type=_positive_int,
        default=None,
        metavar="C",
        help="channels the model expects, for every format: images to grayscale (1) or RGB "
        "(3); one-channel CT/MR repeated to C; 1 averages several",
    )
    g.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="clip intensities to a window and scale it to [0, 1], e.g. -1000 400 (HU)",
    )
    g.add_argument(
        "--normalize",
        default=None,
        help="none, imagenet, zscore, or MEAN,STD (per channel M1:M2:M3,S1:S2:S3)",
    )
    m = p.add_argument_group("medical volumes (NIfTI, DICOM)")
    m.add_argument(
        "--spacing",
        type=_positive_float,
        nargs=3,
        default=None,
        metavar=("D", "H", "W"),
        help="resample volumes to this voxel size in mm (anti-aliased); --size then crops or "
        "pads instead of resizing",
    )
    m.add_argument(
        "--orientation",
        default="RAS",
        help="reorient volumes to these axis codes (default RAS); 'none' keeps the stored order",
    )
    m.add_argument(
        "--slices",
        action="store_true",
        help="DICOM: one 2D sample per slice (for 2D networks), not one volume per series",
    )
    m.add_argument(
        "--sequences",
        nargs="+",
        default=None,
        metavar="NAME",
        help="NIfTI: sub-folders holding one MRI sequence each (T1 T2 FLAIR); files of the "
        "same name form one multi-channel sample",
    )
    m.add_argument(
        "--allow-irregular",
        action="store_true",
        help="load DICOM series with missing slices or uneven spacing (with a warning)",
    )
    m.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="skip unreadable files (they are listed) instead of stopping",
    )
    m.add_argument(
        "--keep-identifiers",
        action="store_true",
        help="store DICOM PatientID verbatim (default: a salted SHA-256 prefix)",
    )
    m.add_argument(
        "--id-salt",
        default=None,
        help="salt of the hashed IDs; the same salt gives the same IDs across stores",
    )


def _data_options(args: argparse.Namespace) -> Any:
    """The options of :func:`_add_data_options` as a :class:`DataOptions`."""
    from inspect_kit.workflows.options import DataOptions

    orientation = None if str(args.orientation).lower() == "none" else args.orientation
    return DataOptions(
        labels=args.labels,
        size=args.size,
        channels=args.channels,
        window=args.window,
        normalize=args.normalize,
        orientation=orientation,
        spacing=args.spacing,
        as_slices=args.slices,
        sequences=args.sequences,
        allow_irregular=args.allow_irregular,
        skip_unreadable=args.skip_unreadable,
        keep_identifiers=args.keep_identifiers,
        id_salt=args.id_salt,
    )


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


# -- option objects from the parsed arguments ------------------------------------------------------
def _run(args: argparse.Namespace) -> Any:
    from inspect_kit.workflows.options import RunOptions

    return RunOptions(
        random_state=getattr(args, "random_state", 0),
        device=args.device,
        threads=args.threads,
        progress=_progress(args),
    )


def _model_source(args: argparse.Namespace) -> Any:
    from inspect_kit.workflows.options import ModelSource

    return ModelSource(args.model, weights=args.weights, model_args=args.model_args)


# -- commands: each hands option objects to a workflow (inspect_kit.workflows) ----------------------
def cmd_layers(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import layer_table

    rows, model = layer_table(
        _model_source(args),
        include=args.include,
        exclude=args.exclude,
        types=_split_list(args.types),
        input_shape=args.input_shape,
        device=args.device,
    )
    if args.json:
        _print_json(rows)
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


def cmd_capture(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import capture_user_data, store_summary
    from inspect_kit.workflows.options import CaptureOptions

    store_path = capture_user_data(
        _model_source(args),
        args.data,
        args.out,
        data_options=_data_options(args),
        capture_options=CaptureOptions(
            layers=tuple(_split_list(args.layers) or ()),
            reduce=None if args.reduce == "none" else args.reduce,
            dtype=args.dtype,
            batch_size=args.batch_size,
            thumbnails=None if args.thumbnails == "none" else args.thumbnails,
            overwrite=args.overwrite,
            resume=args.resume,
        ),
        run=_run(args),
    )
    summary = store_summary(store_path)
    if summary is None:  # under torchrun, rank 0 alone reports the joined store
        return 0
    if args.json:
        from inspect_kit.workflows.commands import store_description

        _print_json(store_description(store_path))
    else:
        print(summary)
    return 0


def cmd_attribute(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.attribution import AttributeOptions, attribute_user_data

    methods = tuple(_split_list(args.method) or ())
    path = attribute_user_data(
        _model_source(args),
        args.data,
        args.out,
        data_options=_data_options(args),
        options=AttributeOptions(
            methods=methods,
            target=args.target,
            layer=args.layer,
            batch_size=args.batch_size,
            memory_budget=args.memory_budget,
            steps=args.steps,
            samples=args.samples,
            window=tuple(args.occlusion_window) if args.occlusion_window else None,
            stride=tuple(args.occlusion_stride) if args.occlusion_stride else None,
            overwrite=args.overwrite,
            resume=args.resume,
        ),
        run=_run(args),
    )
    from inspect_kit.workflows.attribution import attribution_summary

    found = attribution_summary(path)
    if args.json:
        _print_json({"store": str(path), "attributions": found})
    else:
        for item in found:
            print(item["description"])
        print(f"attribution maps written to {path}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import embed_layers
    from inspect_kit.workflows.options import EmbeddingOptions

    options = EmbeddingOptions(
        methods=tuple(_split_list(args.methods) or default_methods()),
        n_components=args.dims,
        refresh=args.refresh,
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
        layers=_split_list(args.layers),
        out=args.out,
        formats=_split_list(args.formats),
        color=args.color,
        run=_run(args),
        scheduler=args.scheduler,
    )
    _print_table(table, args.json)
    return 0


def cmd_featurevis(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import featurevis_units
    from inspect_kit.workflows.options import FeatureVisOptions

    options = FeatureVisOptions(
        layer=args.layer,
        units=tuple(int(u) for u in _split_list(args.units) or []),
        n_units=args.top,
        steps=args.steps,
        exemplars=args.exemplars,
        input_shape=args.input_shape,
        value_range=args.value_range,
        sanity=args.sanity,
    )
    paths = featurevis_units(
        _model_source(args),
        options,
        args.out,
        store=args.store,
        formats=_split_list(args.formats),
        ignore_model_mismatch=args.ignore_model_mismatch,
        run=_run(args),
    )
    if args.json:
        _print_json({"figures": [str(p) for p in paths]})
        return 0
    for p in paths:
        print(p)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.commands import probe_layers

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
        layers=_split_list(args.layers),
        target=args.target,
        cv=args.cv,
        groups=args.groups,
        C=args.C,
        chance=args.chance,
        n_permutations=args.permutations,
        reduce=args.reduce,
        task=args.task,
        solver=args.solver,
        batch_size=args.batch_size,
        epochs=args.epochs,
        scheduler=args.scheduler,
        out=args.out,
        formats=_split_list(args.formats),
        run=_run(args),
    )
    _print_table(table, args.json)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.compare import compare_stores, format_matrix

    sim, paths = compare_stores(
        args.store,
        args.other,
        layers=_split_list(args.layers),
        other_layers=_split_list(args.other_layers),
        method=args.method,
        kernel=args.kernel,
        reduction=None if args.reduce == "flatten" else args.reduce,
        batch_size=args.batch_size,
        n_samples=args.samples,
        out=args.out,
        formats=_split_list(args.formats) or ["html"],
        random_state=args.random_state,
        refresh=args.refresh,
        progress=_progress(args),
    )
    if args.json:
        _print_json({**sim.to_dict(), "figures": [str(p) for p in paths]})
        return 0
    print(format_matrix(sim))
    for p in paths:
        print(p)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.options import ReportOptions
    from inspect_kit.workflows.pipeline import report_from_store

    opts = ReportOptions(
        methods=tuple(_split_list(args.methods) or default_methods()),
        layers=_split_list(args.layers),
        formats=tuple(_split_list(args.formats) or ()),
        featurevis=not args.no_featurevis,
        featurevis_steps=args.steps,
        sanity_steps=max(1, args.steps // 2),
        latent=not args.no_latent,
        random_state=args.random_state,
        device=args.device,
        threads=args.threads,
        progress=_progress(args),
    )
    result = report_from_store(
        args.store,
        out=args.out,
        model=_model_source(args) if args.model else None,
        data=args.data,
        options=opts,
    )
    if args.json:
        _print_json({"report": str(result.report)})
    else:
        print(result.report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from inspect_kit.workflows.demo import run_demo

    start = time.perf_counter()
    result = run_demo(
        args.out,
        quick=args.quick,
        methods=_split_list(args.methods),
        formats=_split_list(args.formats),
        random_state=args.random_state,
        device=args.device,
        threads=args.threads,
        progress=_progress(args),
    )
    took = time.perf_counter() - start
    if args.json:
        _print_json(
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


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=1, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def _print_table(table: list[dict[str, Any]], as_json: bool = False) -> None:
    if as_json:
        _print_json(table)
        return
    if not table:
        return
    cols = list(dict.fromkeys(c for r in table for c in r))  # every row's columns, in order

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


# -- parser -----------------------------------------------------------------------------------------
_EXAMPLES = {
    "layers": """examples:
  inspect-kit layers torchvision.models:resnet18 --types Conv2d
  inspect-kit layers inspect_kit.models:SmallCNN --model-args '{"n_classes": 3}' --input-shape 1 16 16""",
    "capture": """examples:
  inspect-kit capture torchvision.models:resnet18 scans/ --weights best.pt \\
      --model-args '{"num_classes": 2}' --channels 3 --size 224 224 --normalize imagenet \\
      --layers layer3,layer4,fc --reduce mean --out acts.h5
  inspect-kit capture mynet.py:Net volumes/ --labels labels.csv --out acts.h5

data: a folder of PNG/JPEG/TIFF images, of NIfTI volumes or of DICOM files (searched
recursively; labels from sub-folder names unless --labels), a .npz (file.npz or
file.npz:key), or an HDF5 dataset (file.h5:dataset).""",
    "attribute": """examples:
  inspect-kit attribute torchvision.models:resnet18 scans/ --weights best.pt \\
      --model-args '{"num_classes": 2}' --channels 3 --size 224 224 \\
      --method gradcam integrated-gradients occlusion --target predicted --out attr.h5
  inspect-kit attribute mynet.py:Net volumes/ --method gradcam --layer features.denseblock3 \\
      --memory-budget 4GiB --out attr.h5

The model and data options are those of capture; maps are written as computed (signed where
the method is signed) under attributions/<method>/<key> of the store.""",
    "embed": """examples:
  inspect-kit embed acts.h5 --layers layer3,layer4 --methods pca,umap --out figures/
  inspect-kit embed acts.h5 --methods tsne --color prediction --formats html,png,pdf
  inspect-kit embed big.h5 --methods pca,umap --pca-solver dask --scheduler tcp://scheduler:8786""",
    "featurevis": """examples:
  inspect-kit featurevis inspect_kit.models:SmallCNN --weights net.pt \\
      --model-args '{"n_classes": 3}' --layer relu3 --store acts.h5 --top 6 --sanity --out fv/
  inspect-kit featurevis torchvision.models:resnet18 --layer layer4 --units 0,1,2 \\
      --input-shape 3 224 224 --value-range 0 1 --out fv/""",
    "probe": """examples:
  inspect-kit probe acts.h5 --out probes/
  inspect-kit probe acts.h5 --target site --layers layer2,layer3,layer4 --cv 5
  inspect-kit probe ct.h5 --groups PatientID --chance permutation --permutations 200 --C 0.1
  inspect-kit probe big.h5 --solver streaming --batch-size 512 --epochs 5
  inspect-kit probe big.h5 --solver streaming --scheduler tcp://scheduler:8786
a layer that cannot be probed is reported (a row with its error) and skipped; a fragile
score carries its warning. Streamed probes (SGD over blocks of rows) never hold a layer in
memory; with --scheduler they read and pool the blocks on that Dask cluster's workers. The
solver, batch size and epochs are recorded with the scores in the store (/probes/<target>).""",
    "compare": """examples:
  inspect-kit compare acts.h5 --out figures/
  inspect-kit compare run1.h5 run2.h5 --layers layer1,layer2,layer3,layer4 --formats html png
  inspect-kit compare site_a.h5 site_b.h5 --method rsa --samples 500 --json

With one store, its layers are compared with each other; with two (two seeds, two models, two
sites' fine-tunes), every layer of the first with every layer of the second, on the samples
both hold (matched by their dataset index). Results are cached in the first store.""",
    "report": """examples:
  inspect-kit report acts.h5 --out report.html
  inspect-kit report acts.h5 --model inspect_kit.models:SmallCNN --weights net.pt \\
      --model-args '{"n_classes": 3}' --data patches.npz --out report.html

The model and data recorded by `inspect-kit capture` are used when not given.""",
    "demo": """examples:
  inspect-kit demo --out demo_out
  inspect-kit demo --out /tmp/quick --quick

Trains a small CNN on tissue-labelled brain MRI patches of nilearn's MNI152 template (no
download), captures its layers into OUT/activations.h5 and writes OUT/report.html and every
figure as PNG (300 dpi) and SVG under OUT/figures/.""",
}


def _add_methods(p: argparse.ArgumentParser, default: list[str] | None) -> None:
    """``--methods``, with the names of the embedding registry."""
    p.add_argument(
        "--methods",
        nargs="+",
        default=default,
        help=f"embedding methods: {', '.join(method_names())} (default: "
        f"{' '.join(default_methods())})",
    )


# -- arguments of each command ---------------------------------------------------------------------
def _args_layers(p: argparse.ArgumentParser) -> None:
    _add_model(p)
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
        type=_positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="one sample's shape (C H W or C D H W): also show output shapes",
    )
    _add_common(p)


def _args_capture(p: argparse.ArgumentParser) -> None:
    _add_model(p)
    p.add_argument("data", help="folder of images/NIfTI/DICOM, file.npz[:key] or file.h5:dataset")
    p.add_argument("-o", "--out", type=Path, required=True, help="store to write (.h5)")
    p.add_argument(
        "--layers",
        nargs="+",
        default=None,
        help="layers to capture (comma or space separated; 'relu:1' a second call, 'lstm[0]' "
        "one output, 'layer4.*' the blocks of layer4, 'layer4.**' everything in it; "
        "default: every convolution, activation and linear layer)",
    )
    p.add_argument(
        "--reduce",
        choices=("none", "mean", "max", "flatten"),
        default="mean",
        help="pool each channel's map over space (mean, max), flatten it, or store full "
        "maps (none: large for big inputs)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default=None,
        help="storage dtype of activations (default: as computed)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument(
        "--thumbnails",
        choices=("slice", "mip", "none"),
        default="slice",
        help="input previews stored for hover (volumes: middle slice or MIP)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overwrite", action="store_true", help="replace an existing store")
    g.add_argument("--resume", action="store_true", help="continue an unfinished capture")
    _add_data_options(p)
    _add_common(p)


def _args_attribute(p: argparse.ArgumentParser) -> None:
    _add_model(p)
    p.add_argument("data", help="folder of images/NIfTI/DICOM, file.npz[:key] or file.h5:dataset")
    p.add_argument("-o", "--out", type=Path, required=True, help="store to write (.h5)")
    p.add_argument(
        "--method",
        "--methods",
        dest="method",
        nargs="+",
        default=["gradcam", "integrated-gradients", "occlusion"],
        help="attribution methods: saliency, gradient, input-x-gradient, smoothgrad, "
        "smoothgrad-squared, vargrad, integrated-gradients, guided-backprop, gradcam, gradcam++, "
        "guided-gradcam, occlusion, lrp (needs zennit)",
    )
    p.add_argument("--target", default="predicted", help="'predicted', 'label' or a class index")
    p.add_argument("--layer", default=None, help="CAM layer (default: deepest with >= 4 per axis)")
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--memory-budget", default=None, help="memory per model call, e.g. 2GiB")
    p.add_argument("--steps", type=_positive_int, default=32, help="integrated-gradients steps")
    p.add_argument("--samples", type=_positive_int, default=16, help="SmoothGrad samples")
    p.add_argument(
        "--occlusion-window",
        type=_positive_int,
        nargs="+",
        default=None,
        help="occlusion window in voxels per spatial axis (default: 1/8 of each)",
    )
    p.add_argument(
        "--occlusion-stride",
        type=_positive_int,
        nargs="+",
        default=None,
        help="occlusion stride in voxels per spatial axis (default: the window)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overwrite", action="store_true", help="replace an existing store")
    g.add_argument("--resume", action="store_true", help="continue an unfinished run")
    _add_data_options(p)
    _add_common(p)


def _args_embed(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="activation store (.h5)")
    p.add_argument("--layers", nargs="+", default=None, help="layers (default: all stored)")
    _add_methods(p, default=list(default_methods()))
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2D or 3D maps")
    p.add_argument(
        "--color",
        default="auto",
        help="colour points by label, prediction, correct or a metadata column",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="folder for the figures (default: next to the store)",
    )
    p.add_argument(
        "--formats",
        nargs="+",
        default=["html", "png"],
        help="html (interactive, hover thumbnails), png, svg, pdf",
    )
    p.add_argument("--refresh", action="store_true", help="recompute cached embeddings")
    p.add_argument(
        "--perplexity",
        type=float,
        default=None,
        help="t-SNE perplexity (default: the method's, lowered for few samples)",
    )
    p.add_argument(
        "--n-neighbors",
        type=_positive_int,
        default=None,
        help="UMAP neighbours (default: the method's)",
    )
    p.add_argument(
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
    p.add_argument(*_RANDOM_STATE, **_RANDOM_STATE_KW)
    _add_common(p)


def _args_featurevis(p: argparse.ArgumentParser) -> None:
    _add_model(p)
    p.add_argument("--layer", required=True, help="layer whose channels to visualise")
    p.add_argument("--units", nargs="+", default=None, help="channel indices (default: --top)")
    p.add_argument(
        "--top",
        type=_positive_int,
        default=6,
        help="with --store: the most class-selective channels; else the first ones",
    )
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
    p.add_argument(
        "--input-shape",
        type=_positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="one input's shape (C H W or C D H W); default: from the store",
    )
    p.add_argument(
        "--value-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="input range in the model's units (default: from the store's record)",
    )
    p.add_argument("--steps", type=_positive_int, default=256, help="optimisation steps")
    p.add_argument("--exemplars", type=int, default=5, help="top dataset exemplars per unit")
    p.add_argument(
        "--sanity", action="store_true", help="also run the weight-randomisation sanity check"
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="folder for the figures")
    p.add_argument("--formats", nargs="+", default=["html", "png"], help="html, png, svg, pdf")
    p.add_argument(*_RANDOM_STATE, **_RANDOM_STATE_KW)
    _add_common(p)


def _args_probe(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="activation store (.h5)")
    p.add_argument("--layers", nargs="+", default=None, help="layers (default: all stored)")
    p.add_argument(
        "--target", default="label", help="label, prediction, or a metadata column of the store"
    )
    p.add_argument("--cv", type=_positive_int, default=5, help="cross-validation folds")
    p.add_argument(
        "--groups",
        default="auto",
        metavar="KEY",
        help="metadata key whose samples stay in one fold (e.g. PatientID); 'auto' (default): "
        "the store's first patient/series/site key with repeated values; 'none': ungrouped",
    )
    p.add_argument(
        "--C",
        dest="C",
        type=_positive_float,
        default=1.0,
        help="inverse L2 regularisation of the logistic probe (smaller: stronger)",
    )
    p.add_argument(
        "--chance",
        choices=("balanced", "permutation"),
        default="balanced",
        help="chance level: 'balanced' (1/n_classes for classification, the mean's R2 for "
        "regression) or 'permutation' (probes refitted on permuted targets, with a p-value)",
    )
    p.add_argument(
        "--permutations",
        type=_positive_int,
        default=100,
        help="permutations for --chance permutation",
    )
    p.add_argument(
        "--reduce",
        choices=("mean", "max", "flatten"),
        default="mean",
        help="how spatial maps become features: per-channel mean/max, or every value",
    )
    p.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="'auto': float targets are continuous, others categorical",
    )
    p.add_argument(
        "--solver",
        choices=("auto", "memory", "streaming"),
        default="auto",
        help="'memory': scikit-learn on each layer's pooled features in memory; 'streaming': "
        "SGD over blocks of --batch-size rows (layers larger than memory); 'auto': streaming "
        "only for a layer whose features do not fit in 1 GiB",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="ROWS",
        help="rows read at once by a streamed probe (default: about 64 MiB of activations)",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="SGD passes of a streamed classification probe (default: 5)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask.distributed scheduler (tcp://host:8786) on whose workers streamed probes "
        "read and pool the layers (they must see the store's file); needs inspect-kit[scale]",
    )
    p.add_argument("-o", "--out", type=Path, default=None, help="folder for the figure")
    p.add_argument("--formats", nargs="+", default=["html", "png"], help="html, png, svg, pdf")
    p.add_argument(*_RANDOM_STATE, **_RANDOM_STATE_KW)
    _add_common(p)


def _args_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="activation store (.h5)")
    p.add_argument(
        "other", type=Path, nargs="?", default=None, help="a second store with the same samples"
    )
    p.add_argument("--layers", nargs="+", default=None, help="layers of STORE (default: all)")
    p.add_argument(
        "--other-layers",
        nargs="+",
        default=None,
        help="layers of OTHER (default: all; without OTHER: --layers)",
    )
    p.add_argument("--method", choices=("cka", "rsa"), default="cka", help="CKA or RSA")
    p.add_argument("--kernel", choices=("linear", "rbf"), default="linear", help="CKA kernel")
    p.add_argument(
        "--reduce",
        choices=("flatten", "mean", "max"),
        default="flatten",
        help="compare full spatial maps (flatten) or per-channel pooled features",
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=512, help="CKA minibatch size (samples)"
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=None,
        help="use a seeded subset of this many samples (RSA default: 1000)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="folder for the heatmap (default: figures/ next to STORE)",
    )
    p.add_argument(
        "--formats", nargs="+", default=["html"], help="html (interactive), png, svg, pdf"
    )
    p.add_argument("--refresh", action="store_true", help="recompute a cached result")
    p.add_argument(
        *_RANDOM_STATE, **{**_RANDOM_STATE_KW, "help": "seed of the minibatches and the subset"}
    )
    _add_common(p)


def _args_report(p: argparse.ArgumentParser) -> None:
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
    _add_model(p, required=False)
    p.add_argument(
        "--data",
        default=None,
        help="inputs for the autoencoder probe (default: as recorded by capture)",
    )
    p.add_argument("--layers", nargs="+", default=None, help="layers (default: all stored)")
    _add_methods(p, default=None)
    p.add_argument(
        "--formats",
        nargs="+",
        default=None,
        help="also export every figure as png/svg/pdf under figures/",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=192,
        help="feature visualization steps (the sanity check uses half)",
    )
    p.add_argument("--no-featurevis", action="store_true", help="skip feature visualization")
    p.add_argument("--no-latent", action="store_true", help="skip the autoencoder probe")
    p.add_argument(*_RANDOM_STATE, **_RANDOM_STATE_KW)
    _add_common(p)


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test, ~1 min)")
    _add_methods(p, default=None)
    p.add_argument(
        "--formats", nargs="+", default=None, help="static figure formats (default: png svg)"
    )
    p.add_argument(*_RANDOM_STATE, **_RANDOM_STATE_KW)
    _add_common(p, threads=1)


#: command -> (one-line help, arguments, handler), in the order --help lists them
_COMMANDS: dict[str, tuple[str, Any, Any]] = {
    "layers": (
        "List a model's layers (names to use with capture and featurevis).",
        _args_layers,
        cmd_layers,
    ),
    "capture": (
        "Run data through a model and store layer activations in HDF5.",
        _args_capture,
        cmd_capture,
    ),
    "attribute": (
        "Attribution maps (Grad-CAM, integrated gradients, occlusion ...) into a store.",
        _args_attribute,
        cmd_attribute,
    ),
    "embed": (
        "PCA, t-SNE and UMAP maps of stored layers, with quality metrics.",
        _args_embed,
        cmd_embed,
    ),
    "featurevis": (
        "Activation maximization of units, with dataset exemplars.",
        _args_featurevis,
        cmd_featurevis,
    ),
    "probe": (
        "Linear probes of every stored layer: where a property is decodable.",
        _args_probe,
        cmd_probe,
    ),
    "compare": (
        "Representation similarity (CKA or RSA) of every layer pair of one or two stores.",
        _args_compare,
        cmd_compare,
    ),
    "report": (
        "One self-contained HTML report of a store (and its model).",
        _args_report,
        cmd_report,
    ),
    "demo": (
        "The whole profile on a CNN trained on brain MRI patches (MNI152).",
        _args_demo,
        cmd_demo,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``inspect-kit`` argument parser."""
    from inspect_kit._version import __version__

    parser = _Parser(
        prog=PROG,
        description="Understand what a trained PyTorch network has learned: capture layer "
        "activations, embed them, visualise units, probe and compare layers, and write a report.",
        epilog="examples:\n  inspect-kit demo --out demo_out\n"
        "  inspect-kit layers torchvision.models:resnet18\n"
        "  inspect-kit capture MODEL DATA --out acts.h5 && inspect-kit report acts.h5\n\n"
        "Run 'inspect-kit COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"inspect-kit {__version__}")
    _add_global(
        parser.add_argument_group("global options (before or after the command)"), suppress=False
    )
    import shtab

    shtab.add_argument_to(
        parser,
        ["--print-completion"],
        help="print a bash/zsh/tcsh "
        'completion script: eval "$(inspect-kit --print-completion bash)"',
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, add_arguments, func) in _COMMANDS.items():
        p = sub.add_parser(
            name, help=help_, description=help_, epilog=_EXAMPLES[name], formatter_class=_Formatter
        )
        p.set_defaults(func=func)
        add_arguments(p)
    return parser


# -- entry point ------------------------------------------------------------------------------------
@contextmanager
def _logging(quiet: bool, verbose: int = 0) -> Iterator[None]:
    """Step messages of the pipeline on stderr; library details only when they are warnings.

    ``verbose`` 1 adds every library module's INFO messages, 2 their DEBUG messages.

    The previous configuration comes back afterwards, so ``main()`` called in-process (tests,
    notebooks) leaves logging as it found it.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[inspect-kit] %(message)s"))
    root = logging.getLogger("inspect_kit")
    names = ("inspect_kit.workflows", "inspect_kit.cli")
    saved = (
        root.handlers[:],
        root.level,
        root.propagate,
        [logging.getLogger(n).level for n in names],
    )
    root.handlers[:] = [handler]
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    root.propagate = False
    for name in names:
        logging.getLogger(name).setLevel(
            logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
        )
    try:
        yield
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
        for name, level in zip(names, saved[3], strict=True):
            logging.getLogger(name).setLevel(level)


_FORMATS = ("html", "png", "svg", "pdf", "jpg", "jpeg", "webp")


def _validate(args: argparse.Namespace) -> None:
    """Checks argparse cannot make on comma-separated lists (exit status 2, before any work)."""
    for attr, valid, what, key in (
        ("formats", _FORMATS, "figure format", lambda v: v.lower().lstrip(".")),
        ("methods", method_names(), "embedding method", normalise),
    ):
        values = _split_list(getattr(args, attr, None)) or []
        bad = [v for v in values if key(v) not in valid]
        if bad:
            raise UsageError(f"unknown {what}(s) {', '.join(bad)}; use {', '.join(valid)}")


#: terminal escape sequences (colours, cursor moves) some libraries put in their messages
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err)
    text = _ESCAPES.sub("", text)
    text = "".join(c if c.isprintable() else " " for c in text)  # no control characters
    text = " ".join(text.split())  # one line
    return text or type(err).__name__


#: commands whose --out is one file in an existing folder; the others make their folder
_FILE_OUT = ("capture", "attribute", "report")


def _check_out(args: argparse.Namespace) -> None:
    """Fail before any work when ``--out`` cannot be written (a file in the way, no access).

    The message names the path and the reason, like every data error.
    """
    out = getattr(args, "out", None)
    if out is None:
        return
    out = Path(out)
    if args.command in _FILE_OUT:
        if out.is_dir():
            raise ValueError(f"{out}: is a folder; give the file to write, e.g. {out / 'out.h5'}")
        folder = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: is a file; give a folder for the output")
        folder = out
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{out}: cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: cannot be written: no permission to write in {existing}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 bad arguments).

    Examples
    --------
    >>> main(["layers", "torchvision.models:resnet18", "--types", "Conv2d"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        sys.stderr.write(f"{PROG}: error: no command given\n")
        return 2
    debug = getattr(args, "debug", False) or os.environ.get("INSPECT_KIT_DEBUG") == "1"
    try:
        _validate(args)
        _check_out(args)
        with _logging(getattr(args, "quiet", False), getattr(args, "verbose", 0)):
            if getattr(args, "threads", None) is None:
                return int(args.func(args) or 0)
            from inspect_kit.workflows.output import limit_threads

            with limit_threads(args.threads):
                return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except UsageError as err:
        if debug:
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {_message(err)}\n")
        return 2
    except Exception as err:  # every failure becomes one line; --debug shows the traceback
        if debug:
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {_message(err)}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
