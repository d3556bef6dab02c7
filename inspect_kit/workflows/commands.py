"""The single-step commands: ``layers``, ``capture``, ``embed``, ``featurevis`` and ``probe``.

Each takes the option objects the command line parsed (:mod:`.options`) and writes its store
or figures; the CLI stays a thin parser, and the same steps can be called from Python.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .options import (
    CaptureOptions,
    DataOptions,
    EmbeddingOptions,
    FeatureVisOptions,
    ModelSource,
    ProbeOptions,
    RunOptions,
)
from .output import check_formats, safe_name, timed_step, write_figures
from .records import (
    class_names_of,
    model_mismatch,
    read_inputs_record,
    record_inputs,
    value_range_of,
)
from .steps import check_layers, compute_embeddings, run_featurevis

logger = logging.getLogger(__name__)


def default_capture_layers(model: nn.Module) -> list[str]:
    """Every convolution, activation and linear leaf module (what ``capture --layers`` says it
    captures by default), in forward order; the top-level children only when there is none."""
    from inspect_kit.capture import list_layers

    kinds = ["Conv1d", "Conv2d", "Conv3d", "Linear", "ReLU", "GELU", "SiLU", "LeakyReLU"]
    names = list_layers(model, types=kinds)
    if len(names) > 16:
        logger.info(
            "capturing all %d convolution, activation and linear layers; narrow with --layers "
            "(e.g. 'features.*')",
            len(names),
        )
    return names or [n for n, _ in model.named_children()]


def layer_table(
    model: ModelSource,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    run: RunOptions | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """The ``layers`` command: one row per layer (name, type, parameters, output shape).

    With ``input_shape`` (one sample's C H W or C D H W) a forward pass of zeros also gives
    each layer's output shape, one entry per call (``name``, ``name:1`` ...), on
    ``run.device``.

    Returns
    -------
    rows : list of dict
        ``name``, ``type``, ``params`` and ``output`` ("" without ``input_shape``).
    model : nn.Module
        The loaded model.

    Examples
    --------
    >>> rows, net = layer_table(ModelSource("inspect_kit.models:SmallCNN"), types=["Conv2d"])
    >>> [r["name"] for r in rows]
    ['conv1', 'conv2', 'conv3']
    """
    import torch

    from inspect_kit.hooks import LayerRecorder, list_layers, resolve_layers

    device = (run or RunOptions()).device
    net = model.load(device)
    names = list_layers(net, include=include, exclude=exclude, types=types)
    present = {type(m).__name__ for m in net.modules()}
    for t in types or ():  # a type name the model has nowhere is a typo, not an empty answer
        if isinstance(t, str) and t not in present:
            from inspect_kit._names import unknown_name_error

            raise unknown_name_error(
                t, sorted(present), kind="module type", where=type(net).__name__, error=ValueError
            )
    shapes: dict[str, str] = {}
    if input_shape:
        x = torch.zeros((1, *input_shape))
        try:
            with LayerRecorder(resolve_layers(net, names)) as rec, torch.no_grad():
                net(x.to(device) if device else x)
        except Exception as err:
            raise ValueError(
                f"a forward pass with input shape {tuple(input_shape)} failed: {err}; "
                "give one sample's shape, e.g. --input-shape 3 224 224"
            ) from err
        # one entry per call: "name", and "name:1" ... for a module called again
        shapes = {key: str(tuple(c.source_shape[1:])) for key, c in rec.outputs.items()}
    modules = dict(net.named_modules())
    rows = [
        {
            "name": n,
            "type": type(modules[n]).__name__,
            "params": sum(p.numel() for p in modules[n].parameters()),
            "output": shapes.get(n, ""),
        }
        for n in names
    ]
    return rows, net


def capture_user_data(
    model: ModelSource,
    data: str | Path,
    out: str | Path,
    *,
    data_options: DataOptions | None = None,
    capture_options: CaptureOptions | None = None,
    run: RunOptions | None = None,
) -> Path:
    """Load a model and a data folder/file, capture layers into a store, record both.

    Parameters
    ----------
    model : ModelSource
    data : path or str
        A folder of images/NIfTI/DICOM, ``file.npz[:key]`` or ``file.h5:dataset``.
    out : path
        The store to write.
    data_options, capture_options, run
        How the data are read, what is stored, and the device/progress of the run.

    Returns
    -------
    Path
        The store.

    Examples
    --------
    >>> capture_user_data(ModelSource("torchvision.models:resnet18"), "scans/", "acts.h5",
    ...                   capture_options=CaptureOptions(layers=("layer4",)))  # doctest: +SKIP
    """
    data_options = data_options or DataOptions()
    capture_options = capture_options or CaptureOptions()
    run = run or RunOptions()
    from inspect_kit.capture import capture
    from inspect_kit.capture.distributed import barrier, process_group_from_env

    timings: dict[str, float] = {}
    with timed_step("reading data", timings):
        user = data_options.load(data)
        if user.skipped:
            logger.warning(
                "skipped %d unreadable file(s): %s",
                len(user.skipped),
                "; ".join(f"{p} ({why})" for p, why in user.skipped),
            )
        n = len(user)
        probe_rows = np.unique(np.linspace(0, n - 1, min(n, 256)).astype(int))
        sample = np.stack([np.asarray(user.dataset[int(i)]) for i in probe_rows])
        logger.info("%d samples of shape %s (%s)", n, user.sample_shape, user.kind)
    device = run.device
    with timed_step("loading model", timings):
        net = model.load(device)
    layers = list(capture_options.layers or default_capture_layers(net))
    # under torchrun every rank captures its share; rank 0 alone records the inputs
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per rank of the node
    with process_group_from_env(device) as rank:
        with timed_step(f"capturing {len(layers)} layers", timings):
            Path(out).parent.mkdir(parents=True, exist_ok=True)  # as report and demo make theirs
            store = capture(
                net,
                user.dataset,
                layers,
                out,
                reduce=capture_options.reduce,
                dtype=capture_options.dtype,
                device=device,
                batch_size=capture_options.batch_size,
                labels=user.labels,
                metadata=user.metadata or None,
                thumbnails=capture_options.thumbnails,
                resume=capture_options.resume,
                overwrite=capture_options.overwrite,
                progress=run.progress,
            )
        if rank != 0:
            store.close()
        barrier()  # the other ranks have closed the store before rank 0 writes to it
    if rank != 0:
        return Path(out)
    try:
        record_inputs(
            store,
            {
                **model.as_record(),
                "data": str(Path(data).resolve()) if Path(str(data)).exists() else str(data),
                "data_options": data_options.as_record(),
                "skipped": [list(item) for item in user.skipped],
                "kind": user.kind,
                "sample_shape": list(user.sample_shape),
                "class_names": user.class_names,
                "value_range": list(value_range_of(sample)),
            },
        )
    finally:
        store.close()
    return Path(out)


def store_summary(store_path: str | Path) -> str | None:
    """The text summary of a store (what ``inspect-kit capture`` prints when done).

    None on the ranks other than 0 of a torchrun capture: rank 0 reports the joined store.
    """
    from inspect_kit.capture.distributed import is_rank_zero
    from inspect_kit.store import open_store

    if not is_rank_zero():
        return None
    with open_store(store_path) as store:
        return str(store.summary())


def store_description(store_path: str | Path) -> dict[str, Any]:
    """What ``inspect-kit capture --json`` prints: the store's samples, layers and provenance.

    Examples
    --------
    >>> store_description("acts.h5")["n_samples"]  # doctest: +SKIP
    180
    """
    from inspect_kit.store import open_store

    with open_store(store_path) as store:
        return {
            "store": str(store_path),
            "n_samples": len(store),
            "complete": bool(store.complete),
            "layers": {name: list(store[name].shape) for name in store.layers},
            "labels": store.labels is not None,
            "metadata": sorted(store.metadata),
            "provenance": store.provenance,
        }


def embed_layers(
    store_path: str | Path,
    options: EmbeddingOptions | None = None,
    *,
    layers: Sequence[str] | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    color: str = "auto",
    run: RunOptions | None = None,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Embed layers of a store, write one small-multiples figure per method; return metrics.

    A (layer, method) that cannot run is reported (a row with its ``error``) and skipped; the
    others are computed and written. ``options.method_params`` (``perplexity``,
    ``n_neighbors``, ``solver``/``pca_solver`` ...) go to the methods that accept them.
    With ``scheduler`` (the address of a ``dask.distributed`` scheduler), a client is
    connected for the command, so PCA with ``solver='dask'`` (and t-SNE's and UMAP's
    ``pca_solver='dask'``) reads, pools and reduces the layers on its workers.

    Examples
    --------
    >>> embed_layers("acts.h5", EmbeddingOptions(methods=("pca",)))    # doctest: +SKIP
    >>> embed_layers("big.h5", EmbeddingOptions(methods=("umap",),
    ...              method_params={"pca_solver": "dask"}),
    ...              scheduler="tcp://scheduler:8786")    # doctest: +SKIP
    """
    options = options or EmbeddingOptions()
    run = run or RunOptions()
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.analysis.embedding.registry import display_name
    from inspect_kit.figures.embedding import plot_embedding_grid
    from inspect_kit.store import open_store

    from .steps import dask_scheduler

    out_dir = Path(out) if out is not None else Path(store_path).parent / "figures"
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    with dask_scheduler(scheduler), open_store(store_path) as store:
        layers = check_layers(store, layers)
        names = class_names_of(read_inputs_record(store))
        failures: list[dict[str, str]] = []
        embs = compute_embeddings(store, layers, options, run, failures=failures)
        for method, by_layer in embs.items():
            figures[f"embedding_{method}"] = plot_embedding_grid(
                by_layer,
                color=color,
                label_names=names,
                title=f"{display_name(method)} of each layer",
            )
            for layer, emb in by_layer.items():
                m = emb.metrics
                rows.append(
                    {
                        "method": method,
                        "layer": layer,
                        "trustworthiness": m.get("trustworthiness"),
                        "knn_map": m.get("knn_accuracy"),
                        "knn_features": m.get("knn_accuracy_original"),
                    }
                )
        rows += [
            {
                "method": f["method"],
                "layer": f["layer"],
                "trustworthiness": None,
                "knn_map": None,
                "knn_features": None,
                "error": f["error"],
            }
            for f in failures
        ]
    if failures and not figures:
        raise ValueError(
            "no embedding could be computed: "
            + "; ".join(f"{f['method']} of {f['layer']}: {f['error']}" for f in failures)
        )
    for p in write_figures(figures, out_dir, formats, progress=run.progress):
        logger.info("wrote %s", p)
    return rows


def featurevis_units(
    model: ModelSource,
    options: FeatureVisOptions,
    out: str | Path,
    *,
    store: str | Path | None = None,
    formats: Sequence[str] | None = None,
    run: RunOptions | None = None,
    ignore_model_mismatch: bool = False,
) -> list[Path]:
    """The ``featurevis`` command: a gallery (and sanity check) written to ``out``.

    ``options.input_shape`` and ``options.value_range`` default to what ``store`` recorded.
    The store's exemplars and unit selection only describe ``model`` when the store was
    captured from it: when the store's ``model_sha256`` differs, a warning says so and the
    gallery is rendered without exemplars or store-based unit selection (the store still gives
    the input shape and range), unless ``ignore_model_mismatch`` (then they are used, with a
    warning).

    Examples
    --------
    >>> featurevis_units(ModelSource("torchvision.models:resnet18"),
    ...                  FeatureVisOptions(layer="layer4", input_shape=(3, 224, 224)),
    ...                  "fv/")                                      # doctest: +SKIP
    """
    run = run or RunOptions()
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.analysis.selection import spatial_layers
    from inspect_kit.figures.featurevis import plot_randomization, plot_unit_gallery
    from inspect_kit.store import open_store

    layer = options.layer
    if not layer:
        raise ValueError("give the layer whose units to visualise (--layer)")
    net = model.load(run.device)
    opened = open_store(store) if store is not None else None
    try:
        record = read_inputs_record(opened) if opened is not None else {}
        shape = tuple(options.input_shape or record.get("sample_shape") or ())
        if len(shape) not in (3, 4):
            raise ValueError(
                "the input shape is unknown: give --input-shape C H W (or C D H W), or a --store "
                "written by inspect-kit capture"
            )
        class_names = class_names_of(record)
        exemplar_store = opened
        mismatch = model_mismatch(net, opened) if opened is not None else None
        if mismatch and ignore_model_mismatch:
            logger.warning(
                "%s: using its exemplars anyway (--ignore-model-mismatch); they show what the "
                "captured model's units respond to",
                mismatch,
            )
        elif mismatch:
            logger.warning(
                "%s: its exemplars would show what another model's units respond to, so the "
                "gallery has none (units are not chosen from the store either); capture a store "
                "from this model, or pass --ignore-model-mismatch to use them anyway",
                mismatch,
            )
            exemplar_store = None
        vrange = options.value_range or record.get("value_range")
        if vrange is None:
            vrange = (0.0, 1.0)
            logger.info("assuming inputs in [0, 1]; set --value-range for other units")
        if opened is not None and layer in opened.layers and layer not in spatial_layers(opened):
            logger.info("layer %s has no spatial maps; its channels are single numbers", layer)
        fv = run_featurevis(
            net,
            dataclasses.replace(
                options,
                input_shape=shape,
                value_range=tuple(vrange),
                exemplars=options.exemplars if exemplar_store is not None else 0,
            ),
            run,
            store=exemplar_store,
            class_names=class_names,
        )
    finally:
        if opened is not None:
            opened.close()
    figures = {
        f"featurevis_{safe_name(layer)}": plot_unit_gallery(
            fv.result,
            fv.exemplars,
            max_units=len(fv.result),
            title=f"Units of {layer}",
            label_names=class_names,
        )
    }
    if fv.randomization is not None:
        figures[f"sanity_{safe_name(layer)}"] = plot_randomization(fv.randomization)
    return write_figures(figures, out, formats, progress=run.progress)


def probe_layers(
    store_path: str | Path,
    options: ProbeOptions | None = None,
    *,
    layers: Sequence[str] | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    run: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """The ``probe`` command: a linear-probe profile across layers, saved in the store.

    A layer whose probe cannot run (non-finite activations, too few samples for the folds) is
    reported (a row with its ``error``, and a warning) and skipped; the others are probed,
    saved and drawn. A fragile score (small test folds, folds missing a class) carries its
    ``warning`` in its row, and few samples overall are logged as a caveat.

    Parameters
    ----------
    store_path : path
    options : ProbeOptions, optional
        Target, folds and their groups, regularisation, chance level, solver (recorded in
        the store with the scores, with the solver each layer used).
    layers : sequence of str, optional
        Default: every stored layer.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``): a client is
        connected for the command, so streamed probes read and pool their blocks on its
        workers (which must see the store's file), and closed at the end.
    out, formats
        Folder (default ``figures/`` beside the store) and formats of the profile's figure.
    run : RunOptions, optional

    Examples
    --------
    >>> probe_layers("acts.h5", ProbeOptions(target="site", groups="PatientID"))  # doctest: +SKIP
    >>> probe_layers("big.h5", ProbeOptions(solver="streaming", batch_size=512),
    ...              scheduler="tcp://scheduler:8786")   # doctest: +SKIP
    """
    options = options or ProbeOptions()
    run = run or RunOptions()
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.analysis.probes import default_groups, probe_profile
    from inspect_kit.figures.probes import plot_probe_profile
    from inspect_kit.store import open_store

    from .steps import dask_scheduler

    if options.solver == "streaming" and options.chance == "permutation":
        raise ValueError(
            "--chance permutation refits every probe n_permutations times: it needs "
            "--solver memory (or auto); streamed probes use --chance balanced"
        )
    streaming = {"epochs": options.epochs} if options.epochs is not None else {}
    groups = options.groups
    failures: list[dict[str, str]] = []
    with dask_scheduler(scheduler), open_store(store_path) as store:
        layers = check_layers(store, layers)
        if groups == "auto":
            groups = default_groups(store)
            if groups is not None:
                logger.info(
                    "probes are cross-validated by %s groups (no group in two folds)", groups
                )
        elif groups in ("none", ""):
            groups = None
        profile = probe_profile(
            store,
            layers,
            target=options.target,
            reduce=options.reduce,
            cv=options.cv,
            random_state=run.random_state,
            save=True,
            progress=run.progress,
            groups=groups,
            failures=failures,
            C=options.C,
            chance=options.chance,
            n_permutations=options.n_permutations,
            task=options.task,
            # ProbeOptions.solver is a str checked against the solvers' names by the CLI's
            # choices; probe_profile spells it as a Literal
            solver=options.solver,  # type: ignore[arg-type]
            batch_size=options.batch_size,
            **streaming,
        )
    from inspect_kit.analysis.caveats import find_caveats

    for caveat in find_caveats(profile=profile):
        if caveat.kind == "small_n":  # the probes' own warnings are in their rows
            logger.warning("caveat: %s", caveat)
    fig = plot_probe_profile(profile, title=f"Linear probe of {profile.target}")
    out_dir = Path(out) if out is not None else Path(store_path).parent / "figures"
    write_figures(
        {f"probe_profile_{safe_name(options.target)}": fig},
        out_dir,
        formats,
        progress=run.progress,
    )
    rows: list[dict[str, Any]] = [
        {
            "layer": layer,
            profile.metric: float(r.score),
            "std": float(r.score_std),
            "chance": float(r.chance),
            **({"p": r.p_value} if r.p_value is not None else {}),
            **({"groups": r.n_groups} if r.n_groups else {}),
            "solver": r.solver,
            **({"warning": "; ".join(r.warnings)} if r.warnings else {}),
        }
        for layer, r in zip(profile.layers, profile.results, strict=True)
    ]
    rows += [{"layer": f["layer"], profile.metric: None, "error": f["error"]} for f in failures]
    return rows
