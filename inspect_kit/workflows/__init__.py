"""What the ``inspect-kit`` command and the demo run: the application layer.

The only layer that combines capture, analyses and the report. Workflows take small option
objects (:mod:`.options`) rather than long keyword lists: :func:`build_report` profiles a
store into one HTML report (a list of steps, :mod:`.report_steps`), :func:`run_demo` trains
and profiles the demo model, and :mod:`.commands` holds the single-step commands
(``layers``, ``capture``, ``embed``, ``featurevis``, ``probe``);
:func:`explore` builds the embedding explorer from the analyses and the widget.

Examples
--------
>>> from inspect_kit.workflows import ReportOptions, build_report
>>> res = build_report("acts.h5", "report.html", options=ReportOptions(methods=("pca",)))
... # doctest: +SKIP
"""

from typing import TYPE_CHECKING

import lazy_loader

# names resolve on first use (PEP 562): ``inspect_kit.explore`` needs no torch
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
            "ReportOptions",
            "RunOptions",
        ],
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
        ReportOptions,
        RunOptions,
    )
    from .pipeline import PipelineResult, build_report, report_from_store


__all__ = [
    "CaptureOptions",
    "DataOptions",
    "DemoSize",
    "EmbeddingOptions",
    "FeatureVisOptions",
    "LatentOptions",
    "ModelSource",
    "PipelineResult",
    "ReportOptions",
    "RunOptions",
    "build_report",
    "explore",
    "report_from_store",
    "run_demo",
]
