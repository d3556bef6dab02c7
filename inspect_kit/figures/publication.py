"""A publication template: journal column widths, font sizes in points, print-safe colours.

Plotly sizes figures in CSS pixels, 96 to the inch. :func:`publication_layout` sizes a figure
in inches for a journal column (single 3.5 in, double 7.2 in), sets its fonts in points, and
keeps the colour-blind-safe palettes of :mod:`inspect_kit.figures.theme`; the static export
(:mod:`inspect_kit.figures.export`) then writes PNG at 300 dpi, SVG and PDF of that physical
size. The colour scales here keep a monotonic lightness, so a figure still reads when
printed in grayscale.

Examples
--------
>>> fig = publication_layout(go.Figure(go.Scatter(y=[1, 3, 2])), columns="single")
>>> fig.layout.width, fig.layout.font.size
(336, 10.7)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

from . import theme

#: CSS pixels per inch: how Plotly's pixel sizes map to paper (SVG, PDF, and PNG via dpi).
CSS_PX_PER_INCH = 96
#: Common journal column widths in inches (Elsevier, Springer, IOP and IEEE are within 0.2 in).
COLUMN_WIDTHS: dict[str, float] = {"single": 3.5, "onehalf": 5.5, "double": 7.2}
#: Font sizes in points: journals ask for 6-9 pt at print size.
FONT_SIZES: dict[str, float] = {"tick": 7.0, "label": 8.0, "title": 9.0, "annotation": 7.0}
#: Default resolution of raster exports.
DEFAULT_DPI = 300
#: Colour scales whose lightness rises monotonically: readable in grayscale and by
#: colour-blind readers. ``Greys``/gray for intensities of medical images.
GRAYSCALE_SAFE_SCALES: tuple[str, ...] = (
    "Viridis",
    "Cividis",
    "Magma",
    "Inferno",
    "Plasma",
    "Greys",
)
#: The scale for medical image intensities (black to white, as a viewer shows them).
IMAGE_SCALE = theme.GRAY_SCALE
#: Line dashes that tell series apart without colour.
DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def inches_to_px(inches: float) -> int:
    """Plotly (CSS) pixels for a length in inches."""
    return int(round(float(inches) * CSS_PX_PER_INCH))


def points_to_px(points: float) -> float:
    """Plotly font size (CSS px) for a size in points (1 pt = 1/72 in)."""
    return round(float(points) * CSS_PX_PER_INCH / 72.0, 1)


def column_width(columns: str | float) -> float:
    """Width in inches of ``'single'``, ``'onehalf'``, ``'double'``, a size such as
    ``'85mm'``/``'3.3in'``, or a number of inches.

    Examples
    --------
    >>> column_width("double")
    7.2
    >>> round(column_width("85mm"), 4)
    3.3465
    >>> column_width("3.3in")
    3.3
    """
    if isinstance(columns, str):
        key = columns.strip().lower()
        if key in COLUMN_WIDTHS:
            return COLUMN_WIDTHS[key]
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(mm|cm|in)", key)
        if match is None:
            raise ValueError(
                f"columns={columns!r}; use one of {', '.join(COLUMN_WIDTHS)}, "
                "a size such as '85mm', '8.5cm' or '3.3in', or a width in inches"
            )
        per_inch = {"mm": 25.4, "cm": 2.54, "in": 1.0}[match.group(2)]
        width = float(match.group(1)) / per_inch
    else:
        width = float(columns)
    if not 0.5 <= width <= 20:
        raise ValueError(f"a figure width of {width} in is implausible; give 0.5 to 20 inches")
    return width


def publication_template(font_size: float = FONT_SIZES["label"]) -> go.layout.Template:
    """The inspect_kit template with print sizes: fonts in points, thin lines, tight margins."""
    tmpl = copy.deepcopy(theme.TEMPLATE)
    px = points_to_px(font_size)
    tick = points_to_px(min(font_size, FONT_SIZES["tick"]))
    axis = dict(
        tickfont=dict(size=tick),
        title=dict(font=dict(size=px)),
        linewidth=0.75,
        tickwidth=0.75,
        ticklen=3,
        gridwidth=0.5,
    )
    tmpl.layout.update(
        font=dict(size=px),
        title=dict(font=dict(size=points_to_px(FONT_SIZES["title"]))),
        legend=dict(font=dict(size=tick)),
        margin=dict(l=44, r=8, t=28, b=36),
        xaxis=axis,
        yaxis=axis,
    )
    return tmpl


def publication_layout(
    fig: go.Figure,
    columns: str | float = "single",
    *,
    height: float | None = None,
    aspect: float = 0.75,
    font_size: float = FONT_SIZES["label"],
    inplace: bool = False,
) -> go.Figure:
    """Size ``fig`` for a journal column and give it print fonts.

    Parameters
    ----------
    fig : go.Figure
    columns : {'single', 'onehalf', 'double'} or float
        Column width, or a width in inches.
    height : float, optional
        Height in inches (default ``width * aspect``).
    aspect : float
        Height over width when ``height`` is not given.
    font_size : float
        Base font size in points (ticks and legend one point smaller, titles one larger).
    inplace : bool
        Change ``fig`` itself instead of a copy.

    Returns
    -------
    go.Figure
        Width and height in CSS pixels (96 per inch): export with dpi=300 gives
        ``width_in * 300`` pixels.

    Examples
    --------
    >>> fig = publication_layout(fig, "double", height=3.0)     # doctest: +SKIP
    >>> export_figure(fig, "figure2.pdf")                       # doctest: +SKIP
    """
    width_in = column_width(columns)
    height_in = float(height) if height is not None else width_in * float(aspect)
    if not 0.5 <= height_in <= 20:
        raise ValueError(
            f"a figure height of {height_in:.2f} in is implausible; give 0.5 to 20 inches"
        )
    out = fig if inplace else go.Figure(fig)
    tmpl = publication_template(font_size)
    out.update_layout(
        template=tmpl,
        width=inches_to_px(width_in),
        height=inches_to_px(height_in),
        font=dict(size=points_to_px(font_size)),
        margin=dict(l=44, r=8, t=28 if out.layout.title.text else 10, b=36),
    )
    # Fonts set explicitly on the figure (by its builder) would override the template.
    tick = points_to_px(min(font_size, FONT_SIZES["tick"]))
    out.update_xaxes(tickfont_size=tick, title_font_size=points_to_px(font_size))
    out.update_yaxes(tickfont_size=tick, title_font_size=points_to_px(font_size))
    if out.layout.title.text:
        out.update_layout(title_font_size=points_to_px(FONT_SIZES["title"]))
    for ann in out.layout.annotations or ():
        ann.font.size = points_to_px(FONT_SIZES["annotation"])
    return out


# -- colour checks -------------------------------------------------------------------------------
def _rgb(color: str) -> tuple[float, float, float]:
    if color.startswith("#"):
        r, g, b = pc.hex_to_rgb(color)
    else:
        r, g, b = pc.unlabel_rgb(color)[:3]
    return (r / 255.0, g / 255.0, b / 255.0)


def relative_luminance(color: str) -> float:
    """WCAG relative luminance (0 black .. 1 white) of a ``#rrggbb`` or ``rgb(...)`` colour."""

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def colorscale_luminance(scale: str | Sequence[Any], n: int = 21) -> np.ndarray:
    """Luminance of ``n`` evenly spaced samples of a Plotly colour scale."""
    if isinstance(scale, str):
        colors = pc.get_colorscale(scale)
    else:
        colors = [list(c) for c in scale]
    samples = pc.sample_colorscale(colors, list(np.linspace(0, 1, n)))
    return np.asarray([relative_luminance(c) for c in samples])


def is_grayscale_safe(scale: str | Sequence[Any], n: int = 21) -> bool:
    """Whether a colour scale's luminance rises (or falls) monotonically end to end.

    Such a scale keeps its order when printed in grayscale. Rainbow-like scales ('Jet') do not.

    Examples
    --------
    >>> is_grayscale_safe("Viridis"), is_grayscale_safe("Jet")
    (True, False)
    """
    lum = colorscale_luminance(scale, n)
    d = np.diff(lum)
    return bool(np.all(d > 0) or np.all(d < 0))
