"""Agreement with MONAI's GradCAM/GradCAM++ on a 3D network and with zennit's LRP; IG's
completeness; LRP's conservation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inspect_kit.analysis.attribution import attribute

from ._models import tiny


def _x(shape: tuple[int, ...], seed: int = 5) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_monai_cams_on_a_3d_net(method: str) -> None:
    cam_mod = pytest.importorskip("monai.visualize")
    model, x = tiny(3), _x((1, 1, 12, 12, 12))
    ours = attribute(model, x, method=method, target=2, layer="conv3", progress=False)
    cls = cam_mod.GradCAM if method == "gradcam" else cam_mod.GradCAMpp
    cam = cls(nn_module=model, target_layers="conv3")
    theirs = cam.compute_map(x, class_idx=2)
    if method == "gradcam++":
        # MONAI weights the positive gradients by exp(score): a per-sample factor we leave out
        theirs = theirs / torch.exp(model(x)[:, 2]).reshape(-1, 1, 1, 1, 1)
    torch.testing.assert_close(
        torch.as_tensor(ours.layer_maps), theirs.detach(), rtol=1e-4, atol=1e-6
    )
    assert ours.maps.shape == (1, 1, 12, 12, 12)
    assert float(ours.layer_maps.max()) > 0  # not a vacuous comparison of zeros


def test_gradcam_upsampling_is_trilinear_on_the_voxel_grid() -> None:
    model, x = tiny(3), _x((1, 1, 12, 12, 12))
    a = attribute(model, x, method="gradcam", target=0, layer="conv3", progress=False)
    expect = nn.functional.interpolate(
        torch.as_tensor(a.layer_maps), size=(12, 12, 12), mode="trilinear", align_corners=False
    )
    torch.testing.assert_close(torch.as_tensor(a.maps), expect)


def _bn_net() -> nn.Module:
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        nn.AvgPool3d(2),
        nn.Conv3d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.1, 0.1)
        net[1].running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_lrp_matches_zennit_and_names_uncovered_layers() -> None:
    zennit = pytest.importorskip("zennit")
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonPlusFlat

    net, x = _bn_net(), _x((2, 1, 8, 8, 8))
    ours = attribute(net, x, method="lrp", target=[0, 2], progress=False)
    composite = EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])
    with Gradient(model=net, composite=composite) as attributor:
        out = net(x).detach()
        one_hot = torch.zeros_like(out)
        one_hot[0, 0], one_hot[1, 2] = 1.0, 1.0
        _, theirs = attributor(x, one_hot * out)
    torch.testing.assert_close(torch.as_tensor(ours.maps), theirs, rtol=1e-4, atol=1e-6)
    assert not [w for w in ours.warnings if "no LRP rule" in w]
    assert zennit is not None

    class WithNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.norm = nn.GroupNorm(2, 4)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.norm(self.conv(x))).mean((2, 3)))

    with pytest.warns(UserWarning, match=r"no LRP rule covers norm \(GroupNorm\)"):
        attribute(WithNorm().eval(), _x((1, 1, 8, 8)), method="lrp", target=0, progress=False)


def test_lrp_conserves_the_score_on_a_bias_free_net() -> None:
    pytest.importorskip("zennit")
    from zennit.composites import EpsilonPlus

    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 8 * 8, 2, bias=False),
    ).eval()
    x = _x((2, 1, 8, 8)).abs()
    a = attribute(
        net, x, method="lrp", target=1, composite=EpsilonPlus(epsilon=1e-9), progress=False
    )
    sums = a.maps.reshape(2, -1).sum(1)
    torch.testing.assert_close(
        torch.as_tensor(sums), torch.as_tensor(a.scores), rtol=1e-3, atol=1e-5
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_integrated_gradients_completeness(dim: int) -> None:
    model = tiny(dim)
    x = _x((2, 1) + (12,) * dim)
    a = attribute(
        model,
        x,
        method="integrated-gradients",
        target="predicted",
        steps=128,
        baseline="blurred",
        blur_sigma=2.0,
        progress=False,
    )
    from inspect_kit.analysis.attribution._gradients import blur

    cls = torch.arange(2), torch.as_tensor(a.target_classes)
    f_x, f_b = model(x).detach()[cls], model(blur(x, 2.0)).detach()[cls]
    torch.testing.assert_close(torch.as_tensor(a.scores), f_x)
    total = torch.as_tensor(a.maps.reshape(2, -1).sum(1))
    # the gap is reported against an independent f(x) - f(baseline) ...
    torch.testing.assert_close(
        torch.as_tensor(a.completeness_gap), total - (f_x - f_b), rtol=1e-4, atol=1e-5
    )
    # ... and is small: the map sums to f(x) - f(baseline) up to the quadrature error
    assert float((total - (f_x - f_b)).abs().max()) <= 1e-2 * float((f_x - f_b).abs().max())
    assert float((f_x - f_b).abs().min()) > 1e-3  # a real difference to explain
