"""Static export (PNG at a dpi, SVG, PDF) through kaleido and one browser; the print template."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.figures import export, publication
from inspect_kit.figures.export import ExportError, FigureExporter, export_figure, find_browser
from inspect_kit.figures.publication import (
    column_width,
    is_grayscale_safe,
    publication_layout,
    relative_luminance,
)


def _png_info(data: bytes) -> dict:
    """Width, height and pHYs of a PNG, read from its chunks (independent of Pillow)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, info = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            info["width"], info["height"] = struct.unpack(">II", body[:8])
        elif kind == b"pHYs":
            px, py, unit = struct.unpack(">IIB", body)
            info["ppm"] = (px, py, unit)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return info


def _figure() -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[1, 3, 2, 4], mode="lines+markers"))
    fig.update_layout(title="export test")
    return fig


@pytest.fixture(scope="module")
def exporter():
    with FigureExporter() as ex:
        yield ex


@pytest.mark.browser
def test_png_has_asked_pixel_size_and_dpi(exporter, tmp_path):
    path = exporter.write(_figure(), tmp_path / "a.png", width=336, height=240)
    info = _png_info(path.read_bytes())
    # 3.5 in x 2.5 in at 300 dpi
    assert (info["width"], info["height"]) == (1050, 750)
    assert info["ppm"][2] == 1 and abs(info["ppm"][0] - 300 / 0.0254) < 2
    # dpi=96 renders at the CSS size itself
    small = _png_info(exporter.to_bytes(_figure(), "png", width=200, height=150, dpi=96))
    assert (small["width"], small["height"]) == (200, 150)


@pytest.mark.browser
def test_png_shows_the_figure(exporter, tmp_path):
    from PIL import Image

    fig = go.Figure(
        go.Heatmap(z=[[0, 1], [1, 0]], colorscale=[[0, "#000000"], [1, "#ff0000"]], showscale=False)
    )
    fig.update_layout(width=200, height=200, margin=dict(l=0, r=0, t=0, b=0))
    path = exporter.write(fig, tmp_path / "h.png", dpi=96)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    # top-left cell is z=1 (rows go up): red; bottom-left is z=0: black
    assert img[40, 40].tolist() == [255, 0, 0]
    assert img[160, 40].tolist() == [0, 0, 0]


@pytest.mark.browser
def test_svg_is_xml_of_asked_size(exporter, tmp_path):
    path = exporter.write(_figure(), tmp_path / "a.svg", width=691, height=400)
    root = ET.fromstring(path.read_bytes())
    assert root.tag.endswith("svg")
    assert float(root.get("width")) == 691 and float(root.get("height")) == 400
    assert "export test" in path.read_text()


@pytest.mark.browser
def test_pdf_has_asked_physical_size(exporter, tmp_path):
    path = exporter.write(_figure(), tmp_path / "a.pdf", width=336, height=240)
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert box is not None
    w, h = float(box.group(3)), float(box.group(4))
    # 336 x 240 CSS px = 3.5 x 2.5 in = 252 x 180 pt (kaleido adds under 1 pt)
    assert abs(w - 252) < 2 and abs(h - 180) < 2


@pytest.mark.browser
def test_one_browser_serves_many_figures(tmp_path):
    with FigureExporter() as ex:
        first = ex._kaleido
        for i in range(4):
            ex.write(_figure(), tmp_path / f"f{i}.svg")
        assert ex._kaleido is first
    assert not ex.is_open
    assert len(list(tmp_path.glob("f*.svg"))) == 4


@pytest.mark.browser
def test_export_figure_one_shot_uses_suffix(tmp_path):
    fig = publication_layout(_figure(), "single")
    path = export_figure(fig, tmp_path / "pub.png")
    info = _png_info(path.read_bytes())
    assert info["width"] == 1050  # 3.5 in at 300 dpi


def test_bad_format_and_missing_browser(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="format 'bmp' is not supported"):
        export._format_of(tmp_path / "x.bmp", None)
    with pytest.raises(ValueError, match="no suffix"):
        export._format_of(tmp_path / "x", None)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    with pytest.raises(ExportError, match="BROWSER_PATH"):
        find_browser()
    monkeypatch.delenv("BROWSER_PATH")
    assert find_browser()  # Debian's chromium in this environment


def test_publication_layout_sizes_in_inches_and_points():
    fig = publication_layout(_figure(), "double", height=3.0, font_size=8)
    assert fig.layout.width == 691 and fig.layout.height == 288  # 7.2 x 3.0 in at 96 px/in
    assert fig.layout.font.size == pytest.approx(8 * 96 / 72, abs=0.05)
    assert fig.layout.xaxis.tickfont.size == pytest.approx(7 * 96 / 72, abs=0.05)
    assert column_width("single") == 3.5
    with pytest.raises(ValueError, match="columns="):
        column_width("triple")
    # the original is untouched
    assert _figure().layout.width is None


def test_colour_scales_for_grayscale_print():
    # WCAG luminance: black 0, white 1, pure green 0.7152
    assert relative_luminance("#000000") == 0.0
    assert relative_luminance("#FFFFFF") == pytest.approx(1.0)
    assert relative_luminance("rgb(0, 255, 0)") == pytest.approx(0.7152)
    for scale in publication.GRAYSCALE_SAFE_SCALES:
        assert is_grayscale_safe(scale), scale
    assert is_grayscale_safe(publication.IMAGE_SCALE)
    assert not is_grayscale_safe("Jet")
    assert not is_grayscale_safe("RdBu")


def test_column_width_accepts_sizes_in_mm_cm_and_inches() -> None:
    assert column_width("85mm") == pytest.approx(85 / 25.4)
    assert column_width("8.5 cm") == pytest.approx(8.5 / 2.54)
    assert column_width("3.3in") == pytest.approx(3.3)
    assert column_width("DOUBLE") == 7.2
    with pytest.raises(ValueError, match="85mm"):
        column_width("85px")
    with pytest.raises(ValueError, match="implausible"):
        column_width("2mm")
