"""Feature-visualization figures: what they draw is what the analyses computed."""

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from inspect_kit.analysis import featurevis as fv
from inspect_kit.analysis.weights import conv_kernels
from inspect_kit.figures import featurevis as ff
from tests._browser import chromium
from tests._threads import one_thread


def heatmaps(fig):
    return [t for t in fig.data if isinstance(t, go.Heatmap)]


@pytest.fixture(scope="module")
def digits_render(digits_cnn, digits):
    acts = []
    with one_thread():
        res = fv.render(
            digits_cnn,
            fv.channel("conv2", [0, 3, 5]),
            (1, 16, 16),
            steps=8,
            value_range=(0, 1),
            progress=False,
        )
        h = digits_cnn.conv2.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
        try:
            with torch.no_grad():
                digits_cnn(torch.as_tensor(digits.X_test))
        finally:
            h.remove()
    thumbs = np.round(digits.X_test[:, 0] * 255).astype(np.uint8)
    ex = fv.top_exemplars(
        acts[0].numpy(), "conv2", k=6, units=[5, 0, 3], thumbnails=thumbs, progress=False
    )
    return res, ex


def test_gallery_shows_each_unit_with_its_own_exemplars(digits_render):
    res, ex = digits_render
    fig = ff.plot_unit_gallery(res, ex, max_exemplars=4)
    maps = heatmaps(fig)
    assert len(maps) == 3 * (1 + 4)
    for row, b in enumerate(range(3)):
        img, *thumbs = maps[row * 5 : row * 5 + 5]
        np.testing.assert_allclose(np.asarray(img.z), res.images[b, 0])
        assert (img.zmin, img.zmax) == (0, 1)
        ex_row = ex.units.tolist().index(res.units[b])  # exemplars were in another order
        for j, t in enumerate(thumbs):
            np.testing.assert_array_equal(np.asarray(t.z), ex.thumbnails[ex_row, j])
    best = [t for t in fig.data if t.name and t.name.startswith("best dataset")]
    assert [t.y[0] for t in best] == [
        float(ex.activations[ex.units.tolist().index(u), 0]) for u in res.units
    ]
    finals = [t for t in fig.data if t.name == "final (untransformed)"]
    assert [t.y[0] for t in finals] == pytest.approx(res.final_activations.tolist())
    titles = [a.text for a in fig.layout.annotations]
    assert "unit 3" in titles and f"#{ex.index[0, 0]} ({ex.activations[0, 0]:.3g})" in titles


def test_gallery_without_exemplars_and_with_bone_colours(digits_render):
    res, _ = digits_render
    fig = ff.plot_unit_gallery(res, units=[2], colorscale="bone")
    assert len(heatmaps(fig)) == 1
    assert fig.data[0].colorscale[-1][1].lower() == "#ffffff"
    with pytest.raises(ValueError, match="out of range"):
        ff.plot_unit_gallery(res, units=[7])


def volume_result(n=2, shape=(1, 5, 6, 7)):
    rng = np.random.default_rng(0)
    images = rng.random((n, *shape)).astype(np.float32)
    return fv.FeatureVisResult(
        images=images,
        inputs=images,
        trajectory=rng.random((10, n)),
        final_activations=rng.random(n),
        labels=[f"conv2:{i}" for i in range(n)],
        units=list(range(n)),
        layer="conv2",
        objective="channel(conv2, [0, 1])",
        value_range=(0.0, 1.0),
        random_state=0,
    )


def test_3d_gallery_has_orthogonal_slices_and_depth_sliders():
    res = volume_result()
    fig = ff.plot_unit_gallery(res)
    maps = heatmaps(fig)
    assert len(maps) == 2 * 3
    vol = res.images[1, 0]
    np.testing.assert_allclose(np.asarray(maps[3].z), vol[2])  # axial centre
    np.testing.assert_allclose(np.asarray(maps[4].z), vol[:, 3])  # coronal centre
    np.testing.assert_allclose(np.asarray(maps[5].z), vol[:, :, 3])  # sagittal centre
    sliders = fig.layout.sliders
    assert [len(s.steps) for s in sliders] == [5, 6, 7]
    axial = sliders[0].steps[4]
    z, traces = axial.args
    assert list(traces) == [fig.data.index(maps[0]), fig.data.index(maps[3])]
    np.testing.assert_allclose(np.asarray(z["z"][1]), vol[4])
    sag = sliders[2].steps[6]
    np.testing.assert_allclose(np.asarray(sag.args[0]["z"][0]), res.images[0, 0][:, :, 6])


def test_volume_figure_takes_any_channel():
    vol = np.random.default_rng(1).random((2, 4, 5, 6))
    fig = ff.plot_volume(vol, channel=1, value_range=(0, 1))
    assert [len(s.steps) for s in fig.layout.sliders] == [4, 5, 6]
    np.testing.assert_allclose(np.asarray(fig.data[1].z), vol[1][:, 2])
    with pytest.raises(ValueError, match="volume"):
        ff.plot_volume(np.zeros((4, 4)))


def test_kernel_grid_2d_and_3d(digits_cnn, mni3d_cnn):
    k = conv_kernels(digits_cnn)
    fig = ff.plot_kernels(k)
    maps = heatmaps(fig)
    assert len(maps) == 8
    np.testing.assert_allclose(np.asarray(maps[5].z, dtype=float), k.weights[5, 0])
    lim = np.abs(k.weights).max()
    assert maps[0].zmin == pytest.approx(-lim) and maps[0].zmax == pytest.approx(lim)
    k3 = conv_kernels(mni3d_cnn)
    tile = np.asarray(heatmaps(ff.plot_kernels(k3))[2].z, dtype=float)
    # axial | coronal | sagittal side by side, separated by a transparent (NaN) column
    assert tile.shape == (3, 11)
    np.testing.assert_allclose(tile[:, :3], k3.weights[2, 0, 1])
    np.testing.assert_allclose(tile[:, 4:7], k3.weights[2, 0, :, 1])
    np.testing.assert_allclose(tile[:, 8:], k3.weights[2, 0, :, :, 1])
    assert np.isnan(tile[:, 3]).all()


def test_randomisation_figure(digits_cnn):
    res = fv.randomization_check(
        digits_cnn,
        fv.channel("conv2", [0, 1]),
        (1, 16, 16),
        steps=4,
        value_range=(0, 1),
        progress=False,
    )
    fig = ff.plot_randomization(res)
    mean = next(t for t in fig.data if t.name == "mean")
    np.testing.assert_allclose(mean.y, res.mean_scores)
    ref = next(t for t in fig.data if t.name == "trained, other seed")
    assert ref.y[0] == pytest.approx(res.reference.mean())
    assert len(heatmaps(fig)) == 2 * len(res.stages)
    traj = ff.plot_trajectories(
        fv.render(digits_cnn, "conv2#1", (1, 16, 16), steps=3, progress=False)
    )
    assert len(traj.data) == 1 and len(traj.data[0].y) == 3


@pytest.mark.browser
def test_3d_gallery_renders_and_slides_in_a_browser(tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver.support.ui import WebDriverWait

    res = volume_result()
    fig = ff.plot_unit_gallery(res)
    path = tmp_path / "gallery.html"
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    with chromium() as driver:
        driver.get(path.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "const g=document.querySelector('.js-plotly-plot');"
                "return g && g._fullLayout && g.querySelectorAll('.slider-group').length;"
            )
        )
        n_sliders = driver.execute_script(
            "return document.querySelectorAll('.slider-group').length;"
        )
        assert n_sliders == 3
        # apply the axial slider's step 1 as plotly.js does on a drag, then read back
        z = driver.execute_script(
            "const g=document.querySelector('.js-plotly-plot');"
            "const s=g.layout.sliders[0].steps[1];"
            "return Plotly.restyle(g, s.args[0], s.args[1]).then(() => g.data[s.args[1][1]].z);"
        )
        np.testing.assert_allclose(np.asarray(z, dtype=float), res.images[1, 0][1], rtol=1e-6)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, json.dumps(errors)[:500]
