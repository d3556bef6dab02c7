"""Loading the model a user names (inspect_kit.models.registry), as the CLI and workflows do.

The load paths users take: a torchvision factory, inspect_kit's own models, a factory in a
file of their own, and weights as a state_dict (plain, in a checkpoint, from DataParallel);
a pickled whole model is refused, since reading it would run code.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from inspect_kit.models import SmallCNN
from inspect_kit.models.registry import load_model, load_weights, resolve_factory

TINY_ARGS = {"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}


def test_torchvision_factory_by_name():
    assert resolve_factory("torchvision.models:resnet18") is torchvision.models.resnet18
    net = load_model("torchvision.models:resnet18", model_args={"num_classes": 3})
    assert isinstance(net, torchvision.models.ResNet) and not net.training
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_inspect_kit_model_with_its_state_dict_computes_what_the_original_does(tmp_path):
    src = SmallCNN(**{**TINY_ARGS, "random_state": 7}).eval()
    torch.save(src.state_dict(), tmp_path / "w.pt")
    net = load_model("inspect_kit.models:SmallCNN", weights=tmp_path / "w.pt", model_args=TINY_ARGS)
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(net(x), src(x), rtol=0, atol=0)
    # without weights the factory's own (seeded) initialisation stands: other outputs
    fresh = load_model("inspect_kit.models:SmallCNN", model_args=TINY_ARGS)
    with torch.no_grad():
        assert not torch.allclose(fresh(x), src(x))


def test_weights_state_dict_checkpoint_and_dataparallel(tmp_path):
    src = SmallCNN(**{**TINY_ARGS, "random_state": 5})
    sd = src.state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    torch.save({"epoch": 3, "model_state_dict": sd}, tmp_path / "ckpt.pt")
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pt")
    for name in ("plain.pt", "ckpt.pt", "dp.pt"):
        net = load_model(
            "inspect_kit.models:SmallCNN", weights=tmp_path / name, model_args=TINY_ARGS
        )
        assert not net.training
        for k, v in net.state_dict().items():
            assert torch.equal(v, sd[k]), (name, k)
    torch.save(src, tmp_path / "whole.pt")  # a pickled module: refused by weights_only
    with pytest.raises(ValueError, match="weights_only"):
        load_weights(SmallCNN(**TINY_ARGS), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match="do not fit"):
        load_weights(SmallCNN(n_classes=5), tmp_path / "plain.pt")


def test_model_from_a_python_file(tmp_path):
    (tmp_path / "net.py").write_text(
        "import torch\n"
        "def build(width=3):\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(1, width, 3), torch.nn.ReLU())\n"
    )
    net = load_model(f"{tmp_path / 'net.py'}:build", model_args={"width": 5})
    assert net[0].out_channels == 5


def test_a_pickled_whole_model_is_refused_with_what_to_save_instead(tmp_path):
    torch.save(SmallCNN(**TINY_ARGS), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"save a state_dict \(torch.save\(model.state_dict"):
        load_model(
            "inspect_kit.models:SmallCNN", weights=tmp_path / "whole.pt", model_args=TINY_ARGS
        )


def test_errors_name_the_close_match_and_the_expected_form(tmp_path):
    with pytest.raises(AttributeError, match="did you mean 'SmallCNN'"):
        load_model("inspect_kit.models:SmalCNN")
    with pytest.raises(ValueError, match="package.module:factory"):
        load_model("resnet18")
    with pytest.raises(TypeError, match=r"SmallCNN\(colour=1\) failed"):
        load_model("inspect_kit.models:SmallCNN", model_args={"colour": 1})
    (tmp_path / "bad.py").write_text("def build():\n    return 3\n")
    with pytest.raises(TypeError, match="returned a int, not a torch.nn.Module"):
        load_model(f"{tmp_path / 'bad.py'}:build")
    with pytest.raises(FileNotFoundError, match="weights file"):
        load_model("inspect_kit.models:SmallCNN", weights=tmp_path / "none.pt")
    net = nn.Linear(2, 2)
    torch.save({"epoch": 1, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="without a state_dict"):
        load_weights(net, tmp_path / "ckpt.pt")
