"""The profile report: what ``inspect-kit report`` (and the end of ``inspect-kit demo``) runs.

:func:`build_report` profiles a store (and its model and inputs when given) into one HTML
report and every figure as PNG/SVG. The report is the list of steps of
:mod:`.report_steps` (embeddings, feature visualization, latent probing, probe profile,
randomised-weights sanity checks); :func:`report_from_store` rebuilds the model and inputs a
store recorded. The demo lives in :mod:`.demo`, the single-step commands in :mod:`.commands`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from inspect_kit.store import schema

from .options import ModelSource, ReportOptions
from .output import check_formats, limit_threads, timed_step, write_figures
from .records import (
    class_names_of,
    load_recorded_inputs,
    load_recorded_model,
    model_mismatch,
    read_inputs_record,
)
from .report_steps import ReportContext, run_steps
from .steps import check_layers

logger = logging.getLogger(__name__)

__all__ = ["PipelineResult", "ReportOptions", "build_report", "report_from_store"]


@dataclass
class PipelineResult:
    """Where a report run left its outputs."""

    store: Path
    report: Path
    figures: list[Path]
    figures_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def build_report(
    store_path: str | Path,
    out: str | Path,
    *,
    model: nn.Module | None = None,
    inputs: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    model_extra: Mapping[str, Any] | None = None,
    performance: Mapping[str, Any] | None = None,
    confusion: np.ndarray | None = None,
    options: ReportOptions | None = None,
    title: str | None = None,
    timings: dict[str, float] | None = None,
) -> PipelineResult:
    """Profile a store (and its model and inputs when given) into one HTML report + figures.

    Parameters
    ----------
    store_path : path
        The activation store; analyses cache their results in it.
    out : path
        The report file; figures go to ``figures/`` beside it.
    model : nn.Module, optional
        Needed for feature visualization and the randomised-weights checks.
    inputs : ndarray (N, C, ...), optional
        The store's inputs in its sample order (``store.index``), for the autoencoder probe
        and the random-weights probe profile.
    class_names : sequence of str, optional
    options : ReportOptions, optional

    Returns
    -------
    PipelineResult

    Examples
    --------
    >>> build_report("acts.h5", "report.html", model=net, inputs=X)   # doctest: +SKIP
    """
    opts = options or ReportOptions()
    check_formats(opts.formats)
    with limit_threads(opts.run.threads):
        return _build_report(
            Path(store_path),
            Path(out),
            model=model,
            inputs=inputs,
            class_names=class_names,
            extra={"model_extra": model_extra, "performance": performance, "confusion": confusion},
            options=opts,
            title=title,
            timings=timings if timings is not None else {},
        )


def _build_report(
    store_path: Path,
    out: Path,
    *,
    model: nn.Module | None,
    inputs: np.ndarray | None,
    class_names: Sequence[str] | None,
    extra: Mapping[str, Any],
    options: ReportOptions,
    title: str | None,
    timings: dict[str, float],
) -> PipelineResult:
    from inspect_kit.analysis.probes import default_groups
    from inspect_kit.report.document import Report
    from inspect_kit.store import open_store

    with open_store(store_path) as store:
        record = read_inputs_record(store)
        prov = store.provenance
        layers = check_layers(store, options.layers)
        model_class = str(prov.get(schema.MODEL_CLASS_ATTR, "model")).split(".")[-1]
        report = Report(
            title or f"inspect_kit profile of {model_class}",
            subtitle=f"{store_path.name}: {len(store)} samples, {len(layers)} layers",
        )
        groups = default_groups(store)
        if groups is not None:
            logger.info("probes are cross-validated by %s groups (no group in two folds)", groups)
        ctx = ReportContext(
            store=store,
            store_path=store_path,
            report=report,
            options=options,
            layers=layers,
            record=record,
            provenance=prov,
            model=model,
            inputs=_in_store_order(inputs, store),
            labels=store.labels,
            class_names=list(class_names) if class_names is not None else class_names_of(record),
            groups=groups,
            timings=timings,
            **extra,
        )
        run_steps(ctx)
        report.save(out)
    figures: list[Path] = []
    if options.formats:
        with timed_step("static figures", timings):
            figures = write_figures(
                report.figures,
                out.parent / "figures",
                options.formats,
                progress=options.run.progress,
            )
    return PipelineResult(
        store=store_path,
        report=out,
        figures=figures,
        figures_dir=out.parent / "figures",
        timings=timings,
        summary=ctx.summary,
    )


def _in_store_order(inputs: np.ndarray | None, store: Any) -> np.ndarray | None:
    """The inputs of the store's samples, in its order (``store.index`` into the dataset)."""
    if inputs is None or len(inputs) == len(store):
        return inputs
    idx = store.index
    if idx.max(initial=-1) < len(inputs):
        ordered: np.ndarray = inputs[idx]
        return ordered
    raise ValueError(f"inputs have {len(inputs)} samples but the store indexes up to {idx.max()}")


def report_from_store(
    store_path: str | Path,
    *,
    out: str | Path | None = None,
    model: ModelSource | None = None,
    data: str | None = None,
    options: ReportOptions | None = None,
) -> PipelineResult:
    """The ``report`` command: profile a store, rebuilding model and inputs from its record.

    Parameters
    ----------
    store_path : path
    out : path, optional
        The report file (default: ``report.html`` next to the store).
    model : ModelSource, optional
        The model to visualise (default: the one the store recorded, if it rebuilds).
    data : str, optional
        Inputs for the autoencoder probe (default: as the store recorded them).
    options : ReportOptions, optional

    Examples
    --------
    >>> report_from_store("acts.h5", out="report.html")               # doctest: +SKIP
    """
    from types import SimpleNamespace

    from inspect_kit.store import open_store

    opts = options or ReportOptions()
    store_path = Path(store_path)
    if not store_path.is_file():
        raise FileNotFoundError(f"store {store_path} does not exist")
    with open_store(store_path) as store:
        record = read_inputs_record(store)
        sha = store.provenance.get(schema.MODEL_SHA256_ATTR)
    net = None
    if model is not None:
        net = model.load(opts.run.device)
        store_view = SimpleNamespace(provenance={schema.MODEL_SHA256_ATTR: sha})
        mismatch = model_mismatch(net, store_view) if sha else None
        if mismatch:
            logger.warning(
                "%s: the feature visualization and sanity checks describe the model given, "
                "without the store's exemplars (they would show another model's units)",
                mismatch,
            )
            if opts.featurevis is not None:
                featurevis = dataclasses.replace(opts.featurevis, exemplars=0)
                opts = dataclasses.replace(opts, featurevis=featurevis)
    elif opts.featurevis is not None or opts.random_baseline:
        from inspect_kit.models.registry import UntrustedModelError

        try:
            net = load_recorded_model(
                record, opts.run.device, expected_sha256=sha, store_path=store_path
            )
        except UntrustedModelError as err:
            if opts.featurevis is not None:
                raise
            # only the random-weights baseline wanted it: the report stands without
            logger.warning("%s", err)
            net = None
    inputs = None
    if data:
        from inspect_kit.data.formats import load_data

        inputs = load_data(data).to_array()
    elif opts.latent is not None or opts.random_baseline:
        inputs = load_recorded_inputs(record)
    out = Path(out) if out is not None else store_path.parent / "report.html"
    return build_report(store_path, out, model=net, inputs=inputs, options=opts)
