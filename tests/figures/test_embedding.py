"""plot_embedding / plot_embedding_grid on a trained digits CNN's held-out features."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.analysis.embedding import Embedding, embed
from inspect_kit.capture import capture
from inspect_kit.figures import theme
from inspect_kit.figures.embedding import plot_embedding, plot_embedding_grid
from inspect_kit.figures.html import META_KEY, ThumbnailFigure, save_html, to_html
from inspect_kit.imaging import decode_data_uri

LAYERS = ["relu1", "relu2", "flatten"]


@pytest.fixture(scope="module")
def store(digits, digits_cnn, tmp_path_factory):
    """Held-out digits through the trained CNN: real features, real mistakes, thumbnails."""
    path = tmp_path_factory.mktemp("fig_embedding") / "test.h5"
    site = np.where(np.arange(len(digits.y_test)) % 3 == 0, "hospital A", "hospital B")
    s = capture(
        digits_cnn,
        digits.X_test,
        LAYERS,
        path,
        labels=digits.y_test,
        metadata={"site": site},
        progress=False,
    )
    yield s
    s.close()


@pytest.fixture(scope="module")
def emb(store):
    return embed(store, "flatten", "pca", progress=False)


class _ScriptSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "link", "img", "iframe"):
            self.sources += [v for k, v in attrs if k in ("src", "href") and v]


def _script_sources(html: str) -> list[str]:
    parser = _ScriptSources()
    parser.feed(html)
    return parser.sources


def _points(fig: go.Figure) -> list[go.BaseTraceType]:
    return [t for t in fig.data if t.customdata is not None and len(t.customdata)]


def test_one_trace_per_class_with_the_right_points(emb):
    fig = plot_embedding(emb, label_names=[f"digit {d}" for d in range(10)])
    classes = [t for t in fig.data if t.legendgroup and t.legendgroup.startswith("cat-")]
    assert [t.name for t in classes] == [f"digit {d}" for d in range(10)]
    for d, tr in enumerate(classes):
        idx = np.asarray(tr.customdata)[:, 0]
        np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(emb.labels == d))
        np.testing.assert_allclose(tr.x, emb.coords[idx, 0])
        np.testing.assert_allclose(tr.y, emb.coords[idx, 1])
    colors = [t.marker.color for t in classes]
    assert len(set(colors)) == 10 and set(colors) <= set(theme.TOL_MUTED)
    assert isinstance(classes[0], go.Scatter)  # 450 points: SVG


def test_misclassified_samples_are_marked(emb):
    wrong = np.flatnonzero(emb.labels != emb.predictions)
    assert 0 < len(wrong) < 45  # the classifier is ~97% right on held-out digits
    fig = plot_embedding(emb)
    ring = [t for t in fig.data if t.legendgroup == "misclassified"]
    assert len(ring) == 1 and ring[0].name == f"misclassified ({len(wrong)})"
    np.testing.assert_array_equal(np.sort(np.asarray(ring[0].customdata)[:, 0]), wrong)
    assert ring[0].marker.symbol == "circle-open"
    # hover text of a misclassified point says what it is and what was predicted
    i = wrong[0]
    text = [t for t in ring[0].text if t.startswith(f"sample {i}<br>")][0]
    assert f"label: {emb.labels[i]}" in text
    assert f"prediction: {emb.predictions[i]} \u2717" in text
    assert "site: hospital" in text
    # colouring by correctness replaces the ring
    by_correct = plot_embedding(emb, color="correct")
    names = [t.name for t in by_correct.data]
    assert names == ["correct", "misclassified"]
    assert by_correct.data[1].marker.color == theme.ERROR_COLOR


def test_metadata_and_continuous_colouring(emb):
    fig = plot_embedding(emb, color="site", hover=["site"], thumbnails=False)
    assert [t.name for t in fig.data[:2]] == ["hospital A", "hospital B"]
    assert not isinstance(fig, ThumbnailFigure) and fig.layout.meta is None
    values = emb.coords[:, 0] ** 2
    fig = plot_embedding(emb, color=values, mark_errors=False)
    (tr,) = fig.data
    np.testing.assert_allclose(tr.marker.color, values, rtol=1e-6)
    assert tr.marker.cmin == pytest.approx(values.min()) and tr.marker.showscale


def test_unknown_colour_lists_what_exists(emb):
    with pytest.raises(KeyError, match="did you mean 'site'"):
        plot_embedding(emb, color="sites")
    with pytest.raises(ValueError, match="one value per point"):
        plot_embedding(emb, color=np.zeros(3))


def test_titles_carry_quality_and_explained_variance(emb):
    fig = plot_embedding(emb)
    assert fig.layout.title.text == "PCA of flatten"
    sub = fig.layout.title.subtitle.text
    assert f"trustworthiness {emb.metrics['trustworthiness']:.3f}" in sub
    assert f"features {emb.metrics['knn_accuracy_original']:.3f}" in sub
    r = emb.params["explained_variance_ratio"]
    assert fig.layout.xaxis.title.text == f"PC1 ({100 * r[0]:.1f}%)"


def test_thumbnail_tiles_are_each_samples_thumbnail(emb):
    fig = plot_embedding(emb)
    assert isinstance(fig, ThumbnailFigure)
    atlas = fig.layout.meta[META_KEY]
    h, w = atlas["tile"]
    per = atlas["columns"] * atlas["rows"]
    sheets = [decode_data_uri(s) for s in atlas["sheets"]]
    checked = 0
    for tr in _points(fig):
        for sample, tile in np.asarray(tr.customdata):
            r, c = divmod(tile % per, atlas["columns"])
            got = sheets[tile // per][r * h : (r + 1) * h, c * w : (c + 1) * w]
            np.testing.assert_array_equal(got, emb.thumbnails[sample])
            checked += 1
    assert checked >= len(emb)


def test_large_maps_use_webgl_and_3d_uses_scatter3d(emb):
    rng = np.random.default_rng(0)
    big = Embedding(
        coords=rng.normal(size=(6000, 2)), method="umap", labels=rng.integers(0, 3, 6000)
    )
    fig = plot_embedding(big)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert fig.layout.yaxis.scaleanchor == "x"  # neighbour maps keep equal scales
    three = embed(
        emb.thumbnails.reshape(len(emb), -1).astype(float),
        method="pca",
        n_components=3,
        labels=emb.labels,
        columns={"thumbnails": emb.thumbnails},
        progress=False,
    )
    fig3 = plot_embedding(three)
    assert all(isinstance(t, go.Scatter3d) for t in fig3.data)
    assert fig3.layout.scene.zaxis.title.text.startswith("PC3")


def test_grid_colours_classes_alike_and_shares_one_atlas(store):
    embs = {layer: embed(store, layer, "pca", progress=False) for layer in LAYERS}
    fig = plot_embedding_grid(embs, label_names=[str(d) for d in range(10)])
    by_panel: dict[str, dict[str, str]] = {}
    legend = []
    for tr in fig.data:
        if tr.legendgroup and tr.legendgroup.startswith("cat-"):
            by_panel.setdefault(tr.xaxis, {})[tr.name] = tr.marker.color
            if tr.showlegend:
                legend.append(tr.name)
    assert len(by_panel) == 3
    assert all(p == by_panel["x"] for p in by_panel.values())  # same class, same colour
    assert legend == [str(d) for d in range(10)]  # one legend entry per class
    atlas = fig.layout.meta[META_KEY]
    tiles = np.concatenate([np.asarray(t.customdata)[:, 1] for t in _points(fig)])
    assert tiles.max() + 1 == len(np.unique(embs["flatten"].thumbnails.reshape(450, -1), axis=0))
    assert len(atlas["sheets"]) == 1
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("relu1") and "NN accuracy" in titles[0]
    # the reason for small multiples: classes separate with depth
    acc = [embs[layer].metrics["knn_accuracy_original"] for layer in LAYERS]
    assert acc[0] < acc[1] < acc[2]


def test_background_reference_map(store, emb):
    half = np.arange(200)
    ref = embed(store, "flatten", "pca", samples=half, cache=False, progress=False)
    placed = ref.transform(store, samples=np.arange(200, 450))
    fig = plot_embedding(placed, background=ref)
    assert fig.data[0].name == "reference (200)" and fig.data[0].hoverinfo == "skip"
    assert "placed-sample" in fig.layout.title.subtitle.text


def test_html_is_self_contained_and_carries_the_hover_script(emb, tmp_path):
    fig = plot_embedding(emb)
    path = save_html(fig, tmp_path / "emb.html", title="digits")
    html = path.read_text()
    assert _script_sources(html) == []  # nothing to fetch: works offline
    assert "window.inspectKitThumbnails" in html and "<title>digits</title>" in html
    assert html.count("* plotly.js v") == 1  # plotly.js embedded, once
    plain = to_html(go.Figure(go.Scatter(x=[1], y=[1])), full_html=False, include_plotlyjs=False)
    assert "inspectKitThumbnails" not in plain
    bundle = fig._repr_mimebundle_()
    assert list(bundle) == ["text/html"] and "inspectKitThumbnails.install" in bundle["text/html"]
    fig.update_layout(width=500)  # stays a ThumbnailFigure
    assert isinstance(fig, ThumbnailFigure)
    assert "inspectKitThumbnails" in fig.to_html(include_plotlyjs=False)
