"""The profile report and the demo: what ``inspect-kit report`` and ``inspect-kit demo`` run.

:func:`build_report` profiles a store (and its model and inputs when given): embeddings,
feature visualization, latent probing, probe profile, randomised-weights sanity check,
representation similarity (CKA between layers, and with a randomised copy), one HTML report
and every figure as PNG/SVG. :func:`run_demo` trains the default medical model and profiles
it. The steps themselves live in :mod:`.steps`, the single-step commands in
:mod:`.commands`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.analysis.embedding.registry import default_methods, get_method
from inspect_kit.store import schema

from .caveats import report_caveats
from .output import check_formats, limit_threads, timed_step, write_figures
from .records import (
    DEMO_DATA,
    DEMO_MODEL,
    class_names_of,
    load_recorded_inputs,
    load_recorded_model,
    model_mismatch,
    read_inputs_record,
    record_inputs,
    value_range_of,
)
from .steps import (
    check_layers,
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

DEMO_LAYERS = ("relu1", "relu2", "relu3", "fc")

__all__ = [
    "DemoSize",
    "PipelineResult",
    "ReportOptions",
    "build_report",
    "report_from_store",
    "run_demo",
]


@dataclass
class ReportOptions:
    """What :func:`build_report` computes, and how much of it."""

    methods: tuple[str, ...] = field(default_factory=default_methods)
    layers: list[str] | None = None
    formats: tuple[str, ...] = ("png", "svg")
    featurevis: bool = True
    featurevis_layer: str | None = None
    n_units: int = 6
    featurevis_steps: int = 192
    exemplars: int = 5
    sanity: bool = True
    sanity_units: int = 3
    sanity_steps: int = 96
    sanity_layers: list[str] | None = None
    sanity_stages: int = 3
    random_baseline: bool = True
    similarity: bool = True
    latent: bool = True
    latent_dim: int = 8
    autoencoder_epochs: int = 25
    latent_max_train: int = 4000
    probe_cv: int = 5
    n_jobs: int = 1
    threads: int | None = 1
    seed: int = 0
    device: str | None = None
    progress: bool = True


@dataclass
class PipelineResult:
    """Where a report run left its outputs."""

    store: Path
    report: Path
    figures: list[Path]
    figures_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


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
    with limit_threads(opts.threads):
        return _build_report(
            store_path,
            out,
            model=model,
            inputs=inputs,
            class_names=class_names,
            model_extra=model_extra,
            performance=performance,
            confusion=confusion,
            options=opts,
            title=title,
            timings=timings,
        )


def _build_report(
    store_path: str | Path,
    out: str | Path,
    *,
    model: nn.Module | None,
    inputs: np.ndarray | None,
    class_names: Sequence[str] | None,
    model_extra: Mapping[str, Any] | None,
    performance: Mapping[str, Any] | None,
    confusion: np.ndarray | None,
    options: ReportOptions,
    title: str | None,
    timings: dict[str, float] | None,
) -> PipelineResult:
    from inspect_kit.analysis.probes import default_groups, probe_profile
    from inspect_kit.store import open_store

    from . import sections
    from .document import Report
    from .selection import featurevis_layer

    opts = options
    timings = timings if timings is not None else {}
    out = Path(out)
    figures_dir = out.parent / "figures"
    store_path = Path(store_path)
    summary: dict[str, Any] = {}
    with open_store(store_path) as store:
        record = read_inputs_record(store)
        prov = store.provenance
        class_names = list(class_names) if class_names is not None else class_names_of(record)
        layers = check_layers(store, opts.layers)
        labels = store.labels
        title = (
            title
            or f"inspect_kit profile of {str(prov.get(schema.MODEL_CLASS_ATTR, 'model')).split('.')[-1]}"
        )
        report = Report(
            title, subtitle=f"{store_path.name}: {len(store)} samples, {len(layers)} layers"
        )
        dataset: dict[str, Any] = {"samples": len(store)}
        if record.get("data"):
            dataset["source"] = record["data"]
        if labels is not None:
            vals, counts = np.unique(labels, return_counts=True)
            dataset["classes"] = ", ".join(
                f"{class_names[int(v)] if class_names and 0 <= int(v) < len(class_names) else v}"
                f" ({c})"
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
        if inputs is not None and len(inputs) != len(store):
            idx = store.index
            if idx.max(initial=-1) < len(inputs):
                inputs = inputs[idx]
            else:
                raise ValueError(
                    f"inputs have {len(inputs)} samples but the store indexes up to {idx.max()}"
                )

        embeddings: dict[str, dict[str, Any]] = {}
        if opts.methods:
            with timed_step("embeddings", timings):
                embeddings = compute_embeddings(
                    store,
                    layers,
                    opts.methods,
                    seed=opts.seed,
                    n_jobs=opts.n_jobs,
                    progress=opts.progress,
                )

        profile = None
        groups = default_groups(store)
        if groups is not None:
            logger.info("probes are cross-validated by %s groups (no group in two folds)", groups)
        if labels is not None:
            with timed_step("probe profile", timings):
                profile = probe_profile(
                    store,
                    layers,
                    target="label",
                    cv=opts.probe_cv,
                    random_state=opts.seed,
                    save=True,
                    progress=opts.progress,
                    groups=groups,
                )

        fv = None
        input_shape = (
            list(inputs.shape[1:]) if inputs is not None else list(record.get("sample_shape") or [])
        )
        value_range = value_range_of(inputs) if inputs is not None else record.get("value_range")
        fv_layer = opts.featurevis_layer or featurevis_layer(store)
        if model is not None and opts.featurevis and fv_layer and len(input_shape) in (3, 4):
            with timed_step("feature visualization", timings):
                fv = run_featurevis(
                    model,
                    layer=fv_layer,
                    input_shape=input_shape,
                    store=store,
                    n_units=opts.n_units,
                    value_range=value_range,
                    steps=opts.featurevis_steps,
                    exemplars=opts.exemplars,
                    sanity=opts.sanity,
                    sanity_steps=opts.sanity_steps,
                    sanity_units=opts.sanity_units,
                    sanity_layers=opts.sanity_layers,
                    sanity_stages=opts.sanity_stages,
                    class_names=class_names,
                    seed=opts.seed,
                    device=opts.device,
                    progress=opts.progress,
                )
        elif model is None:
            logger.info("no model: skipping feature visualization and the sanity checks")

        within = None
        if opts.similarity:
            with timed_step("layer similarity", timings):
                within = layer_similarity(store, layers, seed=opts.seed, progress=opts.progress)

        random_profiles = None
        random_similarity = None
        if model is not None and inputs is not None and opts.random_baseline:
            with timed_step("random-weights baseline", timings):
                with randomized_capture(
                    model,
                    inputs,
                    store,
                    layers,
                    seed=opts.seed,
                    device=opts.device,
                    progress=opts.progress,
                ) as random_store:
                    if profile is not None:
                        random_profiles = {
                            "trained": profile,
                            "random weights": random_weights_profile(
                                random_store,
                                layers,
                                cv=opts.probe_cv,
                                seed=opts.seed,
                                progress=opts.progress,
                                groups=groups,
                                store=store,
                            ),
                        }
                    if opts.similarity:
                        random_similarity = random_weights_similarity(
                            store, random_store, layers, seed=opts.seed, progress=opts.progress
                        )

        latent = None
        if inputs is not None and opts.latent:
            with timed_step("autoencoder latent probing", timings):
                latent = latent_probe(
                    inputs,
                    store,
                    labels,
                    latent_dim=opts.latent_dim,
                    epochs=opts.autoencoder_epochs,
                    max_train=opts.latent_max_train,
                    cv=opts.probe_cv,
                    seed=opts.seed,
                    device=opts.device,
                    progress=opts.progress,
                )

        with timed_step("report", timings):
            kernels = first_layer_kernels(model) if fv is not None else None
            sections.model_section(
                report,
                model_info=_model_info(model, record, prov, model_extra),
                provenance=prov,
                layers=_layer_rows(store, layers),
                dataset=dataset,
                performance=performance,
                confusion=confusion,
                class_names=class_names,
                timings=timings,
            )
            notes = report_caveats(
                profile=profile,
                random_profile=(random_profiles or {}).get("random weights"),
                labels=labels,
                class_names=class_names,
                history=(latent or {}).get("history"),
            )
            if notes:
                summary["caveats"] = notes
                sec = report.section(
                    "Caveats",
                    intro="Results below that should be read with care, and the number that "
                    "says so.",
                )
                for note in notes:
                    sec.add_callout(note, warn=True)
            if embeddings:
                summary["embeddings"] = sections.embedding_section(
                    report, embeddings, class_names=class_names
                )
            if fv is not None:
                summary["featurevis"] = sections.featurevis_section(
                    report,
                    result=fv.result,
                    exemplars=fv.exemplars,
                    selectivity=fv.selectivity,
                    preferred=fv.preferred,
                    kernels=kernels,
                    class_names=class_names,
                )
            if latent is not None:
                summary["latent"] = sections.latent_section(
                    report, class_names=class_names, **latent
                )
            if profile is not None:
                summary["probes"] = sections.probe_section(
                    report, profile, latent_probe=(latent or {}).get("label_probe")
                )
            if (fv is not None and fv.randomization is not None) or random_profiles:
                sections.sanity_section(
                    report,
                    randomization=fv.randomization if fv is not None else None,
                    profiles=random_profiles,
                )
            if within is not None or random_similarity is not None:
                summary["similarity"] = sections.similarity_section(
                    report, within=within, random=random_similarity
                )
            report.save(out)
    figures: list[Path] = []
    if opts.formats:
        with timed_step("static figures", timings):
            figures = write_figures(
                report.figures, figures_dir, opts.formats, progress=opts.progress
            )
    return PipelineResult(
        store=store_path,
        report=out,
        figures=figures,
        figures_dir=figures_dir,
        timings=timings,
        summary=summary,
    )


def report_from_store(
    store_path: str | Path,
    *,
    out: str | Path | None = None,
    model_spec: str | None = None,
    weights: str | Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    data: str | None = None,
    options: ReportOptions | None = None,
) -> PipelineResult:
    """The ``report`` command: profile a store, rebuilding model and inputs from its record."""
    from inspect_kit.models.registry import load_model
    from inspect_kit.store import open_store

    opts = options or ReportOptions()
    store_path = Path(store_path)
    if not store_path.is_file():
        raise FileNotFoundError(f"store {store_path} does not exist")
    with open_store(store_path) as store:
        record = read_inputs_record(store)
        sha = store.provenance.get(schema.MODEL_SHA256_ATTR)
    store_view = SimpleNamespace(provenance={schema.MODEL_SHA256_ATTR: sha})
    model = None
    if model_spec:
        model = load_model(model_spec, weights=weights, model_args=model_args, device=opts.device)
        mismatch = model_mismatch(model, store_view) if sha else None
        if mismatch:
            logger.warning(
                "%s: the feature visualization and sanity checks describe the model given, "
                "without the store's exemplars (they would show another model's units)",
                mismatch,
            )
            opts = dataclasses.replace(opts, exemplars=0)
    elif opts.featurevis or opts.random_baseline:
        from inspect_kit.models.registry import UntrustedModelError

        try:
            model = load_recorded_model(
                record, opts.device, expected_sha256=sha, store_path=store_path
            )
        except UntrustedModelError as err:
            if opts.featurevis:
                raise
            # only the random-weights baseline wanted it: the report stands without
            logger.warning("%s", err)
            model = None
    inputs = None
    if data:
        from inspect_kit.data.formats import load_data

        inputs = load_data(data).to_array()
    elif opts.latent or opts.random_baseline:
        inputs = load_recorded_inputs(record)
    out = Path(out) if out is not None else store_path.parent / "report.html"
    return build_report(store_path, out, model=model, inputs=inputs, options=opts)


@dataclass(frozen=True)
class DemoSize:
    """Sizes of the demo; :meth:`quick` is a smoke test."""

    n_per_class: int = 400
    epochs: int = 12
    featurevis_steps: int = 128
    sanity_steps: int = 64
    sanity_stages: int = 3
    n_units: int = 6
    latent_dim: int = 8
    autoencoder_epochs: int = 15

    @classmethod
    def quick(cls) -> DemoSize:
        return cls(
            n_per_class=60,
            epochs=3,
            featurevis_steps=24,
            sanity_steps=12,
            sanity_stages=2,
            n_units=3,
            latent_dim=4,
            autoencoder_epochs=2,
        )


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    methods: Sequence[str] | None = None,
    formats: Sequence[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    threads: int | None = 1,
    progress: bool = True,
) -> PipelineResult:
    """Train a small CNN on MNI152 tissue patches and profile it: store, report, figures.

    Parameters
    ----------
    out : path
        Folder for ``activations.h5``, ``model.pt``, ``report.html`` and ``figures/``.
    quick : bool
        Small sizes, for tests.
    methods : sequence of str, optional
        Embedding methods (default PCA, t-SNE, UMAP).
    formats : sequence of str, optional
        Static figure formats (default PNG and SVG).
    seed : int
    device : str, optional
    threads : int or None
        CPU threads for torch and BLAS (see :func:`limit_threads`); None leaves them.
    progress : bool

    Returns
    -------
    PipelineResult

    Examples
    --------
    >>> res = run_demo("demo_out")          # doctest: +SKIP
    >>> res.report                          # doctest: +SKIP
    PosixPath('demo_out/report.html')
    """
    check_formats(formats or ())
    for m in methods or ():
        get_method(m)  # ValueError naming the registered methods
    with limit_threads(threads):
        return _run_demo(
            out,
            quick=quick,
            methods=methods,
            formats=formats,
            seed=seed,
            device=device,
            threads=threads,
            progress=progress,
        )


def _run_demo(
    out: str | Path,
    *,
    quick: bool,
    methods: Sequence[str] | None,
    formats: Sequence[str] | None,
    seed: int,
    device: str | None,
    threads: int | None,
    progress: bool,
) -> PipelineResult:
    from sklearn.model_selection import train_test_split

    from inspect_kit.capture import capture
    from inspect_kit.data import load_mni_patches
    from inspect_kit.models import SmallCNN, evaluate_classifier, fit_classifier

    size = DemoSize.quick() if quick else DemoSize()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    data_options = {"dim": 2, "patch": 16, "n_per_class": size.n_per_class, "seed": seed}
    with timed_step("loading MNI152 tissue patches", timings):
        X, y, class_names, info = load_mni_patches(**data_options, return_info=True)
        idx = np.arange(len(y))
        tr, te = train_test_split(idx, test_size=0.25, random_state=seed, stratify=y)
        logger.info("%d patches %s, classes %s", len(y), X.shape[1:], ", ".join(class_names))
    model_args = {
        "in_channels": 1,
        "n_classes": len(class_names),
        "dim": 2,
        "pool_size": 3,
        "seed": seed,
    }
    net = SmallCNN(**model_args)
    with timed_step("training SmallCNN", timings):
        history = fit_classifier(
            net,
            X[tr],
            y[tr],
            epochs=size.epochs,
            lr=3e-3,
            val_data=(X[te], y[te]),
            device=device,
            seed=seed,
            progress=progress,
        )
        net.eval()
        perf = evaluate_classifier(net, X[te], y[te], device=device)
        logger.info("test accuracy %.3f", perf["accuracy"])
    weights = out / "model.pt"
    torch.save(net.state_dict(), weights)
    split = np.where(np.isin(idx, te), "test", "train").astype(object)
    mm = np.asarray(info["center_mm"], dtype=np.float32)
    metadata = {"split": split, "x_mm": mm[:, 0], "y_mm": mm[:, 1], "z_mm": mm[:, 2]}
    store_path = out / "activations.h5"
    with timed_step("capturing activations", timings):
        store = capture(
            net,
            X,
            list(DEMO_LAYERS),
            store_path,
            labels=y,
            metadata=metadata,
            overwrite=True,
            device=device,
            progress=progress,
        )
        try:
            record_inputs(
                store,
                {
                    "model": DEMO_MODEL,
                    "weights": str(weights.resolve()),
                    "model_args": model_args,
                    "data": DEMO_DATA,
                    "data_options": data_options,
                    "kind": "mni",
                    "sample_shape": list(X.shape[1:]),
                    "class_names": list(class_names),
                    "value_range": list(value_range_of(X)),
                },
            )
        finally:
            store.close()
    opts = ReportOptions(
        methods=tuple(methods or default_methods()),
        formats=tuple(formats if formats is not None else ("png", "svg")),
        n_units=size.n_units,
        featurevis_steps=size.featurevis_steps,
        sanity_steps=size.sanity_steps,
        sanity_stages=size.sanity_stages,
        latent_dim=size.latent_dim,
        autoencoder_epochs=size.autoencoder_epochs,
        threads=threads,
        seed=seed,
        device=device,
        progress=progress,
    )
    performance = {
        "test accuracy": float(perf["accuracy"]),
        "test balanced accuracy": float(perf["balanced_accuracy"]),
        "test samples": int(perf["n"]),
        "epochs": history.get("epochs_run", size.epochs),
        "final training loss": float(history["train_loss"][-1]),
    }
    return build_report(
        store_path,
        out / "report.html",
        model=net,
        inputs=X,
        class_names=class_names,
        model_extra={"trained on": f"{len(tr)} MNI152 patches (nilearn), 25% held out"},
        performance=performance,
        confusion=np.asarray(perf["confusion_matrix"]),
        options=opts,
        title="inspect_kit demo: SmallCNN on MNI152 brain tissue patches",
        timings=timings,
    )
