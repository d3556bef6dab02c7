"""Shared look of every inspect_kit figure: colour-blind-safe palettes and a Plotly template.

Import these rather than hard-coding colours, so that all figures of a report agree.

Examples
--------
>>> from inspect_kit.figures import theme
>>> theme.categorical_colors(3)
['#E69F00', '#56B4E9', '#009E73']
>>> fig = go.Figure(layout={"template": theme.TEMPLATE})        # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import plotly.graph_objects as go

#: Okabe & Ito (2008) colour-universal-design palette, black moved last so that the
#: first classes get the most saturated colours.
OKABE_ITO: list[str] = [
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
]

#: Paul Tol's "muted" qualitative scheme (colour-blind safe), for 9 to 10 categories; its
#: pale grey (meant for missing data, too faint on white) is replaced by CARTO Safe's brown.
TOL_MUTED: list[str] = [
    "#CC6677",
    "#332288",
    "#DDCC77",
    "#117733",
    "#88CCEE",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#661100",
]

#: Marker symbols used, in turn, once a palette has run out of colours.
SYMBOLS: list[str] = ["circle", "square", "diamond", "triangle-up", "cross", "x"]

#: Perceptually uniform, colour-blind-safe scale for continuous values.
CONTINUOUS_SCALE: str = "Viridis"
#: Diverging scale for signed values (weights, differences), centred on white.
DIVERGING_SCALE: str = "RdBu_r"
#: Scale for medical images: plain grey, so intensities read as they do in a viewer.
GRAY_SCALE: list[list[float | str]] = [[0.0, "#000000"], [1.0, "#FFFFFF"]]

#: Colour that marks misclassified samples and other "attention" overlays.
ERROR_COLOR: str = "#D55E00"
#: Neutral colour for missing values or background points.
MISSING_COLOR: str = "#BBBBBB"

FONT_FAMILY = "Helvetica Neue, Helvetica, Arial, sans-serif"

#: Widest a figure of fixed width is drawn, and the width responsive figures plan their text
#: for: it fits a 1,000 px window (a notebook, the report's column), so nothing is clipped.
MAX_WIDTH = 900
#: Average glyph width as a fraction of the font size (Helvetica/Arial; digits are 0.56),
#: rounded up so that planned text never ends up wider than planned.
_GLYPH_EM = 0.6
#: Height of one line of text as a multiple of the font size (Plotly's line spacing).
LINE_EM = 1.3


def text_width(text: str, font_px: float = 13) -> float:
    """Width in pixels that ``text`` (no markup) will take at most, on one line.

    Examples
    --------
    >>> text_width("conv1", 10)
    30.0
    """
    return len(text) * font_px * _GLYPH_EM


def wrap_label(text: str, width_px: float, font_px: float = 13) -> str:
    """``text`` broken with ``<br>`` into lines at most ``width_px`` wide.

    Lines break after the separators of layer names (``.``, ``_``, ``#``, ``·``, ``/``) and at
    spaces, so ``features.denseblock1.denselayer1.layers.conv1`` reads as dotted pieces; a
    single piece wider than a line is cut. Text that already carries markup (``<``) is
    returned as it is.

    Examples
    --------
    >>> wrap_label("features.denseblock1.denselayer1.conv1", 100, 10)
    'features.<br>denseblock1.<br>denselayer1.<br>conv1'
    >>> wrap_label("fc", 100)
    'fc'
    """
    if "<" in text:
        return text
    per_line = max(4, int(width_px // (font_px * _GLYPH_EM)))
    if len(text) <= per_line:
        return text
    lines: list[str] = []
    line = ""
    for token in re.findall(r"[^.\s_#\u00b7/]*[.\s_#\u00b7/]*", text):
        while len(token) > per_line:  # one piece wider than a line: cut it
            if line:
                lines.append(line)
                line = ""
            lines.append(token[:per_line])
            token = token[per_line:]
        if len((line + token).rstrip()) > per_line and line:
            lines.append(line)
            line = ""
        line += token
    if line:
        lines.append(line)
    return "<br>".join(part.strip() for part in lines if part.strip())


def top_title(
    text: str, width: float, subtitle: str | None = None, *, size: float = 17
) -> tuple[dict[str, Any], float]:
    """A figure title (and subtitle) pinned to the top of a figure ``width`` px wide.

    Returns the ``layout.title`` and the height in pixels the block takes, so the top margin
    can hold it and whatever comes below (a legend, panel titles) without overlap.

    Examples
    --------
    >>> title, px = top_title("Units of conv1", 700)
    >>> title["text"], round(px)
    ('Units of conv1', 42)
    """
    text = wrap_label(text, width - 100, size)
    sub = wrap_label(subtitle, width - 100, 13) if subtitle else None
    lines = n_lines(text)
    # Plotly anchors a multi-line title by its first line: push it down by the extra lines
    pad = 12 + (lines - 1) * size * LINE_EM
    height = 12 + lines * size * LINE_EM + n_lines(sub or "") * 13 * LINE_EM + 8
    title = dict(
        text=text,
        subtitle=dict(text=sub),
        yref="container",
        y=1.0,
        yanchor="top",
        pad=dict(t=pad),
    )
    return title, height + (lines - 1) * size * LINE_EM


def n_lines(text: str) -> int:
    """Lines of a Plotly text (``<br>`` separated).

    Examples
    --------
    >>> n_lines("a<br>b")
    2
    """
    return text.count("<br>") + 1 if text else 0


def categorical_colors(n: int) -> list[str]:
    """``n`` distinguishable, colour-blind-safe colours (repeating past 10).

    Okabe-Ito up to 8 categories, Paul Tol's muted scheme for 9 or 10; beyond that the
    colours repeat and :func:`categorical_symbols` tells repeats apart.

    Examples
    --------
    >>> len(categorical_colors(12))
    12
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    palette = OKABE_ITO if n <= len(OKABE_ITO) else TOL_MUTED
    return [palette[i % len(palette)] for i in range(n)]


def categorical_symbols(n: int) -> list[str]:
    """Marker symbols that, with :func:`categorical_colors`, keep ``n`` categories distinct."""
    period = len(OKABE_ITO) if n <= len(OKABE_ITO) else len(TOL_MUTED)
    return [SYMBOLS[(i // period) % len(SYMBOLS)] for i in range(n)]


def _template() -> go.layout.Template:
    axis = dict(
        showgrid=True,
        gridcolor="#EBEBEB",
        zeroline=False,
        linecolor="#444444",
        ticks="outside",
        tickcolor="#444444",
        mirror=False,
        showline=True,
    )
    scene_axis = dict(
        showbackground=False, gridcolor="#DDDDDD", zeroline=False, linecolor="#444444"
    )
    return go.layout.Template(
        layout=go.Layout(
            font=dict(family=FONT_FAMILY, size=13, color="#222222"),
            paper_bgcolor="white",
            plot_bgcolor="white",
            colorway=OKABE_ITO,
            colorscale=dict(sequential=CONTINUOUS_SCALE, diverging=DIVERGING_SCALE),
            xaxis=axis,
            yaxis=axis,
            scene=dict(xaxis=scene_axis, yaxis=scene_axis, zaxis=scene_axis),
            legend=dict(bgcolor="rgba(255,255,255,0.8)", itemsizing="constant"),
            hoverlabel=dict(font=dict(family=FONT_FAMILY, size=12)),
            margin=dict(l=60, r=20, t=50, b=50),
            title=dict(x=0.02, xanchor="left"),
        )
    )


#: The inspect_kit Plotly template: ``fig.update_layout(template=TEMPLATE)``.
TEMPLATE: go.layout.Template = _template()


def apply_theme(fig: go.Figure) -> go.Figure:
    """Give ``fig`` the inspect_kit template (in place) and return it.

    Examples
    --------
    >>> fig = apply_theme(go.Figure())
    >>> fig.layout.template.layout.colorway[0]
    '#E69F00'
    """
    fig.update_layout(template=TEMPLATE)
    return fig
