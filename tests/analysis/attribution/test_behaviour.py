"""What the maps show and what the model goes through: peaks in a known region (2D and 3D),
the model unchanged after every method (also after an exception), ReLUs guided backprop
must see, modules called twice, memory budgets, targets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from inspect_kit.analysis.attribution import METHODS, Region, attribute, model_guard

from ._models import RegionModel, TwiceModel, assert_same, snapshot, tiny

FAST = {"steps": 8, "samples": 4, "window": 2, "stride": 2}
NO_LRP = [m for m in METHODS if m != "lrp"]


def _x(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_peak_lies_in_the_region_the_logit_depends_on(dim: int, method: str) -> None:
    if method == "lrp":
        pytest.importorskip("zennit")
    shape = (12,) * dim
    box = tuple(slice(7, 10) for _ in range(dim))
    model = RegionModel(shape, box).eval()
    x = _x((2, 1) + shape) - 0.3  # some voxels switch the ReLU off: VarGrad has variance to show
    opts = {**FAST, "window": 1, "stride": 1}  # one voxel per window: exact localisation
    a = attribute(model, x, method=method, target=1, layer="relu", progress=False, **opts)
    inside = np.zeros(shape, bool)
    inside[box] = True
    for m in np.abs(a.summed()):
        peak = np.unravel_index(np.argmax(m), shape)
        assert inside[peak], f"{method}: peak {peak} outside the box"
        if method != "lrp":  # zennit's flat first-layer rule spreads relevance over its window
            assert m[~inside].max() == 0.0  # nothing outside reaches logit 1
    assert not a.flat.any()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_model_unchanged_after_every_method(method: str) -> None:
    if method == "lrp":
        pytest.importorskip("zennit")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    model.train()  # train-mode BatchNorm: named, run in eval, flags and buffers restored
    model[0].weight.requires_grad_(False)
    before = snapshot(model)
    with pytest.warns(UserWarning, match="training mode with normalisation layers 1"):
        a = attribute(model, _x((2, 1, 16, 16)), method=method, layer="3", progress=False, **FAST)
    assert_same(before, model)
    assert any("training mode" in w for w in a.warnings)


def test_model_unchanged_after_an_exception_and_an_interrupt() -> None:
    model = tiny(2, relu="inplace")
    model.relu2.inplace = True
    before = snapshot(model)

    def boom(out: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("target failed")

    def interrupt(out: torch.Tensor) -> torch.Tensor:
        raise KeyboardInterrupt

    for method in ("gradcam", "guided-backprop", "integrated-gradients", "occlusion"):
        with pytest.raises(RuntimeError, match="target failed"):
            attribute(model, _x((1, 1, 16, 16)), method=method, target=boom, progress=False, **FAST)
        assert_same(before, model)
    with pytest.raises(KeyboardInterrupt):
        attribute(
            model, _x((1, 1, 16, 16)), method="guided-gradcam", target=interrupt, progress=False
        )
    assert_same(before, model)


def test_guard_restores_what_a_method_changed() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(inplace=True))
    before = snapshot(net)
    with (
        pytest.warns(UserWarning, match="batch statistics"),
        pytest.raises(ValueError),
        model_guard(net, batchnorm="train"),
    ):
        net(torch.randn(4, 1, 6, 6))  # updates the running statistics
        net[2].inplace = False
        net[0].register_forward_hook(lambda *a: None)
        raise ValueError
    assert_same(before, net)


@pytest.mark.parametrize("method", ["guided-backprop", "guided-gradcam"])
def test_functional_and_inplace_relus_are_guided_like_modules(method: str) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    x = _x((2, 1, 16, 16)) - 0.5
    maps = {}
    for relu in ("module", "functional", "inplace"):
        model = tiny(2, relu=relu)
        maps[relu] = attribute(
            model, x, method=method, target=1, layer="conv3", progress=False
        ).maps
    np.testing.assert_allclose(maps["functional"], maps["module"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps["inplace"], maps["module"], rtol=1e-5, atol=1e-7)
    # captum's module hooks skip F.relu: its answer on the functional twin is not guided
    if method == "guided-backprop":
        theirs = captum_attr.GuidedBackprop(tiny(2, relu="functional")).attribute(x, target=1)
        assert not np.allclose(theirs.detach().numpy(), maps["module"], atol=1e-5)


def test_guided_backprop_names_what_it_cannot_see() -> None:
    class Gelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.act = nn.GELU()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.act(self.conv(x)).clamp(min=0.1))
            return self.fc(h.mean((2, 3)))

    with pytest.warns(UserWarning, match=r"cannot see gelu \(called in act\)"):
        a = attribute(
            Gelu().eval(), _x((1, 1, 8, 8)), method="guided-backprop", target=0, progress=False
        )
    assert any("clamp" in w and "<model>" in w for w in a.warnings)


def test_a_module_called_twice() -> None:
    model, x = TwiceModel().eval(), _x((2, 1, 16, 16))
    with pytest.warns(UserWarning, match=r"runs 2 times per forward.*'block:1'"):
        first = attribute(model, x, method="gradcam", target=0, layer="block", progress=False)
    second = attribute(model, x, method="gradcam", target=0, layer="block:1", progress=False)
    assert first.layer == "block" and second.layer == "block:1"
    # oracle: the same network with the two calls as separate modules (same weights)

    class Untied(nn.Module):
        def __init__(self, tied: TwiceModel) -> None:
            super().__init__()
            self.stem, self.head = tied.stem, tied.head
            self.b0, self.b1 = copy.deepcopy(tied.block), copy.deepcopy(tied.block)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.b1(torch.relu(self.b0(torch.relu(self.stem(x))))))
            return self.head(h.mean((2, 3)))

    untied = Untied(model).eval()
    for spec, res in (("b0", first), ("b1", second)):
        ref = attribute(untied, x, method="gradcam", target=0, layer=spec, progress=False)
        np.testing.assert_allclose(res.layer_maps, ref.layer_maps, rtol=1e-5, atol=1e-7)
    assert not np.allclose(first.layer_maps, second.layer_maps)
    with pytest.raises(ValueError, match="runs 2 time"):
        attribute(model, x, method="gradcam", layer="block:2", progress=False)


def test_default_cam_layer_keeps_resolution_and_warns_when_coarse() -> None:
    model = tiny(2)
    a = attribute(model, _x((1, 1, 16, 16)), method="gradcam", progress=False)
    assert a.layer == "relu3" and a.layer_resolution == (8, 8)  # deepest with >= 4 per axis
    with pytest.warns(UserWarning, match=r"'conv3' has a 2x2 grid, coarser than 4"):
        b = attribute(model, _x((1, 1, 4, 4)), method="gradcam", layer="conv3", progress=False)
    assert b.layer_resolution == (2, 2)


def test_timm_vit_tokens_reshaped_to_the_patch_grid() -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    vit = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=2,
        num_classes=3,
        embed_dim=32,
        num_heads=2,
    ).eval()
    x = _x((2, 3, 32, 32))
    a = attribute(vit, x, method="gradcam", target=1, progress=False)
    assert a.layer == "blocks.1.norm1" and a.layer_resolution == (4, 4)
    assert a.maps.shape == (2, 1, 32, 32) and not a.flat.any()
    # oracle: the same Grad-CAM by hand on the tokens
    store = []
    h = vit.blocks[1].norm1.register_forward_hook(lambda m, i, o: store.append(o))
    xx = x.clone().requires_grad_(True)
    out = vit(xx)
    h.remove()
    (g,) = torch.autograd.grad(out[:, 1].sum(), store[0])
    acts, grads = store[0][:, 1:].detach(), g[:, 1:]
    cam = torch.relu((grads.mean(1, keepdim=True) * acts).sum(2)).reshape(2, 1, 4, 4)
    np.testing.assert_allclose(a.layer_maps, cam.numpy(), rtol=1e-4, atol=1e-6)

    class Tokens(nn.Module):  # a transformer-like model that says nothing about its grid
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, 8, 8, stride=8)
            self.mix = nn.Linear(8, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.mix(self.embed(x).flatten(2).transpose(1, 2))
            return self.head(t.mean(1))

    with pytest.raises(ValueError, match=r"token_grid=\(rows, cols\) and prefix_tokens="):
        attribute(Tokens().eval(), x, method="gradcam", layer="mix", progress=False)
    ok = attribute(
        Tokens().eval(),
        x,
        method="gradcam",
        layer="mix",
        token_grid=(4, 4),
        prefix_tokens=0,
        progress=False,
    )
    assert ok.layer_resolution == (4, 4)


def test_monai_unet_with_region_targets() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    unet = nets.UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=2,
        channels=(4, 8),
        strides=(2,),
        num_res_units=0,
    ).eval()
    x = _x((1, 1, 16, 16))
    mask = np.zeros((16, 16), bool)
    mask[2:6, 3:7] = True
    a = attribute(unet, x, method="gradient", target=Region(1, "mask", mask=mask), progress=False)
    # oracle: the gradient of channel 1 summed over the mask, by hand
    xx = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((unet(xx)[:, 1] * torch.as_tensor(mask)).sum(), xx)
    np.testing.assert_allclose(a.maps, g.numpy(), rtol=1e-5, atol=1e-7)
    assert "channel 1 summed over the given mask" in a.targets[0] and "(16 voxels)" in a.targets[0]
    pred = attribute(
        unet, x, method="integrated-gradients", target=Region(1), steps=8, progress=False
    )
    n_pred = int((unet(x).argmax(1) == 1).sum())
    assert f"({n_pred} voxels)" in pred.targets[0]
    comp = attribute(unet, x, method="gradcam", target=Region(1, "component"), progress=False)
    assert comp.maps.shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="needs an output of shape"):
        attribute(unet, x, method="gradient", target="predicted", progress=False)


def test_region_component_is_one_connected_component() -> None:
    from inspect_kit.analysis.attribution import resolve_target

    out = torch.full((1, 1, 8, 8), -1.0)
    out[0, 0, 0:2, 0:2] = 1.0  # 4 voxels
    out[0, 0, 5:8, 5:8] = 1.0  # 9 voxels: the largest
    r = resolve_target(Region(0, "component"), out)
    assert r.masks is not None and int(r.masks.sum()) == 9 and float(r.masks[0, 6, 6]) == 1.0
    r = resolve_target(Region(0, "component", seed=(0, 1)), out)
    assert r.masks is not None and int(r.masks.sum()) == 4
    assert float(r.scores(out)[0]) == 4.0


def test_batching_under_a_budget_changes_nothing() -> None:
    model, x = tiny(3), _x((2, 1, 8, 8, 8))
    for method in ("integrated-gradients", "smoothgrad", "occlusion"):
        one = attribute(model, x, method=method, target=0, batch_size=1, progress=False, **FAST)
        many = attribute(
            model, x, method=method, target=0, memory_budget="1GiB", progress=False, **FAST
        )
        np.testing.assert_allclose(one.maps, many.maps, rtol=1e-4, atol=1e-6)


def test_targets_label_dataset_callable_and_named_outputs() -> None:
    model = tiny(2)
    x = _x((6, 1, 16, 16))
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    a = attribute(model, loader, method="gradient", target="label", progress=False)
    assert a.target_classes is not None and a.target_classes.tolist() == y.tolist()
    assert a.index is not None and a.index.tolist() == list(range(6))
    ref = attribute(model, x, method="gradient", target=y.tolist(), progress=False)
    np.testing.assert_allclose(a.maps, ref.maps, rtol=1e-6)
    one = attribute(
        model, x[0], method="gradient", target=0, progress=False
    )  # one sample (C, H, W)
    np.testing.assert_allclose(
        one.maps[0], attribute(model, x[:1], method="gradient", target=0, progress=False).maps[0]
    )

    def margin(out: torch.Tensor) -> torch.Tensor:
        return out[:, 1] - out[:, 0]

    m = attribute(model, x, method="gradient", target=margin, progress=False)
    diff = ref.maps  # noqa: F841
    g1 = attribute(model, x, method="gradient", target=1, progress=False).maps
    g0 = attribute(model, x, method="gradient", target=0, progress=False).maps
    np.testing.assert_allclose(m.maps, g1 - g0, rtol=1e-4, atol=1e-6)
    assert m.targets[0] == "margin(output)"

    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"aux": x.mean((1, 2, 3)), "logits": self.net(x)}

    d = attribute(Named().eval(), x, method="gradient", target=1, output="[logits]", progress=False)
    np.testing.assert_allclose(d.maps, g1, rtol=1e-6)
    with pytest.raises(ValueError, match=r"name the output you mean"):
        attribute(Named().eval(), x, method="gradient", target=1, progress=False)


def test_errors_name_what_would_be_right() -> None:
    model, x = tiny(2), _x((1, 1, 16, 16))
    with pytest.raises(ValueError, match="gradcam"):
        attribute(model, x, method="gradcamm", progress=False)
    with pytest.raises(TypeError, match="unknown attribution option"):
        attribute(model, x, method="gradient", stepz=3, progress=False)
    with pytest.raises(KeyError, match="conv3"):
        attribute(model, x, method="gradcam", layer="conv33", progress=False)
    with pytest.raises(ValueError, match="needs the true labels"):
        attribute(model, x, method="gradient", target="label", progress=False)
    with pytest.raises(ValueError, match="window_mm needs spacing"):
        attribute(model, x, method="occlusion", window_mm=4.0, progress=False)


def test_record_of_the_call() -> None:
    from inspect_kit.capture import state_dict_sha256

    model = tiny(2)
    a = attribute(
        model,
        _x((2, 1, 16, 16)),
        method="integrated-gradients",
        baseline="uniform",
        steps=8,
        random_state=3,
        progress=False,
    )
    assert a.model_sha256 == state_dict_sha256(model)
    assert a.params["baseline"] == "uniform" and a.params["steps"] == 8
    assert a.params["random_state"] == 3 and a.params["target"] == "predicted"
    again = attribute(
        model,
        _x((2, 1, 16, 16)),
        method="integrated-gradients",
        baseline="uniform",
        steps=8,
        random_state=3,
        progress=False,
    )
    np.testing.assert_array_equal(a.maps, again.maps)  # seeded
    assert a.key == again.key and '"method": "integrated-gradients"' in a.key
    flat = attribute(model, torch.zeros(1, 1, 16, 16), method="input-x-gradient", progress=False)
    assert flat.flat.tolist() == [True]
