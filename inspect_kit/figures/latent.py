"""Figures of an autoencoder's latent space: traversal grids, interpolation strips, error
histograms with the worst reconstructions, code-attribute correlations, and the latent scatter.

Each builder takes the results of :class:`inspect_kit.analysis.latent.LatentProbe` and returns
a ``go.Figure``. Volumes are shown as their middle slice along depth (D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from inspect_kit.figures import theme
from inspect_kit.figures.embedding import plot_embedding
from inspect_kit.figures.protocols import (
    EmbeddingLike,
    InterpolationLike,
    LatentCorrelationsLike,
    ReconstructionErrorsLike,
    TraversalLike,
)

__all__ = [
    "plot_traversal",
    "plot_interpolation",
    "plot_reconstruction_errors",
    "plot_latent_correlations",
    "plot_latent_scatter",
]


def _plane(sample: np.ndarray, channel: int) -> np.ndarray:
    """(C, H, W) -> channel image; (C, D, H, W) -> its middle slice along D."""
    sample = np.asarray(sample)
    if sample.ndim not in (3, 4):
        raise ValueError(
            f"a sample must be an image (C, H, W) or a volume (C, D, H, W), got shape {sample.shape}"
        )
    if not -sample.shape[0] <= channel < sample.shape[0]:
        raise ValueError(f"channel {channel} does not exist: samples have {sample.shape[0]}")
    img: np.ndarray = sample[channel]
    return img[img.shape[0] // 2] if img.ndim == 3 else img


def _image_axes(fig: go.Figure, rows: int, cols: int, row0: int = 1) -> None:
    """Pixels square, rows top-down, no ticks: each cell reads as a picture."""
    for r in range(row0, row0 + rows):
        for c in range(1, cols + 1):
            fig.update_xaxes(visible=False, row=r, col=c)
            fig.update_yaxes(visible=False, autorange="reversed", row=r, col=c)
    # scaleanchor keeps pixels square in every cell
    for ax in fig.layout:
        if ax.startswith("yaxis") and fig.layout[ax].autorange == "reversed":
            fig.layout[ax].scaleanchor = "x" + ax[5:]


def _heatmap(img: np.ndarray, zmin: float, zmax: float, hover: str) -> go.Heatmap:
    return go.Heatmap(
        z=img,
        zmin=zmin,
        zmax=zmax,
        colorscale=theme.GRAY_SCALE,
        showscale=False,
        hovertemplate=hover + "<br>x %{x}, y %{y}: %{z:.3g}<extra></extra>",
    )


def _range(planes: Sequence[np.ndarray]) -> tuple[float, float]:
    stacked = np.concatenate([np.ravel(p) for p in planes])
    stacked = stacked[np.isfinite(stacked)]
    if not stacked.size:
        return 0.0, 1.0
    lo, hi = float(stacked.min()), float(stacked.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def plot_traversal(
    traversal: TraversalLike,
    *,
    channel: int = 0,
    shared_scale: bool = True,
    title: str | None = None,
    cell_size: int = 72,
) -> go.Figure:
    """Grid of decoded latent traversals: one row per dimension, one column per step.

    Parameters
    ----------
    traversal : Traversal
        From :meth:`LatentProbe.traverse`.
    channel : int
        Channel shown (images and volumes may have any number).
    shared_scale : bool
        One grey window for the whole grid (changes in intensity stay visible); otherwise
        each cell uses its own.
    title : str, optional
    cell_size : int
        Pixels per cell.

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_traversal(probe.traverse([0, 1, 2], steps=9))  # doctest: +SKIP
    """
    images = np.asarray(traversal.images)
    n_rows, n_cols = images.shape[:2]
    planes = [[_plane(images[i, j], channel) for j in range(n_cols)] for i in range(n_rows)]
    prefix = "PC" if traversal.direction == "pca" else "z"
    offset = 1 if traversal.direction == "pca" else 0
    names = [f"{prefix}{d + offset}" for d in traversal.dims]
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        horizontal_spacing=0.004,
        vertical_spacing=min(0.02, 0.3 / max(n_rows, 1)),
        row_titles=names,
    )
    lo, hi = _range([p for row in planes for p in row])
    for i in range(n_rows):
        for j in range(n_cols):
            p = planes[i][j]
            zmin, zmax = (lo, hi) if shared_scale else _range([p])
            hover = f"{names[i]} = {traversal.values[i, j]:.3g} (step {j + 1}/{n_cols})"
            fig.add_trace(_heatmap(p, zmin, zmax, hover), row=i + 1, col=j + 1)
    _image_axes(fig, n_rows, n_cols)
    volume = images.ndim == 6
    span = traversal.span
    span_text = (
        f"{span[0]:.0%}–{span[1]:.0%} quantiles"
        if isinstance(span, tuple | list)
        else f"±{span} std"
    )
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title
        or (
            f"Latent traversal of {'principal directions' if prefix == 'PC' else 'dimensions'}"
            f"<br><sup>{span_text} of the codes{'; middle slices along D' if volume else ''}</sup>"
        ),
        width=min(max(cell_size * n_cols + 140, 420), theme.MAX_WIDTH),
        height=cell_size * n_rows + 120,
        margin=dict(l=20, r=60, t=80, b=20),
    )
    return fig


def plot_interpolation(
    interpolation: InterpolationLike,
    *,
    channel: int = 0,
    title: str | None = None,
    cell_size: int = 96,
) -> go.Figure:
    """Strip of decoded images along the path between two samples' codes.

    Parameters
    ----------
    interpolation : Interpolation
        From :meth:`LatentProbe.interpolate`.
    channel : int
    title : str, optional
    cell_size : int

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_interpolation(probe.interpolate(0, 1, mode="slerp"))  # doctest: +SKIP
    """
    images = np.asarray(interpolation.images)
    t = np.asarray(interpolation.t)
    planes = [_plane(img, channel) for img in images]
    fig = make_subplots(
        rows=1,
        cols=len(planes),
        horizontal_spacing=0.004,
        subplot_titles=[f"t={v:.2f}" for v in t],
    )
    lo, hi = _range(planes)
    for j, p in enumerate(planes):
        fig.add_trace(_heatmap(p, lo, hi, f"t = {t[j]:.3f}"), row=1, col=j + 1)
    _image_axes(fig, 1, len(planes))
    mode = "spherical" if interpolation.mode == "slerp" else "linear"
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or f"Latent interpolation ({mode})",
        width=cell_size * len(planes) + 60,
        height=cell_size + 120,
        margin=dict(l=20, r=20, t=70, b=10),
    )
    return fig


def plot_reconstruction_errors(
    probe: ReconstructionErrorsLike | np.ndarray | list[float] | tuple[float, ...],
    *,
    n_worst: int | None = 8,
    channel: int = 0,
    bins: int = 50,
    log_x: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Histogram of per-sample reconstruction errors, with the worst cases below it.

    Parameters
    ----------
    probe : LatentProbe or array (N,)
        A fitted probe (its ``reconstruction_error_`` and worst inputs/reconstructions), or
        the errors alone (histogram only).
    n_worst : int or None
        Worst cases to show (at most those the probe kept), each input above its
        reconstruction on the input's grey window; 0 or None for the histogram only.
    channel : int
    bins : int
    log_x : bool
        Logarithmic error axis (errors are often skewed).
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_reconstruction_errors(probe, n_worst=6)  # doctest: +SKIP
    """
    # the worst cases are optional attributes, read when the probe kept them
    inputs: Any = None
    recons: Any = None
    idx: Any = None
    if isinstance(probe, np.ndarray | list | tuple):
        errors = np.asarray(probe, dtype=float)
    else:
        errors = np.asarray(probe.reconstruction_error_, dtype=float)
        inputs = getattr(probe, "worst_inputs_", None)
        recons = getattr(probe, "worst_reconstructions_", None)
        idx = getattr(probe, "worst_indices_", None)
    k = 0
    if n_worst and inputs is not None and recons is not None and idx is not None:
        k = min(int(n_worst), len(idx))
    if k:
        fig = make_subplots(
            rows=2,
            cols=k,
            specs=[[{"colspan": k}] + [None] * (k - 1), [{}] * k],
            row_heights=[0.55, 0.45],
            vertical_spacing=0.16,
            horizontal_spacing=0.006,
            subplot_titles=[""] + [f"#{j + 1}: {int(idx[j])}" for j in range(k)],
        )
    else:
        fig = go.Figure()
    x = np.log10(np.clip(errors, 1e-12, None)) if log_x else errors
    hist = go.Histogram(
        x=x,
        nbinsx=bins,
        marker_color=theme.OKABE_ITO[4],
        name="samples",
        hovertemplate="error %{x}<br>%{y} samples<extra></extra>",
    )
    if k:
        fig.add_trace(hist, row=1, col=1)
    else:
        fig.add_trace(hist)
    median = float(np.median(errors))
    fig.add_vline(
        x=np.log10(median) if log_x else median,
        line=dict(color="#444444", dash="dash"),
        annotation_text=f"median {median:.3g}",
        annotation_position="top right",
        **(dict(row=1, col=1) if k else {}),
    )
    if k:
        worst_err = errors[np.asarray(idx[:k], dtype=np.int64)]
        fig.add_trace(
            go.Scatter(
                x=np.log10(np.clip(worst_err, 1e-12, None)) if log_x else worst_err,
                y=np.zeros(k),
                mode="markers+text",
                text=[str(i + 1) for i in range(k)],
                textposition="top center",
                marker=dict(color=theme.ERROR_COLOR, size=9, symbol="triangle-up"),
                name=f"{k} worst",
                customdata=np.stack([np.asarray(idx[:k]), worst_err], axis=1),
                hovertemplate="worst #%{text}: sample %{customdata[0]}<br>"
                "error %{customdata[1]:.4g}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        for j in range(k):
            pin = _plane(inputs[j], channel)
            prec = _plane(recons[j], channel)
            lo, hi = _range([pin])  # the input's window, so errors of intensity show
            gap = np.full((1, pin.shape[1]), np.nan)
            pair = np.concatenate([pin, gap, prec], axis=0)  # input above its reconstruction
            hover = f"#{j + 1}: sample {int(idx[j])}, error {errors[int(idx[j])]:.4g}"
            fig.add_trace(_heatmap(pair, lo, hi, hover), row=2, col=j + 1)
        _image_axes(fig, 1, k, row0=2)
        fig.update_yaxes(
            title_text="input / reconstruction",
            visible=True,
            showticklabels=False,
            showgrid=False,
            showline=False,
            ticks="",
            row=2,
            col=1,
        )
    xtitle = "log10 reconstruction MSE" if log_x else "reconstruction MSE per sample"
    where: dict[str, int] = dict(row=1, col=1) if k else {}
    fig.update_xaxes(title_text=xtitle, **where)
    fig.update_yaxes(title_text="samples", **where)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title
        or f"Reconstruction error of {len(errors)} samples" + (f" and the {k} worst" if k else ""),
        height=640 if k else 420,
        width=min(max(640, 90 * k + 120), theme.MAX_WIDTH),
        bargap=0.05,
        showlegend=bool(k),
    )
    return fig


def plot_latent_correlations(
    probe: LatentCorrelationsLike | Mapping[str, Any],
    *,
    targets: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of how each latent dimension relates to labels and metadata.

    Rows are targets, columns latent dimensions; Pearson r (-1 to 1) for continuous targets,
    correlation ratio eta (0 to 1) for categorical ones.

    Parameters
    ----------
    probe : LatentProbe or mapping
        A fitted probe (``correlations_``, ``correlation_kinds_``) or a mapping of target name
        to (k,) values.
    targets : sequence of str, optional
        Rows to show, in order (default all).
    title : str, optional

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_latent_correlations(probe)  # doctest: +SKIP
    """
    corr: Mapping[str, Any]
    kinds: Mapping[str, str]
    if isinstance(probe, Mapping):
        corr, kinds = dict(probe), {}
    else:
        corr, kinds = probe.correlations_, probe.correlation_kinds_
    names = list(targets) if targets is not None else list(corr)
    missing = [n for n in names if n not in corr]
    if missing:
        raise KeyError(f"no correlations for {missing}; available: {sorted(corr)}")
    if not names:
        raise ValueError("there are no correlations to show: fit the probe with labels or metadata")
    z = np.stack([np.asarray(corr[n], dtype=float) for n in names])
    labels = [f"{n} ({'η' if kinds.get(n) == 'eta' else 'r'})" for n in names]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"z{d}" for d in range(z.shape[1])],
            y=labels,
            zmin=-1,
            zmax=1,
            colorscale=theme.DIVERGING_SCALE,
            colorbar=dict(title="r / η"),
            hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or "Latent dimensions vs labels and metadata",
        xaxis_title="latent dimension",
        yaxis=dict(autorange="reversed", showgrid=False),
        height=160 + 36 * len(names),
    )
    fig.update_xaxes(showgrid=False)
    return fig


def plot_latent_scatter(
    embedding: EmbeddingLike,
    color: str | np.ndarray | None = "auto",
    *,
    title: str | None = None,
    thumbnail_size: int | None = 64,
    **kwargs: Any,
) -> go.Figure:
    """Scatter of the embedded latent codes, each input beside its reconstruction on hover.

    Parameters
    ----------
    embedding : Embedding
        From :meth:`LatentProbe.embed` (its thumbnails hold input | reconstruction pairs).
    color : 'auto', 'label', 'reconstruction_error', a metadata key, array or None
        As in :func:`inspect_kit.figures.embedding.plot_embedding`.
    title : str, optional
    thumbnail_size : int or None
        Longest side of the input|reconstruction pair in the hover image.
    **kwargs
        Passed to :func:`inspect_kit.figures.embedding.plot_embedding`.

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_latent_scatter(probe.embed("umap"), color="reconstruction_error")  # doctest: +SKIP
    """
    from inspect_kit.analysis.embedding.registry import display_name

    method = display_name(getattr(embedding, "method", ""))
    hint = (
        " (hover: input | reconstruction)"
        if getattr(embedding, "thumbnails", None) is not None
        else ""
    )
    return plot_embedding(
        embedding,
        color,
        title=title or f"{method} of the latent codes{hint}",
        thumbnail_size=thumbnail_size,
        **kwargs,
    )
