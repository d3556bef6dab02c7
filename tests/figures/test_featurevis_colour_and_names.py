"""RGB renders are drawn in colour beside colour exemplars; exemplar captions use class names."""

from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go

from inspect_kit.analysis import featurevis as fv
from inspect_kit.figures.featurevis import plot_unit_gallery


def test_rgb_render_in_colour_and_exemplars_by_class_name():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 8, 8)).astype(np.float32)
    images[:, 0] = 0.9  # a red cast channel 0 alone would hide
    res = fv.FeatureVisResult(
        images=images,
        inputs=images,
        trajectory=np.cumsum(rng.random((5, 2)), axis=0),
        final_activations=np.ones(2),
        labels=["conv:0", "conv:1"],
        units=[0, 1],
        layer="conv",
        objective="conv:0,1",
        value_range=(0.0, 1.0),
        random_state=0,
    )
    ex = SimpleNamespace(
        units=np.array([0, 1]),
        index=np.array([[3, 4], [5, 6]]),
        activations=np.ones((2, 2)),
        labels=np.array([[0, 1], [1, 1]]),
        thumbnails=rng.integers(0, 255, (2, 2, 8, 8, 3), dtype=np.uint8),
        layer="conv",
        reduce="mean",
    )
    fig = plot_unit_gallery(res, ex, label_names=["normal", "lesion"])
    renders = [t for t in fig.data if t.name in ("conv:0", "conv:1")]
    assert renders and all(isinstance(t, go.Image) for t in renders)
    # the drawn red channel is the render's channel 0, scaled to 0..255
    np.testing.assert_array_equal(
        np.asarray(renders[0].z)[..., 0],
        np.round(images[0, 0].astype(np.float64) * 255).astype(np.uint8),
    )
    titles = [a.text for a in fig.layout.annotations]
    assert "#3 (1) · normal" in titles and "#4 (1) · lesion" in titles
    assert not any("y=" in t for t in titles)
    # one channel stays a grey heatmap
    grey = plot_unit_gallery(
        fv.FeatureVisResult(
            images=images[:, :1],
            inputs=images[:, :1],
            trajectory=res.trajectory,
            final_activations=np.ones(2),
            labels=["conv:0", "conv:1"],
            units=[0, 1],
            layer="conv",
            objective="conv",
            value_range=(0.0, 1.0),
            random_state=0,
        )
    )
    assert isinstance(grey.data[0], go.Heatmap)
