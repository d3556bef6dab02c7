"""Which layer the report optimises for a unit."""

import copy

import numpy as np
import torchvision
from torch import nn

from inspect_kit.analysis.featurevis import channel, render
from inspect_kit.report.selection import optimisation_target


def test_relu_in_sequential_is_optimised_through_its_input():
    seq = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU6())
    assert optimisation_target(seq, "1") == "0"
    assert optimisation_target(seq, "3") == "2"
    assert optimisation_target(seq, "2") == "2"
    nested = nn.Sequential()
    nested.add_module("block", nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()))
    assert optimisation_target(nested, "block.2") == "block.1"
    # a ReLU whose parent runs children in its own order (resnet blocks) is left alone
    r = torchvision.models.resnet18()
    assert optimisation_target(r, "layer1.0.relu") == "layer1.0.relu"


def test_units_that_are_off_for_the_start_image_still_move(mni2d_cnn):
    # With the ReLU output as the objective, some relu3 units of the trained MNI model stay at
    # zero from the grey start (no gradient); through bn3 every unit reaches a positive value.
    model = copy.deepcopy(mni2d_cnn)
    units = list(range(32))
    kw = dict(steps=48, value_range=(-3.5, 3.5), random_state=0, progress=False)
    direct = render(model, channel("relu3", units), (1, 16, 16), **kw)
    through_bn = render(
        model, channel(optimisation_target(model, "relu3"), units), (1, 16, 16), **kw
    )
    assert (np.asarray(direct.final_activations) <= 0).sum() > 0
    assert (np.asarray(through_bn.final_activations) > 0).all()
