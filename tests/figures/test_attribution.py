"""Attribution figures: overlays, volumes through the peak, methods x samples grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspect_kit.analysis.attribution import attribute
from inspect_kit.figures import publication_layout
from inspect_kit.figures.attribution import (
    display_range,
    plot_attribution,
    plot_attribution_grid,
    volume_peak,
)
from tests.analysis.attribution._models import tiny


@pytest.fixture(scope="module")
def images2d() -> torch.Tensor:
    return torch.rand((3, 1, 16, 16), generator=torch.Generator().manual_seed(0))


def test_positive_overlay_is_sequential_and_names_target_and_layer(images2d: torch.Tensor) -> None:
    a = attribute(tiny(2), images2d, method="gradcam", layer="conv3", target=2, progress=False)
    fig = plot_attribution(a, images2d.numpy(), sample=1)
    img, m = fig.data
    np.testing.assert_allclose(np.asarray(img.z), images2d[1, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(m.z), a.maps[1, 0], rtol=1e-6
    )  # stored values, not rescaled
    assert m.zmid is None and m.zmin == 0.0 and m.showscale
    assert "rgba(0,34,78,0)" in str(m.colorscale[0])  # transparent at zero, cividis
    title = fig.layout.title.text
    assert "class 2" in title and "layer conv3 (8x8)" in title and "gradcam" in title


def test_signed_overlay_is_diverging_centred_on_zero(images2d: torch.Tensor) -> None:
    a = attribute(tiny(2), images2d, method="integrated-gradients", steps=8, progress=False)
    m = plot_attribution(a, images2d.numpy()).data[1]
    assert m.zmid == 0.0 and m.zmin == -m.zmax
    top = np.percentile(np.abs(a.maps[0].sum(0)), 99)
    assert m.zmax == pytest.approx(top)


def test_volume_slices_cross_at_the_peak_with_sliders_and_mip() -> None:
    x = torch.rand((1, 1, 8, 10, 12), generator=torch.Generator().manual_seed(1))
    a = attribute(tiny(3), x, method="gradient", target=0, progress=False)
    fig = plot_attribution(a, x.numpy())
    m = a.maps[0].sum(0)
    peak = volume_peak(m)
    assert abs(m[peak]) == np.abs(m).max()
    maps = [t for t in fig.data if t.name == "gradient"]
    mips = [t for t in fig.data if t.name == "gradient MIP"]
    for k in range(3):
        np.testing.assert_allclose(np.asarray(maps[k].z), np.take(m, peak[k], axis=k), rtol=1e-6)
    # signed MIP: along each ray the value of largest magnitude, sign kept
    idx = np.abs(m).argmax(0)
    expect = np.take_along_axis(m, idx[None], 0)[0]
    np.testing.assert_allclose(np.asarray(mips[0].z), expect, rtol=1e-6)
    assert len(fig.layout.sliders) == 3 and fig.layout.sliders[0].active == peak[0]
    step = fig.layout.sliders[1].steps[3]
    np.testing.assert_allclose(np.asarray(step.args[0]["z"][1]), m[:, 3, :], rtol=1e-6)


def test_methods_by_samples_grid_flags_flat_maps(images2d: torch.Tensor) -> None:
    model = tiny(2)
    x = images2d.clone()
    x[2] = 0.0  # input x gradient of a zero image is all-zero: a flat map
    rows = [
        attribute(model, x, method=m, progress=False, steps=8)
        for m in ("saliency", "input-x-gradient")
    ] + [attribute(model, x, method="gradcam", layer="relu3", relu=False, progress=False)]
    fig = plot_attribution_grid(rows, x.numpy(), samples=[0, 2])
    assert len(fig.data) == 3 * 2 * 2  # image + map per cell
    flags = [a.text for a in fig.layout.annotations if a.text == "flat map"]
    assert rows[1].flat.tolist() == [False, False, True]  # x * grad of a zero image
    assert len(flags) == sum(int(r.flat[0]) + int(r.flat[2]) for r in rows) >= 1
    assert not any(r.flat[0] for r in rows)
    assert "gradcam" in fig.layout.yaxis5.title.text and "(8x8)" in fig.layout.yaxis5.title.text
    pub = publication_layout(fig, "double")
    assert pub.layout.width == pytest.approx(7.0 * 96, rel=0.05)


def test_display_range_clips_only_the_display() -> None:
    m = np.concatenate([np.linspace(0, 1, 999), [1000.0]])
    lo, hi = display_range(m, signed=False, clip_percentile=99.0)
    assert lo == 0.0 and hi < 2.0
    assert display_range(np.zeros(4), signed=True) == (-1.0, 1.0)
