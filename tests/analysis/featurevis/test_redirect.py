"""Feature visualization moves every unit: redirected ReLU gradients (Lucid).

A unit that is zero on the starting image gets no gradient through a ReLU, so without help
its picture stays flat. ``render`` redirects ReLU gradients for its first steps, for ReLU
modules (also one called twice inside a resnet block) and for functional ``F.relu`` /
``torch.relu``. Oracle: with the redirection off, those units end exactly where they began
(zero); with it on, every one of them fires.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from inspect_kit import featurevis as fv
from inspect_kit.analysis.featurevis.redirect import redirected_relu
from inspect_kit.hooks import LayerRecorder, resolve_layers
from inspect_kit.models import evaluate_classifier, fit_classifier

SHAPE = (1, 16, 16)
KW = dict(value_range=(-1.0, 1.0), random_state=0, progress=False)  # grey start: 0


class ConvReLU(nn.Module):
    """A conv followed by a functional ReLU (no ReLU module to hook)."""

    def __init__(self, cin, cout, stride=1, fn=F.relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.conv(x))


class BlockNet(nn.Module):
    """torch.relu stem, a torchvision BasicBlock (its ``relu`` runs twice), F.relu down."""

    def __init__(self):
        super().__init__()
        self.stem = ConvReLU(1, 8, fn=torch.relu)
        self.block = BasicBlock(8, 8)
        self.down = ConvReLU(8, 16, stride=2)
        self.fc = nn.Linear(16 * 4, 10)

    def forward(self, x):
        h = self.down(self.block(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(h, 2).flatten(1))


@pytest.fixture(scope="module")
def block_net(digits):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = BlockNet()
    fit_classifier(
        net, digits.X_train, digits.y_train, epochs=5, lr=1e-2, random_state=0, progress=False
    )
    return net.eval()


def live_on_data(model, layer, X):
    """Which units fire for some real sample (a unit dead on all data cannot be shown)."""
    with LayerRecorder(resolve_layers(model, [layer])) as rec, torch.no_grad():
        rec.run(model, torch.as_tensor(X))
    return rec.outputs[layer].tensor.amax(dim=(0, 2, 3)).numpy() > 0


def check_dead_units_rise(model, layer, X, steps=32):
    live = live_on_data(model, layer, X)
    obj = fv.channel(layer, list(range(len(live))))  # image i starts from the same draw
    start = fv.render(model, obj, SHAPE, steps=1, lr=0.0, **KW)  # no step taken
    dead = np.flatnonzero((start.final_activations == 0.0) & live)
    assert dead.size, f"every live unit of {layer} fires on the start image: nothing to test"
    # Without transforms the input a unit sees is exactly the start image: with no
    # redirection there is no gradient at all, and the dead units stay at zero.
    off = fv.render(model, obj, SHAPE, steps=steps, redirect_relu=False, transforms=[], **KW)
    np.testing.assert_array_equal(off.final_activations[dead], 0.0)
    plain = fv.render(model, obj, SHAPE, steps=steps, transforms=[], **KW)
    on = fv.render(model, obj, SHAPE, steps=steps, **KW)  # default transforms
    for res in (plain, on):
        assert (res.final_activations[live] > 0).all(), (layer, dead, res.final_activations)
        images = res.images[dead].reshape(dead.size, -1)
        assert (np.ptp(images, axis=1) > 0.2).all()  # a pattern, not a flat image
        moved = np.abs(images - start.images[dead].reshape(dead.size, -1)).max(axis=1)
        assert (moved > 0.1).all()
    return dead


def test_sequential_relu_units_all_rise(mni2d_cnn):
    model = copy.deepcopy(mni2d_cnn)
    kw = dict(steps=48, value_range=(-3.5, 3.5), random_state=0, progress=False)
    units = list(range(32))
    direct = fv.render(model, fv.channel("relu3", units), SHAPE, redirect_relu=False, **kw)
    redirected = fv.render(model, fv.channel("relu3", units), SHAPE, **kw)
    assert (direct.final_activations <= 0).sum() > 0  # some units never moved
    assert (redirected.final_activations > 0).all()
    assert redirected.params["redirect_relu_steps"] == 24


def test_units_behind_block_and_functional_relus_rise(block_net, digits):
    acc = evaluate_classifier(block_net, digits.X_test, digits.y_test)["accuracy"]
    assert acc > 0.85  # a trained model
    before = copy.deepcopy(block_net.state_dict())
    X = digits.X_train
    check_dead_units_rise(block_net, "stem", X)  # torch.relu
    check_dead_units_rise(block_net, "block.relu", X)  # first call of the block's ReLU
    check_dead_units_rise(block_net, "block.relu:1", X)  # second call, after the residual
    check_dead_units_rise(block_net, "down", X)  # F.relu
    # the model comes back as it went in, and ReLU is ordinary again
    for k, v in block_net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not block_net.training and all(p.requires_grad for p in block_net.parameters())
    assert all(not m._forward_hooks for m in block_net.modules())
    x = torch.full((1, 3), -1.0, requires_grad=True)
    torch.relu(x).sum().backward()
    assert (x.grad == 0).all()


def test_redirected_gradient_rule():
    # element 0 is dead everywhere: the push upwards passes, the push downwards does not;
    # element 1 has a live entry: the true ReLU gradient is kept
    x = torch.tensor([[-1.0, -2.0], [1.0, -1.0]], requires_grad=True)
    w = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    for fn in (torch.relu, F.relu, nn.ReLU(), lambda t: t.relu(), nn.ReLU(inplace=True)):
        x.grad = None
        with redirected_relu():
            y = fn(x * 1.0)
        (-(y * w).sum()).backward()
        torch.testing.assert_close(x.grad, torch.tensor([[-1.0, 0.0], [-1.0, 0.0]]))
    x6 = torch.tensor([[7.0, -1.0]], requires_grad=True)
    for fn in (nn.ReLU6(), F.relu6):
        x6.grad = None
        with redirected_relu():
            y = fn(x6 * 1.0)
        (-(y * torch.tensor([[-1.0, 1.0]])).sum()).backward()  # wants 7 lower, -1 higher
        torch.testing.assert_close(x6.grad, torch.tensor([[1.0, -1.0]]))


def test_option_is_validated(digits_cnn):
    with pytest.raises(ValueError, match="redirect_relu"):
        fv.render(digits_cnn, "conv2#0", SHAPE, steps=1, redirect_relu=-1, progress=False)
    res = fv.render(digits_cnn, "conv2#0", SHAPE, steps=5, redirect_relu=2, progress=False)
    assert res.params["redirect_relu_steps"] == 2
