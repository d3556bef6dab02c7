"""The ``compare`` command: representation similarity of one store's layers, or of two stores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .options import RunOptions, SimilarityOptions
from .output import check_formats, safe_name, write_figures

logger = logging.getLogger(__name__)

__all__ = ["compare_stores", "format_matrix"]


def compare_stores(
    store_path: str | Path,
    other_path: str | Path | None = None,
    options: SimilarityOptions | None = None,
    *,
    layers: Sequence[str] | None = None,
    other_layers: Sequence[str] | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = ("html",),
    run: RunOptions | None = None,
) -> tuple[Any, list[Path]]:
    """Compute (or reuse) the similarity matrix, write its heatmap; return both.

    The result is cached in the first store. Figures go to ``out`` (default ``figures/``
    beside the first store) as ``similarity_<method>[_<a>_vs_<b>].<format>``.

    Examples
    --------
    >>> sim, paths = compare_stores("run1.h5", "run2.h5", SimilarityOptions(method="rsa"),
    ...                             formats=["html", "png"])  # doctest: +SKIP
    """
    options = options or SimilarityOptions()
    run = run or RunOptions()
    formats = check_formats(formats or ("html",))
    from inspect_kit.analysis.similarity import similarity
    from inspect_kit.figures.similarity import plot_similarity

    store_path = Path(store_path)
    for path in (store_path, other_path):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"store {path} does not exist")
    method = options.method
    sim = similarity(
        store_path,
        other_path,
        layers=layers,
        other_layers=other_layers,
        method=method,
        kernel=options.kernel,
        reduction=options.reduction,
        batch_size=options.batch_size,
        n_samples=options.n_samples,
        random_state=run.random_state,
        refresh=options.refresh,
        progress=run.progress,
    )
    name = f"similarity_{method}"
    if other_path is not None:
        name += f"_{safe_name(store_path.stem)}_vs_{safe_name(Path(other_path).stem)}"
    out_dir = Path(out) if out is not None else store_path.parent / "figures"
    paths = write_figures({name: plot_similarity(sim)}, out_dir, formats, progress=run.progress)
    return sim, paths


def format_matrix(sim: Any, digits: int = 3) -> str:
    """The matrix as a plain-text table: row layers down, column layers across."""
    rows, cols = list(sim.layers), list(sim.other_layers)
    width = max(len(c) for c in [*cols, "-" * (digits + 3)])
    first = max(len(r) for r in [*rows, "layer"])
    lines = [f"{sim.description}, {sim.n_samples} samples"]
    lines.append(" " * first + "  " + "  ".join(c.rjust(width) for c in cols))
    for r, values in zip(rows, sim.matrix, strict=True):
        cells = ("nan" if v != v else f"{v:.{digits}f}" for v in values)
        lines.append(r.ljust(first) + "  " + "  ".join(c.rjust(width) for c in cells))
    return "\n".join(lines)
