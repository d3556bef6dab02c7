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

import importlib
from typing import TYPE_CHECKING, Any

# names resolve on first use (PEP 562): ``inspect_kit.explore`` needs no torch
_LAZY = {
    "DemoSize": ".demo",
    "run_demo": ".demo",
    "CaptureOptions": ".options",
    "DataOptions": ".options",
    "EmbeddingOptions": ".options",
    "FeatureVisOptions": ".options",
    "LatentOptions": ".options",
    "ModelSource": ".options",
    "ProbeOptions": ".options",
    "ReportOptions": ".options",
    "RunOptions": ".options",
    "SimilarityOptions": ".options",
    "AnalysisInputs": ".registry",
    "AnalysisSpec": ".registry",
    "register_analysis": ".registry",
    "PipelineResult": ".pipeline",
    "build_report": ".pipeline",
    "report_from_store": ".pipeline",
    "explore": ".explore",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
