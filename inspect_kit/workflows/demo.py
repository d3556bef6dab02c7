"""The demo: train a small CNN on real brain MRI patches and profile it (``inspect-kit demo``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .options import (
    EmbeddingOptions,
    FeatureVisOptions,
    LatentOptions,
    ReportOptions,
    RunOptions,
)
from .output import check_formats, limit_threads, timed_step
from .pipeline import PipelineResult, build_report
from .records import DEMO_DATA, DEMO_MODEL, record_inputs, value_range_of

logger = logging.getLogger(__name__)

#: layers of :class:`~inspect_kit.models.SmallCNN` the demo captures
DEMO_LAYERS = ("relu1", "relu2", "relu3", "fc")

__all__ = ["DEMO_LAYERS", "DemoSize", "run_demo"]


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
    run: RunOptions | None = None,
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
    run : RunOptions, optional
        random_state, device, CPU threads (default 1, see :func:`limit_threads`; None leaves
        them) and progress.

    Returns
    -------
    PipelineResult

    Examples
    --------
    >>> res = run_demo("demo_out", run=RunOptions(random_state=1))   # doctest: +SKIP
    >>> res.report                          # doctest: +SKIP
    PosixPath('demo_out/report.html')
    """
    run = run or RunOptions(threads=1)
    check_formats(formats or ())
    from inspect_kit.analysis.embedding.registry import get_method

    for m in methods or ():
        get_method(m)  # ValueError naming the registered methods
    with limit_threads(run.threads):
        return _run_demo(out, quick=quick, methods=methods, formats=formats, run=run)


def _run_demo(
    out: str | Path,
    *,
    quick: bool,
    methods: Sequence[str] | None,
    formats: Sequence[str] | None,
    run: RunOptions,
) -> PipelineResult:
    from sklearn.model_selection import train_test_split

    from inspect_kit.capture import capture
    from inspect_kit.data import mni_patches
    from inspect_kit.models import SmallCNN, evaluate_classifier, fit_classifier

    size = DemoSize.quick() if quick else DemoSize()
    random_state, device, progress = run.random_state, run.device, run.progress
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    data_options: dict[str, Any] = {
        "dim": 2,
        "patch": 16,
        "n_per_class": size.n_per_class,
        "random_state": random_state,
    }
    with timed_step("loading MNI152 tissue patches", timings):
        patches = mni_patches(**data_options)
        X, y, class_names, info = patches.X, patches.y, patches.class_names, patches.info
        idx = np.arange(len(y))
        tr, te = train_test_split(idx, test_size=0.25, random_state=random_state, stratify=y)
        logger.info("%d patches %s, classes %s", len(y), X.shape[1:], ", ".join(class_names))
    model_args: dict[str, Any] = {
        "in_channels": 1,
        "n_classes": len(class_names),
        "dim": 2,
        "pool_size": 3,
        "random_state": random_state,
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
            random_state=random_state,
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
    report_defaults = ReportOptions()
    embedding = report_defaults.embedding
    if methods:
        embedding = EmbeddingOptions(methods=tuple(methods))
    opts = ReportOptions(
        formats=tuple(formats if formats is not None else ("png", "svg")),
        embedding=embedding,
        featurevis=FeatureVisOptions(
            n_units=size.n_units,
            steps=size.featurevis_steps,
            sanity=True,
            sanity_steps=size.sanity_steps,
            sanity_stages=size.sanity_stages,
        ),
        latent=LatentOptions(latent_dim=size.latent_dim, epochs=size.autoencoder_epochs),
        run=run,
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
