"""The one layer-spec grammar, and globs that follow the dotted structure."""

import pytest
import timm
import torch
import torchvision
from monai.networks.nets import DenseNet121

from inspect_kit.capture import capture
from inspect_kit.hooks import LayerSpec, list_layers, parse_layer_spec, resolve_layers


def test_grammar_parts():
    assert parse_layer_spec("layer4.1.relu") == LayerSpec("layer4.1.relu")
    assert parse_layer_spec("layer4.1.relu:1") == LayerSpec("layer4.1.relu", call=1)
    assert parse_layer_spec("lstm[0]") == LayerSpec("lstm", output="[0]")
    assert parse_layer_spec("head:2[logits]#7") == LayerSpec("head", 2, "[logits]", 7)
    assert parse_layer_spec("block[1][0]").output == "[1][0]"
    assert parse_layer_spec("head:2[logits]#7").key == "head:2[logits]"
    assert str(parse_layer_spec("relu:1#3")) == "relu:1#3"
    for bad in ("relu:x", "relu#", "a[0", ":1", "relu:1:3", ""):
        with pytest.raises(ValueError, match="grammar"):
            parse_layer_spec(bad)


def test_star_stays_within_one_dotted_name_on_resnet18():
    m = torchvision.models.resnet18()
    assert list_layers(m, include="layer1.*") == ["layer1.0", "layer1.1"]
    assert list_layers(m, include="layer1.*.conv?") == [
        "layer1.0.conv1",
        "layer1.0.conv2",
        "layer1.1.conv1",
        "layer1.1.conv2",
    ]
    every = [n for n, _ in m.named_modules() if n.startswith("layer1.")]
    assert list_layers(m, include="layer1.**") == every  # ** crosses dots
    relus = [n for n, _ in m.named_modules() if n.split(".")[-1] == "relu"]
    assert list_layers(m, include="**.relu") == relus and relus[0] == "relu"
    assert list_layers(m, include="*") == [n for n, _ in m.named_children()]
    assert list(resolve_layers(m, ["layer1.*.relu:1"])) == ["layer1.0.relu:1", "layer1.1.relu:1"]
    with pytest.raises(ValueError, match="unit 3"):
        resolve_layers(m, ["layer4#3"])


def test_stages_of_a_convnext_are_its_stages():
    # timm's ConvNeXt nests stages.<i>.blocks.<j>.<module>: "stages.*" used to expand to 154
    # modules, dropouts and identities included.
    m = timm.create_model("convnext_atto", pretrained=False)
    n_stages = len(m.stages)
    assert list(resolve_layers(m, "stages.*")) == [f"stages.{i}" for i in range(n_stages)]
    deep = list(resolve_layers(m, "stages.**"))
    assert len(deep) > 100 and all(n.startswith("stages.") for n in deep)
    assert list(resolve_layers(m, "stages.*.blocks.*")) == [
        n for n, _ in m.named_modules() if n.count(".") == 3 and ".blocks." in n
    ]


def test_denseblock_glob_captures_the_dense_blocks_only(tmp_path):
    net = DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).eval()
    blocks = [f"features.denseblock{i}" for i in range(1, 5)]
    assert list(resolve_layers(net, "features.denseblock*")) == blocks  # was 470 modules
    assert len(list_layers(net, include="features.denseblock*.**")) > 400
    x = torch.randn(2, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    store = capture(
        net, x, "features.denseblock*", tmp_path / "d.h5", reduce="mean", progress=False
    )
    assert store.layers == blocks
    with torch.no_grad():
        feats = net.features.denseblock1(
            net.features.pool0(net.features.relu0(net.features.norm0(net.features.conv0(x))))
        )
    torch.testing.assert_close(
        torch.from_numpy(store["features.denseblock1"][:]), feats.mean((2, 3, 4))
    )
