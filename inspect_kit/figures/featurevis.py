"""Figures for feature visualization: unit galleries, volume slices, kernels, sanity checks.

Every builder takes analysis results (``FeatureVisResult``, ``Exemplars``, ``Kernels``,
``RandomizationResult``) or arrays and returns a ``plotly.graph_objects.Figure``; images are
drawn as grey heatmaps, so hovering shows the value in the user's units (HU for CT). 3D
results are drawn as three orthogonal slices, with sliders through each axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme
from ._panels import (
    GRAYSCALES,
    PLANES,
    SLIDER_PX,
    TITLE_PX,
    axis_ref,
    class_name,
    exemplar_rows,
    image_trace,
    pick_units,
    plane_of,
    resolve_colorscale,
    sample_plane,
    style_image_axes,
    unit_label,
)
from .protocols import ExemplarsLike, FeatureVisLike, KernelsLike, RandomizationLike

__all__ = [
    "GRAYSCALES",
    "plot_kernels",
    "plot_randomization",
    "plot_trajectories",
    "plot_unit_gallery",
    "plot_volume",
]


def plot_unit_gallery(
    result: FeatureVisLike,
    exemplars: ExemplarsLike | None = None,
    *,
    units: Sequence[int] | None = None,
    max_units: int = 8,
    max_exemplars: int = 5,
    channel: int | str = "auto",
    colorscale: str | list[Any] = "gray",
    sliders: bool = True,
    title: str | None = None,
    label_names: Sequence[str] | Mapping[Any, str] | None = None,
) -> go.Figure:
    """A grid of units: optimised input, top-k dataset exemplars and activation curve per row.

    Parameters
    ----------
    result : FeatureVisResult
        From ``featurevis.render``.
    exemplars : Exemplars, optional
        From ``featurevis.top_exemplars`` for the same layer; matched to the result by unit.
    units : sequence of int, optional
        Batch elements to show (default: the first ``max_units``).
    max_units, max_exemplars : int
        Caps on rows and exemplar columns.
    channel : int, "rgb" or "auto"
        Input channel to draw; ``"auto"`` (default) draws 3-channel images in colour (as the
        exemplars beside them) and channel 0 otherwise.
    label_names : sequence or mapping, optional
        Class names for the exemplars' captions (``"lesion"`` rather than ``y=1``).
    colorscale : str or plotly colour scale
        ``"gray"`` (default), ``"bone"``, ``"gray_r"`` or any Plotly scale.
    sliders : bool
        For 3D results, add sliders through the three axes (the optimised volumes are drawn
        as axial, coronal and sagittal slices).
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_unit_gallery(res, exemplars)          # doctest: +SKIP
    """
    images = np.asarray(result.images)
    dim = images.ndim - 2
    picked = pick_units(images.shape[0], units, max_units)
    ex_rows = exemplar_rows(result, exemplars, picked)
    ex_thumbs = exemplars.thumbnails if exemplars is not None else None
    k = 0
    if ex_thumbs is not None:
        k = min(max_exemplars, ex_thumbs.shape[1])
    n_img = 3 if dim == 3 else 1
    ncols = n_img + k + 1
    cs = resolve_colorscale(colorscale)
    vr = result.value_range
    zrange = (
        (float(vr[0]), float(vr[1]))
        if vr is not None
        else (float(np.nanmin(images)), float(np.nanmax(images)))
    )

    # Planned at a width that fits a 1,000 px window: columns of known width, whose titles
    # wrap to it, and rows spaced by the tallest title.
    width = min(max(700, 130 * (ncols + 1)), theme.MAX_WIDTH)
    widths = [1.0] * (n_img + k) + [2.0]
    spacing = 0.01
    column_px = (width - 70) * (1 - spacing * (ncols - 1)) / sum(widths) - 4
    layer = getattr(result, "layer", None)
    titles: list[str] = []
    flat = getattr(result, "flat", None)
    for b, er in zip(picked, ex_rows, strict=True):
        label = unit_label(result.labels[b], layer)
        if flat is not None and bool(flat[b]):
            label += " · FLAT: no feature"
        if dim == 3:
            titles += [theme.wrap_label(f"{label} · {p}", column_px, TITLE_PX) for p in PLANES]
        else:
            titles.append(theme.wrap_label(label, column_px, TITLE_PX))
        for j in range(k):
            if er is None or exemplars is None:
                titles.append("")
                continue
            a = exemplars.activations[er, j]
            lab = (
                ""
                if exemplars.labels is None
                else f" · {class_name(exemplars.labels[er, j], label_names)}"
            )
            titles.append(
                theme.wrap_label(f"#{exemplars.index[er, j]} ({a:.3g}){lab}", column_px, TITLE_PX)
            )
        titles.append("activation")
    title_px = max(theme.n_lines(t) for t in titles) * TITLE_PX * theme.LINE_EM + 6
    row_px = 150 if dim == 2 else 170
    plot_px = row_px * len(picked) + title_px * (len(picked) - 1)
    fig = make_subplots(
        rows=len(picked),
        cols=ncols,
        subplot_titles=titles,
        column_widths=widths,
        horizontal_spacing=spacing,
        vertical_spacing=title_px / plot_px if len(picked) > 1 else 0.1,
    )
    plane_traces: dict[str, list[int]] = {p: [] for p in PLANES}
    for r, (b, er) in enumerate(zip(picked, ex_rows, strict=True), start=1):
        sample = sample_plane(images[b], channel)
        if dim == 3:
            for c, plane in enumerate(PLANES, start=1):
                fig.add_trace(
                    image_trace(plane_of(sample, plane), zrange, cs, result.labels[b]),
                    row=r,
                    col=c,
                )
                plane_traces[plane].append(len(fig.data) - 1)
                style_image_axes(fig, r, c)
        else:
            fig.add_trace(image_trace(sample, zrange, cs, result.labels[b]), row=r, col=1)
            style_image_axes(fig, r, 1)
        for j in range(k):
            col = n_img + 1 + j
            if er is not None and exemplars is not None and ex_thumbs is not None:
                thumb = ex_thumbs[er, j]
                fig.add_trace(
                    image_trace(thumb, (0, 255), cs, f"sample {exemplars.index[er, j]}"),
                    row=r,
                    col=col,
                )
            style_image_axes(fig, r, col)
        traj = np.asarray(result.trajectory)[:, b]
        steps = np.arange(1, len(traj) + 1)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=traj,
                mode="lines",
                line=dict(color=theme.OKABE_ITO[4], width=1.5),
                name="objective (transformed input)",
                showlegend=r == 1,
                legendgroup="traj",
            ),
            row=r,
            col=ncols,
        )
        fig.add_trace(
            go.Scatter(
                x=[steps[-1]],
                y=[float(result.final_activations[b])],
                mode="markers",
                marker=dict(color=theme.OKABE_ITO[5], size=8, symbol="diamond"),
                name="final (untransformed)",
                showlegend=r == 1,
                legendgroup="final",
            ),
            row=r,
            col=ncols,
        )
        if er is not None and exemplars is not None:
            best = float(exemplars.activations[er, 0])
            fig.add_trace(
                go.Scatter(
                    x=[steps[0], steps[-1]],
                    y=[best, best],
                    mode="lines",
                    line=dict(color=theme.OKABE_ITO[2], dash="dash", width=1.5),
                    name=f"best dataset sample ({exemplars.reduce})",
                    showlegend=r == 1,
                    legendgroup="best",
                ),
                row=r,
                col=ncols,
            )
    if dim == 3 and sliders:
        _add_plane_sliders(fig, [sample_plane(images[b], channel) for b in picked], plane_traces)
    bottom = 40 + (3 * SLIDER_PX if dim == 3 and sliders else 0)
    n_flat = int(np.sum(flat)) if flat is not None else 0
    n_units = len(flat) if flat is not None else 0
    subtitle = (
        f"{n_flat} of {n_units} units stayed flat (objective constant or image "
        "without contrast): their images show no feature"
        if n_flat
        else None
    )
    head, head_px = theme.top_title(
        title or f"Feature visualization: {result.objective}", width, subtitle
    )
    # the title block, a row for the legend, then the first row's panel titles
    top = int(head_px + 30 + title_px)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=head,
        height=int(top + plot_px + bottom),
        width=width,
        margin=dict(l=20, r=50, t=top, b=bottom),
        legend=dict(
            orientation="h",
            y=1 + (title_px + 4) / plot_px,
            yanchor="bottom",
            x=1.0,
            xanchor="right",
            font=dict(size=11),
        ),
    )
    for r in range(1, len(picked) + 1):
        fig.update_yaxes(side="right", row=r, col=ncols)
    fig.update_annotations(font_size=TITLE_PX)
    return fig


def _add_plane_sliders(
    fig: go.Figure, volumes: list[np.ndarray], plane_traces: dict[str, list[int]]
) -> None:
    """One slider per plane, moving the slice of every trace drawn in that plane."""
    sliders = []
    for n, plane in enumerate(PLANES):
        axis = PLANES.index(plane)
        size = volumes[0].shape[axis]
        steps = []
        for i in range(size):
            zs = [np.take(v, i, axis=axis) for v in volumes]
            steps.append(
                dict(
                    method="restyle",
                    label=str(i),
                    args=[{"z": zs}, plane_traces[plane]],
                )
            )
        sliders.append(
            dict(
                active=size // 2,
                currentvalue=dict(prefix=f"{plane} slice: "),
                pad=dict(t=20 + SLIDER_PX * n),
                steps=steps,
                len=0.9,
                x=0.05,
            )
        )
    fig.update_layout(sliders=sliders)


def plot_volume(
    volume: np.ndarray,
    *,
    channel: int = 0,
    value_range: tuple[float, float] | None = None,
    colorscale: str | list[Any] = "gray",
    title: str | None = None,
) -> go.Figure:
    """Three orthogonal slices of a volume with a slider through each axis.

    Parameters
    ----------
    volume : ndarray (D, H, W), (C, D, H, W) or (1, C, D, H, W)
        One volume, e.g. ``result.images[i]``.
    channel : int
        Channel to draw when there are several.
    value_range : (low, high), optional
        Grey-level window (default: the volume's range).
    colorscale : str or plotly colour scale
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_volume(np.random.default_rng(0).random((8, 8, 8)))
    >>> len(fig.layout.sliders)
    3
    """
    vol = np.asarray(volume)
    if vol.ndim == 5 and vol.shape[0] == 1:
        vol = vol[0]
    if vol.ndim == 4:
        vol = sample_plane(vol, channel)
    if vol.ndim != 3:
        raise ValueError(f"expected a volume (D, H, W) or (C, D, H, W), got shape {volume.shape}")
    zrange = value_range or (float(np.nanmin(vol)), float(np.nanmax(vol)))
    cs = resolve_colorscale(colorscale)
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(PLANES), horizontal_spacing=0.03)
    traces: dict[str, list[int]] = {}
    for c, plane in enumerate(PLANES, start=1):
        fig.add_trace(image_trace(plane_of(vol, plane), zrange, cs, plane), row=1, col=c)
        traces[plane] = [len(fig.data) - 1]
        style_image_axes(fig, 1, c)
    _add_plane_sliders(fig, [vol], traces)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or f"volume {vol.shape}",
        height=330 + 3 * SLIDER_PX,
        width=900,
        margin=dict(l=20, r=20, t=70, b=20 + 3 * SLIDER_PX),
    )
    return fig


def _tile(blocks: list[list[np.ndarray]]) -> np.ndarray:
    """Arrange 2D arrays in rows of blocks separated by one NaN pixel (transparent)."""
    h = max(b.shape[0] for row in blocks for b in row)
    rows = []
    for row in blocks:
        cells = []
        for b in row:
            pad = np.full((h, b.shape[1]), np.nan)
            pad[: b.shape[0]] = b
            cells += [pad, np.full((h, 1), np.nan)]
        rows.append(np.hstack(cells[:-1]))
    w = max(r.shape[1] for r in rows)
    out = []
    for r in rows:
        padded = np.full((h, w), np.nan)
        padded[:, : r.shape[1]] = r
        out += [padded, np.full((1, w), np.nan)]
    return np.vstack(out[:-1])


def plot_kernels(
    kernels: KernelsLike,
    *,
    max_kernels: int = 64,
    ncols: int | None = None,
    colorscale: str | list[Any] = "gray",
    title: str | None = None,
) -> go.Figure:
    """Convolution kernels as a grid of grey tiles, zero at mid-grey.

    Each tile is one output kernel: its input channels stacked vertically; a 3D kernel shows
    its axial, coronal and sagittal central slices side by side.

    Parameters
    ----------
    kernels : Kernels
        From ``inspect_kit.analysis.weights.conv_kernels``.
    max_kernels : int
        Draw at most this many output kernels.
    ncols : int, optional
        Tiles per row (default: about square).
    colorscale : str or plotly colour scale
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_kernels(conv_kernels(model))         # doctest: +SKIP
    """
    w = np.asarray(kernels.weights, dtype=np.float64)
    n = min(w.shape[0], max_kernels)
    if kernels.dim == 3:
        planes = kernels.orthogonal_slices()
        tiles = [
            _tile([[planes[p][o, i] for p in PLANES] for i in range(w.shape[1])]) for o in range(n)
        ]
    else:
        tiles = [_tile([[w[o, i]] for i in range(w.shape[1])]) for o in range(n)]
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    lim = float(np.nanmax(np.abs(w[:n]))) or 1.0
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[str(o) for o in range(n)],
        horizontal_spacing=0.01,
        vertical_spacing=0.3 / max(1, nrows),
    )
    cs = resolve_colorscale(colorscale)
    for o, tile in enumerate(tiles):
        r, c = o // ncols + 1, o % ncols + 1
        fig.add_trace(image_trace(tile, (-lim, lim), cs, f"kernel {o}"), row=r, col=c)
        style_image_axes(fig, r, c)
    # one colour bar for all tiles
    fig.data[0].update(showscale=True, colorbar=dict(title="weight", len=0.6))
    sub = " (axial | coronal | sagittal)" if kernels.dim == 3 else ""
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or f"{kernels.layer}: {w.shape[0]} kernels × {w.shape[1]} channels{sub}",
        height=120 + 110 * nrows,
        width=min(max(500, 110 * ncols + 150), theme.MAX_WIDTH),
        margin=dict(l=20, r=20, t=70, b=20),
    )
    fig.update_annotations(font_size=9)
    return fig


def plot_trajectories(result: FeatureVisLike, *, units: Sequence[int] | None = None) -> go.Figure:
    """The objective per unit over the optimisation steps.

    Examples
    --------
    >>> fig = plot_trajectories(res)                      # doctest: +SKIP
    """
    traj = np.asarray(result.trajectory)
    picked = pick_units(traj.shape[1], units, traj.shape[1])
    colors = theme.categorical_colors(len(picked))
    fig = go.Figure()
    for b, color in zip(picked, colors, strict=True):
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, traj.shape[0] + 1),
                y=traj[:, b],
                mode="lines",
                name=result.labels[b],
                line=dict(color=color),
            )
        )
    fig.update_layout(
        template=theme.TEMPLATE,
        title=f"Objective per unit: {result.objective}",
        xaxis_title="step",
        yaxis_title="objective",
    )
    return fig


def plot_randomization(
    result: RandomizationLike,
    *,
    units: Sequence[int] | None = None,
    max_units: int = 4,
    channel: int | str = "auto",
    colorscale: str | list[Any] = "gray",
    title: str | None = None,
) -> go.Figure:
    """Cascading-randomisation sanity check: similarity per stage and the images of each stage.

    The top row plots the similarity to the trained model's images (per unit, and the mean)
    against the randomisation stage, with the seed-to-seed similarity of the trained model as
    reference; below, one row of images per unit (volumes: their central axial slice).

    Parameters
    ----------
    result : RandomizationResult
    units : sequence of int, optional
        Batch elements whose images to show (default: the first ``max_units``).
    max_units : int
    channel : int, "rgb" or "auto"
    colorscale : str or plotly colour scale
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_randomization(check)                   # doctest: +SKIP
    """
    scores = np.asarray(result.scores)
    images = np.asarray(result.images)
    n_stages = scores.shape[0]
    picked = pick_units(scores.shape[1], units, max_units)
    specs = [[{"colspan": n_stages}] + [None] * (n_stages - 1)]
    specs += [[{} for _ in range(n_stages)] for _ in picked]
    # Planned at a width that fits a 1,000 px window. The top plot's ticks sit above the
    # image columns and name the stages (wrapped to a column); each image row is named once,
    # at its left; cells carry only a FLAT mark.
    width = min(max(700, 130 * n_stages + 100), theme.MAX_WIDTH)
    spacing = 0.01
    column_px = (width - 70) * (1 - spacing * (n_stages - 1)) / n_stages - 6
    stage_titles = ["trained" if s == "trained" else f"+ {s}" for s in result.stages]
    ticks = [theme.wrap_label(t, column_px, TITLE_PX + 1) for t in stage_titles]
    tick_px = max(theme.n_lines(t) for t in ticks) * (TITLE_PX + 1) * theme.LINE_EM + 12
    titles = [f"similarity to trained ({result.metric})"]
    flat = getattr(result, "flat", None)
    for b in picked:
        titles += [
            "FLAT" if flat is not None and flat[s, b] else "" for s in range(len(stage_titles))
        ]
    row_px = 130
    gap_px = max(tick_px, 24) + 6
    plot_px = 2 * row_px + row_px * len(picked) + gap_px * len(picked)
    fig = make_subplots(
        rows=1 + len(picked),
        cols=n_stages,
        specs=specs,
        subplot_titles=titles,
        row_heights=[2.0] + [1.0] * len(picked),
        horizontal_spacing=spacing,
        vertical_spacing=gap_px / plot_px,
    )
    layer = getattr(result, "layer", None) or next(
        (lab.rpartition("#")[0] for lab in result.labels if "#" in lab), None
    )
    for r, b in enumerate(picked, start=2):
        xa, ya = axis_ref(fig, r, 1)
        fig.add_annotation(
            text=theme.wrap_label(unit_label(result.labels[b], layer), row_px - 20, TITLE_PX),
            textangle=-90,
            xref="paper",
            x=0,
            xanchor="right",
            xshift=-4,
            yref=f"{ya.replace('axis', '')} domain",
            y=0.5,
            showarrow=False,
            font=dict(size=TITLE_PX),
        )
    x = list(range(n_stages))
    for b in range(scores.shape[1]):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=scores[:, b],
                mode="lines",
                line=dict(color=theme.MISSING_COLOR, width=1),
                name="per unit",
                showlegend=b == 0,
                legendgroup="unit",
                hovertext=result.labels[b],
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=result.mean_scores if hasattr(result, "mean_scores") else scores.mean(axis=1),
            mode="lines+markers",
            line=dict(color=theme.OKABE_ITO[4], width=3),
            name="mean",
        ),
        row=1,
        col=1,
    )
    if result.reference is not None and np.isfinite(result.reference).any():
        ref = float(np.nanmean(result.reference))
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]],
                y=[ref, ref],
                mode="lines",
                line=dict(color=theme.OKABE_ITO[2], dash="dash"),
                name="trained, other seed",
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(
        tickvals=x,
        ticktext=ticks,
        tickangle=0,
        tickfont=dict(size=TITLE_PX + 1),
        range=[-0.5, n_stages - 0.5],
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text="similarity", row=1, col=1)
    vr = result.value_range
    zrange = (
        (float(vr[0]), float(vr[1])) if vr else (float(np.nanmin(images)), float(np.nanmax(images)))
    )
    cs = resolve_colorscale(colorscale)
    for r, b in enumerate(picked, start=2):
        for s in range(n_stages):
            img = sample_plane(images[s, b], channel)
            if img.ndim == 3:
                img = plane_of(img, "axial")
            fig.add_trace(image_trace(img, zrange, cs, f"{result.stages[s]}"), row=r, col=s + 1)
            style_image_axes(fig, r, s + 1)
    notes = list(getattr(result, "notes", []) or [])
    subtitle = (
        theme.wrap_label(
            "flat renders score no similarity (NaN): " + "; ".join(notes)[:300], width - 100
        )
        if notes
        else None
    )
    head, head_px = theme.top_title(
        title or f"Randomisation check: {result.objective}", width, subtitle
    )
    # the title block, a row for the legend, then the top plot's title
    top = int(head_px + 30 + 20)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=head,
        height=int(top + plot_px + 30),
        width=width,
        margin=dict(l=50, r=20, t=top, b=30),
        legend=dict(
            orientation="h",
            y=1 + 24 / plot_px,
            yanchor="bottom",
            x=1.0,
            xanchor="right",
            font=dict(size=11),
        ),
    )
    fig.update_annotations(font_size=10)
    return fig
