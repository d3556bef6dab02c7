"""Saved embedding HTML in a real headless chromium: renders offline, hover shows thumbnails.

The mouse is moved with WebDriver's pointer actions (real input events, so Plotly's own
hover code runs); the thumbnail the page then shows is decoded and compared to the sample's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from inspect_kit.analysis.embedding import Embedding, embed
from inspect_kit.capture import capture
from inspect_kit.data import load_digits_images
from inspect_kit.figures.embedding import plot_embedding, plot_embedding_grid
from inspect_kit.figures.html import save_html, to_html
from inspect_kit.imaging import decode_data_uri

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def store(digits, digits_cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "test.h5"
    s = capture(
        digits_cnn, digits.X_test, ["relu2", "flatten"], path, labels=digits.y_test, progress=False
    )
    yield s
    s.close()


# -- helpers ------------------------------------------------------------------------------------
def _open(drv, path: Path, n_figures: int = 1, timeout: float = 120.0) -> float:
    """Load a page and wait until its figures are drawn and hover handlers installed."""
    drv.get_log("browser")  # drop earlier messages
    t0 = time.perf_counter()
    drv.get(path.resolve().as_uri())
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        ready = drv.execute_script(
            "var g = document.querySelectorAll('.plotly-graph-div');"
            "return g.length === arguments[0] && Array.prototype.every.call(g, function (d) {"
            " return d._fullLayout && d.__inspectKitThumbs; });",
            n_figures,
        )
        if ready:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{path.name}: figures not ready after {timeout} s")
    drv.execute_script(
        "window.__hovered = [];"
        "document.querySelectorAll('.plotly-graph-div').forEach(function (gd, k) {"
        " gd.on('plotly_hover', function (e) { var p = e.points[0];"
        "  window.__hovered.push([k, p.curveNumber, p.pointNumber, Array.from(p.customdata)]); });"
        "});"
    )
    return time.perf_counter() - t0


def _errors(drv) -> list[dict]:
    return [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def _network_requests(drv) -> list[str]:
    return drv.execute_script(
        "return performance.getEntriesByType('resource').map(function (r) { return r.name; })"
        ".filter(function (n) { return !n.startsWith('data:'); });"
    )


def _move(drv, x: float, y: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(drv)
    chain.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    chain.perform()


def _point_xy(drv, fig: int, curve: int, point: int) -> tuple[float, float]:
    return drv.execute_script(
        """
        var gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];
        var tr = gd._fullData[arguments[1]], fl = gd._fullLayout, r = gd.getBoundingClientRect();
        var xa = fl['xaxis' + tr.xaxis.slice(1)], ya = fl['yaxis' + tr.yaxis.slice(1)];
        return [r.left + xa._offset + xa.l2p(tr.x[arguments[2]]),
                r.top + ya._offset + ya.l2p(tr.y[arguments[2]])];""",
        fig,
        curve,
        point,
    )


def _hover(drv, fig: int, x: float, y: float, timeout: float = 20.0):
    """Move the mouse to (x, y); return (hovered sample, shown thumbnail pixels)."""
    _move(drv, 2, 2)
    drv.execute_script("window.__hovered = [];")
    _move(drv, x, y)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        state = drv.execute_script(
            """
            var gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];
            var box = document.getElementById(gd.id + '-thumb'), img = box.querySelector('img');
            return [box.style.display, img.getAttribute('data-tile'), img.src, window.__hovered];
            """,
            fig,
        )
        display, tile, src, hovered = state
        mine = [h for h in hovered if h[0] == fig]
        if display == "block" and mine and tile is not None and int(tile) == mine[-1][3][1]:
            return int(mine[-1][3][0]), decode_data_uri(src)
        time.sleep(0.05)
    raise AssertionError(
        f"no thumbnail after hovering figure {fig} at ({x:.0f}, {y:.0f}): "
        f"{state[:2]}, hovered={state[3]}"
    )


def _rgba(thumb: np.ndarray) -> np.ndarray:
    """A uint8 grey or RGB thumbnail as the canvas renders it: opaque RGBA."""
    rgb = np.repeat(thumb[..., None], 3, axis=-1) if thumb.ndim == 2 else thumb
    return np.concatenate([rgb, np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1)


def _box_display(drv, fig: int) -> str:
    return drv.execute_script(
        "var gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];"
        "return document.getElementById(gd.id + '-thumb').style.display;",
        fig,
    )


# -- tests --------------------------------------------------------------------------------------
def test_saved_html_renders_offline_and_hover_shows_the_samples_thumbnail(browser, store, tmp_path):
    emb = embed(store, "flatten", "pca", progress=False)
    path = save_html(plot_embedding(emb), tmp_path / "pca.html")
    _open(browser, path)
    assert _errors(browser) == []
    assert _network_requests(browser) == []
    for curve, point in [(0, 3), (4, 10), (9, 0)]:
        x, y = _point_xy(browser, 0, curve, point)
        sample, pixels = _hover(browser, 0, x, y)
        np.testing.assert_array_equal(pixels, _rgba(emb.thumbnails[sample]))
    _move(browser, 2, 2)
    deadline = time.perf_counter() + 5
    while _box_display(browser, 0) != "none" and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert _box_display(browser, 0) == "none"  # unhover hides it
    assert _errors(browser) == []


def test_several_figures_on_one_page_share_plotlyjs(browser, store, tmp_path):
    """As the report (and Jupyter) will do: plotly.js once, each figure its own thumbnails."""
    single = plot_embedding(embed(store, "flatten", "pca", progress=False))
    grid = plot_embedding_grid(
        [embed(store, layer, "pca", progress=False) for layer in ("relu2", "flatten")]
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        + single._repr_html_()  # what Jupyter displays: plotly.js embedded
        + to_html(grid, include_plotlyjs=False, full_html=False)
        + "</body></html>"
    )
    assert page.count("* plotly.js v") == 1
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    _open(browser, path, n_figures=2)
    assert _errors(browser) == []
    browser.execute_script("document.querySelectorAll('.plotly-graph-div')[1].scrollIntoView();")
    # a point of the grid's second panel
    curve = next(i for i, t in enumerate(grid.data) if t.xaxis == "x2")
    x, y = _point_xy(browser, 1, curve, 5)
    sample, pixels = _hover(browser, 1, x, y)
    expected = store.thumbnails[sample]
    np.testing.assert_array_equal(pixels, _rgba(expected))
    assert _box_display(browser, 0) == "none"
    assert _errors(browser) == []


def test_3d_scatter_hover_shows_thumbnail(browser, tmp_path):
    X, y = load_digits_images(size=16)
    # cube corners, less the two on the default camera's line of sight, and the centre:
    # point 6 projects to the middle of the scene
    corners = [[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1) if abs(i + j + k) < 3]
    coords = np.vstack([np.array(corners, float), [[0.0, 0.0, 0.0]]])
    thumbs = np.round(X[:7, 0] * 255).astype(np.uint8)
    emb = Embedding(coords=coords, method="umap", labels=y[:7], thumbnails=thumbs)
    fig = plot_embedding(emb, color=None, marker_size=14)
    path = save_html(fig, tmp_path / "three.html")
    _open(browser, path)
    x, y_px = browser.execute_script("""
        var gd = document.querySelector('.plotly-graph-div'), fl = gd._fullLayout;
        var s = fl._size, d = fl.scene.domain, r = gd.getBoundingClientRect();
        return [r.left + s.l + s.w * (d.x[0] + d.x[1]) / 2,
                r.top + s.t + s.h * (1 - (d.y[0] + d.y[1]) / 2)];""")
    sample, pixels = _hover(browser, 0, x, y_px)
    assert sample == 6
    np.testing.assert_array_equal(pixels, _rgba(thumbs[6]))
    assert _errors(browser) == []


@pytest.mark.slow
def test_50k_points_open_and_hover(browser, tmp_path):
    """50,000 distinct digit thumbnails (shifted, with noise) on a WebGL scatter."""
    X, y = load_digits_images(size=16)
    rng = np.random.default_rng(0)
    n = 50_000
    pick = rng.integers(0, len(y), n)
    imgs = X[pick, 0].copy()
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy, dx in {tuple(s) for s in shifts.tolist()}:
        sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        imgs[sel] = np.roll(imgs[sel], (dy, dx), axis=(1, 2))
    imgs = np.clip(imgs + rng.normal(0, 0.02, imgs.shape), 0, 1)
    thumbs = np.round(imgs * 255).astype(np.uint8)
    emb = embed(
        imgs.reshape(n, -1),
        method="pca",
        labels=y[pick],
        columns={"thumbnails": thumbs},
        metric_samples=1000,
        progress=False,
    )
    fig = plot_embedding(emb, thumbnail_size=16)
    path = save_html(fig, tmp_path / "big.html")
    size_mb = path.stat().st_size / 2**20
    load_s = _open(browser, path, timeout=180)
    print(f"\n50k points: HTML {size_mb:.1f} MB, loaded in {load_s:.1f} s")
    assert size_mb < 40
    assert _errors(browser) == []
    x, y_px = _point_xy(browser, 0, 2, 100)
    sample, pixels = _hover(browser, 0, x, y_px, timeout=60)
    np.testing.assert_array_equal(pixels, _rgba(thumbs[sample]))


@pytest.mark.slow
def test_jupyter_display_is_a_light_widget(store):
    """In a real kernel, `fig` and `fig.show()` display as widgets, never plotly.js per output.

    (The widget's hover thumbnails are driven in a real JupyterLab by
    tests/figures/test_explorer.py; the saved HTML's hover by the tests above.)
    """
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from inspect_kit.analysis.embedding import embed\n"
            "from inspect_kit.figures.embedding import plot_embedding\n"
            f"emb = embed({str(store.path)!r}, 'flatten', 'pca', cache=False, progress=False)\n"
            "fig = plot_embedding(emb)\n"
            "fig"
        ),
        nbformat.v4.new_code_cell("fig.show()"),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True).execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert [o.output_type for o in outputs if o.output_type == "error"] == []
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) == 2
    for o in outputs:
        html = o.get("data", {}).get("text/html", "")
        assert "plotly.js v" not in html and len(html) < 50_000
    assert len(nbformat.writes(nb).encode()) < 1_000_000
