"""A model built without weights is the same model in every command (seeded initialisation),
so a store's ``model_sha256`` matches the model that featurevis and report build again."""

from __future__ import annotations

import torch

from inspect_kit.capture import state_dict_sha256
from inspect_kit.models.registry import load_model


def test_random_init_is_the_same_in_every_call_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = load_model("torchvision.models:resnet18", model_args={"num_classes": 4})
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    b = load_model("torchvision.models:resnet18", model_args={"num_classes": 4})
    assert state_dict_sha256(a) == state_dict_sha256(b)
    # really torchvision's random weights: kaiming normal, fan_out, std sqrt(2 / (64 * 7 * 7))
    w = a.conv1.weight.detach()
    assert abs(float(w.std()) - (2 / (64 * 49)) ** 0.5) < 0.001
