"""Figures for attribution maps: overlays on the image, volumes through the map's peak, and
the methods x samples grid.

Builders take an :class:`AttributionLike` (what :func:`inspect_kit.attribute` returns, or any
object with the same attributes) and the input images as arrays; they import no torch.

Display choices, documented because the stored maps are never changed:

* colour: a map that is never negative (saliency, Grad-CAM, SmoothGrad squared) uses a
  sequential scale (cividis, colour-blind safe) that fades to transparent at zero; a signed
  map uses a diverging scale (blue-white-red, ``RdBu_r``) centred on zero, transparent at
  zero, so the sign reads as colour and the image shows through where nothing was found;
* scale: the colour range is clipped at the ``clip_percentile`` of ``|map|`` (99 by
  default) so a few extreme voxels do not wash the rest out; the colourbar shows the map's
  own units, so the scale is never lost (pytorch-grad-cam min-max normalises each map);
* every figure names the explained target, the method and, for CAMs, the layer and its
  resolution; an all-zero or constant map is labelled "flat map".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

__all__ = [
    "AttributionLike",
    "display_range",
    "map_colorscale",
    "plot_attribution",
    "plot_attribution_grid",
    "volume_peak",
]

PLANES = ("axial", "coronal", "sagittal")  # cut axis 0 (D), 1 (H), 2 (W)
SEQUENTIAL = "cividis"
_CIVIDIS = ["#00224e", "#35456c", "#666970", "#948e77", "#c8b866", "#fee838"]
_RDBU = ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"]


class AttributionLike(Protocol):
    """What attribution figures read (:class:`inspect_kit.analysis.attribution.Attribution`)."""

    @property
    def maps(self) -> np.ndarray: ...
    @property
    def method(self) -> str: ...
    @property
    def targets(self) -> Sequence[str]: ...
    @property
    def signed(self) -> bool: ...
    @property
    def layer(self) -> str | None: ...
    @property
    def layer_resolution(self) -> tuple[int, ...] | None: ...
    @property
    def flat(self) -> np.ndarray: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


def _hex_rgba(h: str, alpha: float) -> str:
    r, g, b = (int(h[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.3g})"


def map_colorscale(signed: bool, opacity: float = 0.75) -> list[list[Any]]:
    """The overlay's colour scale: diverging and centred for signed maps, sequential for
    positive ones; transparent where the map is zero.

    Examples
    --------
    >>> map_colorscale(False)[0]
    [0.0, 'rgba(0,34,78,0)']
    >>> map_colorscale(True)[3]
    [0.5, 'rgba(247,247,247,0)']
    """
    if signed:
        n = len(_RDBU) - 1
        return [
            [i / n, _hex_rgba(c, opacity * abs(i - n / 2) / (n / 2) ** 0.5 if i != n / 2 else 0.0)]
            for i, c in enumerate(_RDBU)
        ]
    n = len(_CIVIDIS) - 1
    return [[i / n, _hex_rgba(c, 0.0 if i == 0 else opacity)] for i, c in enumerate(_CIVIDIS)]


def display_range(
    m: np.ndarray, signed: bool, clip_percentile: float = 99.0
) -> tuple[float, float]:
    """The colour range shown: symmetric about zero for signed maps, from zero otherwise,
    clipped at a percentile of ``|map|`` (display only; the map is not changed).

    Examples
    --------
    >>> display_range(np.array([-1.0, 0.5, 2.0]), True, 100)
    (-2.0, 2.0)
    >>> display_range(np.array([0.0, 3.0]), False, 100)
    (0.0, 3.0)
    """
    a = np.abs(np.asarray(m, dtype=np.float64))
    finite = a[np.isfinite(a)]
    top = float(np.percentile(finite, clip_percentile)) if finite.size else 0.0
    top = top if top > 0 else float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    if signed:
        return -top, top
    return float(min(0.0, np.nanmin(m))), top


def volume_peak(m: np.ndarray) -> tuple[int, ...]:
    """Index of the largest ``|map|`` value (where the orthogonal slices cross).

    Examples
    --------
    >>> v = np.zeros((3, 4, 5)); v[1, 2, 3] = -7
    >>> volume_peak(v)
    (1, 2, 3)
    """
    a = np.abs(np.nan_to_num(np.asarray(m, dtype=np.float64)))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(a)), a.shape))


def _signed_mip(m: np.ndarray, axis: int) -> np.ndarray:
    idx = np.expand_dims(np.argmax(np.abs(m), axis=axis), axis)
    return np.take_along_axis(m, idx, axis=axis).squeeze(axis)


def _sample_map(attr: AttributionLike, i: int) -> np.ndarray:
    maps = np.asarray(attr.maps)
    if not 0 <= i < len(maps):
        raise IndexError(f"sample {i} is out of range: the attribution holds {len(maps)} samples")
    return np.asarray(maps[i].sum(0), dtype=np.float64)  # channels summed (C = 1 for CAMs)


def _sample_image(images: Any, i: int, ndim: int) -> np.ndarray | None:
    if images is None:
        return None
    img = np.asarray(images[i], dtype=np.float64)
    if img.ndim == ndim + 1:
        img = img.mean(0) if img.shape[0] != 1 else img[0]
    if img.ndim != ndim:
        raise ValueError(
            f"images[{i}] has shape {np.asarray(images[i]).shape}; expected (C, *spatial) "
            f"matching the maps' {ndim}-D grid"
        )
    return img


def _caption(attr: AttributionLike, i: int) -> str:
    parts = [attr.method, f"target: {attr.targets[i]}"]
    if attr.layer is not None and attr.layer_resolution is not None:
        parts.append(f"layer {attr.layer} ({'x'.join(map(str, attr.layer_resolution))})")
    if bool(np.asarray(attr.flat)[i]):
        parts.append("FLAT MAP (all-zero or constant)")
    return " | ".join(parts)


def _image_trace(img: np.ndarray, name: str) -> go.Heatmap:
    return go.Heatmap(
        z=img,
        colorscale=theme.GRAY_SCALE,
        showscale=False,
        name=name,
        hovertemplate=f"{name}<br>x=%{{x}} y=%{{y}}<br>image=%{{z:.4g}}<extra></extra>",
    )


def _map_trace(
    m: np.ndarray,
    zrange: tuple[float, float],
    signed: bool,
    opacity: float,
    *,
    colorbar: dict[str, Any] | None,
    name: str,
) -> go.Heatmap:
    return go.Heatmap(
        z=m,
        zmin=zrange[0],
        zmax=zrange[1],
        zmid=0.0 if signed else None,
        colorscale=map_colorscale(signed, opacity),
        showscale=colorbar is not None,
        colorbar=colorbar,
        name=name,
        hovertemplate=f"{name}<br>x=%{{x}} y=%{{y}}<br>attribution=%{{z:.4g}}<extra></extra>",
    )


def _style_axes(fig: go.Figure, row: int, col: int) -> None:
    sp = fig.get_subplot(row, col)
    xname, yname = sp.xaxis.plotly_name, sp.yaxis.plotly_name
    fig.layout[xname].update(visible=False, constrain="domain")
    fig.layout[yname].update(
        visible=False,
        autorange="reversed",
        constrain="domain",
        scaleanchor=xname.replace("axis", ""),
    )


def plot_attribution(
    attr: AttributionLike,
    images: Any = None,
    *,
    sample: int = 0,
    clip_percentile: float = 99.0,
    opacity: float = 0.75,
    title: str | None = None,
) -> go.Figure:
    """One sample's map over its image: an overlay (2D) or slices through the peak (3D).

    A volume is drawn as three orthogonal slices crossing at the map's peak, a slider per
    plane to move through the volume, and a maximum-intensity projection along each axis
    (the value of largest magnitude, sign kept, for signed maps).

    Parameters
    ----------
    attr : AttributionLike
        The result of :func:`inspect_kit.attribute`.
    images : array (N, C, *spatial), optional
        The inputs the maps explain, drawn in grey underneath.
    sample : int
        Which sample of ``attr``.
    clip_percentile : float
        The colour range ends at this percentile of ``|map|`` (display only).
    opacity : float
        Opacity of the map's strongest colours.
    title : str, optional
        Default: method, target, CAM layer and resolution, and a flat-map flag.

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> a = SimpleNamespace(maps=np.random.default_rng(0).normal(size=(1, 1, 8, 8)), method="gradient",
    ...     targets=["class 1"], signed=True, layer=None, layer_resolution=None,
    ...     flat=np.array([False]), params={})
    >>> fig = plot_attribution(a, np.zeros((1, 1, 8, 8)))
    >>> fig.data[1].zmid, "class 1" in fig.layout.title.text
    (0.0, True)
    """
    m = _sample_map(attr, sample)
    img = _sample_image(images, sample, m.ndim)
    zr = display_range(m, attr.signed, clip_percentile)
    cap = title or _caption(attr, sample)
    cb = dict(
        title=dict(text="attribution" + (" (signed)" if attr.signed else ""), side="right"),
        thickness=12,
    )
    if m.ndim == 2:
        fig = go.Figure()
        if img is not None:
            fig.add_trace(_image_trace(img, "image"))
        fig.add_trace(_map_trace(m, zr, attr.signed, opacity, colorbar=cb, name=attr.method))
        fig.update_xaxes(visible=False, constrain="domain")
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
        head, px = theme.top_title(cap, 560)
        fig.update_layout(
            template=theme.TEMPLATE,
            width=560,
            height=480 + px,
            title=head,
            margin=dict(l=20, r=20, t=px + 20, b=20),
        )
        return fig
    if m.ndim != 3:
        raise ValueError(f"maps of {m.ndim} spatial axes cannot be drawn; expected 2 or 3")
    return _volume_figure(attr, m, img, zr, cap, cb, opacity)


def _volume_figure(
    attr: AttributionLike,
    m: np.ndarray,
    img: np.ndarray | None,
    zr: tuple[float, float],
    cap: str,
    cb: dict[str, Any],
    opacity: float,
) -> go.Figure:
    peak = volume_peak(m)
    titles = [f"{p} slice {peak[k]} (peak)" for k, p in enumerate(PLANES)] + [
        f"{p} MIP" for p in PLANES
    ]
    fig = make_subplots(
        rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.08
    )
    traces: dict[str, list[int]] = {}
    for k, plane in enumerate(PLANES):
        ids = []
        if img is not None:
            fig.add_trace(_image_trace(np.take(img, peak[k], axis=k), "image"), row=1, col=k + 1)
            ids.append(len(fig.data) - 1)
        fig.add_trace(
            _map_trace(
                np.take(m, peak[k], axis=k),
                zr,
                attr.signed,
                opacity,
                colorbar=cb if k == 0 else None,
                name=attr.method,
            ),
            row=1,
            col=k + 1,
        )
        ids.append(len(fig.data) - 1)
        traces[plane] = ids
        if img is not None:
            fig.add_trace(_image_trace(img.max(axis=k), "image MIP"), row=2, col=k + 1)
        mip = _signed_mip(m, k) if attr.signed else m.max(axis=k)
        fig.add_trace(
            _map_trace(mip, zr, attr.signed, opacity, colorbar=None, name=f"{attr.method} MIP"),
            row=2,
            col=k + 1,
        )
        _style_axes(fig, 1, k + 1)
        _style_axes(fig, 2, k + 1)
    sliders = []
    for k, plane in enumerate(PLANES):
        steps = []
        for i in range(m.shape[k]):
            zs = ([np.take(img, i, axis=k)] if img is not None else []) + [np.take(m, i, axis=k)]
            steps.append(dict(method="restyle", label=str(i), args=[{"z": zs}, traces[plane]]))
        sliders.append(
            dict(
                active=peak[k],
                currentvalue=dict(prefix=f"{plane} slice: "),
                pad=dict(t=20 + 70 * k),
                steps=steps,
                len=0.9,
                x=0.05,
            )
        )
    head, px = theme.top_title(cap, 900)
    fig.update_layout(
        template=theme.TEMPLATE,
        title=head,
        sliders=sliders,
        width=900,
        height=600 + px + 3 * 70,
        margin=dict(l=20, r=20, t=px + 40, b=20 + 3 * 70),
    )
    return fig


def plot_attribution_grid(
    attributions: Sequence[AttributionLike],
    images: Any = None,
    *,
    samples: Sequence[int] | None = None,
    sample_titles: Sequence[str] | None = None,
    clip_percentile: float = 99.0,
    opacity: float = 0.75,
    title: str | None = None,
) -> go.Figure:
    """Methods x samples: one row per method, one column per sample, each map over its image.

    Every map keeps its own colour range (methods have different units); volumes show the
    axial slice through each map's peak. Row labels name the method (and CAM layer with its
    resolution), column titles the sample and its target; flat maps are labelled.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> mk = lambda name: SimpleNamespace(maps=np.ones((2, 1, 6, 6)) * np.arange(6), method=name,
    ...     targets=["class 0", "class 1"], signed=False, layer=None, layer_resolution=None,
    ...     flat=np.array([False, False]), params={})
    >>> fig = plot_attribution_grid([mk("saliency"), mk("gradcam")], np.zeros((2, 1, 6, 6)))
    >>> len(fig.data)
    8
    """
    if not attributions:
        raise ValueError("plot_attribution_grid needs at least one attribution")
    n = len(attributions[0].maps)
    cols = list(samples) if samples is not None else list(range(min(n, 6)))
    rows = len(attributions)
    col_titles = [
        (sample_titles[j] if sample_titles is not None else f"sample {s}")
        + f"<br>{attributions[0].targets[s]}"
        for j, s in enumerate(cols)
    ]
    fig = make_subplots(
        rows=rows,
        cols=len(cols),
        column_titles=col_titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.02,
    )
    for r, attr in enumerate(attributions, start=1):
        label = attr.method
        if attr.layer is not None and attr.layer_resolution is not None:
            label += f"<br>{attr.layer} ({'x'.join(map(str, attr.layer_resolution))})"
        for c, s in enumerate(cols, start=1):
            m = _sample_map(attr, s)
            img = _sample_image(images, s, m.ndim)
            if m.ndim == 3:
                peak = volume_peak(m)[0]
                m = m[peak]
                img = None if img is None else img[peak]
            if img is not None:
                fig.add_trace(_image_trace(img, "image"), row=r, col=c)
            zr = display_range(m, attr.signed, clip_percentile)
            fig.add_trace(
                _map_trace(m, zr, attr.signed, opacity, colorbar=None, name=attr.method),
                row=r,
                col=c,
            )
            _style_axes(fig, r, c)
            if bool(np.asarray(attr.flat)[s]):
                sp = fig.get_subplot(r, c)
                fig.add_annotation(
                    text="flat map",
                    showarrow=False,
                    font=dict(color=theme.ERROR_COLOR),
                    xref=f"{sp.xaxis.plotly_name.replace('axis', '')} domain",
                    yref=f"{sp.yaxis.plotly_name.replace('axis', '')} domain",
                    x=0.5,
                    y=0.5,
                )
        fig.update_yaxes(
            title_text=label,
            row=r,
            col=1,
            visible=True,
            showticklabels=False,
            showgrid=False,
            zeroline=False,
        )
    size = 150
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or "Where the model looks",
        width=120 + size * len(cols),
        height=110 + size * rows,
        margin=dict(l=110, r=10, t=100, b=10),
    )
    return fig
