"""The CLI's default --layers: every convolution, activation and linear layer, as its help says."""

from torch import nn

from inspect_kit.workflows.commands import default_capture_layers


def test_deep_model_gets_every_conv_activation_and_linear_leaf():
    # 20 conv+ReLU pairs inside two containers: more than 16 layers, which used to fall back to
    # the two top-level children (no depth profile)
    blocks = [nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()) for _ in range(20)]
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*blocks))
    model.add_module("head", nn.Sequential(nn.Flatten(), nn.Linear(8, 3)))
    names = default_capture_layers(model)
    assert len(names) == 41
    assert names[:2] == ["features.0.0", "features.0.1"] and names[-1] == "head.1"
    assert "features" not in names and "head" not in names
    assert default_capture_layers(nn.Sequential(nn.Flatten())) == ["0"]
