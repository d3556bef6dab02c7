"""Which layers and units a profile looks at, and what they prefer."""

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis.selection import (
    class_selectivity,
    featurevis_layer,
    preferred_classes,
    select_units,
    spatial_layers,
    unit_means,
)


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
    np.testing.assert_allclose(class_selectivity(maps, labels), si)


def test_select_units_skips_dead_units_and_works_without_labels():
    acts = np.zeros((20, 4))
    acts[:, 1] = np.arange(20)
    acts[:, 3] = np.arange(20) * 0.1
    units, scores = select_units(acts, None, 3)
    assert units == [1, 3] and scores is None
    with pytest.raises(ValueError, match="two classes"):
        class_selectivity(acts, np.zeros(20))


def test_featurevis_layer_is_the_deepest_spatial_one():
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


def test_unit_means_and_preferred_classes_on_a_real_store(tmp_path):
    import inspect_kit

    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 6, 6)).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    x[labels == 1] += 1.0  # class 1 is brighter: the identity conv's unit prefers it
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
    store = inspect_kit.capture(
        net,
        x,
        ["0"],
        tmp_path / "s.h5",
        reduce=None,
        labels=labels,
        batch_size=7,
        progress=False,
    )
    try:
        means = unit_means(store, "0")
    finally:
        store.close()
    expected = np.stack([x[:, 0].mean(axis=(1, 2)), -x[:, 0].mean(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(means, expected, rtol=1e-5, atol=1e-6)
    assert preferred_classes(means, labels, [0, 1], ["dark", "bright"]) == {
        0: "bright",
        1: "dark",
    }
    assert preferred_classes(means, np.array(["a"] * 20 + ["b"] * 20), [0]) == {0: "b"}
