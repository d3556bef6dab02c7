"""The single-step commands: ``capture``, ``embed``, ``featurevis`` and ``probe``.

Each takes what the command line parsed and writes its store or figures; the CLI stays a
thin parser, and the same steps can be called from Python.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

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
            "(e.g. 'features.*')", len(names),
        )
    return names or [n for n, _ in model.named_children()]


def capture_user_data(
    *,
    model_spec: str,
    data: str | Path,
    out: str | Path,
    weights: str | Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    layers: Sequence[str] | None = None,
    labels: str | None = None,
    size: Sequence[int] | None = None,
    channels: int | None = None,
    window: Sequence[float] | None = None,
    normalize: Any = None,
    data_options: Mapping[str, Any] | None = None,
    reduce: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    thumbnails: str | None = "slice",
    device: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Load a model and a data folder/file, capture layers into a store, record both.

    Examples
    --------
    ``data_options`` are further keywords of :func:`inspect_kit.data.formats.load_data`
    (orientation, spacing, as_slices, allow_irregular, skip_unreadable, keep_identifiers, ...).

    >>> capture_user_data(model_spec="torchvision.models:resnet18", data="scans/",
    ...                   out="acts.h5", layers=["layer4"], reduce="mean")  # doctest: +SKIP
    """
    from inspect_kit.capture import capture
    from inspect_kit.capture.distributed import barrier, process_group_from_env
    from inspect_kit.data.formats import load_data
    from inspect_kit.models.registry import load_model

    timings: dict[str, float] = {}
    with timed_step("reading data", timings):
        user = load_data(
            data,
            labels=labels,
            size=size,
            channels=channels,
            window=tuple(window) if window else None,
            normalize=normalize,
            **dict(data_options or {}),
        )
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
    with timed_step("loading model", timings):
        model = load_model(model_spec, weights=weights, model_args=model_args, device=device)
    layers = list(layers) if layers else default_capture_layers(model)
    # under torchrun every rank captures its share; rank 0 alone records the inputs
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per rank of the node
    with process_group_from_env(device) as rank:
        with timed_step(f"capturing {len(layers)} layers", timings):
            Path(out).parent.mkdir(parents=True, exist_ok=True)  # as report and demo make theirs
            store = capture(
                model,
                user.dataset,
                layers,
                out,
                reduce=reduce,
                dtype=dtype,
                device=device,
                batch_size=batch_size,
                labels=user.labels,
                metadata=user.metadata or None,
                thumbnails=thumbnails,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
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
                "model": model_spec,
                "weights": str(Path(weights).resolve()) if weights else None,
                "model_args": dict(model_args or {}),
                "data": str(Path(data).resolve()) if Path(str(data)).exists() else str(data),
                "data_options": {
                    "labels": labels,
                    "size": list(size) if size else None,
                    "channels": channels,
                    "window": list(window) if window else None,
                    "normalize": normalize,
                    **{k: v for k, v in (data_options or {}).items() if k != "id_salt"},
                },
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


def embed_layers(
    store_path: str | Path,
    *,
    layers: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    n_components: int = 2,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    color: str = "auto",
    seed: int = 0,
    refresh: bool = False,
    progress: bool = True,
    method_params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Embed layers of a store, write one small-multiples figure per method; return metrics.

    A (layer, method) that cannot run is reported (a row with its ``error``) and skipped; the
    others are computed and written. ``method_params`` (``perplexity``, ``n_neighbors`` ...)
    go to the methods that accept them.
    """
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.analysis.embedding.registry import default_methods, display_name
    from inspect_kit.figures.embedding import plot_embedding_grid
    from inspect_kit.store import open_store

    methods = list(methods or default_methods())
    out_dir = Path(out) if out is not None else Path(store_path).parent / "figures"
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    with open_store(store_path) as store:
        layers = check_layers(store, layers)
        names = class_names_of(read_inputs_record(store))
        failures: list[dict[str, str]] = []
        embs = compute_embeddings(
            store,
            layers,
            methods,
            n_components=n_components,
            seed=seed,
            refresh=refresh,
            progress=progress,
            method_params=method_params,
            failures=failures,
        )
        for method, by_layer in embs.items():
            figures[f"embedding_{method}"] = plot_embedding_grid(
                by_layer, color=color, label_names=names, title=f"{display_name(method)} of each layer"
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
        rows += [{"method": f["method"], "layer": f["layer"], "trustworthiness": None,
                  "knn_map": None, "knn_features": None, "error": f["error"]} for f in failures]
    if failures and not figures:
        raise ValueError(
            "no embedding could be computed: "
            + "; ".join(f"{f['method']} of {f['layer']}: {f['error']}" for f in failures)
        )
    for p in write_figures(figures, out_dir, formats, progress=progress):
        logger.info("wrote %s", p)
    return rows


def featurevis_units(
    *,
    model_spec: str,
    layer: str,
    out: str | Path,
    weights: str | Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    units: Sequence[int] | None = None,
    top: int = 6,
    store: str | Path | None = None,
    input_shape: Sequence[int] | None = None,
    value_range: Sequence[float] | None = None,
    steps: int = 256,
    exemplars: int = 5,
    sanity: bool = False,
    formats: Sequence[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    ignore_model_mismatch: bool = False,
) -> list[Path]:
    """The ``featurevis`` command: a gallery (and sanity check) written to ``out``.

    The store's exemplars and unit selection only describe ``model`` when the store was
    captured from it: when the store's ``model_sha256`` differs, a warning says so and the
    gallery is rendered without exemplars or store-based unit selection (the store still gives
    the input shape and range), unless ``ignore_model_mismatch`` (then they are used, with a
    warning).
    """
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.figures.featurevis import plot_randomization, plot_unit_gallery
    from inspect_kit.models.registry import load_model
    from inspect_kit.store import open_store

    from .selection import spatial_layers

    model = load_model(model_spec, weights=weights, model_args=model_args, device=device)
    opened = open_store(store) if store is not None else None
    try:
        record = read_inputs_record(opened) if opened is not None else {}
        shape = list(input_shape or record.get("sample_shape") or [])
        if len(shape) not in (3, 4):
            raise ValueError(
                "the input shape is unknown: give --input-shape C H W (or C D H W), or a --store "
                "written by inspect-kit capture"
            )
        exemplar_store = opened
        mismatch = model_mismatch(model, opened) if opened is not None else None
        if mismatch and ignore_model_mismatch:
            logger.warning(
                "%s: using its exemplars anyway (--ignore-model-mismatch); they show what the "
                "captured model's units respond to", mismatch,
            )
        elif mismatch:
            logger.warning(
                "%s: its exemplars would show what another model's units respond to, so the "
                "gallery has none (units are not chosen from the store either); capture a store "
                "from this model, or pass --ignore-model-mismatch to use them anyway", mismatch,
            )
            exemplar_store = None
        vrange = value_range or record.get("value_range")
        if vrange is None:
            vrange = (0.0, 1.0)
            logger.info("assuming inputs in [0, 1]; set --value-range for other units")
        if opened is not None and layer in opened.layers and layer not in spatial_layers(opened):
            logger.info("layer %s has no spatial maps; its channels are single numbers", layer)
        run = run_featurevis(
            model,
            layer=layer,
            input_shape=shape,
            store=exemplar_store,
            units=units,
            n_units=top,
            value_range=vrange,
            steps=steps,
            exemplars=exemplars if exemplar_store is not None else 0,
            sanity=sanity,
            class_names=class_names_of(record),
            seed=seed,
            device=device,
            progress=progress,
        )
    finally:
        if opened is not None:
            opened.close()
    figures = {
        f"featurevis_{safe_name(layer)}": plot_unit_gallery(
            run.result, run.exemplars, max_units=len(run.result), title=f"Units of {layer}"
        )
    }
    if run.randomization is not None:
        figures[f"sanity_{safe_name(layer)}"] = plot_randomization(run.randomization)
    return write_figures(figures, out, formats, progress=progress)


def probe_layers(
    store_path: str | Path,
    *,
    layers: Sequence[str] | None = None,
    target: str = "label",
    cv: int = 5,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The ``probe`` command: a linear-probe profile across layers, saved in the store."""
    formats = check_formats(formats or ("html", "png"))
    from inspect_kit.analysis.probes import probe_profile
    from inspect_kit.figures.probes import plot_probe_profile
    from inspect_kit.store import open_store

    with open_store(store_path) as store:
        layers = check_layers(store, layers)
        profile = probe_profile(
            store, layers, target=target, cv=cv, random_state=seed, save=True, progress=progress
        )
    fig = plot_probe_profile(profile, title=f"Linear probe of {profile.target}")
    out_dir = Path(out) if out is not None else Path(store_path).parent / "figures"
    write_figures(
        {f"probe_profile_{safe_name(target)}": fig},
        out_dir,
        formats,
        progress=progress,
    )
    return [
        {
            "layer": layer,
            profile.metric: float(r.score),
            "std": float(r.score_std),
            "chance": float(r.chance),
        }
        for layer, r in zip(profile.layers, profile.results, strict=True)
    ]
