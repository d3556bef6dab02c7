"""Heatmap of representation similarity (CKA, RSA): layer x layer, or model A x model B."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from inspect_kit.figures import theme
from inspect_kit.figures.protocols import SimilarityLike

__all__ = ["plot_similarity", "short_labels"]


def short_labels(names: list[str], max_length: int = 22) -> list[str]:
    """Tick labels for long dotted layer names: the last components that fit, after an ellipsis.

    Labels stay distinct: a name whose short form would repeat another's keeps more of it.

    Examples
    --------
    >>> short_labels(["encoder.layers.3.attention.output.dense", "fc"], max_length=16)
    ['…output.dense', 'fc']
    """
    if max_length < 4:
        raise ValueError(f"max_length must be at least 4 characters, got {max_length}")

    def shorten(name: str, limit: int) -> str:
        if len(name) <= limit:
            return name
        parts = name.split(".")
        tail = parts[-1]
        for part in reversed(parts[:-1]):
            if len(part) + 1 + len(tail) + 1 > limit:
                break
            tail = f"{part}.{tail}"
        if len(tail) + 1 > limit:
            tail = tail[-(limit - 1) :]
        return "…" + tail

    out = [shorten(n, max_length) for n in names]
    limit = max_length
    while len(set(out)) < len(out) and limit < max(map(len, names)):
        limit += 4
        seen = {s for s in out if out.count(s) > 1}
        out = [shorten(n, limit) if s in seen else s for n, s in zip(names, out, strict=True)]
    return out


def plot_similarity(
    sim: SimilarityLike,
    *,
    title: str | None = None,
    annotate: bool | None = None,
    max_label_length: int = 22,
    zmin: float | None = None,
    zmax: float | None = None,
    colorscale: str = theme.CONTINUOUS_SCALE,
    cell_size: int = 44,
) -> go.Figure:
    """The heatmap papers print: similarity of every layer pair (rows x columns).

    Rows are the layers of ``sim.layers`` (first at the bottom, as in Kornblith et al.),
    columns ``sim.other_layers``. Long dotted names are shortened on the axes; hovering shows
    the full names and the value.

    Parameters
    ----------
    sim : Similarity
        From :func:`inspect_kit.similarity`.
    title : str, optional
        Default: the method and the store(s) compared.
    annotate : bool, optional
        Write each value in its cell (default: when neither side has more than 12 layers).
    max_label_length : int
        Tick labels longer than this are shortened (see :func:`short_labels`).
    zmin, zmax : float, optional
        Colour range; default 0 to 1 (lower when some values are negative).
    colorscale : str
        A Plotly colour scale; the default (Viridis) reads in grayscale.
    cell_size : int
        Pixels per cell of the default figure size.

    Returns
    -------
    go.Figure
        With the inspect_kit template; size it for a journal with
        :func:`~inspect_kit.figures.publication_layout` and export it with
        :func:`~inspect_kit.figures.export_figure`.

    Examples
    --------
    >>> fig = plot_similarity(inspect_kit.similarity("acts.h5"))      # doctest: +SKIP
    >>> export_figure(publication_layout(fig), "cka.pdf")             # doctest: +SKIP
    """
    z = np.asarray(sim.matrix, dtype=float)
    rows, cols = list(sim.layers), list(sim.other_layers)
    if z.shape != (len(rows), len(cols)):
        raise ValueError(
            f"matrix shape {z.shape} does not match {len(rows)} layers x {len(cols)} other layers"
        )
    finite = z[np.isfinite(z)]
    if zmin is None:
        zmin = min(0.0, float(np.floor(finite.min() * 10) / 10)) if finite.size else 0.0
    if zmax is None:
        zmax = 1.0
    if annotate is None:
        annotate = max(len(rows), len(cols)) <= 12
    description = getattr(sim, "description", str(getattr(sim, "method", "similarity")))
    method = str(getattr(sim, "method", "")).upper()
    store_path, other_path = getattr(sim, "store", None), getattr(sim, "other", None)
    store = Path(store_path).stem if store_path else "store"
    other = Path(other_path).stem if other_path else None
    y_title = f"{store} layer" if other else "layer"
    x_title = f"{other} layer" if other else "layer"
    if title is None:
        what = f"{store} vs {other}" if other else f"layers of {store}"
        title = f"{description}: {what}, {sim.n_samples} samples"
    full = np.empty(z.shape + (2,), dtype=object)
    full[..., 0] = np.asarray(rows, dtype=object)[:, None]
    full[..., 1] = np.asarray(cols, dtype=object)[None, :]
    heat = go.Heatmap(
        z=z,
        x=list(range(len(cols))),
        y=list(range(len(rows))),
        customdata=full,
        zmin=zmin,
        zmax=zmax,
        colorscale=colorscale,
        colorbar=dict(title=dict(text=method or "similarity", side="right"), thickness=14),
        hovertemplate=f"{y_title}: %{{customdata[0]}}<br>{x_title}: %{{customdata[1]}}"
        f"<br>{description}: %{{z:.3f}}<extra></extra>",
        hoverongaps=False,
    )
    if annotate:
        heat.update(texttemplate="%{z:.2f}", textfont=dict(size=11))
    fig = go.Figure(heat)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title,
        # room for the title, at most what fits a 1,000 px window
        width=min(max(40 + 8 * len(title), 160 + cell_size * len(cols)), theme.MAX_WIDTH),
        height=max(320, 140 + cell_size * len(rows)),
        meta={"similarity": description},
    )
    axis = dict(showgrid=False, ticks="", automargin=True, tickmode="array")
    fig.update_xaxes(
        **axis,
        title=x_title,
        tickvals=list(range(len(cols))),
        ticktext=short_labels(cols, max_label_length),
        tickangle=-45 if len(cols) > 4 else 0,
        constrain="domain",
    )
    fig.update_yaxes(
        **axis,
        title=y_title,
        tickvals=list(range(len(rows))),
        ticktext=short_labels(rows, max_label_length),
        scaleanchor="x",
        constrain="domain",
    )
    return fig
