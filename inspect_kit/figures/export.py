"""Static export of figures to PNG (300 dpi), SVG and PDF through kaleido and one browser.

kaleido (>= 1) renders Plotly figures in a headless Chromium. Starting a browser takes
seconds, so :class:`FigureExporter` keeps one open for as many figures as you write::

    with FigureExporter() as ex:
        for name, fig in figures.items():
            ex.write(fig, f"figures/{name}.png")
            ex.write(fig, f"figures/{name}.svg")

Sizes are Plotly's CSS pixels (96 per inch; see :func:`publication_layout` to size a figure
for a journal column). PNG is rendered at ``dpi / 96`` times that size and tagged with its
dpi, so a 3.5 in figure becomes 1050 pixels at 300 dpi; SVG and PDF keep the physical size.

The browser is found through ``BROWSER_PATH``, then Debian/Ubuntu's ``/usr/bin/chromium``,
then Chrome on the ``PATH`` (``make browser`` installs Debian's chromium where missing).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from .publication import CSS_PX_PER_INCH, DEFAULT_DPI

logger = logging.getLogger(__name__)

FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp")
_BROWSER_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ExportError(RuntimeError):
    """A figure could not be rendered to a static file."""


def find_browser() -> str:
    """Path of the Chromium/Chrome that kaleido should drive.

    ``BROWSER_PATH`` first (kaleido's own variable), then Debian's ``/usr/bin/chromium``, then
    a Chrome or Chromium on the ``PATH``.

    Raises
    ------
    ExportError
        When none is found, naming how to install one.

    Examples
    --------
    >>> find_browser()                  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    env = os.environ.get("BROWSER_PATH")
    if env:
        if Path(env).is_file():
            return env
        raise ExportError(f"BROWSER_PATH={env!r} is not a file; point it at a Chromium or Chrome")
    for cand in _BROWSER_CANDIDATES:
        if Path(cand).is_file():
            return cand
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ExportError(
        "static export needs Chromium or Chrome and none was found; install Debian's chromium "
        "(`make browser`, or `apt-get install chromium`), or set BROWSER_PATH"
    )


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = path.suffix.lstrip(".").lower()
        if not fmt:
            raise ValueError(f"{path} has no suffix; give format= ({', '.join(FORMATS)})")
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    return "jpeg" if fmt == "jpg" else fmt


def _tag_dpi(png: bytes, dpi: float) -> bytes:
    """Write the dpi into a PNG's pHYs chunk, so that word processors place it at size."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        buf = io.BytesIO()
        im.save(buf, format="PNG", dpi=(dpi, dpi), optimize=False)
    return buf.getvalue()


class FigureExporter:
    """A headless browser, opened once, that renders many figures to PNG/SVG/PDF.

    Parameters
    ----------
    browser_path : str, optional
        Chromium or Chrome executable (default: :func:`find_browser`).
    dpi : float
        Resolution of raster formats (PNG, JPEG, WebP).
    timeout : float
        Seconds allowed for one figure (and for the browser to start).

    Examples
    --------
    >>> with FigureExporter() as ex:                           # doctest: +SKIP
    ...     ex.write(fig, "embedding.png")                     # 300 dpi
    ...     ex.write(fig, "embedding.svg")
    """

    def __init__(
        self, browser_path: str | None = None, *, dpi: float = DEFAULT_DPI, timeout: float = 120.0
    ):
        self.browser_path = browser_path
        self.dpi = dpi
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido: Any = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._kaleido is not None

    def open(self) -> FigureExporter:
        """Start the browser (done by the first export when not called)."""
        if self.is_open:
            return self
        try:
            import kaleido
        except ImportError as err:  # pragma: no cover - kaleido is a core dependency
            raise ImportError("static export needs kaleido>=1: pip install 'kaleido>=1'") from err
        path = self.browser_path or find_browser()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="inspect-kit-export", daemon=True)
        thread.start()

        async def start() -> Any:
            k = kaleido.Kaleido(path=path, mathjax=False, timeout=self.timeout)
            await k.open()
            return k

        try:
            self._kaleido = asyncio.run_coroutine_threadsafe(start(), loop).result(self.timeout)
        except BaseException as err:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            if isinstance(err, Exception):
                raise ExportError(
                    f"could not start the browser at {path} for export: {err}"
                ) from err
            raise
        self._loop, self._thread = loop, thread
        logger.info("export browser started (%s)", path)
        return self

    def close(self) -> None:
        """Close the browser."""
        if self._loop is None:
            return
        loop, k = self._loop, self._kaleido
        try:
            if k is not None:
                asyncio.run_coroutine_threadsafe(k.close(), loop).result(30)
        except Exception as err:  # the browser may be gone already
            logger.warning("closing the export browser: %s", err)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            loop.close()
            self._loop = self._thread = self._kaleido = None

    def __enter__(self) -> FigureExporter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten exporter must not leave a browser behind
        try:
            self.close()
        except Exception:
            pass

    # -- rendering -----------------------------------------------------------------------------
    def to_bytes(
        self,
        fig: go.Figure | Mapping[str, Any],
        format: str = "png",
        *,
        width: int | None = None,
        height: int | None = None,
        dpi: float | None = None,
    ) -> bytes:
        """Render ``fig`` and return the file's bytes.

        ``width``/``height`` in CSS pixels override the figure's layout (default: the layout's,
        else 700 x 500). Raster formats are scaled to ``dpi``; SVG and PDF are vector.
        """
        fmt = _format_of(Path(f"x.{format}"), format)
        dpi = float(dpi or self.dpi)
        raster = fmt in ("png", "jpeg", "webp")
        opts: dict[str, Any] = {"format": fmt, "scale": dpi / CSS_PX_PER_INCH if raster else 1}
        layout = fig.layout if isinstance(fig, go.Figure) else go.Layout(fig.get("layout", {}))
        opts["width"] = int(width or layout.width or 700)
        opts["height"] = int(height or layout.height or 500)
        if not self.is_open:
            self.open()
        loop = self._loop
        if loop is None:
            raise RuntimeError("the exporter's browser did not start")
        with self._lock:
            future = asyncio.run_coroutine_threadsafe(self._kaleido.calc_fig(fig, opts=opts), loop)
            try:
                data: bytes = future.result(self.timeout + 10)
            except Exception as err:
                raise ExportError(f"could not render the figure as {fmt}: {err}") from err
        if fmt == "png":
            data = _tag_dpi(data, dpi)
        return data

    def write(
        self,
        fig: go.Figure | Mapping[str, Any],
        path: str | Path,
        *,
        format: str | None = None,
        width: int | None = None,
        height: int | None = None,
        dpi: float | None = None,
    ) -> Path:
        """Render ``fig`` to ``path``; the format comes from the suffix unless given.

        Examples
        --------
        >>> ex.write(fig, "fig1.pdf", width=691, height=288)     # doctest: +SKIP
        """
        path = Path(path)
        fmt = _format_of(path, format)
        data = self.to_bytes(fig, fmt, width=width, height=height, dpi=dpi)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        logger.info("wrote %s", path)
        return path

    def write_all(
        self,
        fig: go.Figure,
        stem: str | Path,
        formats: Iterable[str] = ("png", "svg"),
        **kwargs: Any,
    ) -> list[Path]:
        """Write ``fig`` once per format: ``stem.png``, ``stem.svg``, ..."""
        stem = Path(stem)
        return [self.write(fig, stem.with_name(f"{stem.name}.{f}"), **kwargs) for f in formats]


def export_figure(
    fig: go.Figure,
    path: str | Path,
    *,
    format: str | None = None,
    width: int | None = None,
    height: int | None = None,
    dpi: float = DEFAULT_DPI,
    exporter: FigureExporter | None = None,
) -> Path:
    """Write one figure as PNG/SVG/PDF (starting a browser unless ``exporter`` is given).

    Parameters
    ----------
    fig : go.Figure
    path : str or Path
        File to write; its suffix gives the format unless ``format`` is given.
    format : {'png', 'svg', 'pdf', 'jpg', 'webp'}, optional
    width, height : int, optional
        CSS pixels (96 per inch), overriding the figure's layout.
    dpi : float
        Resolution of raster formats.
    exporter : FigureExporter, optional
        An open exporter to reuse (faster for many figures).

    Returns
    -------
    Path

    Examples
    --------
    >>> export_figure(publication_layout(fig, "single"), "fig3.png")   # doctest: +SKIP
    PosixPath('fig3.png')
    """
    if exporter is not None:
        return exporter.write(fig, path, format=format, width=width, height=height, dpi=dpi)
    with FigureExporter(dpi=dpi) as ex:
        return ex.write(fig, path, format=format, width=width, height=height)
