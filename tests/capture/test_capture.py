"""Capture against independent oracles: torchvision's feature extractor and hand-computed values."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.models.feature_extraction import create_feature_extractor

from inspect_kit.capture import capture, list_layers, resolve_layers
from inspect_kit.store import open_store
from tests.numeric import assert_close


def _seeded_resnet18() -> nn.Module:
    torch.manual_seed(0)  # torchvision initialises from the global generator
    m = torchvision.models.resnet18(num_classes=7)
    # give BatchNorm non-trivial statistics so eval mode differs from training mode
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


@pytest.fixture(scope="module")
def resnet_case():
    m = _seeded_resnet18()
    x = torch.randn(12, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    layers = {
        "layer1.1.bn2": "a",
        "layer2": "b",
        "layer3.0.downsample.1": "c",
        "avgpool": "d",
        "fc": "e",
    }
    fe = create_feature_extractor(m.eval(), layers)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in fe(x).items()}
    return m, x, layers, ref


def test_full_maps_equal_torchvision_feature_extractor(resnet_case, tmp_path):
    m, x, layers, ref = resnet_case
    m.train()
    store = capture(m, x, list(layers), tmp_path / "r.h5", batch_size=5, progress=False)
    assert m.training  # came back as it went in
    for name, key in layers.items():
        # batches of 5 against one of 12: GEMMs sum in another order (fan-in <= 3*3*256)
        assert_close(store[name][:], ref[key], terms=3 * 3 * 256, err_msg=name)
    # the model's own prediction is recorded from the output logits
    np.testing.assert_array_equal(store.predictions, ref["e"].argmax(1))
    assert_close(store.logits, ref["e"], terms=512)
    assert store.complete and len(store) == 12
    np.testing.assert_array_equal(store.index, np.arange(12))


@pytest.mark.parametrize("reduce", ["mean", "max", "flatten"])
def test_reductions_equal_numpy_on_oracle_maps(resnet_case, tmp_path, reduce):
    m, x, layers, ref = resnet_case
    store = capture(m, x, ["layer2"], tmp_path / "r.h5", reduce=reduce, progress=False)
    full = ref["b"]
    want = {"mean": full.mean((2, 3)), "max": full.max((2, 3)), "flatten": full.reshape(12, -1)}[
        reduce
    ]
    assert_close(store["layer2"][:], want, terms=3 * 3 * 128 * full[0, 0].size)
    assert store["layer2"].attrs["reduction"] == reduce
    assert store["layer2"].attrs["source_shape"] == list(full.shape[1:])


def test_hand_computed_values_of_a_tiny_model(tmp_path):
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        lin.bias.copy_(torch.tensor([0.25, -1.0]))
    model = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.0, 0.5]])
    store = capture(model, x, ["0", "1"], tmp_path / "t.h5", progress=False)
    # by hand: x @ W.T + b
    want = np.array([[-0.75, 2.5], [4.25, -3.0], [-0.75, 0.5]])
    np.testing.assert_allclose(store["0"][:], want)
    np.testing.assert_allclose(store["1"][:], np.maximum(want, 0))
    np.testing.assert_array_equal(store.predictions, [1, 0, 1])


class Reuse(nn.Module):
    """Calls `shared` twice and returns a tuple and a dict from submodules."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(3, 3)
        self.split = Split()

    def forward(self, x):
        h = self.shared(x)
        h = self.shared(torch.tanh(h))
        out = self.split(h)
        return out["sum"]


class Split(nn.Module):
    def forward(self, h):
        return {"sum": h.sum(1, keepdim=True), "pair": (h[:, :1], h * 2)}


def test_module_reuse_and_nested_outputs(tmp_path):
    torch.manual_seed(0)
    model = Reuse()
    x = torch.randn(4, 3)
    store = capture(model, x, ["shared", "split"], tmp_path / "u.h5", progress=False)
    assert store.layers == ["shared", "shared:1", "split[sum]", "split[pair][0]", "split[pair][1]"]
    with torch.no_grad():
        h0 = model.shared(x)
        h1 = model.shared(torch.tanh(h0))
    assert_close(store["shared"][:], h0.numpy(), terms=3)
    assert_close(store["shared:1"][:], h1.numpy(), terms=3)
    assert_close(store["split[pair][1]"][:], 2 * h1.numpy(), terms=3)
    assert store["shared:1"].attrs["call_index"] == 1
    assert store["shared:1"].attrs["module_path"] == "shared"
    # a single call can be asked for
    only = capture(model, x, ["shared:1"], tmp_path / "v.h5", progress=False)
    assert only.layers == ["shared:1"]
    assert_close(only["shared:1"][:], h1.numpy(), terms=3)


def test_inplace_relu_does_not_clobber_captured_pre_activation(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3), nn.ReLU(inplace=True)
    )
    x = torch.randn(6, 1, 10, 10)
    store = capture(model, x, ["0", "1", "2"], tmp_path / "i.h5", progress=False)
    with torch.no_grad():
        pre = model[0](x)
    got = store["0"][:]
    assert (got < 0).any(), "conv output has negatives; inplace ReLU must not have zeroed them"
    assert_close(got, pre.numpy(), terms=9)
    assert_close(store["1"][:], pre.clamp(min=0).numpy(), terms=9)


def test_3d_volumes_any_channel_count_and_thumbnails(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    x = torch.rand(5, 2, 8, 12, 10)
    store = capture(model, x, ["0", "4"], tmp_path / "v.h5", reduce="mean", progress=False)
    with torch.no_grad():
        want = model[0](x).mean((2, 3, 4)).numpy()
    # a conv of fan-in 2*27, then a mean over 8*12*10 voxels, each summed in its own order
    assert_close(store["0"][:], want, terms=54 * 960)
    th = store.thumbnails
    assert th.shape == (5, 12, 10) and th.dtype == np.uint8
    # the middle axial slice, channel mean, scaled to 0..255: ordering of pixels is preserved
    mid = x[:, :, 4].mean(1).numpy()
    for i in range(5):
        order_ok = np.corrcoef(th[i].ravel().astype(float), mid[i].ravel())[0, 1]
        assert order_ok > 0.99
    mip = capture(model, x, ["4"], tmp_path / "m.h5", thumbnails="mip", progress=False).thumbnails
    want = x.amax(2).mean(1).numpy()
    assert np.corrcoef(mip[0].ravel().astype(float), want[0].ravel())[0, 1] > 0.99


def test_thumbnail_of_large_rgb_image_is_at_most_64px_keeping_aspect(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    x = torch.rand(2, 3, 200, 100)
    th = capture(model, x, ["0"], tmp_path / "t.h5", reduce="mean", progress=False).thumbnails
    assert th.shape == (2, 64, 32, 3)


def test_inputs_from_dataloader_dataset_and_dict_batches(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(10, 1, 4, 4)
    y = torch.arange(10) % 3
    ds = TensorDataset(x, y)
    a = capture(model, DataLoader(ds, batch_size=4), ["1"], tmp_path / "a.h5", progress=False)
    b = capture(model, ds, ["1"], tmp_path / "b.h5", batch_size=3, progress=False)
    batches = [
        {"image": x[i : i + 5], "label": y[i : i + 5], "site": ["A"] * 3 + ["B"] * 2}
        for i in (0, 5)
    ]
    c = capture(model, batches, ["1"], tmp_path / "c.h5", progress=False)
    for s in (a, b, c):
        np.testing.assert_array_equal(s.labels, y.numpy())
        assert_close(s["1"][:], a["1"][:], terms=16)
    assert list(c.metadata["site"]) == ["A", "A", "A", "B", "B"] * 2
    d = capture(
        model,
        x.numpy(),
        ["1"],
        tmp_path / "d.h5",
        labels=y.numpy(),
        metadata={"scanner": np.array(["GE"] * 5 + ["Siemens"] * 5)},
        progress=False,
    )
    assert list(d.metadata["scanner"][4:6]) == ["GE", "Siemens"]


def test_model_restored_and_no_hooks_after_exception(tmp_path):
    torch.manual_seed(0)

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("bad batch")
            return self.body(x)

    model = Boom()
    model.train()
    model.body[0].weight.requires_grad_(False)
    n_hooks = sum(len(m._forward_hooks) for m in model.modules())
    x = torch.randn(20, 4)
    with pytest.raises(RuntimeError, match="bad batch"):
        capture(model, x, ["body.0"], tmp_path / "b.h5", batch_size=4, progress=False)
    assert model.training and model.body[1].training
    assert not model.body[0].weight.requires_grad and model.body[0].bias.requires_grad
    assert sum(len(m._forward_hooks) for m in model.modules()) == n_hooks
    # rows of the two batches written before the error are intact; the store says incomplete
    s = open_store(tmp_path / "b.h5")
    assert not s.complete and len(s) == 8
    with torch.no_grad():
        assert_close(s["body.0"][:], model.body[0](x[:8]).numpy(), terms=4)
    # and the capture resumes from there without duplicating rows (once the reader is closed)
    model.calls = 10
    with pytest.raises(OSError, match="close it"):
        capture(model, x, ["body.0"], tmp_path / "b.h5", batch_size=4, resume=True, progress=False)
    s.close()
    s2 = capture(model, x, ["body.0"], tmp_path / "b.h5", batch_size=4, resume=True, progress=False)
    assert s2.complete and len(s2) == 20
    np.testing.assert_array_equal(s2.index, np.arange(20))
    with torch.no_grad():
        assert_close(s2["body.0"][:], model.body[0](x).numpy(), terms=4)


def test_device_argument_moves_model_back(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    store = capture(
        model, torch.randn(4, 3), ["0"], tmp_path / "d.h5", device="cpu", progress=False
    )
    assert store.provenance["config"]["device"] == "cpu"
    assert next(model.parameters()).device.type == "cpu"


def test_list_and_resolve_layers():
    m = torchvision.models.resnet18()
    assert list_layers(m, include="layer4.*") == ["layer4.0", "layer4.1"]  # children only
    convs = list_layers(m, include="layer4.**", types="Conv2d")
    assert convs == [
        "layer4.0.conv1",
        "layer4.0.conv2",
        "layer4.0.downsample.0",
        "layer4.1.conv1",
        "layer4.1.conv2",
    ]
    assert list_layers(m, include="layer1.0.*", exclude="**.bn*") == [
        "layer1.0.conv1",
        "layer1.0.relu",
        "layer1.0.conv2",
    ]
    assert list_layers(m, types=nn.Linear) == ["fc"]
    assert list(resolve_layers(m, "layer1.*.conv2")) == ["layer1.0.conv2", "layer1.1.conv2"]
    with pytest.raises(KeyError, match=r"'layer1\.0\.conv1'"):
        resolve_layers(m, ["layer1.0.conv_1"])
