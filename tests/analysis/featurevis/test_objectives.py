"""Objectives against hand-computed values on small activation tensors."""

import numpy as np
import pytest
import torch

from inspect_kit.analysis.featurevis import objectives as ob
from tests.numeric import assert_close


@pytest.fixture
def acts():
    g = torch.Generator().manual_seed(0)
    return {
        "conv": torch.randn(3, 4, 5, 6, generator=g),
        "vol": torch.randn(2, 3, 4, 4, 4, generator=g),
        "output": torch.randn(3, 10, generator=g),
        "input": torch.rand(3, 1, 6, 7, generator=g),
    }


def test_channel_is_the_spatial_mean_of_one_channel(acts):
    a = acts["conv"].numpy()
    got = ob.channel("conv", 2)(acts).numpy()
    # float32 means over 5 * 6 values, each side summing in its own order
    assert_close(got, a[:, 2].mean(axis=(1, 2)), terms=30)


def test_channel_list_assigns_one_unit_per_batch_element(acts):
    a = acts["conv"].numpy()
    obj = ob.channel("conv", [3, 0, 1])
    assert obj.batch_size == 3
    expected = [a[0, 3].mean(), a[1, 0].mean(), a[2, 1].mean()]
    assert_close(obj(acts), expected, terms=30)
    assert obj.unit_labels(3) == ["conv#3", "conv#0", "conv#1"]
    assert obj.unit_indices(3) == [3, 0, 1]


def test_channel_list_with_wrong_batch_is_an_error(acts):
    with pytest.raises(ValueError, match="defines 2 units"):
        ob.channel("conv", [0, 1])(acts)


def test_channel_out_of_range_names_the_valid_range(acts):
    with pytest.raises(ValueError, match=r"0\.\.3"):
        ob.channel("conv", 4)(acts)


def test_neuron_at_position_and_default_centre(acts):
    a = acts["vol"].numpy()
    np.testing.assert_allclose(
        ob.neuron("vol", 1, position=(0, 3, 2))(acts).numpy(), a[:, 1, 0, 3, 2], rtol=1e-6
    )
    np.testing.assert_allclose(ob.neuron("vol", 2)(acts).numpy(), a[:, 2, 2, 2, 2], rtol=1e-6)
    with pytest.raises(ValueError, match="not inside"):
        ob.neuron("vol", 0, position=(9, 0, 0))(acts)


def test_deepdream_and_class_logit(acts):
    a = acts["conv"].numpy()
    assert_close(ob.deepdream("conv")(acts), (a**2).reshape(3, -1).mean(1), terms=120)
    logits = acts["output"].numpy()
    np.testing.assert_allclose(ob.class_logit(7)(acts).numpy(), logits[:, 7], rtol=1e-6)
    np.testing.assert_allclose(
        ob.class_logit([1, 2, 3])(acts).numpy(), logits[[0, 1, 2], [1, 2, 3]], rtol=1e-6
    )
    assert ob.class_logit([1, 2, 3]).unit_labels(3) == ["class 1", "class 2", "class 3"]


def test_direction_projects_on_the_unit_vector(acts):
    a = acts["conv"].numpy()
    v = np.array([1.0, 2.0, 0.0, -2.0])
    got = ob.direction("conv", v)(acts).numpy()
    expected = np.einsum("c,bchw->bhw", v / np.linalg.norm(v), a).reshape(3, -1).mean(1)
    assert_close(got, expected, terms=4 * 30)
    with pytest.raises(ValueError, match="non-zero"):
        ob.direction("conv", np.zeros(4))


def test_diversity_against_pairwise_gram_similarity(acts):
    a = acts["conv"].numpy().reshape(3, 4, -1)
    grams = np.stack([x @ x.T for x in a]).reshape(3, -1)
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    sim = grams @ grams.T
    expected = [-(sim[i].sum() - sim[i, i]) / 2 for i in range(3)]
    assert_close(ob.diversity("conv")(acts), expected, terms=30 * 16)


def test_regularisers_against_numpy(acts):
    x = acts["input"].numpy()
    assert_close(ob.l2()(acts), (x**2).reshape(3, -1).mean(1), terms=42)
    tv = np.abs(np.diff(x, axis=2)).reshape(3, -1).mean(1) + np.abs(np.diff(x, axis=3)).reshape(
        3, -1
    ).mean(1)
    assert_close(ob.total_variation()(acts), tv, terms=42)
    # TV of a 3D volume covers the three axes; a constant volume has none.
    vol = {"input": torch.ones(2, 1, 3, 4, 5)}
    assert ob.total_variation()(vol).abs().max() == 0
    ramp = {"input": torch.arange(4.0).reshape(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2)}
    assert ob.total_variation()(ramp).item() == pytest.approx(1.0)
    # blur penalty: zero for a constant image, positive for noise
    assert ob.blur(1.0)({"input": torch.full((1, 1, 8, 8), 0.3)}).abs().max() < 1e-10
    assert (ob.blur(1.0)(acts) > 0).all()


def test_gaussian_blur_preserves_mean_and_matches_scipy():
    from scipy import ndimage

    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 6, 7, 8, generator=g, dtype=torch.float64)
    got = ob.gaussian_blur(x, 1.0)[0, 0].numpy()
    # scipy's 'nearest' mode is replicate padding; truncate=3 matches radius 3
    expected = ndimage.gaussian_filter(x[0, 0].numpy(), 1.0, mode="nearest", truncate=3.0)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_arithmetic_matches_hand_computed_values(acts):
    a = acts["conv"].numpy()
    c0 = a[:, 0].mean(axis=(1, 2))
    c1 = a[:, 1].mean(axis=(1, 2))
    A, B = ob.channel("conv", 0), ob.channel("conv", 1)
    cases = [
        (A + B, c0 + c1),
        (A - B, c0 - c1),
        (A * B, c0 * c1),
        (A / B, c0 / c1),
        (2 * A - B / 4, 2 * c0 - c1 / 4),
        (1 - A, 1 - c0),
        (A + 3, c0 + 3),
        (2 / A, 2 / c0),
        (-A, -c0),
        (sum([A, B]), c0 + c1),
    ]
    for obj, expected in cases:
        # quotients amplify the means' rounding by 1 / |denominator|
        scale = max(1.0, float(np.max(np.abs(1 / c0))), float(np.max(np.abs(1 / c1))))
        assert_close(obj(acts), expected, terms=30, safety=16 * scale**2, err_msg=repr(obj))


def test_descriptions_read_like_the_expression():
    A, B = ob.channel("conv", 0), ob.channel("conv", 1)
    assert repr(A - 0.5 * B) == "channel(conv, 0) - 0.5 * channel(conv, 1)"
    assert repr((A + B) * 2) == "(channel(conv, 0) + channel(conv, 1)) * 2"
    assert repr(A - (B - A)) == "channel(conv, 0) - (channel(conv, 1) - channel(conv, 0))"
    assert repr(A / (B * 2)) == "channel(conv, 0) / (channel(conv, 1) * 2)"
    assert repr(A - 1e-3 * ob.total_variation()) == "channel(conv, 0) - 0.001 * total_variation()"
    assert set((A + ob.l2()).layers) == {"conv", "input"}


def test_string_shorthand():
    assert repr(ob.as_objective("layer4.1.conv2#12")) == "channel(layer4.1.conv2, 12)"
    assert repr(ob.as_objective(("layer4.1.conv2", 12))) == "channel(layer4.1.conv2, 12)"
    assert repr(ob.as_objective("block.relu:1#3")) == "channel(block.relu:1, 3)"
    assert repr(ob.as_objective("lstm[0]#2")) == "channel(lstm[0], 2)"
    assert repr(ob.as_objective("layer3")) == "deepdream(layer3)"
    assert repr(ob.as_objective("layer3[1]")) == "deepdream(layer3[1])"
    with pytest.raises(TypeError):
        ob.as_objective(3)


def test_colon_is_a_call_never_a_channel():
    # "relu:1" was channel 1 here but the second call in capture: now it is refused, naming
    # both meanings and how to write each.
    with pytest.raises(ValueError, match="ambiguous") as err:
        ob.as_objective("relu:1")
    msg = str(err.value)
    assert "call 1 of 'relu'" in msg and "channel 1" in msg
    assert "'relu#1'" in msg and "'relu:1#0'" in msg and "deepdream('relu:1')" in msg
    with pytest.raises(ValueError, match="grammar"):
        ob.as_objective("relu:x")
    with pytest.raises(ValueError, match="unit 3"):
        ob.channel("relu#3", 1)


def test_batch_sizes_must_agree_when_combined():
    with pytest.raises(ValueError, match="batch of 2"):
        ob.channel("a", [0, 1]) + ob.channel("b", [0, 1, 2])
    combo = ob.channel("a", [0, 1]) + 0.1 * ob.diversity("a")
    assert combo.batch_size == 2
    assert combo.unit_labels(2) == ["a#0", "a#1"]


def test_invalid_units_are_rejected():
    for bad in (-1, [], [0, -2], "3", 1.5, True):
        with pytest.raises((TypeError, ValueError)):
            ob.channel("conv", bad)
