"""Deletion/insertion and ROAD on the lesion task, in 2D and 3D."""

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis.trust import deletion_insertion, road

from . import _lesion_models as L


def test_random_map_deletion_and_insertion_auc_agree_within_noise():
    net = L.model(2)
    x = torch.from_numpy(L.task(2, "test").X[:40])
    rng = np.random.default_rng(0)
    maps = rng.random((40, 32, 32))
    res = deletion_insertion(net, x, maps, steps=16, score="logit")
    diff = res.auc_deletion - res.auc_insertion
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean()) < 3 * se + 1e-6
    # whereas input x gradient deletes the evidence first: deletion well below insertion
    pos = L.positives(2)
    xp = torch.from_numpy(pos.X)
    good = deletion_insertion(net, xp, L.input_x_gradient(net, xp), steps=16, score="logit")
    assert good.auc_deletion.mean() < good.auc_insertion.mean() - 1.0
    assert res.deletion.shape == (40, 17) and res.fractions[0] == 0 and res.fractions[-1] == 1
    # both curves start and end at the clean input and at the baseline
    np.testing.assert_allclose(res.deletion[:, 0], res.insertion[:, -1], rtol=1e-5, atol=1e-4)


def test_road_orders_a_faithful_map_and_not_a_random_one():
    net = L.model(2)
    pos = L.positives(2, n=16)
    x = torch.from_numpy(pos.X)
    grad = road(net, x, L.input_x_gradient(net, x), percentages=(0.05, 0.1, 0.2, 0.4))
    rand = road(
        net, x, np.random.default_rng(1).random((16, 32, 32)), percentages=(0.05, 0.1, 0.2, 0.4)
    )
    assert grad.lerf_auc - grad.morf_auc > 0.1
    assert abs(rand.lerf_auc - rand.morf_auc) < grad.lerf_auc - grad.morf_auc
    assert grad.morf_correct.mean() < grad.lerf_correct.mean()
    row = grad.to_records()[0]
    assert row["road_gap"] == pytest.approx(grad.lerf_auc - grad.morf_auc)


class _SliceMean(nn.Module):
    """A 3D model that averages the slices and applies the 2D model: on a volume of identical
    slices it computes exactly what the 2D model computes on one slice."""

    def __init__(self, net2d):
        super().__init__()
        self.net2d = net2d

    def forward(self, v):
        return self.net2d(v.mean(dim=2))


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_road_in_3d_on_identical_slices_agrees_with_2d(noise):
    net = L.model(2)
    pos = L.positives(2, n=6)
    x2 = torch.from_numpy(pos.X)  # (6, 1, 32, 32): 1024 pixels, shares of 1/8 are whole counts
    maps2 = L.input_x_gradient(net, x2)[:, 0].numpy()
    x3 = x2.unsqueeze(2).repeat(1, 1, 4, 1, 1)
    maps3 = np.repeat(maps2[:, None], 4, axis=1)
    pct = (0.125, 0.25, 0.5, 0.75)
    r2 = road(net, x2, maps2, percentages=pct, noise=noise, score="logit")
    r3 = road(_SliceMean(net).eval(), x3, maps3, percentages=pct, noise=noise, score="logit")
    if noise == 0.0:  # the same imputation, slice by slice: float32 model outputs
        np.testing.assert_allclose(r3.morf, r2.morf, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(r3.lerf, r2.lerf, rtol=1e-4, atol=1e-4)
    else:  # independent noise draws, averaged over 4 slices in 3D: curves agree closely
        assert abs(r3.morf_auc - r2.morf_auc) < 0.1 * abs(r2.lerf_auc - r2.morf_auc) + 0.05
        assert abs(r3.lerf_auc - r2.lerf_auc) < 0.1 * abs(r2.lerf_auc - r2.morf_auc) + 0.05


def test_3d_lesion_volume_deletion_runs_batched():
    net = L.model(3)
    pos = L.positives(3, n=4)
    x = torch.from_numpy(pos.X)
    maps = L.input_x_gradient(net, x)
    res = deletion_insertion(net, x, maps, steps=10, batch_size=16, score="logit")
    assert res.deletion.shape == (4, 11)
    assert res.auc_deletion.mean() < res.auc_insertion.mean()
    rd = road(net, x, maps, percentages=(0.02, 0.05, 0.1), batch_size=16)
    assert rd.morf.shape == (4, 3)


def test_model_flags_come_back_and_arguments_are_checked():
    net = L.model(2).train()
    x = torch.from_numpy(L.task(2, "test").X[:2])
    try:
        deletion_insertion(net, x, np.random.rand(2, 32, 32), steps=4)
        assert net.training and all(m.training for m in net.modules())
    finally:
        net.eval()
    with pytest.raises(ValueError, match="percentages"):
        road(net, x, np.random.rand(2, 32, 32), percentages=(0.5, 1.0))
    with pytest.raises(ValueError, match="baseline"):
        deletion_insertion(net, x, np.random.rand(2, 32, 32), baseline="purple")
    with pytest.raises(ValueError, match="do not match"):
        deletion_insertion(net, x, np.random.rand(2, 16, 16))
