"""One self-contained HTML report: sections of text, tables, images and Plotly figures.

plotly.js is embedded once in the page's head and every figure is a fragment that uses it,
so the file opens offline with no network. Figures that carry hover thumbnails get the
script of :mod:`inspect_kit.figures.html`.

Examples
--------
>>> report = Report("Profile of SmallCNN")
>>> sec = report.section("Embeddings", intro="PCA, t-SNE and UMAP of each layer.")
>>> sec.add_table(["layer", "trustworthiness"], [["conv1", 0.91]]).title
'Embeddings'
>>> report.save("report.html")                                     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from inspect_kit.figures.html import to_html
from inspect_kit.imaging import to_data_uri

logger = logging.getLogger(__name__)

_CSS = """
:root { --ink:#222; --muted:#666; --line:#ddd; --accent:#0072B2; --bg:#fafafa; }
* { box-sizing: border-box; }
body { margin:0; font-family: Helvetica Neue, Helvetica, Arial, sans-serif; color:var(--ink);
       background:#fff; line-height:1.45; }
nav.toc { position:fixed; top:0; left:0; bottom:0; width:230px; overflow-y:auto;
          background:var(--bg); border-right:1px solid var(--line); padding:18px 14px; font-size:14px; }
nav.toc a { display:block; color:var(--ink); text-decoration:none; padding:3px 0; }
nav.toc a.sub { padding-left:12px; color:var(--muted); font-size:13px; }
nav.toc a:hover { color:var(--accent); }
main { margin-left:250px; padding:20px 32px 60px 20px; max-width:1400px; }
h1 { font-size:26px; margin:8px 0 4px; }
h2 { font-size:21px; margin:34px 0 8px; padding-top:10px; border-top:2px solid var(--line); }
h3 { font-size:16px; margin:20px 0 6px; }
p.subtitle { color:var(--muted); margin-top:0; }
p.note { color:var(--muted); font-size:13px; }
table.data { border-collapse:collapse; font-size:13px; margin:8px 0 14px; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:4px 10px; text-align:left;
                               vertical-align:top; }
table.data th { background:var(--bg); font-weight:600; }
table.data td.num { text-align:right; font-variant-numeric: tabular-nums; }
.figure { margin:10px 0 18px; overflow-x:auto; }
.figure .caption, figure.image figcaption { color:var(--muted); font-size:13px; margin-top:2px; }
.grid { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
.grid > .figure { flex: 1 1 420px; min-width: 360px; }
figure.image { margin:10px 0; display:inline-block; }
figure.image img { image-rendering: pixelated; max-width:100%; }
.callout { border-left:4px solid var(--accent); background:var(--bg); padding:8px 12px; margin:10px 0; }
.callout.warn { border-left-color:#D55E00; }
code { background:var(--bg); padding:1px 4px; border-radius:3px; }
@media print { nav.toc { display:none; } main { margin-left:0; } }
/* below 1,200 px the contents move above the text, so figures (900 px at most) keep room */
@media (max-width: 1200px) {
  nav.toc { position:static; width:auto; border-right:none; border-bottom:1px solid var(--line); }
  main { margin-left:0; }
}
"""


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def _fmt(value: Any) -> tuple[str, bool]:
    """Cell text and whether it is numeric."""
    if isinstance(value, bool | np.bool_):
        return ("yes" if value else "no"), False
    if isinstance(value, int | np.integer):
        return f"{int(value):,}".replace(",", "\u2009"), True
    if isinstance(value, float | np.floating):
        v = float(value)
        if not np.isfinite(v):
            return "–", True
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}", True
        return f"{v:.3f}", True
    if value is None:
        return "–", False
    return str(value), False


@dataclass
class Section:
    """A titled part of a :class:`Report`; add blocks in reading order."""

    title: str
    anchor: str
    report: Report = field(repr=False)
    blocks: list[str] = field(default_factory=list, repr=False)
    figures: dict[str, go.Figure] = field(default_factory=dict, repr=False)

    def add_text(self, text: str, *, note: bool = False) -> Section:
        """A paragraph of plain text (escaped). Blank lines split paragraphs."""
        cls = ' class="note"' if note else ""
        for para in str(text).strip().split("\n\n"):
            if para.strip():
                self.blocks.append(f"<p{cls}>{html.escape(para.strip())}</p>")
        return self

    def add_html(self, fragment: str) -> Section:
        """Trusted HTML (the caller escapes what it interpolates)."""
        self.blocks.append(fragment)
        return self

    def add_callout(self, text: str, *, warn: bool = False) -> Section:
        cls = "callout warn" if warn else "callout"
        self.blocks.append(f'<div class="{cls}">{html.escape(text)}</div>')
        return self

    def add_heading(self, text: str) -> Section:
        anchor = _slug(f"{self.anchor}-{text}", self.report._anchors)
        self.blocks.append(f'<h3 id="{anchor}">{html.escape(text)}</h3>')
        self.report._toc.append((3, text, anchor))
        return self

    def add_table(
        self,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        caption: str | None = None,
    ) -> Section:
        """A table; numbers are formatted to 3 decimals and right-aligned."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        thead = f"<thead><tr>{head}</tr></thead>" if head else ""
        body = []
        for row in rows:
            cells = []
            for v in row:
                text, num = _fmt(v)
                cls = ' class="num"' if num else ""
                cells.append(f"<td{cls}>{html.escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.blocks.append(
            f'<table class="data">{cap}{thead}<tbody>{"".join(body)}</tbody></table>'
        )
        return self

    def add_key_values(self, items: Mapping[str, Any]) -> Section:
        """A two-column table of names and values."""
        return self.add_table([], [[k, v] for k, v in items.items()])

    def add_figure(
        self,
        fig: go.Figure,
        *,
        name: str | None = None,
        caption: str | None = None,
        height: int = 450,
    ) -> Section:
        """A Plotly figure (interactive; hover thumbnails kept). ``name`` keys :attr:`figures`."""
        div_id = f"fig-{len(self.report._figure_ids) + 1}"
        self.report._figure_ids.append(div_id)
        # Plotly's responsive divs fill their container (height/width 100%), so the container
        # gets the figure's own size: blocks never overlap, and a figure without a height
        # still gets one. Wide figures scroll sideways instead of being squeezed.
        lay_h, lay_w = fig.layout.height, fig.layout.width
        box_h = f"{int(lay_h) if lay_h else int(height)}px"
        box_w = f"{int(lay_w)}px" if lay_w else "100%"
        frag = to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=div_id,
            default_height="100%",
            default_width="100%",
        )
        cap = f'<div class="caption">{html.escape(caption)}</div>' if caption else ""
        self.blocks.append(
            f'<div class="figure"><div class="plot" style="height:{box_h};width:{box_w};'
            f'max-width:none">{frag}</div>{cap}</div>'
        )
        if name is not None:
            self.figures[name] = fig
        return self

    def add_figures(
        self, figs: Mapping[str, go.Figure] | Sequence[go.Figure], *, height: int = 420
    ) -> Section:
        """Several figures side by side (wrapping on narrow screens)."""
        items = figs.items() if isinstance(figs, Mapping) else [(None, f) for f in figs]
        start = len(self.blocks)
        for name, fig in items:
            self.add_figure(fig, name=name, height=height)
        inner = "".join(self.blocks[start:])
        del self.blocks[start:]
        self.blocks.append(f'<div class="grid">{inner}</div>')
        return self

    def add_image(
        self, image: np.ndarray | bytes, *, caption: str | None = None, width: int | None = None
    ) -> Section:
        """A static image (uint8 array or PNG bytes), embedded as a data URI."""
        w = f' width="{int(width)}"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(
            f'<figure class="image"><img src="{to_data_uri(image)}" alt="{html.escape(caption or "")}"{w}>{cap}</figure>'
        )
        return self


class Report:
    """A self-contained HTML report built from sections.

    Parameters
    ----------
    title : str
    subtitle : str, optional
        A line under the title (e.g. the model and the data).

    Examples
    --------
    >>> r = Report("Profile")
    >>> r.section("Model").add_key_values({"class": "SmallCNN", "parameters": 12345})  # doctest: +ELLIPSIS
    Section(...)
    >>> "<h2" in r.to_html()
    True
    """

    def __init__(self, title: str, subtitle: str | None = None):
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []
        self._anchors: set[str] = set()
        self._toc: list[tuple[int, str, str]] = []
        self._figure_ids: list[str] = []

    def section(self, title: str, *, intro: str | None = None) -> Section:
        """Start a new section (appears in the table of contents)."""
        sec = Section(title=title, anchor=_slug(title, self._anchors), report=self)
        self._toc.append((2, title, sec.anchor))
        self.sections.append(sec)
        if intro:
            sec.add_text(intro)
        return sec

    @property
    def figures(self) -> dict[str, go.Figure]:
        """Every named figure of every section (for static export)."""
        out: dict[str, go.Figure] = {}
        for sec in self.sections:
            out.update(sec.figures)
        return out

    def to_html(self) -> str:
        """The whole page as a string (plotly.js embedded once)."""
        from plotly.offline import get_plotlyjs

        sub_cls = ' class="sub"'
        toc = "".join(
            f'<a href="#{a}"{sub_cls if lvl == 3 else ""}>{html.escape(t)}</a>'
            for lvl, t, a in self._toc
        )
        parts = []
        for sec in self.sections:
            parts.append(f'<section id="{sec.anchor}"><h2>{html.escape(sec.title)}</h2>')
            parts.extend(sec.blocks)
            parts.append("</section>")
        created = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        sub = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
            # plotly.js once, inline: the file works offline.
            f'<script type="text/javascript">{get_plotlyjs()}</script>'
            "</head><body>"
            f'<nav class="toc"><strong>{html.escape(self.title)}</strong>{toc}</nav>'
            f"<main><h1>{html.escape(self.title)}</h1>{sub}"
            f'<p class="note">Generated {created} by inspect_kit.</p>'
            + "".join(parts)
            + "</main></body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write the report; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        logger.info("wrote report %s (%.1f MB)", path, path.stat().st_size / 2**20)
        return path
