"""The ``compare`` command: representation similarity of one store's layers, or of two stores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .output import check_formats, safe_name, write_figures

logger = logging.getLogger(__name__)

__all__ = ["compare_stores", "format_matrix"]


def compare_stores(
    store_path: str | Path,
    other_path: str | Path | None = None,
    *,
    layers: Sequence[str] | None = None,
    other_layers: Sequence[str] | None = None,
    method: Literal["cka", "rsa"] = "cka",
    kernel: Literal["linear", "rbf"] = "linear",
    reduction: Literal["flatten", "mean", "max"] | None = None,
    batch_size: int | None = 512,
    n_samples: int | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = ("html",),
    random_state: int = 0,
    refresh: bool = False,
    progress: bool = True,
) -> tuple[Any, list[Path]]:
    """Compute (or reuse) the similarity matrix, write its heatmap; return both.

    The result is cached in the first store. Figures go to ``out`` (default ``figures/``
    beside the first store) as ``similarity_<method>[_<a>_vs_<b>].<format>``.

    Examples
    --------
    >>> sim, paths = compare_stores("run1.h5", "run2.h5", formats=["html", "png"])  # doctest: +SKIP
    """
    formats = check_formats(formats or ("html",))
    from inspect_kit.analysis.similarity import similarity
    from inspect_kit.figures.similarity import plot_similarity

    store_path = Path(store_path)
    for path in (store_path, other_path):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"store {path} does not exist")
    sim = similarity(
        store_path,
        other_path,
        layers=layers,
        other_layers=other_layers,
        method=method,
        kernel=kernel,
        reduction=reduction,
        batch_size=batch_size,
        n_samples=n_samples,
        random_state=random_state,
        refresh=refresh,
        progress=progress,
    )
    name = f"similarity_{method}"
    if other_path is not None:
        name += f"_{safe_name(store_path.stem)}_vs_{safe_name(Path(other_path).stem)}"
    out_dir = Path(out) if out is not None else store_path.parent / "figures"
    paths = write_figures({name: plot_similarity(sim)}, out_dir, formats, progress=progress)
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
