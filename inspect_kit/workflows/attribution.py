"""The attribution step of the CLI and the report: a user's model and data to a store of
attribution maps (``inspect-kit attribute``), and the report's "Where the model looks"."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .options import DataOptions, ModelSource, RunOptions, option

__all__ = [
    "AttributeOptions",
    "attribute_user_data",
    "attribution_summary",
    "where_the_model_looks",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributeOptions:
    """What ``inspect-kit attribute`` computes (each field is a flag).

    Parameters
    ----------
    method : tuple of str
        Attribution methods (``gradcam``, ``integrated-gradients``, ``occlusion`` ...).
    target : str
        ``"predicted"``, ``"label"`` or a class index.
    layer : str, optional
        CAM layer (default: the deepest layer with at least 4 positions per axis).
    batch_size : int
        Samples per data batch.
    memory_budget : str, optional
        Memory per model call (``"2GiB"``).
    steps, samples : int
        Integrated-gradients steps, SmoothGrad samples.
    occlusion_window, occlusion_stride : tuple of int, optional
        Occlusion window and stride in voxels.
    overwrite, resume : bool
    """

    method: tuple[str, ...] = option(
        ("gradcam", "integrated-gradients", "occlusion"),
        "attribution methods: saliency, gradient, input-x-gradient, smoothgrad, "
        "smoothgrad-squared, vargrad, integrated-gradients, guided-backprop, gradcam, gradcam++, "
        "guided-gradcam, occlusion, lrp (needs zennit)",
        flag=("--method", "--methods"),
        nargs="+",
        split=True,
    )
    target: str = option("predicted", "'predicted', 'label' or a class index")
    layer: str | None = option(None, "CAM layer (default: the deepest with >= 4 per axis)")
    batch_size: int = option(16, "samples per data batch", type="positive_int")
    memory_budget: str | None = option(None, "memory per model call, e.g. 2GiB")
    steps: int = option(32, "integrated-gradients steps", type="positive_int")
    samples: int = option(16, "SmoothGrad samples", type="positive_int")
    occlusion_window: tuple[int, ...] | None = option(
        None,
        "occlusion window in voxels per spatial axis (default: 1/8 of each)",
        flag="--occlusion-window",
        nargs="+",
        type="positive_int",
    )
    occlusion_stride: tuple[int, ...] | None = option(
        None,
        "occlusion stride in voxels per spatial axis (default: the window)",
        flag="--occlusion-stride",
        nargs="+",
        type="positive_int",
    )
    overwrite: bool = option(False, "replace an existing store")
    resume: bool = option(False, "continue an unfinished run")


def attribute_user_data(
    model: ModelSource,
    data: str | Path,
    out: str | Path,
    *,
    data_options: DataOptions | None = None,
    options: AttributeOptions | None = None,
    run: RunOptions | None = None,
) -> Path:
    """Load a model and data as ``capture`` does, write attribution maps to a store.

    Examples
    --------
    >>> attribute_user_data(ModelSource("torchvision.models:resnet18"), "scans/", "attr.h5",
    ...                     options=AttributeOptions(method=("gradcam",)))  # doctest: +SKIP
    """
    from inspect_kit.analysis.attribution import AttributionOptions, attribute_to_store

    from .output import timed_step  # imports torch: not at module level (the registry is light)

    data_options = data_options or DataOptions()
    options = options or AttributeOptions()
    run = run or RunOptions()
    timings: dict[str, float] = {}
    with timed_step("reading data", timings):
        user = data_options.load(data)
    with timed_step("loading model", timings):
        net = model.load(run.device)
    target: Any = options.target
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    extra: dict[str, Any] = {"steps": options.steps, "samples": options.samples}
    if options.occlusion_window is not None:
        extra["window"] = tuple(options.occlusion_window)
    if options.occlusion_stride is not None:
        extra["stride"] = tuple(options.occlusion_stride)
    with timed_step(f"attributing with {', '.join(options.method)}", timings):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        return attribute_to_store(
            net,
            user.dataset,
            out,
            methods=list(options.method),
            target=target,
            layer=options.layer,
            device=run.device,
            batch_size=options.batch_size,
            memory_budget=options.memory_budget,
            labels=user.labels,
            options=AttributionOptions(**extra),
            resume=options.resume,
            overwrite=options.overwrite,
            progress=run.progress,
        )


#: the report's section shows at most this many samples (correct and wrong ones per class)
REPORT_PER_CLASS = 2
REPORT_MAX_SAMPLES = 24
#: and at most three methods side by side (the first ones asked for)
REPORT_METHODS = 3


def report_samples(
    labels: np.ndarray | None,
    predictions: np.ndarray | None,
    *,
    per_class: int = REPORT_PER_CLASS,
    limit: int = REPORT_MAX_SAMPLES,
    n: int,
) -> np.ndarray:
    """Positions of the samples the report explains: per class, the first ``per_class``
    correctly and the first ``per_class`` wrongly classified ones (the first samples when
    labels or predictions are missing), at most ``limit`` in all.

    Examples
    --------
    >>> report_samples(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 0, 1, 1]), per_class=1, n=5)
    array([0, 1, 3])
    """
    if labels is None or predictions is None or len(labels) != n or len(predictions) != n:
        return np.arange(min(n, 2 * per_class))
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    pick: list[int] = []
    for c in np.unique(labels):
        right = np.flatnonzero((labels == c) & (predictions == c))[:per_class]
        wrong = np.flatnonzero((labels == c) & (predictions != c))[:per_class]
        pick.extend(int(i) for i in np.concatenate([right, wrong]))
    return np.array(sorted(pick)[:limit], dtype=np.int64)


def attribute_analysis(inputs: Any, options: AttributeOptions) -> dict[str, Any]:
    """The report's computation for "Where the model looks": maps of a few samples per class
    (:func:`report_samples`), correctly and wrongly classified, by up to three of the
    methods asked for, explaining the predicted class. ``inspect-kit attribute`` writes maps of
    a whole dataset to a store instead (:func:`attribute_user_data`)."""
    from inspect_kit.analysis.attribution import AttributionOptions, attribute

    x = np.asarray(inputs.data)
    labels = None if inputs.labels is None else np.asarray(inputs.labels)
    store_predictions = getattr(inputs.store, "predictions", None)
    predictions = None if store_predictions is None else np.asarray(store_predictions)
    pick = report_samples(labels, predictions, n=len(x))
    target: Any = int(options.target) if str(options.target).isdigit() else options.target
    maps = [
        attribute(
            inputs.model,
            x[pick],
            method=m,
            target=target,
            layer=options.layer,
            labels=None if labels is None else labels[pick],
            memory_budget=options.memory_budget,
            options=AttributionOptions(steps=options.steps, samples=options.samples),
            device=inputs.run.device,
            progress=inputs.run.progress,
        )
        for m in options.method[:REPORT_METHODS]
    ]
    return {"attributions": maps, "images": x[pick], "class_names": inputs.class_names}


def attribution_section(
    section: Any, result: dict[str, Any], options: AttributeOptions
) -> list[dict[str, Any]]:
    """Render "Where the model looks": one methods x samples grid per class, each map's
    target, method and CAM layer printed on the figure, and a warning for flat maps; returns
    the report's summary (method, CAM layer and its resolution, samples, flat maps)."""
    maps = result["attributions"]
    if not maps:
        section.add_text("No attribution method was asked for.", note=True)
        return []
    target = maps[0].targets[0] if maps[0].targets else str(options.target)
    section.add_text(
        f"Explained: {target.split(' (')[-1].rstrip(')') if '(' in target else target}; by "
        f"{', '.join(a.method for a in maps)}. Maps are shown as computed: signed ones in "
        "diverging colours centred on zero, positive ones in sequential colours."
    )
    for a in maps:
        if a.layer is not None:
            res = " x ".join(str(r) for r in (a.layer_resolution or ()))
            section.add_text(f"{a.method}: CAM layer {a.layer} ({res} positions)", note=True)
        flat = int(np.asarray(a.flat).sum())
        if flat:
            section.add_callout(
                f"{a.method}: {flat} of {len(a)} maps are all zero or constant (nothing to see)",
                warn=True,
            )
    for caption, fig in where_the_model_looks(
        maps, result["images"], class_names=result.get("class_names")
    ):
        section.add_figure(fig, caption=caption, height=int(fig.layout.height or 450))
    return [
        {
            "method": a.method,
            "layer": a.layer,
            "layer_resolution": list(a.layer_resolution or ()),
            "samples": len(a),
            "flat": int(np.asarray(a.flat).sum()),
        }
        for a in maps
    ]


def attribution_summary(path: str | Path) -> list[dict[str, Any]]:
    """One entry per attribution group of a store: method, layer, samples, flat maps."""
    from inspect_kit.analysis.attribution import read_attributions

    return [
        {
            "method": a.method,
            "layer": a.layer,
            "layer_resolution": list(a.layer_resolution or ()),
            "samples": len(a),
            "flat": int(a.flat.sum()),
            "description": a.describe(),
        }
        for a in read_attributions(path)
    ]


def where_the_model_looks(
    attributions: list[Any],
    images: np.ndarray,
    *,
    per_class: int = 2,
    class_names: list[str] | None = None,
) -> list[tuple[str, Any]]:
    """The report section "Where the model looks": per class, correctly and wrongly
    classified samples with the methods side by side (one methods x samples grid each).

    Parameters
    ----------
    attributions : list of Attribution
        Same samples, one per method (:func:`read_attributions`).
    images : array (N, C, *spatial)
        The inputs, in the order of the attributions' rows.
    per_class : int
        Correct and wrong samples shown per class (each).

    Returns
    -------
    list of (caption, go.Figure)
    """
    from inspect_kit.figures.attribution import plot_attribution_grid

    if not attributions:
        return []
    first = attributions[0]
    labels, preds = first.labels, first.predictions
    out = []
    if labels is None or preds is None:
        cols = list(range(min(len(first.maps), 2 * per_class)))
        fig = plot_attribution_grid(attributions, images, samples=cols)
        return [("samples (no labels stored)", fig)]
    for c in np.unique(labels):
        name = class_names[int(c)] if class_names and int(c) < len(class_names) else str(c)
        right = np.flatnonzero((labels == c) & (preds == c))[:per_class]
        wrong = np.flatnonzero((labels == c) & (preds != c))[:per_class]
        cols = [int(i) for i in np.concatenate([right, wrong])]
        if not cols:
            continue
        titles = [
            f"#{i} {'correct' if preds[i] == labels[i] else f'predicted {preds[i]}'}" for i in cols
        ]
        fig = plot_attribution_grid(
            attributions,
            images,
            samples=cols,
            sample_titles=titles,
            title=f"Where the model looks: class {name}",
        )
        out.append((f"class {name}: {len(right)} correct, {len(wrong)} wrong", fig))
    return out
