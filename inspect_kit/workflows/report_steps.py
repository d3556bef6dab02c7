"""The profile report as a list of steps.

Each step knows whether it runs for a given profile (:meth:`Step.enabled`), what it computes
(:meth:`Step.compute`, analyses only) and how it shows the result (:meth:`Step.render`, one
section of the :class:`~inspect_kit.report.document.Report`). :func:`run_steps` computes
every enabled step in order, then renders them in the same order, so the report's sections
follow :func:`report_steps`: the model and caveats, then each registered analysis's section
(:mod:`.registry`). A new analysis in the report is one registration.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch import nn

from inspect_kit.store import schema

from .options import ProbeOptions, ReportOptions, RunOptions
from .output import timed_step
from .records import value_range_of
from .steps import (
    compute_embeddings,
    first_layer_kernels,
    latent_probe,
    layer_similarity,
    random_weights_profile,
    random_weights_similarity,
    randomized_capture,
    run_featurevis,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EmbeddingStep",
    "FeatureVisStep",
    "LatentStep",
    "ModelStep",
    "ProbeStep",
    "ReportContext",
    "CaveatsStep",
    "SanityStep",
    "SimilarityStep",
    "Step",
    "report_steps",
    "run_steps",
]


@dataclass
class ReportContext:
    """What every step of one report can read: the store, model, inputs, options.

    ``results`` holds each computed step's result under its :attr:`Step.key`, so a later step
    can build on an earlier one (the sanity section on the probe profile and the feature
    visualization).
    """

    store: Any
    store_path: Path
    report: Any
    options: ReportOptions
    layers: list[str]
    record: Mapping[str, Any]
    provenance: Mapping[str, Any]
    model: nn.Module | None = None
    inputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    model_extra: Mapping[str, Any] | None = None
    performance: Mapping[str, Any] | None = None
    confusion: np.ndarray | None = None
    #: metadata key (or array) the probes' folds are grouped by (patients), or None
    groups: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def run(self) -> RunOptions:
        return self.options.run


class Step(Protocol):
    """One part of the report."""

    #: key of the step's result in :attr:`ReportContext.results` and of its summary
    key: str
    #: what the run-time table calls its computation (None: not timed)
    label: str | None

    def enabled(self, ctx: ReportContext) -> bool:
        """Whether the step runs for this profile (options, and whether model/inputs exist)."""
        ...

    def compute(self, ctx: ReportContext) -> Any:
        """The step's analyses; no figures."""
        ...

    def render(self, ctx: ReportContext, result: Any) -> Any:
        """Add the step's section to ``ctx.report``; returns its summary rows (or None)."""
        ...


# -- the steps --------------------------------------------------------------------------------------
class ModelStep:
    """Model, data, accuracy, stored layers, provenance and the run-time table."""

    key = "model"
    label: str | None = None

    def enabled(self, ctx: ReportContext) -> bool:
        return True

    def compute(self, ctx: ReportContext) -> dict[str, Any]:
        return {
            "model_info": _model_info(ctx.model, ctx.record, ctx.provenance, ctx.model_extra),
            "layers": _layer_rows(ctx.store, ctx.layers),
            "dataset": _dataset_info(ctx),
        }

    def render(self, ctx: ReportContext, result: dict[str, Any]) -> None:
        from inspect_kit.report import sections

        sections.model_section(
            ctx.report,
            model_info=result["model_info"],
            provenance=ctx.provenance,
            layers=result["layers"],
            dataset=result["dataset"],
            performance=ctx.performance,
            confusion=ctx.confusion,
            class_names=ctx.class_names,
            timings=ctx.timings,  # complete: every step computed before any renders
        )


class EmbeddingStep:
    """PCA / t-SNE / UMAP of every layer, with the quality of each map."""

    key = "embeddings"
    label: str | None = "embeddings"

    def enabled(self, ctx: ReportContext) -> bool:
        return ctx.options.embedding is not None

    def compute(self, ctx: ReportContext) -> dict[str, dict[str, Any]]:
        assert ctx.options.embedding is not None  # enabled() checked it
        return compute_embeddings(ctx.store, ctx.layers, ctx.options.embedding, ctx.run)

    def render(self, ctx: ReportContext, result: Any) -> list[dict[str, Any]]:
        from inspect_kit.report import sections

        return sections.embedding_section(ctx.report, result, class_names=ctx.class_names)


class FeatureVisStep:
    """Activation maximization of the most class-selective units, exemplars, kernels."""

    key = "featurevis"
    label: str | None = "feature visualization"

    def _options(self, ctx: ReportContext) -> Any:
        from inspect_kit.analysis.selection import featurevis_layer

        options = ctx.options.featurevis
        assert options is not None  # enabled() checks it first
        vrange: Any
        if ctx.inputs is not None:
            shape, vrange = tuple(ctx.inputs.shape[1:]), value_range_of(ctx.inputs)
        else:
            shape = tuple(ctx.record.get("sample_shape") or ())
            vrange = ctx.record.get("value_range")
        return dataclasses.replace(
            options,
            layer=options.layer or featurevis_layer(ctx.store),
            input_shape=shape or None,
            value_range=(float(vrange[0]), float(vrange[1])) if vrange is not None else None,
        )

    def enabled(self, ctx: ReportContext) -> bool:
        if ctx.options.featurevis is None:
            return False
        if ctx.model is None:
            logger.info("no model: skipping feature visualization and the sanity checks")
            return False
        fo = self._options(ctx)
        shape = fo.input_shape or ()
        return bool(fo.layer and len(shape) in (3, 4))

    def compute(self, ctx: ReportContext) -> tuple[Any, Any]:
        assert ctx.model is not None  # enabled() checked it
        run = run_featurevis(
            ctx.model, self._options(ctx), ctx.run, store=ctx.store, class_names=ctx.class_names
        )
        return run, first_layer_kernels(ctx.model)

    def render(self, ctx: ReportContext, result: tuple[Any, Any]) -> list[dict[str, Any]]:
        from inspect_kit.report import sections

        fv, kernels = result
        return sections.featurevis_section(
            ctx.report,
            result=fv.result,
            exemplars=fv.exemplars,
            selectivity=fv.selectivity,
            preferred=fv.preferred,
            kernels=kernels,
            class_names=ctx.class_names,
        )


class LatentStep:
    """A convolutional autoencoder trained on the inputs, and its latent space probed."""

    key = "latent"
    label: str | None = "autoencoder latent probing"

    def enabled(self, ctx: ReportContext) -> bool:
        return ctx.inputs is not None and ctx.options.latent is not None

    def compute(self, ctx: ReportContext) -> dict[str, Any]:
        assert ctx.inputs is not None and ctx.options.latent is not None
        return latent_probe(ctx.inputs, ctx.store, ctx.labels, ctx.options.latent, ctx.run)

    def render(self, ctx: ReportContext, result: dict[str, Any]) -> dict[str, Any]:
        from inspect_kit.report import sections

        return sections.latent_section(ctx.report, class_names=ctx.class_names, **result)


class ProbeStep:
    """Linear probes of the label across layers (saved in the store)."""

    key = "probes"
    label: str | None = "probe profile"

    def enabled(self, ctx: ReportContext) -> bool:
        return ctx.labels is not None and ctx.options.probe is not None

    def compute(self, ctx: ReportContext) -> Any:
        from inspect_kit.analysis.probes import probe_profile

        assert ctx.options.probe is not None
        return probe_profile(
            ctx.store,
            ctx.layers,
            target="label",
            cv=ctx.options.probe.cv,
            random_state=ctx.run.random_state,
            save=True,
            progress=ctx.run.progress,
            groups=ctx.groups,
        )

    def render(self, ctx: ReportContext, result: Any) -> list[dict[str, Any]]:
        from inspect_kit.report import sections

        latent = ctx.results.get("latent") or {}
        return sections.probe_section(ctx.report, result, latent_probe=latent.get("label_probe"))


class SanityStep:
    """Randomised weights: the feature visualization cascade and a random-weights probe profile."""

    key = "sanity"
    label: str | None = None

    def _randomization(self, ctx: ReportContext) -> Any:
        fv = ctx.results.get("featurevis")
        return fv[0].randomization if fv is not None else None

    def _baseline_possible(self, ctx: ReportContext) -> bool:
        # one randomised capture serves the probe baseline and the similarity with random weights
        return (
            ctx.options.random_baseline
            and ctx.model is not None
            and ctx.inputs is not None
            and (ctx.results.get("probes") is not None or ctx.options.similarity is not None)
        )

    def enabled(self, ctx: ReportContext) -> bool:
        return self._randomization(ctx) is not None or self._baseline_possible(ctx)

    def compute(self, ctx: ReportContext) -> dict[str, Any]:
        from inspect_kit.analysis.randomization import randomization_verdict

        randomization = self._randomization(ctx)
        verdict = None
        if randomization is not None and len(randomization.mean_scores) > 1:
            verdict = randomization_verdict(randomization.mean_scores, randomization.reference)
        profiles = random_similarity = None
        if self._baseline_possible(ctx):
            assert ctx.model is not None and ctx.inputs is not None
            run = ctx.run
            with (
                timed_step("random-weights baseline", ctx.timings),
                randomized_capture(
                    ctx.model,
                    ctx.inputs,
                    ctx.store,
                    ctx.layers,
                    random_state=run.random_state,
                    device=run.device,
                    progress=run.progress,
                ) as random_store,
            ):
                if ctx.results.get("probes") is not None:
                    random = random_weights_profile(
                        random_store,
                        ctx.layers,
                        cv=(ctx.options.probe or ProbeOptions()).cv,
                        random_state=run.random_state,
                        progress=run.progress,
                        groups=ctx.groups,
                        store=ctx.store,
                    )
                    profiles = {"trained": ctx.results["probes"], "random weights": random}
                if ctx.options.similarity is not None:
                    random_similarity = random_weights_similarity(
                        ctx.store,
                        random_store,
                        ctx.layers,
                        random_state=run.random_state,
                        progress=run.progress,
                    )
        return {
            "randomization": randomization,
            "verdict": verdict,
            "profiles": profiles,
            "random_similarity": random_similarity,
        }

    def render(self, ctx: ReportContext, result: dict[str, Any]) -> None:
        from inspect_kit.report import sections

        if result["randomization"] is not None or result["profiles"]:
            sections.sanity_section(
                ctx.report,
                randomization=result["randomization"],
                verdict=result["verdict"],
                profiles=result["profiles"],
            )


class CaveatsStep:
    """The results to read with care (fragile probes, few samples per class ...), each with
    the number that says so.

    Shown right after the model section but drawn from the later steps' results, so it reads
    them when it renders (every step has computed by then), not when it computes.
    """

    key = "caveats"
    label: str | None = None

    def enabled(self, ctx: ReportContext) -> bool:
        return True

    def compute(self, ctx: ReportContext) -> None:
        return None

    def _notes(self, ctx: ReportContext) -> list[str]:
        from inspect_kit.analysis.caveats import find_caveats

        sanity = ctx.results.get("sanity") or {}
        found = find_caveats(
            profile=ctx.results.get("probes"),
            random_profile=(sanity.get("profiles") or {}).get("random weights"),
            labels=ctx.labels,
            class_names=ctx.class_names,
            history=(ctx.results.get("latent") or {}).get("history"),
        )
        notes = [c.text for c in found]
        # a store captured from a factory without weights holds an untrained network
        # (unless the factory loads weights itself): "trained" below means that network
        args = {str(k).lower() for k in (ctx.record.get("model_args") or {})}
        if (
            ctx.record.get("model")
            and not ctx.record.get("weights")
            and not args & {"weights", "pretrained", "pretrained_backbone", "checkpoint"}
        ):
            notes.insert(
                0,
                f"no weights: the store was captured from {ctx.record['model']} as its factory "
                "builds it, randomly initialised unless the factory loads weights itself; "
                "'trained' below means this network (capture with --weights for a trained one)",
            )
        return notes

    def render(self, ctx: ReportContext, result: None) -> list[str] | None:
        notes = self._notes(ctx)
        if not notes:
            return None
        sec = ctx.report.section(
            "Caveats",
            intro="Results below that should be read with care, and the number that says so.",
        )
        for note in notes:
            sec.add_callout(note, warn=True)
        return notes


class SimilarityStep:
    """CKA between every pair of layers, and of each layer with a randomised copy's."""

    key = "similarity"
    label: str | None = "layer similarity"

    def enabled(self, ctx: ReportContext) -> bool:
        return ctx.options.similarity is not None

    def compute(self, ctx: ReportContext) -> dict[str, Any]:
        within = layer_similarity(
            ctx.store,
            ctx.layers,
            random_state=ctx.run.random_state,
            progress=ctx.run.progress,
        )
        from inspect_kit.analysis.randomization import random_similarity_verdict

        random = (ctx.results.get("sanity") or {}).get("random_similarity")
        verdict = None
        if random is not None:
            verdict = random_similarity_verdict(list(random.layers), random.diagonal())
        return {"within": within, "random": random, "verdict": verdict}

    def render(self, ctx: ReportContext, result: dict[str, Any]) -> Any:
        from inspect_kit.report import sections

        if result["within"] is None and result["random"] is None:
            return None
        return sections.similarity_section(ctx.report, **result)


def report_steps() -> tuple[Step, ...]:
    """The report's steps, in the order of its sections (and of their computation).

    The model section and the caveats first, then the section of every registered analysis
    (:mod:`.registry`) in registration order: a step class is instantiated, a plain section
    function becomes a :class:`~inspect_kit.workflows.registered.RegisteredStep`.
    """
    from .registered import RegisteredStep
    from .registry import analyses, resolve

    steps: list[Step] = [ModelStep(), CaveatsStep()]
    for spec in analyses():
        if spec.section is None:
            continue
        section = resolve(spec.section)
        if isinstance(section, type):
            steps.append(section())
        elif hasattr(section, "enabled") and hasattr(section, "render"):
            steps.append(section)
        else:
            steps.append(RegisteredStep(spec))
    return tuple(steps)


def run_steps(ctx: ReportContext, steps: Sequence[Step] | None = None) -> ReportContext:
    """Compute every enabled step, then render each into ``ctx.report``; returns ``ctx``.

    ``steps`` default to :func:`report_steps`.
    """
    steps = report_steps() if steps is None else steps
    done: list[Step] = []
    for step in steps:
        if not step.enabled(ctx):
            continue
        if step.label is None:
            ctx.results[step.key] = step.compute(ctx)
        else:
            with timed_step(step.label, ctx.timings):
                ctx.results[step.key] = step.compute(ctx)
        done.append(step)
    with timed_step("report", ctx.timings):
        for step in done:
            summary = step.render(ctx, ctx.results[step.key])
            if summary is not None:
                ctx.summary[step.key] = summary
    return ctx


# -- what the model section shows -------------------------------------------------------------------
def _layer_rows(store: Any, layers: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for name in layers:
        v = store[name]
        a = v.attrs
        rows.append(
            {
                "name": name,
                "module_type": a.get(schema.MODULE_TYPE_ATTR, ""),
                "shape": str(tuple(v.shape[1:])),
                "source_shape": str(tuple(a.get(schema.SOURCE_SHAPE_ATTR, ()))),
                "reduction": a.get(schema.REDUCTION_ATTR) or "none",
            }
        )
    return rows


def _model_info(
    model: nn.Module | None,
    record: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    info: dict[str, Any] = {"class": provenance.get(schema.MODEL_CLASS_ATTR)}
    if record.get("model"):
        info["factory"] = record["model"]
    if record.get("model_args"):
        info["factory arguments"] = record["model_args"]
    if record.get("weights"):
        info["weights"] = record["weights"]
    if model is not None:
        info["parameters"] = int(sum(p.numel() for p in model.parameters()))
        info["modules"] = int(sum(1 for _ in model.modules()) - 1)
    info["state_dict sha256"] = str(provenance.get(schema.MODEL_SHA256_ATTR, ""))[:16]
    if record.get("sample_shape"):
        info["input shape"] = tuple(record["sample_shape"])
    info.update(extra or {})
    return info


def _dataset_info(ctx: ReportContext) -> dict[str, Any]:
    store, labels, names = ctx.store, ctx.labels, ctx.class_names
    dataset: dict[str, Any] = {"samples": len(store)}
    if ctx.record.get("data"):
        dataset["source"] = ctx.record["data"]
    if labels is not None:
        vals, counts = np.unique(labels, return_counts=True)
        dataset["classes"] = ", ".join(
            f"{names[int(v)] if names and 0 <= int(v) < len(names) else v} ({c})"
            for v, c in zip(vals, counts, strict=True)
        )
        if store.predictions is not None:
            mismatch = store.label_mismatch
            if mismatch:
                dataset["accuracy of the stored predictions"] = (
                    f"not shown: the labels are not the model's classes ({mismatch})"
                )
            else:
                dataset["accuracy of the stored predictions"] = float(
                    np.mean(store.predictions == labels)
                )
    return dataset
