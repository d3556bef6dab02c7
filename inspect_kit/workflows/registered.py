"""Running a registered analysis (:mod:`.registry`) as a command or as a report section.

:func:`run_analysis` is what ``inspect-kit NAME`` runs for an analysis that has no command
module of its own: it opens the store, loads the model and data when the analysis needs
them, calls the computation, writes its figures and returns its rows. :class:`RegisteredStep`
turns a registration whose section is a plain function into a step of the report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import DataOptions, ModelSource, RunOptions
from .registry import AnalysisInputs, AnalysisSpec, resolve

logger = logging.getLogger(__name__)

__all__ = ["AnalysisRun", "RegisteredStep", "run_analysis"]


@dataclass
class AnalysisRun:
    """What :func:`run_analysis` computed: the result, the printed rows, the figures written."""

    result: Any
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def _rows(spec: AnalysisSpec, result: Any) -> list[dict[str, Any]]:
    if spec.rows is not None:
        return list(resolve(spec.rows)(result))
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return result
    return []


def run_analysis(
    spec: AnalysisSpec,
    options: Any = None,
    *,
    store: str | Path | None = None,
    model: ModelSource | None = None,
    data: str | Path | None = None,
    data_options: DataOptions | None = None,
    layers: Sequence[str] | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = ("html",),
    run: RunOptions | None = None,
) -> AnalysisRun:
    """Run a registered analysis on a store (or a model and its data) and write its figures.

    Parameters
    ----------
    spec : AnalysisSpec
    options : dataclass, optional
        The analysis's options (default: its options class's defaults).
    store : path, optional
        The activation store (required for ``needs="store"``).
    model, data, data_options
        The model and its inputs, for ``needs="model"``.
    layers : sequence of str, optional
        Layers of the store (default: all stored).
    out, formats
        Folder for the figures (default ``figures/`` beside the store, else ``.``) and their
        formats.
    run : RunOptions, optional

    Examples
    --------
    >>> from inspect_kit.workflows.registry import get_analysis
    >>> run_analysis(get_analysis("norms"), store="acts.h5")   # doctest: +SKIP
    """
    from .output import check_formats, write_figures
    from .steps import check_layers

    run = run or RunOptions()
    options = options if options is not None else spec.default_options()
    formats = check_formats(formats or ("html",))
    if spec.compute is None:
        raise ValueError(f"{spec.name}: the registration names no computation")
    if spec.needs == "store" and store is None:
        raise ValueError(f"{spec.name} reads an activation store: give its path")
    if spec.needs == "model" and (model is None or data is None):
        raise ValueError(f"{spec.name} needs the model and its data: give MODEL and --data")
    inputs = AnalysisInputs(spec=spec, run=run)
    with ExitStack() as stack:
        if store is not None:
            from inspect_kit.store import open_store

            path = Path(store)
            if not path.is_file():
                raise FileNotFoundError(f"store {path} does not exist")
            inputs.store = stack.enter_context(open_store(path))
            inputs.store_path = path
            inputs.layers = check_layers(inputs.store, layers)
            inputs.labels = inputs.store.labels
        if model is not None:
            inputs.model = model.load(run.device)
        if data is not None:
            user = (data_options or DataOptions()).load(data)
            inputs.data, inputs.class_names = user.to_array(), user.class_names
            if inputs.labels is None:
                inputs.labels = user.labels
        result = resolve(spec.compute)(inputs, options)
    paths: list[Path] = []
    if spec.figure is not None:
        figures = resolve(spec.figure)(result, options)
        if out is not None:
            out_dir = Path(out)
        elif store is not None:
            out_dir = Path(store).parent / "figures"
        else:
            out_dir = Path(".")
        paths = write_figures(figures, out_dir, formats, progress=run.progress)
    return AnalysisRun(result=result, rows=_rows(spec, result), figures=paths)


class RegisteredStep:
    """A report step made from a registration whose ``section`` is a plain function.

    It runs when ``ReportOptions.analyses`` does not set its options to None and the report
    has what the analysis needs (the model and the inputs for ``needs="model"``); it
    computes with the report's store, layers, model, inputs and run options, and renders
    into a new section titled :attr:`AnalysisSpec.heading` with the summary as its intro.
    """

    def __init__(self, spec: AnalysisSpec):
        self.spec = spec
        self.key = spec.name
        self.label: str | None = spec.heading.lower()

    def _options(self, ctx: Any) -> Any:
        given = ctx.options.analyses
        return given[self.spec.name] if self.spec.name in given else self.spec.default_options()

    def enabled(self, ctx: Any) -> bool:
        if self._options(ctx) is None or self.spec.compute is None:
            return False
        if self.spec.needs == "model":
            return ctx.model is not None and ctx.inputs is not None
        return True

    def compute(self, ctx: Any) -> Any:
        inputs = AnalysisInputs(
            spec=self.spec,
            store=ctx.store,
            store_path=ctx.store_path,
            layers=list(ctx.layers),
            run=ctx.run,
            model=ctx.model,
            data=ctx.inputs,
            labels=ctx.labels,
            class_names=ctx.class_names,
        )
        # the computation is resolved from a registration's dotted path: its signature is the
        # plugin's, which mypy cannot see
        return resolve(self.spec.compute)(inputs, self._options(ctx))  # type: ignore[arg-type]

    def render(self, ctx: Any, result: Any) -> Any:
        if self.spec.section is None:
            return None
        section = ctx.report.section(self.spec.heading, intro=self.spec.summary)
        return resolve(self.spec.section)(section, result, self._options(ctx))
