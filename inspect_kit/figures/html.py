"""Self-contained HTML for figures, with thumbnails that appear when hovering a point.

Plotly's hover labels hold text only, so a figure that carries thumbnails (see
:func:`inspect_kit.imaging.build_atlas`; they live in
``layout.meta["inspect_kit_thumbnails"]`` with each point's tile in its ``customdata``) gets a
small script that shows the hovered point's thumbnail in an ``<img>`` beside the cursor.

:func:`to_html` and :func:`save_html` add that script whenever a figure needs it. Several
figures can share one page: give the first ``include_plotlyjs=True`` and the others ``False``;
the script is defined once per page and installed on each figure.

Examples
--------
>>> fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
>>> html = to_html(fig)                    # one file, plotly.js inside, works offline
>>> save_html(fig, "figure.html")          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
import webbrowser
from html import escape as html_escape
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

logger = logging.getLogger(__name__)

#: Key in ``layout.meta`` under which a figure carries its thumbnail atlas.
META_KEY = "inspect_kit_thumbnails"

DEFAULT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}

# Defined once per page (guarded), installed on each figure by its post-script. Reads the
# sprite sheets from layout.meta, cuts the hovered point's tile out with a canvas and shows it
# in an <img>; positions it beside the cursor (or the point, for synthetic hovers).
_HOVER_JS = r"""
(function () {
  if (window.inspectKitThumbnails) { return; }
  var KEY = "%(key)s";
  function metaOf(gd) {
    var m = gd && gd.layout && gd.layout.meta;
    return m && m[KEY] ? m[KEY] : null;
  }
  function install(gd) {
    if (typeof gd === "string") { gd = document.getElementById(gd); }
    var meta = metaOf(gd);
    if (!meta || gd.__inspectKitThumbs) { return; }
    gd.__inspectKitThumbs = true;
    var th = meta.tile[0], tw = meta.tile[1], per = meta.columns * meta.rows;
    var col = meta.column || 0, scale = meta.scale || 4;
    var sheets = meta.sheets.map(function (src) {
      var im = new Image(); im.src = src; return im;
    });
    var canvas = document.createElement("canvas");
    canvas.width = tw; canvas.height = th;
    var box = document.createElement("div");
    box.className = "inspect-kit-thumb";
    box.id = gd.id + "-thumb";
    box.style.cssText = "position:fixed;display:none;z-index:100000;pointer-events:none;" +
      "background:#fff;border:1px solid #444;padding:2px;box-shadow:0 1px 4px rgba(0,0,0,.4);";
    var img = document.createElement("img");
    img.alt = "thumbnail";
    img.style.cssText = "display:block;image-rendering:pixelated;width:" + (scale * tw) +
      "px;height:" + (scale * th) + "px;";
    box.appendChild(img);
    document.body.appendChild(box);
    var pending = -1;
    function tileOf(pt) {
      var cd = pt.customdata;
      if (cd === undefined || cd === null) {
        var tr = (gd._fullData || gd.data)[pt.curveNumber];
        cd = tr && tr.customdata ? tr.customdata[pt.pointNumber] : null;
      }
      if (cd === undefined || cd === null) { return -1; }
      var v = (typeof cd === "number") ? cd : cd[col];
      return (v === undefined || v === null || isNaN(v)) ? -1 : Number(v);
    }
    function draw(t) {
      var sheet = sheets[Math.floor(t / per)];
      if (!sheet) { return; }
      if (!sheet.complete || !sheet.naturalWidth) {
        sheet.addEventListener("load", function () { if (pending === t) { draw(t); } });
        return;
      }
      var k = t %% per, r = Math.floor(k / meta.columns), c = k %% meta.columns;
      var ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, tw, th);
      ctx.drawImage(sheet, c * tw, r * th, tw, th, 0, 0, tw, th);
      img.src = canvas.toDataURL("image/png");
      img.setAttribute("data-tile", String(t));
    }
    function place(ev, pt) {
      var x, y, e = ev.event;
      if (e && typeof e.clientX === "number" && (e.clientX || e.clientY)) {
        x = e.clientX; y = e.clientY;
      } else {
        var rect = gd.getBoundingClientRect(), b = pt.bbox;
        x = rect.left + (b ? (b.x0 + b.x1) / 2 : rect.width / 2);
        y = rect.top + (b ? (b.y0 + b.y1) / 2 : rect.height / 2);
      }
      var w = scale * tw + 8, h = scale * th + 8, gap = 14;
      var left = x - w - gap, top = y - h - gap;
      if (left < 0) { left = x + gap; }
      if (top < 0) { top = y + gap; }
      box.style.left = left + "px"; box.style.top = top + "px";
    }
    gd.on("plotly_hover", function (ev) {
      var pt = ev && ev.points && ev.points[0];
      var t = pt ? tileOf(pt) : -1;
      if (t < 0) { pending = -1; box.style.display = "none"; return; }
      pending = t;
      draw(t);
      place(ev, pt);
      box.style.display = "block";
    });
    gd.on("plotly_unhover", function () { pending = -1; box.style.display = "none"; });
  }
  window.inspectKitThumbnails = { install: install, key: KEY };
})();
"""


def hover_js() -> str:
    """The JavaScript that defines the hover-thumbnail handler (idempotent per page)."""
    return _HOVER_JS % {"key": META_KEY}


def hover_script() -> str:
    """The ``<script>`` that defines the hover-thumbnail handler (idempotent per page)."""
    return "<script>" + hover_js() + "</script>"


def has_thumbnails(fig: go.Figure) -> bool:
    """Whether ``fig`` carries a thumbnail atlas in ``layout.meta``."""
    meta = fig.layout.meta
    return isinstance(meta, dict) and META_KEY in meta


def to_html(
    fig: go.Figure,
    include_plotlyjs: bool | str = True,
    full_html: bool = True,
    *,
    div_id: str | None = None,
    config: dict[str, Any] | None = None,
    title: str | None = None,
    default_height: str | int = "100%",
    default_width: str | int = "100%",
) -> str:
    """HTML of a figure, with the hover-thumbnail script when the figure carries thumbnails.

    Parameters
    ----------
    fig : go.Figure
    include_plotlyjs : bool or str
        True embeds plotly.js (about 3.5 MB) so the file works offline; False leaves it out,
        for a page that already embedded it (see the module docstring). 'cdn' and
        'directory' are passed to Plotly but need network or a file beside the page.
    full_html : bool
        A whole ``<html>`` document, or a ``<div>`` fragment to place in a page.
    div_id : str, optional
        Id of the figure's div (random by default).
    config : dict, optional
        Plotly config, merged over ``{"displaylogo": False, "responsive": True}``.
    title : str, optional
        ``<title>`` of a full document.
    default_height, default_width : str or int
        Size of the figure's div when the layout does not set one.

    Returns
    -------
    str

    Examples
    --------
    >>> page = to_html(fig_a, full_html=False) + to_html(fig_b, include_plotlyjs=False,
    ...                                                  full_html=False)  # doctest: +SKIP
    """
    thumbs = has_thumbnails(fig)
    post_script = (
        ["window.inspectKitThumbnails.install(document.getElementById('{plot_id}'));"]
        if thumbs
        else None
    )
    html: str = pio.to_html(
        fig,
        config={**DEFAULT_CONFIG, **(config or {})},
        include_plotlyjs=include_plotlyjs,
        full_html=full_html,
        div_id=div_id,
        post_script=post_script,
        default_height=default_height,
        default_width=default_width,
        validate=False,
    )
    head = ""
    if title is not None and full_html:
        head += f"<title>{html_escape(title)}</title>"
    if thumbs:
        head += hover_script()
    if not head:
        return html
    if full_html:
        return html.replace("</head>", head + "\n</head>", 1)
    return head + html


def save_html(
    fig: go.Figure,
    path: str | Path,
    include_plotlyjs: bool | str = True,
    **kwargs: Any,
) -> Path:
    """Write ``fig`` as one self-contained HTML file (see :func:`to_html` for options).

    Parameters
    ----------
    fig : go.Figure
        Any figure; one carrying thumbnails gets the hover script written into the file.
    path : str or Path
        The file to write.
    include_plotlyjs : bool or str
        True embeds plotly.js (works offline); see ``plotly.io.to_html`` for the others.
    **kwargs
        Passed to :func:`to_html`.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> save_html(fig, "embedding.html")       # doctest: +SKIP
    PosixPath('embedding.html')
    """
    path = Path(path)
    html = to_html(fig, include_plotlyjs=include_plotlyjs, full_html=True, **kwargs)
    path.write_text(html, encoding="utf-8")
    logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 2**20)
    return path


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


class ThumbnailFigure(go.Figure):  # type: ignore[misc]  # plotly ships no types
    """A ``go.Figure`` whose notebook view and HTML carry the hover thumbnails.

    It behaves as any Plotly figure: everything it needs rides in the figure itself (the
    sprite sheet in ``layout.meta["inspect_kit_thumbnails"]``, each point's tile in its
    ``customdata``), so ``go.Figure(fig)`` or ``fig.update_layout(...)`` keep it; the
    subclass only chooses how it is shown. In Jupyter (``fig`` as a cell's last line,
    ``display(fig)`` or ``fig.show()``) it is a light widget
    (:func:`inspect_kit.figures.explorer.show_figure`: plotly.js sent once per page, not
    stored in the notebook); without anywidget, HTML with plotly.js embedded.
    ``fig.write_html(path)`` and ``fig.to_html()`` go through :func:`save_html` and
    :func:`to_html`; after a round trip to a plain ``go.Figure``, call those (or
    ``show_figure``) rather than Plotly's own, which drop the hover script.

    Examples
    --------
    >>> fig = ThumbnailFigure(go.Scatter(x=[0], y=[0]))
    >>> isinstance(fig, go.Figure)
    True
    """

    def _repr_html_(self) -> str:
        return to_html(self, include_plotlyjs=True, full_html=False)

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        # Only text/html: JupyterLab would otherwise prefer Plotly's own mimetype renderer,
        # which never runs the hover script.
        return {"text/html": self._repr_html_()}

    def _ipython_display_(self) -> None:
        # go.Figure's own hook (which IPython prefers to _repr_*_) goes through Plotly's
        # renderers, which would drop the hover script.
        from IPython.display import display

        try:
            from .explorer import show_figure

            view = show_figure(self)
        except ImportError:  # no anywidget: heavy but working HTML
            display(self._repr_mimebundle_(), raw=True)  # type: ignore[no-untyped-call]  # IPython
            return
        display(view)  # type: ignore[no-untyped-call]  # IPython's display is unannotated

    def to_html(
        self, include_plotlyjs: bool | str = True, full_html: bool = True, **kwargs: Any
    ) -> str:
        return to_html(self, include_plotlyjs=include_plotlyjs, full_html=full_html, **kwargs)

    def write_html(
        self, file: str | Path, include_plotlyjs: bool | str = True, **kwargs: Any
    ) -> Path:
        return save_html(self, file, include_plotlyjs=include_plotlyjs, **kwargs)

    def show(self, *args: Any, **kwargs: Any) -> None:
        """Display in Jupyter with thumbnails; outside a notebook, open it in a browser."""
        if _in_notebook():
            self._ipython_display_()
            return
        path = Path(tempfile.mkdtemp(prefix="inspect_kit_")) / "figure.html"
        save_html(self, path)
        webbrowser.open(path.as_uri())
