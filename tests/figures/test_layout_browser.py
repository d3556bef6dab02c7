"""Figure layout measured in headless chromium at 1,000, 1,400 and 1,920 px wide windows.

Each figure is saved as HTML (as the CLI and the report write it), opened at each window
width, and the bounding boxes of its rendered SVG text are read back: figure titles,
subtitles and panel titles must not overlap one another, and nothing (text, panels, 3D scenes)
may extend past the figure or the window. Layer names are real: MONAI DenseNet121's dotted
module names, the longest a user meets.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspect_kit.analysis.embedding import embed
from inspect_kit.analysis.featurevis.exemplars import Exemplars
from inspect_kit.analysis.featurevis.render import FeatureVisResult
from inspect_kit.analysis.featurevis.sanity import RandomizationResult
from inspect_kit.data import load_digits_images
from inspect_kit.data.mni import load_mni_patches
from inspect_kit.figures.embedding import plot_embedding_grid
from inspect_kit.figures.featurevis import plot_randomization, plot_unit_gallery
from inspect_kit.figures.html import save_html
from tests._browser import chromium

pytestmark = pytest.mark.browser

WIDTHS = (1000, 1400, 1920)

# -- real long names: MONAI DenseNet121 (3D, 1 channel) -----------------------------------------


@pytest.fixture(scope="module")
def densenet_names() -> list[str]:
    nets = pytest.importorskip("monai.networks.nets")
    from inspect_kit.hooks import list_layers

    net = nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)
    names = list_layers(net, types=["Conv3d"])
    assert "features.denseblock1.denselayer1.layers.conv1" in names
    return names


# -- measuring ----------------------------------------------------------------------------------
_MEASURE_JS = """
var out = [];
var vw = document.documentElement.clientWidth;
document.querySelectorAll('.plotly-graph-div').forEach(function (gd, k) {
  var r = gd.getBoundingClientRect();
  var par = (gd.closest('.figure') || gd.parentElement).getBoundingClientRect();
  var texts = [];
  var sel = {'title': 'text.gtitle', 'subtitle': 'text.gtitle-subtitle',
             'panel': 'g.annotation text.annotation-text', 'legend': 'text.legendtext',
             'axis': '.g-xtitle text, .g-ytitle text'};
  Object.keys(sel).forEach(function (kind) {
    gd.querySelectorAll(sel[kind]).forEach(function (t) {
      var b = t.getBoundingClientRect();
      if (b.width > 0 && b.height > 0 && t.textContent.trim()) {
        texts.push([kind, t.textContent, b.left, b.top, b.right, b.bottom]);
      }
    });
  });
  var scenes = [];
  gd.querySelectorAll('.gl-container > div[id^="scene"]').forEach(function (s) {
    var b = s.getBoundingClientRect();
    scenes.push([b.left, b.top, b.right, b.bottom]);
  });
  var svg = gd.querySelector('svg.main-svg').getBoundingClientRect();
  out.push({fig: [r.left, r.top, r.right, r.bottom], parent: [par.left, par.right],
            svg: [svg.left, svg.top, svg.right, svg.bottom], viewport: vw,
            texts: texts, scenes: scenes});
});
return out;
"""


def _open(drv: Any, path: Path, n_figures: int, timeout: float = 120.0) -> None:
    drv.get(path.resolve().as_uri())
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        ready = drv.execute_script(
            "var g = document.querySelectorAll('.plotly-graph-div');"
            "return g.length === arguments[0] && Array.prototype.every.call(g, function (d) {"
            " return d._fullLayout && d.querySelector('svg.main-svg'); });",
            n_figures,
        )
        if ready:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path.name}: figures not drawn after {timeout} s")


def _settled(drv: Any, path: Path, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The page's measurements once two readings 0.3 s apart agree: responsive figures
    relayout after their first draw, later on a loaded machine."""
    deadline = time.perf_counter() + timeout
    page = drv.execute_script(_MEASURE_JS)
    while time.perf_counter() < deadline:
        time.sleep(0.3)
        again = drv.execute_script(_MEASURE_JS)
        if again == page:
            return page
        page = again
    raise AssertionError(f"{path.name}: the layout did not settle within {timeout} s")


def _overlap(a: list[float], b: list[float], tol: float = 1.0) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


def layout_problems(page: list[dict[str, Any]]) -> list[str]:
    """Overlapping titles and anything outside its figure or the window, in words."""
    problems = []
    for k, m in enumerate(page):
        fig, vw = m["fig"], m["viewport"]
        right_edge = min(vw, m["parent"][1])
        if m["fig"][2] > right_edge + 1 or m["svg"][2] > right_edge + 1:
            problems.append(
                f"figure {k} is clipped: its right edge {max(fig[2], m['svg'][2]):.0f} px is "
                f"past the window/container ({right_edge:.0f} px)"
            )
        for kind, text, *box in m["texts"]:
            if box[0] < fig[0] - 1 or box[2] > min(fig[2], vw) + 1 or box[1] < fig[1] - 1:
                problems.append(f"figure {k}: {kind} {text[:60]!r} extends past the figure")
        for box in m["scenes"]:
            if box[0] < fig[0] - 1 or box[2] > min(fig[2], vw) + 1 or box[3] > fig[3] + 1:
                problems.append(f"figure {k}: a 3D scene extends past the figure {box} {fig}")
        titles = [t for t in m["texts"] if t[0] in ("title", "subtitle", "panel")]
        for i, a in enumerate(titles):
            for b in titles[i + 1 :]:
                if _overlap(a[2:], b[2:]):
                    problems.append(
                        f"figure {k}: {a[0]} {a[1][:50]!r} overlaps {b[0]} {b[1][:50]!r}"
                    )
    return problems


@pytest.fixture(scope="module")
def measure():
    """``measure(path, n_figures=1)``: the page's layout problems at each window width."""
    with chromium(window=(WIDTHS[0], 1000)) as drv:

        def run(path: Path, n_figures: int = 1) -> dict[int, list[str]]:
            found = {}
            for width in WIDTHS:
                drv.set_window_size(width, 1000)
                _open(drv, path, n_figures)
                page = _settled(drv, path)
                assert abs(page[0]["viewport"] - width) < 40  # the window is as wide as asked
                found[width] = layout_problems(page)
            return found

        yield run


# -- figures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_rows():
    X, y = load_digits_images(size=16)
    return X[:300].reshape(300, -1), y[:300], np.round(X[:300, 0] * 255).astype(np.uint8)


def test_measure_finds_overlaps_and_clipping(measure, tmp_path):
    """The measurement itself: a figure made to overlap and to be too wide is caught."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    fig.update_layout(title="A title", width=2400, margin=dict(t=20))
    for text in ("A panel title", "Another panel title"):  # one drawn over the other
        fig.add_annotation(text=text, x=0.5, y=1, xref="paper", yref="paper", showarrow=False)
    page = measure(save_html(fig, tmp_path / "bad.html"))
    assert any("clipped" in p for p in page[1400])
    assert any("overlaps" in p for p in page[1920])


def test_grid_titles_do_not_overlap_at_any_width(measure, digit_rows, densenet_names, tmp_path):
    X, y, thumbs = digit_rows
    rng = np.random.default_rng(0)
    # four deep layers' names as panel titles (as the CLI and the report pass them)
    by_layer = {
        name: embed(
            X + rng.normal(0, 0.05 * (i + 1), X.shape),
            "pca",
            labels=y,
            # an ImageNet model's predictions on these labels: the panels' subtitles then
            # carry the longest quality line ("labels are not the model's classes ...")
            columns={"predictions": rng.integers(0, 1000, len(y)), "thumbnails": thumbs},
            progress=False,
        )
        for i, name in enumerate(densenet_names[1:6])
    }
    fig = plot_embedding_grid(by_layer, title="UMAP of each layer")
    problems = measure(save_html(fig, tmp_path / "grid.html"))
    assert problems == {w: [] for w in WIDTHS}


def _mni_volumes(n: int) -> tuple[np.ndarray, np.ndarray]:
    X, y, _ = load_mni_patches(dim=3, patch=16, n_per_class=n)
    return X, y


def test_3d_gallery_with_long_layer_names_fits_and_does_not_overlap(
    measure, densenet_names, tmp_path
):
    X, y = _mni_volumes(8)
    units = [3, 7, 11, 12]
    layer = "features.denseblock1.denselayer1.layers.conv1"
    result = FeatureVisResult(
        images=X[:4],
        inputs=X[:4],
        trajectory=np.cumsum(np.random.default_rng(0).random((32, 4)), axis=0),
        final_activations=np.arange(4, dtype=float),
        labels=[f"{layer}#{u}" for u in units],
        units=units,
        layer=layer,
        objective=f"channel({layer}, ...)",
        value_range=(float(X.min()), float(X.max())),
        random_state=0,
    )
    mid = X[:, 0, X.shape[2] // 2]
    thumbs = np.round(255 * (mid - mid.min()) / np.ptp(mid)).astype(np.uint8)
    idx = np.arange(20).reshape(4, 5)
    exemplars = Exemplars(
        layer=layer,
        units=np.array(units),
        rows=idx,
        index=idx,
        activations=np.linspace(5, 1, 20).reshape(4, 5),
        thumbnails=thumbs[idx],
        labels=y[idx],
        reduce="max",
    )
    fig = plot_unit_gallery(
        result,
        exemplars,
        label_names=["csf", "grey matter", "white matter"],
        title=f"Units of {layer}",
    )
    problems = measure(save_html(fig, tmp_path / "gallery3d.html"))
    assert problems == {w: [] for w in WIDTHS}


def test_randomization_cascade_with_long_layer_names(measure, densenet_names, tmp_path):
    X, _ = _mni_volumes(4)
    stages = ["trained", "class_layers.out", *reversed(densenet_names[-4:])]
    n_s = len(stages)
    images = np.stack([X[:3] * (1 - s / n_s) for s in range(n_s)])
    result = RandomizationResult(
        stages=stages,
        scores=np.linspace(1, 0.1, n_s)[:, None] * np.ones((1, 3)),
        reference=np.full(3, 0.8),
        images=images,
        final_activations=np.ones((n_s, 3)),
        labels=[f"{densenet_names[-1]}#{u}" for u in range(3)],
        metric="ssim",
        objective=f"channel({densenet_names[-1]}, ...)",
        value_range=None,
        random_state=0,
    )
    problems = measure(save_html(plot_randomization(result), tmp_path / "cascade.html"))
    assert problems == {w: [] for w in WIDTHS}


def test_report_figures_fit_and_do_not_overlap(measure, digits, digits_cnn, tmp_path):
    """The profile report (as the demo writes it): every figure at every window width."""
    import inspect_kit
    from inspect_kit.workflows import (
        EmbeddingOptions,
        FeatureVisOptions,
        ReportOptions,
        RunOptions,
        build_report,
    )

    X, y = digits.X_test[:240], digits.y_test[:240]
    store = tmp_path / "acts.h5"
    inspect_kit.capture(
        digits_cnn, X, ["relu2", "relu3", "fc"], store, labels=y, progress=False
    ).close()
    res = build_report(
        store,
        tmp_path / "report.html",
        model=digits_cnn,
        inputs=X,
        class_names=[str(i) for i in range(10)],
        options=ReportOptions(
            embedding=EmbeddingOptions(methods=("pca",)),
            featurevis=FeatureVisOptions(
                n_units=3, steps=16, sanity=True, sanity_units=2, sanity_steps=8, sanity_stages=2
            ),
            latent=None,
            formats=(),
            run=RunOptions(threads=None, progress=False),
        ),
    )
    n_figures = res.report.read_text().count('class="plotly-graph-div"')
    assert n_figures >= 6
    problems = measure(res.report, n_figures)
    assert problems == {w: [] for w in WIDTHS}


def test_3d_embedding_grid_scenes_fit(measure, digit_rows, densenet_names, tmp_path):
    X, y, thumbs = digit_rows
    by_layer = {
        name: embed(
            X[:, i * 8 :],
            method="pca",
            n_components=3,
            labels=y,
            columns={"thumbnails": thumbs},
            progress=False,
        )
        for i, name in enumerate(densenet_names[-4:])
    }
    fig = plot_embedding_grid(by_layer, title="PCA of each layer")
    problems = measure(save_html(fig, tmp_path / "grid3d.html"))
    assert problems == {w: [] for w in WIDTHS}


def test_kernels_of_a_wide_first_layer_fit(measure, tmp_path):
    """resnet18's conv1: 64 kernels x 3 channels, drawn 8 per row, within the window."""
    from inspect_kit.analysis.weights import conv_kernels
    from inspect_kit.figures.featurevis import plot_kernels
    from inspect_kit.models.registry import load_model

    net = load_model("torchvision.models:resnet18")
    fig = plot_kernels(conv_kernels(net, "conv1"))
    problems = measure(save_html(fig, tmp_path / "kernels.html"))
    assert problems == {w: [] for w in WIDTHS}


def test_report_embedding_section_with_labels_that_are_not_classes(measure, digit_rows, tmp_path):
    """What a resnet18 report on 4 folder classes shows: short layer names, and panel titles
    as tall as they get (the maps say the labels are not the model's classes)."""
    from inspect_kit.report import Report, sections

    X, y, thumbs = digit_rows
    y4 = y % 4
    rng = np.random.default_rng(1)
    imagenet_predictions = rng.integers(0, 1000, len(y4))
    by_layer = {
        name: embed(
            X[:, i * 4 :],
            "pca",
            labels=y4,
            columns={"predictions": imagenet_predictions, "thumbnails": thumbs},
            progress=False,
        )
        for i, name in enumerate(["layer1.0.relu", "layer2.1.relu:1", "layer4.1.relu:1", "fc"])
    }
    assert all(not e.labels_are_classes for e in by_layer.values())
    report = Report("resnet18 on four folder classes")
    sections.embedding_section(report, {"pca": by_layer}, class_names=["a", "b", "c", "d"])
    problems = measure(report.save(tmp_path / "report.html"))
    assert problems == {w: [] for w in WIDTHS}
