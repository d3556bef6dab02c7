"""The HTML report: document structure, unit selection, and the page in a real browser."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.report import Report
from inspect_kit.report.selection import class_selectivity, select_units


# -- the document ----------------------------------------------------------------------------------
def test_report_embeds_plotlyjs_once_and_escapes_text(tmp_path):
    from plotly.offline import get_plotlyjs

    r = Report("A <b>title</b>", subtitle="sub")
    sec = r.section("First", intro="x < y & z")
    sec.add_figure(go.Figure(go.Scatter(y=[1, 2])), name="one", caption="cap")
    sec.add_figures({"two": go.Figure(go.Bar(y=[3])), "three": go.Figure(go.Bar(y=[4]))})
    sec.add_table(["a", "b"], [[1, 0.123456], ["<i>", float("nan")]])
    sec.add_image(np.zeros((4, 4), np.uint8), caption="img")
    r.section("First")  # a repeated title gets its own anchor
    html = r.save(tmp_path / "r.html").read_text()
    assert html.count(get_plotlyjs()[:300]) == 1
    assert html.count("Plotly.newPlot") == 3
    assert "A &lt;b&gt;title&lt;/b&gt;" in html and "x &lt; y &amp; z" in html
    assert "&lt;i&gt;" in html and "0.123" in html and "–" in html
    assert 'id="first"' in html and 'id="first-2"' in html
    assert "data:image/png;base64," in html
    assert set(r.figures) == {"one", "two", "three"}


def test_figure_divs_take_the_figure_size():
    r = Report("t")
    fig = go.Figure(go.Scatter(y=[1]))
    fig.update_layout(width=900, height=333)
    r.section("s").add_figure(fig)
    html = r.to_html()
    compact = html.replace(" ", "")
    assert 'style="height:333px;width:900px;' in compact
    r.section("t").add_figure(go.Figure(go.Bar(y=[1])), height=321)  # no height of its own
    assert 'style="height:321px;width:100%;' in r.to_html().replace(" ", "")


# -- choosing units ---------------------------------------------------------------------------------
def test_class_selectivity_matches_hand_computation():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 50)
    acts = np.zeros((150, 3))
    acts[labels == 1, 0] = 2.0  # unit 0 fires for class 1 only -> index 1
    acts[:, 1] = 1.0 + rng.normal(0, 1e-9, 150)  # same for every class -> ~0
    acts[:, 2] = np.where(labels == 0, 3.0, 1.0)  # means 3, 1, 1 -> (3-1)/(3+1) = 0.5
    si = class_selectivity(acts, labels)
    np.testing.assert_allclose(si, [1.0, 0.0, 0.5], atol=1e-6)
    units, scores = select_units(acts, labels, 2)
    assert units == [0, 2]
    # spatial maps are averaged first
    maps = np.repeat(acts[:, :, None, None], 4, axis=2).repeat(4, axis=3)
    np.testing.assert_allclose(class_selectivity(maps, labels), si, rtol=1e-12, atol=1e-12)


def test_select_units_skips_dead_units_and_works_without_labels():
    acts = np.zeros((20, 4))
    acts[:, 1] = np.arange(20)
    acts[:, 3] = np.arange(20) * 0.1
    units, scores = select_units(acts, None, 3)
    assert units == [1, 3] and scores is None
    with pytest.raises(ValueError, match="two classes"):
        class_selectivity(acts, np.zeros(20))


# -- in a real browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def thumbnail_report(tmp_path_factory) -> Path:
    """A report holding an embedding figure whose points carry input thumbnails."""
    from inspect_kit.analysis.embedding import Embedding
    from inspect_kit.figures.embedding import plot_embedding

    rng = np.random.default_rng(0)
    n = 60
    thumbs = (rng.random((n, 12, 12)) * 255).astype(np.uint8)
    emb = Embedding(
        coords=rng.normal(size=(n, 2)),
        method="pca",
        layer="fc",
        labels=np.arange(n) % 3,
        thumbnails=thumbs,
    )
    r = Report("browser test")
    r.section("Map").add_figure(plot_embedding(emb, label_names=["a", "b", "c"]), name="map")
    r.section("Bars").add_figure(go.Figure(go.Bar(y=[1, 2, 3])), name="bars")
    return r.save(tmp_path_factory.mktemp("report") / "report.html")


def wait_plots(driver, n_expected: int, timeout: float = 30) -> int:
    """Number of Plotly figures drawn (an SVG inside), waiting up to ``timeout`` for all."""
    end = time.time() + timeout
    n = 0
    while time.time() < end:
        n = driver.execute_script(
            "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(d => d.querySelector('.main-svg')).length"
        )
        if n >= n_expected:
            return n
        time.sleep(0.25)
    return n


def hover_first_thumbnail_figure(driver, timeout: float = 20.0) -> tuple[str, list]:
    """Move the mouse onto a point of the first figure with thumbnails; return the box state.

    Returns the thumbnail box's display, the start of its image source and its tile number,
    once the figure's hover handler has shown it (or whatever it shows after ``timeout``).
    """
    from selenium.webdriver.common.action_chains import ActionChains

    find = """
    const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(g => g.layout.meta && g.layout.meta.inspect_kit_thumbnails);
    if (!gd || !gd.__inspectKitThumbs || !gd._fullData) return null;
    gd.scrollIntoView();
    const c = gd._fullData.findIndex(t => t.customdata && t.visible !== false && t.x.length);
    const tr = gd._fullData[c], fl = gd._fullLayout, r = gd.getBoundingClientRect();
    const xa = fl['xaxis' + tr.xaxis.slice(1)], ya = fl['yaxis' + tr.yaxis.slice(1)];
    return [gd.id, r.left + xa._offset + xa.l2p(tr.x[0]), r.top + ya._offset + ya.l2p(tr.y[0])];
    """
    box = """
    const b = document.getElementById(arguments[0] + '-thumb');
    if (!b) return null;
    const img = b.querySelector('img');
    return [b.style.display, (img.getAttribute('src') || '').slice(0, 22),
            img.getAttribute('data-tile')];
    """
    deadline = time.time() + timeout
    target = None
    while target is None and time.time() < deadline:
        target = driver.execute_script(find)
        time.sleep(0.1)
    assert target is not None, "no figure with hover thumbnails got ready"
    gd_id, x, y = target
    state = None
    while time.time() < deadline:
        for dx in (0, 1):  # move off and back on, so the browser sends a fresh hover
            chain = ActionChains(driver)
            chain.w3c_actions.pointer_action.move_to_location(int(x) + dx, int(y))
            chain.perform()
        state = driver.execute_script(box, gd_id)
        if state and state[0] == "block" and state[2] is not None:
            return gd_id, state
        time.sleep(0.2)
    return gd_id, state


def severe(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
def test_report_renders_and_hover_shows_thumbnail(browser, thumbnail_report):
    browser.get(thumbnail_report.as_uri())
    assert wait_plots(browser, 2) == 2
    assert severe(browser) == []
    _, box = hover_first_thumbnail_figure(browser)
    assert box is not None and box[0] == "block"
    assert box[1] == "data:image/png;base64,"
    assert box[2] is not None
    assert severe(browser) == []


def test_randomization_verdict_uses_the_two_seed_reference():
    from inspect_kit.report.sections import randomization_verdict

    # falls far below what two seeds of the trained model give: depends on the weights
    text, warn = randomization_verdict(np.array([1.0, 0.5, 0.05]), np.array([0.6, 0.7]))
    assert not warn and "depend on the learned weights" in text
    # two seeds differ as much as trained vs random: a warning, whatever the drop from 1
    text, warn = randomization_verdict(np.array([1.0, 0.4, 0.09]), np.array([0.1, 0.19]))
    assert warn and "0.15" in text and "0.09" in text
    # without a reference, the drop from the trained images decides
    assert randomization_verdict(np.array([1.0, 0.95]), None)[1]
    assert not randomization_verdict(np.array([1.0, 0.3]), None)[1]


def test_featurevis_layer_is_the_deepest_spatial_one():
    from inspect_kit.report.selection import featurevis_layer, spatial_layers

    class View:
        def __init__(self, shape):
            self.attrs = {"source_shape": list(shape)}
            self.shape = (10, *shape)

    class FakeStore:
        layers = ["conv1", "relu1", "layer4", "avgpool", "fc"]
        shapes = {
            "conv1": (8, 16, 16),
            "relu1": (8, 16, 16),
            "layer4": (32, 2, 2),
            "avgpool": (32, 1, 1),
            "fc": (3,),
        }

        def __getitem__(self, name):
            return View(self.shapes[name])

    assert spatial_layers(FakeStore()) == ["conv1", "relu1", "layer4"]  # 1x1 is no map
    assert featurevis_layer(FakeStore()) == "layer4"
