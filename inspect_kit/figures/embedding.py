"""Interactive scatter plots of embeddings, with input thumbnails on hover.

Examples
--------
>>> emb = inspect_kit.embed(store, "fc", method="tsne")                  # doctest: +SKIP
>>> fig = plot_embedding(emb, color="label")                              # doctest: +SKIP
>>> fig.write_html("tsne_fc.html")     # one offline file; hover shows each input  # doctest: +SKIP
>>> plot_embedding_grid([inspect_kit.embed(store, l, "umap") for l in store.layers])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from inspect_kit._names import unknown_name_error
from inspect_kit.imaging import build_atlas, make_thumbnails, resize_thumbnails
from inspect_kit.labels import NOT_CLASSES

from . import theme
from .html import META_KEY, ThumbnailFigure
from .protocols import EmbeddingLike

#: above this many points 2D scatters use WebGL (Scattergl)
GL_THRESHOLD = 5000
#: at most this many distinct integer values are coloured as categories
MAX_CATEGORIES = 30
_CUSTOM_INDEX, _CUSTOM_TILE = 0, 1


@dataclass
class _Colouring:
    """How points are coloured: per-point values plus a categorical or continuous scheme."""

    name: str | None
    values: np.ndarray | None
    categorical: bool
    categories: list[Any]
    colors: dict[Any, str]
    symbols: dict[Any, str]
    cmin: float | None = None
    cmax: float | None = None


def _names(label_names: Sequence[str] | Mapping[Any, str] | None) -> Mapping[Any, str]:
    if label_names is None:
        return {}
    if isinstance(label_names, Mapping):
        return label_names
    return dict(enumerate(label_names))


def _display(values: np.ndarray, names: Mapping[Any, str]) -> np.ndarray:
    """Values as display strings, mapped through ``names`` where given."""
    if not names:
        return np.asarray([str(v) for v in values.tolist()], dtype=object)
    return np.asarray([str(names.get(v, v)) for v in values.tolist()], dtype=object)


def _color_values(emb: EmbeddingLike, color: Any) -> tuple[str | None, np.ndarray | None]:
    if color is None:
        return None, None
    if isinstance(color, str):
        if color == "auto":
            if emb.labels is not None:
                return "label", np.asarray(emb.labels)
            if emb.predictions is not None:
                return "prediction", np.asarray(emb.predictions)
            return None, None
        if color == "label" and emb.labels is not None:
            return "label", np.asarray(emb.labels)
        if color == "prediction" and emb.predictions is not None:
            return "prediction", np.asarray(emb.predictions)
        if color == "correct" and emb.correct is not None:
            ok = emb.correct
            return "correct", np.where(ok, "correct", "misclassified").astype(object)
        if color in emb.metadata:
            return color, np.asarray(emb.metadata[color])
        options = [
            o
            for o, present in (
                ("label", emb.labels is not None),
                ("prediction", emb.predictions is not None),
                ("correct", emb.correct is not None),
            )
            if present
        ] + list(emb.metadata)
        raise unknown_name_error(
            color,
            options,
            kind="colour",
            where="the embedding's labels and metadata (or pass an array)",
        )
    values = np.asarray(color)
    if values.shape != (len(emb),):
        raise ValueError(
            f"a colour array needs one value per point ({len(emb)}), got {values.shape}"
        )
    return "value", values


def _is_categorical(values: np.ndarray) -> bool:
    if values.dtype.kind in "OSUb":
        return True
    if values.dtype.kind in "iu":
        return len(np.unique(values)) <= MAX_CATEGORIES
    return False


def _colouring(embs: Sequence[EmbeddingLike], color: Any, names: Mapping[Any, str]) -> _Colouring:
    """One colour scheme for all panels, so the same class has the same colour everywhere."""
    per_panel = [_color_values(e, color) for e in embs]
    name = per_panel[0][0]
    arrays = [v for _, v in per_panel if v is not None]
    if name is None or not arrays:
        return _Colouring(None, None, False, [], {}, {})
    allv = np.concatenate(arrays)
    if _is_categorical(allv):
        if name == "correct":
            cats = [c for c in ("correct", "misclassified") if c in set(allv.tolist())]
            colors = {"correct": theme.OKABE_ITO[4], "misclassified": theme.ERROR_COLOR}
            return _Colouring(name, allv, True, cats, colors, dict.fromkeys(cats, "circle"))
        cats = sorted(set(allv.tolist()), key=lambda v: (str(type(v)), v))
        cols = theme.categorical_colors(len(cats))
        syms = theme.categorical_symbols(len(cats))
        return _Colouring(
            name,
            allv,
            True,
            cats,
            dict(zip(cats, cols, strict=True)),
            dict(zip(cats, syms, strict=True)),
        )
    finite = allv[np.isfinite(allv.astype(float))]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return _Colouring(name, allv, False, [], {}, {}, lo, hi)


def _hover_text(
    emb: EmbeddingLike, names: Mapping[Any, str], hover: Sequence[str] | None
) -> np.ndarray:
    cols = [np.asarray([f"sample {i}" for i in np.asarray(emb.index).tolist()], dtype=object)]
    if emb.labels is not None:
        cols.append("label: " + _display(np.asarray(emb.labels), names))
    if emb.predictions is not None:
        pred = "prediction: " + _display(np.asarray(emb.predictions), names)
        if emb.correct is not None:
            pred = np.where(emb.correct, pred, pred + " \u2717")
        cols.append(pred)
    keys = list(emb.metadata)[:6] if hover is None else list(hover)
    for key in keys:
        if key not in emb.metadata:
            raise unknown_name_error(key, emb.metadata, kind="hover key", where="the metadata")
        cols.append(f"{key}: " + _display(np.asarray(emb.metadata[key]), {}))
    out = cols[0]
    for c in cols[1:]:
        out = out + "<br>" + c
    return out


def _thumb_tiles(
    embs: Sequence[EmbeddingLike], size: int | None
) -> tuple[dict[str, Any] | None, list[np.ndarray]]:
    """One atlas for all panels (identical thumbnails stored once) and each panel's tiles."""
    thumbs = [e.thumbnails for e in embs]
    if any(t is None for t in thumbs):
        return None, [np.full(len(e), -1, dtype=np.int32) for e in embs]
    prepared = []
    for t in thumbs:
        t = np.asarray(t)
        is_thumb = t.dtype == np.uint8 and (t.ndim == 3 or (t.ndim == 4 and t.shape[-1] == 3))
        prepared.append(resize_thumbnails(t, size) if is_thumb else make_thumbnails(t, size=size))
    shapes = {p.shape[1:] for p in prepared}
    if len(shapes) > 1:
        raise ValueError(f"thumbnails of the panels differ in shape: {sorted(shapes)}")
    atlas = build_atlas(np.concatenate(prepared))
    splits = np.cumsum([len(p) for p in prepared])[:-1]
    return atlas.to_json(), np.split(atlas.tile_index, splits)


def _axis_titles(emb: EmbeddingLike) -> list[str]:
    from inspect_kit.analysis.embedding.registry import axis_label, is_linear

    prefix = axis_label(emb.method)
    ratio = emb.params.get("explained_variance_ratio") if is_linear(emb.method) else None
    titles = []
    for i in range(min(3, emb.n_components)):
        t = f"{prefix}{i + 1}"
        if ratio is not None and i < len(ratio):
            t += f" ({100 * ratio[i]:.1f}%)"
        titles.append(t)
    return titles


def _quality_text(emb: EmbeddingLike) -> str:
    m = emb.metrics or {}
    parts = []
    if m.get("trustworthiness") is not None:
        parts.append(f"trustworthiness {m['trustworthiness']:.3f}")
    if m.get("knn_accuracy") is not None:
        text = f"{m.get('n_neighbors', 10)}-NN accuracy {m['knn_accuracy']:.3f}"
        if m.get("knn_accuracy_original") is not None:
            text += f" (features {m['knn_accuracy_original']:.3f})"
        parts.append(text)
    if m.get("knn_transfer_accuracy") is not None:
        parts.append(
            f"placed-sample {m.get('n_neighbors', 10)}-NN accuracy {m['knn_transfer_accuracy']:.3f}"
        )
    if m.get("label_mismatch"):
        parts.append(NOT_CLASSES)
    return " \u00b7 ".join(parts)


def _marker_defaults(n: int) -> tuple[float, float]:
    if n <= 1000:
        return 7.0, 0.85
    if n <= 10000:
        return 5.0, 0.75
    return 3.0, 0.6


def _scatter(dims: int, gl: bool, coords: np.ndarray, **kw: Any) -> go.BaseTraceType:
    if dims >= 3:
        marker = kw.pop("marker")
        marker["size"] = max(2.0, marker.get("size", 4) * 0.6)
        marker.pop("line", None)
        return go.Scatter3d(
            x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], mode="markers", marker=marker, **kw
        )
    cls = go.Scattergl if gl else go.Scatter
    return cls(x=coords[:, 0], y=coords[:, 1], mode="markers", **kw)


def _panel_traces(
    emb: EmbeddingLike,
    color: Any,
    col: _Colouring,
    names: Mapping[Any, str],
    hover: Sequence[str] | None,
    tiles: np.ndarray,
    *,
    gl: bool,
    mark_errors: bool,
    size: float,
    opacity: float,
    show_legend: bool,
    coloraxis: str | None,
) -> list[go.BaseTraceType]:
    coords = emb.coords
    dims = 3 if emb.n_components >= 3 else 2
    if emb.n_components < 2:
        coords = np.column_stack([coords[:, 0], np.zeros(len(coords), np.float32)])
    text = _hover_text(emb, names, hover)
    custom = np.column_stack([np.asarray(emb.index, dtype=np.int64), tiles.astype(np.int64)])
    common = dict(hovertemplate="%{text}<extra></extra>")
    traces: list[go.BaseTraceType] = []
    values = _color_values(emb, color)[1]
    if col.categorical and values is not None:
        for cat in col.categories:
            sel = np.flatnonzero(values == cat)
            label = str(names.get(cat, cat)) if col.name in ("label", "prediction") else str(cat)
            traces.append(
                _scatter(
                    dims,
                    gl,
                    coords[sel],
                    text=text[sel],
                    customdata=custom[sel],
                    name=label,
                    legendgroup=f"cat-{cat}",
                    showlegend=show_legend and sel.size > 0,
                    marker=dict(
                        color=col.colors[cat], symbol=col.symbols[cat], size=size, opacity=opacity
                    ),
                    **common,
                )
            )
    elif values is not None:
        marker = dict(color=values.astype(float), size=size, opacity=opacity)
        if coloraxis:
            marker["coloraxis"] = coloraxis
        else:
            marker.update(
                colorscale=theme.CONTINUOUS_SCALE,
                cmin=col.cmin,
                cmax=col.cmax,
                showscale=True,
                colorbar=dict(title=dict(text=col.name)),
            )
        traces.append(
            _scatter(
                dims,
                gl,
                coords,
                text=text,
                customdata=custom,
                name=col.name,
                showlegend=False,
                marker=marker,
                **common,
            )
        )
    else:
        traces.append(
            _scatter(
                dims,
                gl,
                coords,
                text=text,
                customdata=custom,
                name="samples",
                showlegend=False,
                marker=dict(color=theme.OKABE_ITO[4], size=size, opacity=opacity),
                **common,
            )
        )
    wrong = emb.correct
    if mark_errors and wrong is not None and col.name != "correct" and (~wrong).any():
        sel = np.flatnonzero(~wrong)
        traces.append(
            _scatter(
                dims,
                gl,
                coords[sel],
                text=text[sel],
                customdata=custom[sel],
                name=f"misclassified ({sel.size})" if show_legend else "misclassified",
                legendgroup="misclassified",
                showlegend=show_legend,
                marker=dict(
                    symbol="circle-open",
                    color=theme.ERROR_COLOR,
                    size=size * 1.8,
                    line=dict(width=1.5, color=theme.ERROR_COLOR),
                ),
                **common,
            )
        )
    return traces


def _background_trace(bg: EmbeddingLike, dims: int, gl: bool, size: float) -> go.BaseTraceType:
    return _scatter(
        dims,
        gl,
        bg.coords,
        name=f"reference ({len(bg)})",
        hoverinfo="skip",
        marker=dict(color=theme.MISSING_COLOR, size=size, opacity=0.4),
    )


def _finish(fig: go.Figure, atlas: dict[str, Any] | None, scale: int) -> go.Figure:
    theme.apply_theme(fig)
    fig.update_layout(hovermode="closest")
    if atlas is None:
        return fig
    atlas = dict(atlas, column=_CUSTOM_TILE, scale=scale)
    fig.update_layout(meta={META_KEY: atlas})
    from .explorer import register_renderer  # here, not at import: it loads Plotly's renderers

    register_renderer()
    return ThumbnailFigure(fig)


def plot_embedding(
    embedding: EmbeddingLike,
    color: str | np.ndarray | None = "auto",
    *,
    hover: Sequence[str] | None = None,
    thumbnails: bool = True,
    label_names: Sequence[str] | Mapping[Any, str] | None = None,
    mark_errors: bool = True,
    background: EmbeddingLike | None = None,
    title: str | None = None,
    marker_size: float | None = None,
    opacity: float | None = None,
    thumbnail_size: int | None = 24,
    thumbnail_scale: int = 4,
    webgl: bool | None = None,
    width: int | None = None,
    height: int | None = 600,
) -> go.Figure:
    """Scatter plot of an embedding: coloured by class or value, with thumbnails on hover.

    Parameters
    ----------
    embedding : Embedding
        From :func:`inspect_kit.embed` (2 or 3 components).
    color : 'auto', 'label', 'prediction', 'correct', a metadata key, array (N,), or None
        What colours the points. Integers with few values, strings and booleans are
        categories (colour-blind-safe palette, one legend entry each, click to hide);
        floats are continuous (Viridis). 'auto' uses labels, else predictions.
    hover : list of str, optional
        Metadata keys shown on hover (default: up to 6). Sample index, label and prediction
        are always shown.
    thumbnails : bool
        Show each sample's input thumbnail (from the store) beside the cursor on hover, in
        Jupyter and in the saved HTML.
    label_names : sequence or mapping, optional
        Names of label values (e.g. ``["background", "grey matter", "white matter"]``).
    mark_errors : bool
        Ring misclassified samples (prediction != label) in a separate, hideable trace.
    background : Embedding, optional
        Reference map drawn in grey beneath (e.g. the training set when ``embedding`` holds
        samples placed onto it with ``Embedding.transform``).
    title : str, optional
        Default: method and layer, with the quality metrics as subtitle.
    marker_size, opacity : float, optional
        Default depends on the number of points.
    thumbnail_size : int or None
        Longest side, in pixels, the thumbnails are stored at in the figure (small keeps the
        HTML small at 50,000 points); None keeps the store's size.
    thumbnail_scale : int
        On-screen magnification of the thumbnail (pixelated, so small images stay crisp).
    webgl : bool, optional
        Use WebGL (Scattergl); by default above 5,000 points.
    width, height : int, optional

    Returns
    -------
    go.Figure
        A :class:`~inspect_kit.figures.html.ThumbnailFigure` when it carries thumbnails.

    Examples
    --------
    >>> fig = plot_embedding(emb, color="site", hover=["scanner"])     # doctest: +SKIP
    >>> fig.write_html("embedding.html")                                # doctest: +SKIP
    """
    emb = embedding
    if len(emb) == 0:
        raise ValueError("the embedding has no points")
    names = _names(label_names)
    col = _colouring([emb], color, names)
    dims = 3 if emb.n_components >= 3 else 2
    gl = webgl if webgl is not None else len(emb) > GL_THRESHOLD
    size, alpha = _marker_defaults(len(emb))
    size = marker_size or size
    alpha = opacity if opacity is not None else alpha
    atlas, tiles = (None, [np.full(len(emb), -1, np.int32)])
    if thumbnails:
        atlas, tiles = _thumb_tiles([emb], thumbnail_size)
    fig = go.Figure()
    if background is not None:
        fig.add_trace(_background_trace(background, dims, gl, size))
    for tr in _panel_traces(
        emb,
        color,
        col,
        names,
        hover,
        tiles[0],
        gl=gl,
        mark_errors=mark_errors,
        size=size,
        opacity=alpha,
        show_legend=True,
        coloraxis=None,
    ):
        fig.add_trace(tr)
    axes = _axis_titles(emb)
    quality = _quality_text(emb)
    fig.update_layout(
        title=dict(text=title or emb.title, subtitle=dict(text=quality) if quality else None),
        legend=dict(title=dict(text=col.name or "")),
        width=width,
        height=height,
    )
    if dims == 3:
        fig.update_layout(scene=dict(xaxis_title=axes[0], yaxis_title=axes[1], zaxis_title=axes[2]))
    else:
        fig.update_xaxes(title=axes[0])
        fig.update_yaxes(title=axes[1] if len(axes) > 1 else "")
        from inspect_kit.analysis.embedding.registry import is_linear

        if not is_linear(emb.method):  # neighbour maps: equal scales, no meaningful units
            fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _finish(fig, atlas, thumbnail_scale)


def plot_embedding_grid(
    embeddings: Sequence[EmbeddingLike] | Mapping[str, EmbeddingLike],
    color: str | np.ndarray | None = "auto",
    *,
    cols: int | None = None,
    hover: Sequence[str] | None = None,
    thumbnails: bool = True,
    label_names: Sequence[str] | Mapping[Any, str] | None = None,
    mark_errors: bool = True,
    title: str | None = None,
    marker_size: float | None = None,
    opacity: float | None = None,
    thumbnail_size: int | None = 24,
    thumbnail_scale: int = 4,
    webgl: bool | None = None,
    panel_size: int = 380,
) -> go.Figure:
    """Small multiples: embeddings side by side (e.g. one per layer), coloured alike.

    Classes keep their colour in every panel and one legend entry toggles a class in all of
    them, so separation through depth reads at a glance. Each panel's subtitle gives its
    trustworthiness and kNN accuracy.

    Parameters
    ----------
    embeddings : sequence of Embedding, or mapping of panel title to Embedding
        All 2D or all 3D.
    cols : int, optional
        Panels per row (default: up to 4).
    color, hover, thumbnails, label_names, mark_errors, marker_size, opacity, thumbnail_size,
    thumbnail_scale, webgl
        As for :func:`plot_embedding`.
    title : str, optional
    panel_size : int
        Height of one row of panels in pixels.

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> embs = {l: inspect_kit.embed(store, l, "umap") for l in ["conv1", "conv2", "fc"]}  # doctest: +SKIP
    >>> plot_embedding_grid(embs).write_html("layers.html")            # doctest: +SKIP
    """
    if isinstance(embeddings, Mapping):
        panel_titles = [str(k) for k in embeddings]
        embs = list(embeddings.values())
    else:
        embs = list(embeddings)
        panel_titles = [e.title for e in embs]
    if not embs:
        raise ValueError("no embeddings to plot")
    dims = {3 if e.n_components >= 3 else 2 for e in embs}
    if len(dims) > 1:
        raise ValueError("mix of 2D and 3D embeddings; make them all 2D or all 3D")
    dim = dims.pop()
    n_cols = cols or min(4, len(embs))
    n_rows = math.ceil(len(embs) / n_cols)
    names = _names(label_names)
    col = _colouring(embs, color, names)
    n_max = max(len(e) for e in embs)
    gl = webgl if webgl is not None else n_max > GL_THRESHOLD
    size, alpha = _marker_defaults(n_max)
    size = (marker_size or size) * 0.8
    alpha = opacity if opacity is not None else alpha
    atlas, tiles = (None, [np.full(len(e), -1, np.int32) for e in embs])
    if thumbnails:
        atlas, tiles = _thumb_tiles(embs, thumbnail_size)
    # Panel titles are planned for the narrowest figure (theme.MAX_WIDTH): long layer names
    # wrap at their dots, and the margins grow with the tallest title so that no title runs
    # into the figure's title or the next row's panels.
    legend_px = 160 if col.categorical or col.name is None else 110
    panel_px = (theme.MAX_WIDTH - 80 - legend_px) / n_cols - 12
    subtitles = []
    title_px = 0.0
    for t, e in zip(panel_titles, embs, strict=True):
        # one metric per line: side-by-side panels are too narrow for the one-line form
        q = _quality_text(e).replace(" · ", "<br>").replace(" (features", "<br>(features")
        q = "<br>".join(theme.wrap_label(line, panel_px, 11) for line in q.split("<br>") if line)
        name = theme.wrap_label(t, panel_px, 13)
        # Plotly spaces every line of an annotation by its own font (13 px), also the lines
        # drawn smaller
        title_px = max(title_px, (theme.n_lines(name) + theme.n_lines(q)) * 13 * theme.LINE_EM)
        subtitles.append(f"{name}<br><span style='font-size:11px'>{q}</span>" if q else name)
    gap_px = title_px + 30  # between rows: the next row's titles and a little air
    head, head_px = theme.top_title(title or "Embeddings", theme.MAX_WIDTH)
    top_px = int(head_px + title_px + 12)  # the figure title, then the panel titles
    bottom_px = 30
    height = top_px + panel_size * n_rows + gap_px * (n_rows - 1) + bottom_px
    specs = [[{"type": "scene" if dim == 3 else "xy"}] * n_cols for _ in range(n_rows)]
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        specs=specs,
        subplot_titles=subtitles,
        horizontal_spacing=0.04,
        vertical_spacing=gap_px / (height - top_px - bottom_px) if n_rows > 1 else 0.1,
    )
    coloraxis = "coloraxis" if (col.name is not None and not col.categorical) else None
    for k, (e, tile) in enumerate(zip(embs, tiles, strict=True)):
        r, c = divmod(k, n_cols)
        for tr in _panel_traces(
            e,
            color,
            col,
            names,
            hover,
            tile,
            gl=gl,
            mark_errors=mark_errors,
            size=size,
            opacity=alpha,
            show_legend=k == 0,
            coloraxis=coloraxis,
        ):
            fig.add_trace(tr, row=r + 1, col=c + 1)
    if coloraxis:
        fig.update_layout(
            coloraxis=dict(
                colorscale=theme.CONTINUOUS_SCALE,
                cmin=col.cmin,
                cmax=col.cmax,
                colorbar=dict(title=dict(text=col.name)),
            )
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        title=head,
        legend=dict(title=dict(text=col.name or "")),
        height=int(height),
        margin=dict(t=top_px, b=bottom_px),
    )
    fig.update_annotations(font_size=13)  # the size the titles were planned for
    return _finish(fig, atlas, thumbnail_scale)
