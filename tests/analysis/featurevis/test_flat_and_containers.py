"""Renders that cannot move are flagged flat; randomising a container randomises all of it."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis import featurevis as fv
from inspect_kit.analysis.featurevis.render import flat_units
from inspect_kit.figures.featurevis import plot_randomization, plot_unit_gallery


class DeadUnitNet(nn.Module):
    """conv -> ReLU whose channel 0 never fires on inputs in [0, 1] (bias -1000)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.block = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)
        )
        with torch.no_grad():
            self.conv.weight.clamp_(-0.3, 0.3)
            self.conv.bias.copy_(torch.tensor([-1000.0, 0.1]))

    def forward(self, x):
        return self.block(self.relu(self.conv(x)))


def test_post_relu_dead_unit_is_flat_and_said_so(caplog):
    model = DeadUnitNet().eval()
    with caplog.at_level(logging.WARNING):
        res = fv.render(
            model,
            fv.channel("relu", [0, 1]),
            (1, 12, 12),
            steps=12,
            value_range=(0, 1),
            progress=False,
        )
    np.testing.assert_array_equal(res.trajectory[:, 0], 0.0)  # a ReLU that never fires
    assert res.flat.tolist() == [True, False]
    assert res.flat_labels == ["relu#0"]
    assert "stayed flat for 1 of 2 units (relu#0)" in caplog.text
    fig = plot_unit_gallery(res)
    titles = [a.text for a in fig.layout.annotations]
    assert "unit 0 · FLAT: no feature" in titles and "unit 1" in titles
    assert "1 of 2 units stayed flat" in fig.layout.title.subtitle.text


def test_flat_units_oracle():
    rng = np.random.default_rng(0)
    traj = np.stack([np.zeros(5), np.linspace(0, 1, 5), np.full(5, 3.0)], axis=1)
    imgs = rng.random((3, 1, 6, 6))
    imgs[2] = 0.5  # uniform grey
    assert flat_units(traj, imgs, (0.0, 1.0)).tolist() == [True, False, True]
    # one step cannot show movement: only the image decides
    assert flat_units(traj[:1], imgs, (0.0, 1.0)).tolist() == [False, False, True]


def test_randomization_check_reports_nan_for_flat_renders():
    model = DeadUnitNet().eval()
    res = fv.randomization_check(
        model,
        fv.channel("relu", [0, 1]),
        (1, 12, 12),
        steps=10,
        value_range=(0, 1),
        progress=False,
        layers=["conv"],
    )
    assert res.flat[0].tolist() == [True, False]
    assert np.isnan(res.scores[:, 0]).all()  # grey vs grey is no similarity of 1.0
    assert res.scores[0, 1] == pytest.approx(1.0)
    # NaN exactly where a render (trained or randomised) stayed flat, a number elsewhere
    unusable = res.flat | res.flat[:1]
    np.testing.assert_array_equal(np.isnan(res.scores), unusable)
    assert np.isnan(res.reference[0])
    if not unusable[1, 1]:
        assert res.mean_scores[1] == pytest.approx(res.scores[1, 1])
    else:
        assert np.isnan(res.mean_scores[1])
    assert any("relu#0" in n and "flat" in n for n in res.notes)
    fig = plot_randomization(res)
    assert "NaN" in fig.layout.title.subtitle.text


def test_container_is_randomised_recursively_and_no_op_is_an_error():
    model = DeadUnitNet().eval()
    obj = fv.channel("block", [0, 1, 2])
    res = fv.randomization_check(
        model,
        obj,
        (1, 12, 12),
        steps=10,
        value_range=(0, 1),
        progress=False,
        layers=["block"],
        reference=False,
    )
    # block has no parameters of its own: before, 'randomising' it left the image at 1.0
    # (measured 0.03, 0.91, -0.64 after randomising block's two convolutions)
    assert (res.scores[1] < 0.99).all() and res.mean_scores[1] < 0.5, res.scores
    from inspect_kit.analysis.randomization import randomize_weights

    copy_ = DeadUnitNet()
    before = {n: p.clone() for n, p in copy_.block.named_parameters()}
    randomize_weights(copy_, ["block"], random_state=0, copy=False)
    for n, p in copy_.block.named_parameters():
        assert not torch.equal(p, before[n]), n  # every descendant's parameter was redrawn
    with pytest.raises(ValueError, match=r"\['relu'\] have no parameters"):
        fv.randomization_check(model, obj, (1, 12, 12), steps=2, progress=False, layers=["relu"])
