"""What the ``inspect-kit`` command and the demo run: the application layer.

The only layer that combines capture, analyses and the report. Workflows take small option
objects (:mod:`.options`) rather than long keyword lists; analyses are declared once in
:mod:`.registry` (their command and report section follow). :func:`build_report` profiles a
store into one HTML report (a list of steps, :mod:`.report_steps`), :func:`run_demo` trains
and profiles the demo model, and :mod:`.commands` holds the single-step commands
(``layers``, ``capture``, ``embed``, ``featurevis``, ``probe``);
:func:`explore` builds the embedding explorer from the analyses and the widget.

Examples
--------
>>> from inspect_kit.workflows import ReportOptions, build_report
>>> from inspect_kit.workflows import EmbeddingOptions
>>> opts = ReportOptions(embedding=EmbeddingOptions(methods=("pca",)), latent=None)
>>> res = build_report("acts.h5", "report.html", options=opts)   # doctest: +SKIP
"""

from typing import TYPE_CHECKING

import lazy_loader

# names resolve on first use (lazy_loader): ``inspect_kit.explore`` needs no torch
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "demo": ["DemoSize", "run_demo"],
        "options": [
            "CaptureOptions",
            "DataOptions",
            "EmbeddingOptions",
            "FeatureVisOptions",
            "LatentOptions",
            "ModelSource",
            "ProbeOptions",
            "ReportOptions",
            "RunOptions",
            "SimilarityOptions",
        ],
        "registry": ["AnalysisInputs", "AnalysisSpec", "register_analysis"],
        "pipeline": ["PipelineResult", "build_report", "report_from_store"],
        "explore": ["explore"],
    },
)

if TYPE_CHECKING:
    from .demo import DemoSize, run_demo
    from .explore import explore
    from .options import (
        CaptureOptions,
        DataOptions,
        EmbeddingOptions,
        FeatureVisOptions,
        LatentOptions,
        ModelSource,
        ProbeOptions,
        ReportOptions,
        RunOptions,
        SimilarityOptions,
    )
    from .pipeline import PipelineResult, build_report, report_from_store
    from .registry import AnalysisInputs, AnalysisSpec, register_analysis


__all__ = [
    "AnalysisInputs",
    "AnalysisSpec",
    "CaptureOptions",
    "DataOptions",
    "DemoSize",
    "EmbeddingOptions",
    "FeatureVisOptions",
    "LatentOptions",
    "ModelSource",
    "PipelineResult",
    "ProbeOptions",
    "ReportOptions",
    "RunOptions",
    "SimilarityOptions",
    "build_report",
    "explore",
    "register_analysis",
    "report_from_store",
    "run_demo",
]
