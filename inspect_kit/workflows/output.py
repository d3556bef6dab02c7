"""Running the pipeline: timed steps, thread limits, and writing figures to files."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)


@contextmanager
def timed_step(name: str, timings: dict[str, float]) -> Iterator[None]:
    logger.info("%s ...", name)
    start = time.perf_counter()
    yield  # an error propagates with its own message; no timing line for a failed step
    timings[name] = round(time.perf_counter() - start, 2)
    logger.info("%s: %.1f s", name, timings[name])


def safe_name(name: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


@contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch, BLAS and OpenMP threads, then restore what was set.

    On a small shared machine, more threads than free cores make small models many times
    slower (measured here: 0.16 s per epoch with one thread, 7.8 s with two, while other
    work ran). None leaves the settings alone.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        with threadpool_limits(limits=int(n)):
            yield
    finally:
        torch.set_num_threads(before)


FIGURE_FORMATS = ("html", "png", "svg", "pdf", "jpg", "jpeg", "webp")


def check_formats(formats: Sequence[str]) -> list[str]:
    """Normalised figure formats; raises before any work for an unknown one."""
    out = [str(f).lower().lstrip(".") for f in formats]
    unknown = [f for f in out if f not in FIGURE_FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; use html, png, svg or pdf")
    return out


def write_figures(
    figures: Mapping[str, Any],
    out_dir: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    *,
    progress: bool = True,
) -> list[Path]:
    """Write each named figure once per format (``html`` interactive, or static via one browser)."""
    from tqdm.auto import tqdm

    formats = check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if "html" in formats:
        from inspect_kit.figures.html import save_html

        for name, fig in figures.items():
            paths.append(save_html(fig, out_dir / f"{safe_name(name)}.html"))
    static = [f for f in formats if f != "html"]
    if static and figures:
        from inspect_kit.figures.export import ExportError, FigureExporter

        failed: list[str] = []
        with FigureExporter() as ex:
            total = len(figures) * len(static)
            with tqdm(total=total, desc="export figures", disable=not progress) as bar:
                for name, fig in figures.items():
                    for fmt in static:
                        target = out_dir / f"{safe_name(name)}.{fmt}"
                        try:
                            paths.append(ex.write(fig, target))
                        except ExportError as err:  # one bad figure must not lose the others
                            logger.warning("%s", err)
                            failed.append(target.name)
                        bar.update()
        if failed:
            raise ExportError(
                f"{len(failed)} of {total} static figures could not be written "
                f"({', '.join(failed[:4])}); the others are in {out_dir}"
            )
    return paths
