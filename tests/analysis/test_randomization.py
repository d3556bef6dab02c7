"""One weight randomisation for the sanity check and the random-weights baseline."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis.randomization import (
    randomization_verdict,
    randomize_weights,
    sanity_cascade,
)
from inspect_kit.models import SmallCNN


class WithToken(nn.Module):
    """A block with a bare parameter (no reset_parameters) beside a convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.full((4,), 3.0) + torch.arange(4.0))
        self.conv = nn.Conv2d(2, 4, 3)

    def forward(self, x):
        return self.conv(x) + self.token.view(1, -1, 1, 1)


def make_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("stem", nn.Conv2d(1, 2, 3, padding=1))
    net.add_module("block", nn.Sequential(WithToken(), nn.BatchNorm2d(4)))
    net.add_module("head", nn.Linear(4, 3))
    with torch.no_grad():  # "trained" weights: far from any initialisation
        for p in net.parameters():
            p.mul_(0).add_(5.0)
        net.block[1].running_mean.fill_(2.0)
    return net


def state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_named_modules_and_all_their_descendants_are_reinitialised():
    net = make_net().train()
    before = state(net)
    rng_before = torch.get_rng_state()
    rand = randomize_weights(net, ["block"], random_state=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone
    for k, v in state(net).items():  # the original is untouched
        assert torch.equal(v, before[k]), k
    after = state(rand)
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    # every parameter of block, its children and grandchildren; nothing outside it
    assert {"block.0.token", "block.0.conv.weight", "block.0.conv.bias"} <= changed
    assert {"block.1.weight", "block.1.bias", "block.1.running_mean"} <= changed
    assert not any(k.startswith(("stem.", "head.")) for k in changed)
    assert rand.training and all(m.training for m in rand.modules())


def test_reinitialisation_follows_each_modules_own_scheme():
    rand = randomize_weights(make_net(), random_state=3)
    # Conv2d.reset_parameters: kaiming_uniform(a=sqrt(5)), i.e. U(-b, b) with b = 1/sqrt(fan_in)
    w = rand.block[0].conv.weight.detach()
    bound = 1 / math.sqrt(2 * 3 * 3)
    assert float(w.abs().max()) <= bound + 1e-7
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.25)
    # BatchNorm: weight 1, bias 0, running statistics reset
    bn = rand.block[1]
    assert torch.equal(bn.weight.detach(), torch.ones(4)) and torch.equal(
        bn.bias.detach(), torch.zeros(4)
    )
    assert torch.equal(bn.running_mean, torch.zeros(4)) and torch.equal(
        bn.running_var, torch.ones(4)
    )
    # a bare parameter is redrawn around its own mean and spread (here 4.5 +- 1.29)
    token = rand.block[0].token.detach()
    assert not torch.equal(token, make_net().block[0].token.detach())
    assert float((token - 4.5).abs().max()) < 6 * 1.29


def test_random_state_makes_it_reproducible_and_in_place_is_possible():
    a = randomize_weights(make_net(), random_state=1)
    b = randomize_weights(make_net(), random_state=1)
    c = randomize_weights(make_net(), random_state=2)
    for k, v in state(a).items():
        assert torch.equal(v, state(b)[k]), k
    assert not torch.equal(a.head.weight, c.head.weight)
    net = make_net()
    copied = randomize_weights(net, ["head"], random_state=1)
    assert randomize_weights(net, ["head"], random_state=1, copy=False) is net
    assert torch.equal(net.head.weight, copied.head.weight)


def test_unknown_module_names_the_close_match():
    with pytest.raises(KeyError, match="stem"):
        randomize_weights(make_net(), ["stme"])


def test_sanity_cascade_is_top_down_and_evenly_spaced():
    assert sanity_cascade(SmallCNN(), "relu3") == ["conv3", "conv2", "conv1"]
    assert sanity_cascade(SmallCNN(), "relu2") == ["conv2", "conv1"]
    net = nn.Sequential(*[nn.Linear(4, 4) for _ in range(9)])
    assert sanity_cascade(net, "8", max_stages=3) == ["8", "4", "0"]


def test_randomization_verdict_uses_the_two_seed_reference():
    # falls far below what two seeds of the trained model give: depends on the weights
    text, warn = randomization_verdict(np.array([1.0, 0.5, 0.05]), np.array([0.6, 0.7]))
    assert not warn and "depend on the learned weights" in text
    # two seeds differ as much as trained vs random: a warning, whatever the drop from 1
    text, warn = randomization_verdict(np.array([1.0, 0.4, 0.09]), np.array([0.1, 0.19]))
    assert warn and "0.15" in text and "0.09" in text
    # without a reference, the drop from the trained images decides
    assert randomization_verdict(np.array([1.0, 0.95]), None)[1]
    assert not randomization_verdict(np.array([1.0, 0.3]), None)[1]
