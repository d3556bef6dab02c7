"""render() on networks trained on real data (sklearn digits, MNI152 patches)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis import featurevis as fv
from inspect_kit.analysis.featurevis.objectives import Objective
from inspect_kit.models import SmallCNN


def layer_outputs(model, x, layer, batch=256):
    """Independent oracle: a layer's output for inputs ``x`` via a plain forward hook."""
    out = []
    module = dict(model.named_modules())[layer]
    h = module.register_forward_hook(lambda m, i, o: out.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                model(torch.as_tensor(np.asarray(x[i : i + batch]), dtype=torch.float32))
    finally:
        h.remove()
    return torch.cat(out).numpy()


def channel_means(model, x, layer):
    a = layer_outputs(model, x, layer)
    return a.reshape(a.shape[0], a.shape[1], -1).mean(axis=2)


def model_state(model):
    return (
        {n: m.training for n, m in model.named_modules()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        {n: t.clone() for n, t in model.state_dict().items()},
    )


def assert_same_state(model, before):
    training, grads, params = model_state(model)
    assert training == before[0]
    assert grads == before[1]
    for n, t in params.items():
        assert torch.equal(t, before[2][n]), n
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_digits_units_beat_their_best_dataset_sample(digits_cnn, digits, layer):
    X = np.concatenate([digits.X_train, digits.X_test])
    value_range = (float(X.min()), float(X.max()))  # the data's own range: [0, 1]
    best = channel_means(digits_cnn, X, layer).max(axis=0)
    n = best.shape[0]
    res = fv.render(
        digits_cnn,
        fv.channel(layer, list(range(n))),
        (1, 16, 16),
        steps=128,
        value_range=value_range,
        progress=False,
    )
    assert res.images.min() >= value_range[0] and res.images.max() <= value_range[1]
    achieved = channel_means(digits_cnn, res.inputs, layer)[np.arange(n), np.arange(n)]
    np.testing.assert_allclose(achieved, res.final_activations, rtol=1e-4, atol=1e-5)
    wins = achieved > best
    assert wins.mean() >= 0.9, f"{layer}: {wins.sum()}/{n} units beat the dataset"


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_mni_volume_units_beat_their_best_dataset_patch(mni3d_cnn, mni3d, layer):
    X = np.concatenate([mni3d.X_train, mni3d.X_test])
    value_range = (float(X.min()), float(X.max()))
    best = channel_means(mni3d_cnn, X, layer).max(axis=0)
    n = best.shape[0]
    res = fv.render(
        mni3d_cnn,
        fv.channel(layer, list(range(n))),
        X.shape[1:],
        steps=128,
        value_range=value_range,
        progress=False,
    )
    assert res.images.shape == (n, *X.shape[1:])
    assert res.images.min() >= value_range[0] and res.images.max() <= value_range[1]
    achieved = channel_means(mni3d_cnn, res.inputs, layer)[np.arange(n), np.arange(n)]
    wins = achieved > best
    assert wins.mean() >= 0.9, f"{layer}: {wins.sum()}/{n} units beat the dataset"
    # the objective climbed: the last steps score higher than the first
    assert (res.trajectory[-5:].mean(0) > res.trajectory[:5].mean(0)).mean() >= 0.9


@pytest.mark.slow
def test_class_logits_make_images_the_model_calls_that_class(digits_cnn):
    res = fv.render(
        digits_cnn,
        fv.class_logit(list(range(10))),
        (1, 16, 16),
        steps=64,
        value_range=(0, 1),
        progress=False,
    )
    with torch.no_grad():
        logits = digits_cnn(torch.as_tensor(res.inputs))
    np.testing.assert_allclose(
        logits.numpy()[np.arange(10), np.arange(10)], res.final_activations, rtol=1e-4, atol=1e-4
    )
    assert (logits.argmax(1).numpy() == np.arange(10)).mean() >= 0.9
    assert res.labels[3] == "class 3" and res.units == list(range(10))


def test_a_seed_makes_renders_reproducible(digits_cnn):
    kw = dict(steps=8, value_range=(0, 1), progress=False)
    a = fv.render(digits_cnn, "conv2#3", (1, 16, 16), random_state=4, **kw)
    b = fv.render(digits_cnn, "conv2#3", (1, 16, 16), random_state=4, **kw)
    c = fv.render(digits_cnn, "conv2#3", (1, 16, 16), random_state=5, **kw)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    assert not np.array_equal(a.images, c.images)
    assert a.random_state == 4 and not hasattr(a, "seed")
    # a Generator draws the seed; the result records it, so the run can be repeated
    d = fv.render(digits_cnn, "conv2#3", (1, 16, 16), random_state=np.random.default_rng(0), **kw)
    e = fv.render(digits_cnn, "conv2#3", (1, 16, 16), random_state=d.random_state, **kw)
    np.testing.assert_array_equal(d.images, e.images)
    with pytest.raises(TypeError, match="seed"):  # random_state only
        fv.render(digits_cnn, "conv2#3", (1, 16, 16), seed=4, **kw)


def test_model_comes_back_as_it_went_in(digits_cnn):
    net = copy.deepcopy(digits_cnn)
    net.train()
    net.bn1.eval()
    net.conv1.weight.requires_grad_(False)
    before = model_state(net)
    fv.render(net, fv.channel("conv3", [0, 1]), (1, 16, 16), steps=3, progress=False)
    assert_same_state(net, before)


class Boom(Exception):
    pass


def exploding(after_calls, exc=Boom):
    inner = fv.channel("conv2", 0)
    calls = {"n": 0}

    def fn(acts):
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise exc("mid-render")
        return inner(acts)

    return Objective(fn, "exploding", inner.layers)


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_model_is_restored_after_an_error_mid_render(digits_cnn, exc):
    net = copy.deepcopy(digits_cnn)
    net.train()
    net.fc.weight.requires_grad_(False)
    before = model_state(net)
    with pytest.raises(exc):
        fv.render(net, exploding(3, exc), (1, 16, 16), steps=10, progress=False)
    assert_same_state(net, before)


def test_value_range_and_preprocessing_in_hounsfield_units(digits_cnn):
    # pretend the digits model takes CT windowed to -1000..400 HU and scaled to [0, 1]
    lo, hi = fv.intensity_window(-300, 1400)

    def preprocess(hu):
        return (hu - lo) / (hi - lo)

    res = fv.render(
        digits_cnn,
        fv.channel("conv2", [0, 1]),
        (1, 16, 16),
        steps=16,
        value_range=(lo, hi),
        preprocess=preprocess,
        progress=False,
    )
    assert (lo, hi) == (-1000.0, 400.0)
    assert res.images.min() >= lo and res.images.max() <= hi
    assert res.images.max() - res.images.min() > 100  # in HU, not in [0, 1]
    np.testing.assert_allclose(res.inputs, (res.images - lo) / (hi - lo), atol=1e-5)
    achieved = channel_means(digits_cnn, res.inputs, "conv2")[[0, 1], [0, 1]]
    np.testing.assert_allclose(achieved, res.final_activations, rtol=1e-4, atol=1e-5)


def test_in_place_relus_do_not_change_what_is_optimised():
    # relu1 (in place) overwrites bn1's output after the hook saw it
    inplace = SmallCNN(dim=2, inplace_relu=True, random_state=3).eval()
    plain = SmallCNN(dim=2, inplace_relu=False, random_state=3).eval()
    obj = fv.channel("bn1", 0) + fv.channel("conv3", 1)
    kw = dict(steps=4, value_range=(0, 1), progress=False)
    a = fv.render(inplace, obj, (1, 16, 16), **kw)
    b = fv.render(plain, obj, (1, 16, 16), **kw)
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-5, atol=1e-6)
    bn1 = channel_means(plain, a.inputs, "bn1")[:, 0]
    conv3 = channel_means(plain, a.inputs, "conv3")[:, 1]
    np.testing.assert_allclose(bn1 + conv3, a.final_activations, rtol=1e-4, atol=1e-5)
    assert bn1.min() < 0  # bn1 before the ReLU: negative values were not clipped


def test_regularisers_and_diversity_compose_in_a_render(digits_cnn):
    obj = fv.channel("conv3", 2) - 0.05 * fv.total_variation() + 0.1 * fv.diversity("conv3")
    res = fv.render(
        digits_cnn, obj, (1, 16, 16), batch_size=3, steps=8, value_range=(0, 1), progress=False
    )
    assert res.images.shape == (3, 1, 16, 16)
    assert res.labels == ["conv3#2"] * 3 and res.units == [2, 2, 2]
    assert not np.allclose(res.images[0], res.images[1])
    assert res.objective == "channel(conv3, 2) - 0.05 * total_variation() + 0.1 * diversity(conv3)"


def test_pixel_parameterisation_mixed_precision_and_3d_multichannel():
    net = SmallCNN(in_channels=2, n_classes=3, dim=3, widths=(4, 8), random_state=1).eval()
    res = fv.render(
        net,
        fv.neuron("conv2", [0, 3]),
        (2, 8, 8, 8),
        steps=4,
        param=fv.pixel(),
        transforms=[fv.jitter(1), fv.rotate((-10, 10))],
        mixed_precision=True,
        device="cpu",
        progress=False,
    )
    assert res.images.shape == (2, 2, 8, 8, 8)
    assert np.isfinite(res.trajectory).all()
    assert res.params["mixed_precision"] and res.dim == 3


def test_errors_say_what_is_wrong(digits_cnn):
    with pytest.raises(KeyError, match="conv2"):
        fv.render(digits_cnn, "conv22#0", (1, 16, 16), steps=1, progress=False)
    with pytest.raises(ValueError, match="without the batch axis"):
        fv.render(digits_cnn, "conv2#0", (1, 1, 16, 16, 4, 4), steps=1, progress=False)
    with pytest.raises(ValueError, match="batch_size=3"):
        fv.render(
            digits_cnn,
            fv.channel("conv2", [0, 1]),
            (1, 16, 16),
            batch_size=3,
            steps=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="low < high"):
        fv.render(digits_cnn, "conv2#0", (1, 16, 16), value_range=(1, 0), steps=1, progress=False)
    with pytest.raises(ValueError, match="out of range"):
        fv.render(digits_cnn, "conv2#99", (1, 16, 16), steps=1, progress=False)


class _TwoHeads(nn.Module):
    """A conv whose module returns a tuple, and a model output that is a tuple too."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(h.mean((2, 3))), h


class _PairNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = _TwoHeads()

    def forward(self, x):
        logits, h = self.pair(x)
        return logits, torch.relu(h)


def test_tuple_outputs_follow_the_capture_rule():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = _PairNet()
    kw = dict(steps=2, value_range=(0, 1), transforms=[], progress=False)
    with pytest.raises(ValueError, match=r"'pair\[0\]' \(1, 3\), 'pair\[1\]' \(1, 4, 8, 8\)"):
        fv.render(net, fv.channel("pair", 0), (1, 8, 8), **kw)
    res = fv.render(net, "pair[1]#2", (1, 8, 8), **kw)
    assert res.labels == ["pair[1]#2"] and res.layer == "pair[1]"
    # the score is channel 2 of the module's second output, recomputed independently
    x = torch.as_tensor(res.inputs)
    with torch.no_grad():
        expected = net.pair.conv(x)[:, 2].mean()
    assert res.final_activations[0] == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match=r"'output\[0\]'"):
        fv.render(net, fv.class_logit(1), (1, 8, 8), **kw)
    check = fv.randomization_check(net, "pair[1]#2", (1, 8, 8), reference=False, **kw)
    assert check.stages == ["trained", "pair.fc", "pair.conv"]
    # randomising the head leaves the conv's output, and so its picture, unchanged
    np.testing.assert_array_equal(check.images[1], check.images[0])
    res = fv.render(net, fv.class_logit(1, layer="output[0]"), (1, 8, 8), **kw)
    with torch.no_grad():
        expected = net(torch.as_tensor(res.inputs))[0][:, 1]
    assert res.final_activations[0] == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
