"""Latent and probe figures: what they draw must equal the arrays they were given."""

from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.analysis.latent import Interpolation, LatentProbe, Traversal
from inspect_kit.analysis.probes import ProbeProfile, linear_probe
from inspect_kit.figures.html import META_KEY, has_thumbnails
from inspect_kit.figures.latent import (
    plot_interpolation,
    plot_latent_correlations,
    plot_latent_scatter,
    plot_reconstruction_errors,
    plot_traversal,
)
from inspect_kit.figures.probes import plot_probe_profile
from inspect_kit.models import ConvAutoencoder
from tests._browser import chromium


@pytest.fixture(scope="module")
def probe(digits):
    """An (untrained, eval-mode) autoencoder's probe of 300 real digits: figures need no quality."""
    ae = ConvAutoencoder((1, 16, 16), latent_dim=4).eval()
    X = digits.X_test[:300]
    meta = {"ink": X.reshape(300, -1).sum(1).astype(float)}
    return LatentProbe(ae, progress=False, n_worst=5).fit(
        X, labels=digits.y_test[:300], metadata=meta
    )


def heatmaps(fig):
    return [t for t in fig.data if isinstance(t, go.Heatmap)]


def test_traversal_grid_rows_are_dims_columns_are_steps_volumes_as_middle_slices():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 3, 2, 5, 6, 7))  # 2 dims x 3 steps of 2-channel volumes
    t = Traversal(
        images,
        np.zeros((2, 3, 4)),
        np.arange(6.0).reshape(2, 3),
        [0, 3],
        "axis",
        np.zeros(4),
        (0.05, 0.95),
    )
    fig = plot_traversal(t, channel=1)
    hm = heatmaps(fig)
    assert len(hm) == 6
    lo = images[:, :, 1, 2].min()
    hi = images[:, :, 1, 2].max()
    for i in range(2):
        for j in range(3):
            trace = hm[i * 3 + j]
            np.testing.assert_array_equal(np.asarray(trace.z), images[i, j, 1, 2])  # D // 2 = 2
            assert (trace.zmin, trace.zmax) == (lo, hi)  # one window for the grid
            # placed in row i, column j
            assert trace.xaxis == ("x" if i * 3 + j == 0 else f"x{i * 3 + j + 1}")
    texts = [a.text for a in fig.layout.annotations]
    assert "z0" in texts and "z3" in texts
    assert "middle slices" in fig.layout.title.text
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"


def test_traversal_of_a_fitted_probe_and_principal_directions(probe):
    t = probe.traverse([0, 1, 2], steps=5, direction="pca")
    fig = plot_traversal(t, shared_scale=False)
    hm = heatmaps(fig)
    assert len(hm) == 15
    np.testing.assert_array_equal(np.asarray(hm[7].z), t.images[1, 2, 0])
    assert hm[7].zmin == t.images[1, 2, 0].min()
    assert {"PC1", "PC2", "PC3"} <= {a.text for a in fig.layout.annotations}
    assert f"{t.values[1, 2]:.3g}" in hm[7].hovertemplate


def test_interpolation_strip():
    rng = np.random.default_rng(1)
    images = rng.random((5, 1, 8, 8))
    path = Interpolation(images, np.zeros((5, 2)), np.linspace(0, 1, 5), "slerp")
    fig = plot_interpolation(path)
    hm = heatmaps(fig)
    assert len(hm) == 5
    for j in range(5):
        np.testing.assert_array_equal(np.asarray(hm[j].z), images[j, 0])
    assert [a.text for a in fig.layout.annotations] == [
        "t=0.00",
        "t=0.25",
        "t=0.50",
        "t=0.75",
        "t=1.00",
    ]
    assert "spherical" in fig.layout.title.text


def test_reconstruction_error_histogram_with_worst_cases(probe):
    fig = plot_reconstruction_errors(probe, n_worst=4)
    hist = [t for t in fig.data if isinstance(t, go.Histogram)]
    assert len(hist) == 1
    np.testing.assert_allclose(np.asarray(hist[0].x), probe.reconstruction_error_)
    marks = [t for t in fig.data if isinstance(t, go.Scatter)][0]
    np.testing.assert_allclose(np.asarray(marks.x), probe.reconstruction_error_[probe.worst(4)])
    hm = heatmaps(fig)
    assert len(hm) == 4  # each worst input stacked above its reconstruction
    for j in range(4):
        z = np.asarray(hm[j].z, dtype=float)
        np.testing.assert_array_equal(z[:16], probe.worst_inputs_[j, 0])
        assert np.isnan(z[16]).all()
        np.testing.assert_allclose(z[17:], probe.worst_reconstructions_[j, 0])
        # the input's window, so intensity errors of the reconstruction stay visible
        assert (hm[j].zmin, hm[j].zmax) == (
            probe.worst_inputs_[j, 0].min(),
            probe.worst_inputs_[j, 0].max(),
        )
    assert f"#1: {probe.worst_indices_[0]}" in [a.text for a in fig.layout.annotations]
    median = np.median(probe.reconstruction_error_)
    assert any(s.x0 == pytest.approx(median) for s in fig.layout.shapes)
    only = plot_reconstruction_errors(probe.reconstruction_error_, log_x=True)
    assert len(only.data) == 1
    np.testing.assert_allclose(np.asarray(only.data[0].x), np.log10(probe.reconstruction_error_))


def test_correlation_heatmap(probe):
    fig = plot_latent_correlations(probe)
    (hm,) = fig.data
    np.testing.assert_allclose(
        np.asarray(hm.z), np.stack([probe.correlations_["label"], probe.correlations_["ink"]])
    )
    assert list(hm.y) == ["label (η)", "ink (r)"] and list(hm.x) == ["z0", "z1", "z2", "z3"]
    with pytest.raises(KeyError, match="available"):
        plot_latent_correlations(probe, targets=["age"])


def test_latent_scatter_reuses_the_embedding_figure_with_pair_thumbnails(probe):
    emb = probe.embed("pca")
    fig = plot_latent_scatter(emb, color="reconstruction_error")
    assert has_thumbnails(fig)
    atlas = fig.layout.meta[META_KEY]
    assert atlas["tile"] == [16, 32]  # input | reconstruction, side by side
    n = sum(len(t.x) for t in fig.data if t.x is not None)
    assert n == probe.n_samples_
    assert "latent codes" in fig.layout.title.text
    np.testing.assert_allclose(
        np.asarray(fig.data[0].marker.color), probe.reconstruction_error_, rtol=1e-6
    )


def _profile(scales, target="label"):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    results = [
        linear_probe(s * np.eye(3)[y] + rng.normal(size=(300, 3)), y, cv=3, refit=False)
        for s in scales
    ]
    return ProbeProfile([f"layer{i}" for i in range(len(scales))], results, target, "mean")


def test_probe_profile_figure_with_chance_line():
    prof = _profile([0.0, 1.0, 3.0])
    fig = plot_probe_profile(prof)
    line, chance = fig.data
    assert list(line.x) == ["layer0", "layer1", "layer2"]
    np.testing.assert_allclose(np.asarray(line.y), prof.scores)
    np.testing.assert_allclose(np.asarray(line.error_y.array), prof.score_std)
    np.testing.assert_allclose(np.asarray(chance.y), prof.chance)
    assert chance.line.dash == "dash" and "balanced, 1/n classes" in chance.name
    assert tuple(fig.layout.yaxis.range) == (0, 1.02)
    two = plot_probe_profile({"label": prof, "other": _profile([2.0, 0.0], "other")})
    assert len(two.data) == 4 and two.data[2].name == "other"


# A real mouse move over the third point of the second trace (Plotly.Fx.hover emits no
# plotly_hover event, so the page's own hover handler would never run).
HOVER_JS = """
var gd = document.querySelector('.js-plotly-plot');
if (!gd || !gd.calcdata || !window.inspectKitThumbnails) return null;
var pt = gd.calcdata[1][2], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
var r = gd.getBoundingClientRect();
var cx = r.left + xa._offset + xa.c2p(pt.x), cy = r.top + ya._offset + ya.c2p(pt.y);
document.elementFromPoint(cx, cy).dispatchEvent(
    new MouseEvent('mousemove', {clientX: cx, clientY: cy, bubbles: true}));
var box = document.getElementById(gd.id + '-thumb');
var img = box && box.querySelector('img');
if (!img || !img.getAttribute('data-tile') || !gd._hoverdata) return null;
return [img.src, gd._hoverdata[0].customdata[0], box.style.display];
"""


@pytest.mark.browser
@pytest.mark.slow
def test_browser_hover_shows_the_samples_input_and_reconstruction(probe, tmp_path):
    from inspect_kit.imaging import decode_data_uri

    fig = plot_latent_scatter(probe.embed("pca"))
    path = tmp_path / "latent.html"
    fig.write_html(path)
    traversal = tmp_path / "traversal.html"
    plot_traversal(probe.traverse([0, 1], steps=4)).write_html(traversal)
    with chromium() as driver:
        driver.get(traversal.as_uri())
        n_images = driver.execute_script(
            "return document.querySelectorAll('.heatmaplayer image, .hm image').length;"
        )
        assert n_images == 8  # every traversal cell rendered
        driver.get(path.as_uri())
        shown = None
        for _ in range(50):  # wait for plotly and the hover script
            shown = driver.execute_script(HOVER_JS)
            if shown:
                break
            time.sleep(0.2)
    assert shown is not None, "hover thumbnail never appeared"
    src, index, display = shown
    assert display == "block"
    pixels = decode_data_uri(src)
    pixels = pixels[..., 0] if pixels.ndim == 3 else pixels
    np.testing.assert_array_equal(pixels, probe.thumbnails_[int(index)])
