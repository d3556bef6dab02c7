"""Explore embeddings in Jupyter: a light widget with selection, neighbours and linked layers.

:func:`explore` shows one or several maps of a store's layers (small multiples, linked: a
selection on one highlights the same samples on the others) with the input thumbnail of the
hovered point, a gallery and a table of the selected samples, nearest neighbours in the
original feature space and colouring by label, prediction, correctness or any metadata key.

The widget is an anywidget whose outputs stay light: plotly.js is sent by the kernel once per
page as a binary message (never stored in the notebook), thumbnails travel once as a sprite
sheet with one tile number per sample, coordinates as float32 buffers.

Examples
--------
>>> ex = inspect_kit.explore(store, layer=["relu2", "fc"], method="pca")    # doctest: +SKIP
>>> ex                                        # the widget; lasso some points   # doctest: +SKIP
>>> ex.selected                               # their sample indices in the store  # doctest: +SKIP
>>> ex.neighbours(12, k=5)                    # nearest in fc's feature space    # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from .embedding import GL_THRESHOLD, _colouring, _names, _thumb_tiles
from .html import hover_js

if TYPE_CHECKING:
    from inspect_kit.analysis.embedding.maps import MapSource

logger = logging.getLogger(__name__)

try:
    import anywidget
    import traitlets as t
except ImportError:  # pragma: no cover - the `explore` extra
    anywidget = None  # type: ignore[assignment]  # the module, or None without the extra

_ASSETS = Path(__file__).parent
#: at most this many thumbnails are drawn as points (beyond, the canvas becomes a blur)
MAX_IMAGE_POINTS = 5000


@cache
def plotly_js() -> bytes:
    """The installed ``plotly`` package's own plotly.min.js (sent to a page once)."""
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()
    return js.encode("utf-8")


@cache
def widget_esm() -> str:
    """The widget's JavaScript module, with the shared hover-thumbnail script spliced in."""
    src = (_ASSETS / "explorer.js").read_text(encoding="utf-8")
    return src.replace("/*INSPECT_KIT_HOVER_JS*/", hover_js())


@cache
def widget_css() -> str:
    return (_ASSETS / "explorer.css").read_text(encoding="utf-8")


def require_anywidget() -> None:
    if anywidget is None:
        raise ImportError(
            "the explorer needs anywidget: pip install 'inspect-kit[explore]' (anywidget, "
            "ipywidgets, pandas)"
        )


def _f32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _method_labels(methods: Sequence[str]) -> dict[str, str]:
    """The method menu's text: each method's display name from the embedding registry."""
    from inspect_kit.analysis.embedding.registry import display_name

    return {m: display_name(m) for m in methods}


def _i32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<i4").tobytes()


if anywidget is not None:

    class _Base(anywidget.AnyWidget):
        _esm = widget_esm()
        _css = widget_css()
        kind = t.Unicode("explorer").tag(sync=True)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.on_msg(self._on_custom)

        def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
            if isinstance(content, dict) and content.get("type") == "inspect_kit.plotly":
                self.send({"type": "inspect_kit.plotly"}, [plotly_js()])
            else:
                self._on_message(content)

        def _on_message(self, content: Any) -> None:  # overridden by the explorer
            pass

    class FigureView(_Base):
        """A Plotly figure as a light widget: plotly.js once per page, hover thumbnails kept.

        What a :class:`~inspect_kit.figures.html.ThumbnailFigure` shows in a notebook; any
        figure carrying thumbnails in ``layout.meta`` can be shown with it, also after
        ``go.Figure(fig)`` or ``pio.from_json``.

        Examples
        --------
        >>> FigureView(go.Figure(fig))            # doctest: +SKIP
        """

        kind = t.Unicode("figure").tag(sync=True)
        figure = t.Unicode("{}").tag(sync=True)

        def __init__(self, fig: go.Figure, config: dict[str, Any] | None = None) -> None:
            spec = json.loads(fig.to_json())  # typed arrays as base64 (plotly.js decodes)
            spec["config"] = config or {}
            super().__init__(figure=json.dumps(spec, separators=(",", ":")))

    class Explorer(_Base):
        """The widget :func:`explore` returns; see there.

        Attributes
        ----------
        selected : ndarray of int64
            Selected samples, as the store numbers them (rows; ``selection_table`` also gives
            their dataset index).
        embeddings : list of Embedding
            The maps shown, one per panel.
        """

        panels: t.List[Any] = t.List().tag(sync=True)
        n_points = t.Int(0).tag(sync=True)
        rows = t.Bytes(b"").tag(sync=True)
        atlas = t.Dict().tag(sync=True)
        columns = t.Dict().tag(sync=True)
        color_by = t.Unicode("").tag(sync=True)
        selected_points = t.List(t.Int()).tag(sync=True)
        highlight = t.List(t.Int()).tag(sync=True)
        query = t.Int(-1).tag(sync=True)
        layer_options = t.List(t.Unicode()).tag(sync=True)
        method_options = t.List(t.Unicode()).tag(sync=True)
        # what the method menu shows for each option: the registry's display names
        method_labels = t.Dict().tag(sync=True)
        layer = t.Unicode("").tag(sync=True)
        method = t.Unicode("").tag(sync=True)
        images = t.Bool(False).tag(sync=True)
        status = t.Unicode("").tag(sync=True)
        height = t.Int(420).tag(sync=True)
        dragmode = t.Unicode("lasso").tag(sync=True)
        gallery_size = t.Int(48).tag(sync=True)
        webgl_threshold = t.Int(GL_THRESHOLD).tag(sync=True)

        def __init__(
            self,
            source: MapSource,
            *,
            color: str | None = "auto",
            label_names: Sequence[str] | Mapping[Any, str] | None = None,
            thumbnail_size: int | None = 24,
            thumbnail_scale: int = 4,
            images: bool = False,
            height: int = 420,
        ) -> None:
            # the source computes (new maps, features, neighbours); the widget only shows
            self.source = source
            embs = list(source.embeddings)
            n = len(embs[0])
            rows = source.rows
            self._callbacks: list[Callable[[np.ndarray], Any]] = []
            self._rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows)
            self._point_of = {int(r): i for i, r in enumerate(self._rows.tolist())}
            self._names = _names(label_names)
            self.embeddings = embs
            atlas: dict[str, Any] | None = None
            tiles: list[np.ndarray] = []
            if embs[0].thumbnails is not None:
                atlas, tiles = _thumb_tiles([embs[0]], thumbnail_size)
            atlas_state = {}
            if atlas is not None:
                atlas_state = dict(atlas, tiles=_i32(tiles[0]), scale=int(thumbnail_scale))
            columns = self._columns(embs[0])
            if color == "auto":
                color = next((c for c in ("label", "prediction") if c in columns), "")
            if color and color not in columns:
                raise KeyError(
                    f"cannot colour by {color!r}; the samples have "
                    f"{', '.join(map(repr, columns)) or 'no per-sample values'}"
                )
            super().__init__(
                panels=self._panels(embs),
                n_points=n,
                rows=_i32(self._rows),
                atlas=atlas_state,
                columns=columns,
                color_by=color or "",
                layer=str(embs[0].layer or ""),
                method=embs[0].method,
                layer_options=list(source.layer_options) or [str(embs[0].layer or "")],
                method_options=list(source.method_options) or [embs[0].method],
                method_labels=_method_labels(list(source.method_options) or [embs[0].method]),
                images=bool(images),
                height=int(height),
            )
            self.observe(self._selection_changed, names="selected_points")
            self.observe(self._view_changed, names=["layer", "method"])

        # -- state sent to the page ------------------------------------------------------------
        def _columns(self, emb: Any) -> dict[str, Any]:
            keys = [
                k
                for k, present in (
                    ("label", emb.labels is not None),
                    ("prediction", emb.predictions is not None),
                    ("correct", emb.correct is not None),
                )
                if present
            ] + list(emb.metadata)
            out: dict[str, Any] = {}
            for key in keys:
                col = _colouring([emb], key, self._names)
                if col.values is None:
                    continue
                if col.categorical:
                    lookup = {c: k for k, c in enumerate(col.categories)}
                    codes = np.array([lookup.get(v, -1) for v in col.values.tolist()])
                    named = key in ("label", "prediction")
                    out[key] = {
                        "kind": "categorical",
                        "codes": _i32(codes),
                        "names": [
                            str(self._names.get(c, c)) if named else str(c) for c in col.categories
                        ],
                        "colors": [col.colors[c] for c in col.categories],
                    }
                else:
                    out[key] = {
                        "kind": "continuous",
                        "values": _f32(col.values.astype(float)),
                        "cmin": col.cmin,
                        "cmax": col.cmax,
                    }
            return out

        @staticmethod
        def _panels(embs: Sequence[Any]) -> list[dict[str, Any]]:
            panels = []
            for e in embs:
                xy = (
                    e.coords
                    if e.n_components >= 2
                    else np.column_stack([e.coords[:, 0], 0 * e.coords[:, 0]])
                )
                panels.append(
                    {
                        "title": e.title,
                        "layer": str(e.layer or ""),
                        "method": e.method,
                        "x": _f32(xy[:, 0]),
                        "y": _f32(xy[:, 1]),
                    }
                )
            return panels

        # -- selection ---------------------------------------------------------------------------
        @property
        def selected(self) -> np.ndarray:
            """Selected samples as the store numbers them (rows), sorted."""
            return self._rows[np.asarray(self.selected_points, dtype=np.int64)]

        def _points(self, samples: Any) -> list[int]:
            samples = np.atleast_1d(np.asarray(samples))
            if samples.dtype == bool:
                if samples.shape != self._rows.shape:
                    raise ValueError(
                        f"a boolean selection needs one value per point ({len(self._rows)}), "
                        f"got {samples.shape}"
                    )
                return np.flatnonzero(samples).tolist()
            missing = [int(s) for s in samples.tolist() if int(s) not in self._point_of]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                raise IndexError(
                    f"samples {shown} are not on the map (it shows store rows "
                    f"{int(self._rows.min())}..{int(self._rows.max())}, {len(self._rows)} samples)"
                )
            return sorted({self._point_of[int(s)] for s in samples.tolist()})

        def select(self, samples: Any) -> Explorer:
            """Select samples (store rows, or a boolean mask over the points) on every map.

            Examples
            --------
            >>> ex.select(np.flatnonzero(store.labels == 2))      # doctest: +SKIP
            """
            self.selected_points = self._points(samples)
            return self

        def on_select(self, callback: Callable[[np.ndarray], Any]) -> Explorer:
            """Call ``callback(selected)`` (store rows) whenever the selection changes.

            Examples
            --------
            >>> ex.on_select(lambda rows: print(len(rows), "selected"))   # doctest: +SKIP
            """
            self._callbacks.append(callback)
            return self

        def _selection_changed(self, _change: Any) -> None:
            rows = self.selected
            for cb in list(self._callbacks):
                try:
                    cb(rows)
                except Exception:  # a broken callback must not break the widget's sync
                    logger.exception("on_select callback %r failed", cb)

        def selection_table(self, samples: Any = None) -> Any:
            """The selected samples (or ``samples``) as a table: one row per sample.

            Columns: ``sample`` (store row), ``index`` (position in the dataset), ``label``,
            ``prediction``, ``correct``, every metadata key and the coordinates in each panel.

            Returns
            -------
            pandas.DataFrame, or a dict of arrays when pandas is not installed

            Examples
            --------
            >>> ex.selection_table().groupby("label").size()       # doctest: +SKIP
            """
            pts = np.asarray(
                self.selected_points if samples is None else self._points(samples), dtype=np.int64
            )
            emb = self.embeddings[0]
            data: dict[str, Any] = {"sample": self._rows[pts], "index": np.asarray(emb.index)[pts]}
            if emb.labels is not None:
                data["label"] = np.asarray(emb.labels)[pts]
            if emb.predictions is not None:
                data["prediction"] = np.asarray(emb.predictions)[pts]
            if emb.correct is not None:
                data["correct"] = emb.correct[pts]
            for key, values in emb.metadata.items():
                data[key] = np.asarray(values)[pts]
            for e in self.embeddings:
                prefix = f"{e.layer}/{e.method}" if len(self.embeddings) > 1 else e.method
                for d in range(min(2, e.n_components)):
                    data[f"{prefix} {d + 1}"] = e.coords[pts, d]
            try:
                import pandas as pd
            except ImportError:
                return data
            return pd.DataFrame(data)

        # -- neighbours --------------------------------------------------------------------------
        def features(self, layer: str | None = None) -> np.ndarray:
            """The original features ``(N, D)`` of ``layer`` (default: the first map's), float32."""
            return self.source.features(layer)

        def neighbours(
            self,
            sample: int,
            k: int = 10,
            *,
            layer: str | None = None,
            return_distance: bool = False,
            highlight: bool = True,
        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
            """The ``k`` samples nearest to ``sample`` in the original feature space.

            Euclidean distance between the layer's features (pooled as for the embedding), not
            in the 2D map, so they show what the map may have torn apart. The sample and its
            neighbours are marked on every map.

            Parameters
            ----------
            sample : int
                A store row on the map.
            k : int
                Number of neighbours (the sample itself left out).
            layer : str, optional
                Feature space (default: the first map's layer).
            return_distance : bool
                Also return the distances.
            highlight : bool
                Mark them on the maps.

            Returns
            -------
            ndarray of int64 (k,)
                Store rows, nearest first; with ``return_distance`` also their distances.

            Examples
            --------
            >>> ex.neighbours(12, k=5)                      # doctest: +SKIP
            array([ 88, 301,   7, 954, 412])
            """
            point = self._points([sample])[0]
            idx, dist = self.source.neighbours(point, k, layer)
            if highlight:
                self.query = point
                self.highlight = idx.tolist()
            rows = self._rows[idx]
            return (rows, dist) if return_distance else rows

        def _on_message(self, content: Any) -> None:
            if isinstance(content, dict) and content.get("type") == "inspect_kit.neighbours":
                try:
                    self.neighbours(int(self._rows[int(content["point"])]))
                except (ValueError, IndexError) as err:
                    self.status = str(err)

        # -- switching layer and method ----------------------------------------------------------
        def show(
            self, layers: Sequence[str] | str | None = None, method: str | None = None
        ) -> Explorer:
            """Show other layers and/or another method (reusing what the store has cached).

            Examples
            --------
            >>> ex.show(["relu3", "fc"], method="tsne")          # doctest: +SKIP
            """
            if isinstance(layers, str):
                layers = [layers]
            layers = list(layers or [e.layer for e in self.embeddings])
            method = method or self.embeddings[0].method
            if self.source.store is None or all(self.source.has(lay, method) for lay in layers):
                embs = [self.source.embedding(lay, method) for lay in layers]
            else:
                from inspect_kit.analysis.embedding.registry import display_name

                shown = display_name(method)
                self.status = f"computing {shown} of {', '.join(layers)} (cached in the store)"
                try:
                    embs = [self.source.embedding(lay, method) for lay in layers]
                finally:
                    self.status = ""
            self.embeddings = embs
            with self.hold_trait_notifications():
                self.layer = str(layers[0])
                self.method = method
                self.panels = self._panels(embs)
            return self

        def _view_changed(self, change: Any) -> None:
            current = [str(e.layer) for e in self.embeddings]
            layer, method = self.layer, self.method
            if layer == current[0] and method == self.embeddings[0].method:
                return
            layers = [layer] + [lay for lay in current[1:] if lay != layer]
            try:
                self.show(layers, method)
            except Exception as err:  # shown in the widget; Python keeps the previous maps
                logger.warning("could not switch the explorer to %s/%s: %s", layer, method, err)
                from inspect_kit.analysis.embedding.registry import display_name

                self.status = f"could not show {display_name(method)} of {layer}: {err}"
                with self.hold_trait_notifications():
                    self.layer, self.method = current[0], self.embeddings[0].method

        # -- saved HTML --------------------------------------------------------------------------
        def to_html(self) -> str:
            """One self-contained HTML page of the explorer (plotly.js inside, works offline).

            The maps, hover thumbnails, colouring, gallery and images-as-points work in the
            page; what needs Python (neighbours, switching layer or method) does not.
            """
            return standalone_html(self)

        def save_html(self, path: str | Path) -> Path:
            """Write :meth:`to_html` to ``path``."""
            path = Path(path)
            path.write_text(self.to_html(), encoding="utf-8")
            return path


def _state(widget: Any) -> dict[str, Any]:
    """The widget's synced state, bytes as ``{"$bytes": base64}`` (decoded by the page)."""

    def enc(v: Any) -> Any:
        if isinstance(v, bytes | bytearray | memoryview):
            return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [enc(x) for x in v]
        return v

    import ipywidgets

    base = set(ipywidgets.DOMWidget.class_trait_names(sync=True))
    names = [n for n in widget.trait_names(sync=True) if n not in base and not n.startswith("_")]
    return {n: enc(getattr(widget, n)) for n in names}


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%(title)s</title><style>%(css)s</style>
<script>%(plotly)s</script>
<script>window.__inspectKitPlotly = Promise.resolve(window.Plotly);</script>
</head><body><div id="explorer"></div>
<script type="application/json" id="explorer-state">%(state)s</script>
<script type="application/json" id="explorer-esm">%(esm)s</script>
<script type="module">
function dec(v) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if ("$bytes" in v) {
      const s = atob(v["$bytes"]), b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) { b[i] = s.charCodeAt(i); }
      return new DataView(b.buffer);
    }
    const o = {}; for (const k in v) { o[k] = dec(v[k]); } return o;
  }
  return Array.isArray(v) ? v.map(dec) : v;
}
const state = dec(JSON.parse(document.getElementById("explorer-state").textContent));
const handlers = {};
const model = {  // what the widget needs of an anywidget model, without a kernel
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
  off: (e, f) => { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
  save_changes: () => {}, send: () => {},
};
const esm = JSON.parse(document.getElementById("explorer-esm").textContent);
const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
const mod = await import(url);
await mod.default.render({model, el: document.getElementById("explorer")});
window.inspectKitExplorer = model;
</script></body></html>
"""


def _script_json(obj: Any) -> str:
    # JSON inside <script>: "</" must not close the element
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def standalone_html(widget: Any, title: str = "inspect_kit explorer") -> str:
    """A self-contained page running the widget's own JavaScript with its current state."""
    return _PAGE % {
        "title": title,
        "css": widget_css(),
        "plotly": plotly_js().decode("utf-8"),
        "state": _script_json(_state(widget)),
        "esm": _script_json(widget_esm()),
    }


def show_figure(fig: go.Figure) -> Any:
    """A figure as a light notebook widget (:class:`FigureView`), hover thumbnails included.

    Examples
    --------
    >>> show_figure(go.Figure(plot_embedding(emb)))     # after a round trip  # doctest: +SKIP
    """
    require_anywidget()
    register_renderer()
    return FigureView(fig)


def register_renderer() -> None:
    """Register the Plotly renderer ``"inspect_kit"`` (idempotent; the default is left alone).

    It shows any figure as a light :class:`FigureView`, so a figure that lost its class in a
    round trip still shows its hover thumbnails: ``fig.show(renderer="inspect_kit")`` or
    ``pio.renderers.default = "inspect_kit"``. Done when a figure with thumbnails is made or
    the explorer is used (not at import: Plotly's renderers import kaleido).
    """
    import plotly.io as pio

    if anywidget is None or "inspect_kit" in pio.renderers:
        return
    from plotly.io._base_renderers import MimetypeRenderer

    class WidgetRenderer(MimetypeRenderer):  # type: ignore[misc]  # plotly ships no types
        def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, Any]:
            bundle = FigureView(go.Figure(fig_dict, skip_invalid=True))._repr_mimebundle_()
            assert bundle is not None  # a new widget has a model to show
            return bundle[0]

    pio.renderers["inspect_kit"] = WidgetRenderer()


__all__ = ["register_renderer", "require_anywidget", "show_figure", "standalone_html"]
