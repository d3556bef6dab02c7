"""Cascading-randomisation sanity check (Adebayo et al. 2018) on a trained digits CNN."""

import copy

import numpy as np
import pytest
import torch
from scipy import stats

from inspect_kit.analysis import featurevis as fv
from inspect_kit.analysis.featurevis.sanity import _default_layers


def snapshot(model):
    return (
        {n: t.clone() for n, t in model.state_dict().items()},
        {n: m.training for n, m in model.named_modules()},
    )


@pytest.mark.slow
def test_randomisation_separates_trained_from_random_weights(digits_cnn):
    before = snapshot(digits_cnn)
    res = fv.randomization_check(
        digits_cnn,
        fv.channel("conv3", list(range(8))),
        (1, 16, 16),
        steps=64,
        value_range=(0, 1),
        progress=False,
    )
    assert res.stages == ["trained", "conv3", "bn2", "conv2", "bn1", "conv1"]
    np.testing.assert_allclose(res.scores[0], 1.0)  # the trained model against itself
    # two seeds on the trained model agree far better than trained vs randomised weights
    assert res.reference.mean() > 0.3
    assert (res.mean_scores[1:] < 0.2).all(), res.mean_scores
    assert res.reference.mean() - res.mean_scores[1:].max() > 0.2
    assert res.images.shape == (6, 8, 1, 16, 16)
    # the trained model was never touched
    after = snapshot(digits_cnn)
    assert after[1] == before[1]
    for name, t in after[0].items():
        assert torch.equal(t, before[0][name]), name


def test_layers_above_the_objective_do_not_change_the_picture(digits_cnn):
    # randomising fc cannot change what conv2 computes: similarity stays exactly 1
    res = fv.randomization_check(
        digits_cnn,
        fv.channel("conv2", [0, 1]),
        (1, 16, 16),
        layers=["fc", "conv2"],
        steps=16,
        value_range=(0, 1),
        reference=False,
        metric="ssim",
        progress=False,
    )
    assert res.reference is None
    np.testing.assert_allclose(res.scores[1], 1.0)
    assert (res.scores[2] < 0.9).all()


def test_default_layers_are_parametrised_modules_below_the_objective(digits_cnn):
    assert _default_layers(digits_cnn, fv.channel("conv2", 0)) == ["conv2", "bn1", "conv1"]
    assert _default_layers(digits_cnn, fv.class_logit(0))[:2] == ["fc", "bn3"]
    with pytest.raises(KeyError, match="conv1"):
        fv.randomization_check(
            digits_cnn, "conv2#0", (1, 16, 16), layers=["conv7"], steps=1, progress=False
        )


def test_similarity_metrics_against_scipy_and_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((3, 1, 12, 12))
    b = a + 0.3 * rng.random((3, 1, 12, 12))
    sp = fv.image_similarity(a, b, "spearman")
    expected = [stats.spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(sp, expected)
    ss = fv.image_similarity(a, b, "ssim", data_range=1.3)
    for i in range(3):
        _, full = structural_similarity(
            a[i, 0],
            b[i, 0],
            win_size=7,
            data_range=1.3,
            gaussian_weights=False,
            use_sample_covariance=False,
            full=True,
        )
        assert ss[i] == pytest.approx(full.mean(), abs=1e-6)
    # 3D volumes, and a constant image has no rank correlation
    v = rng.random((2, 1, 6, 6, 6))
    np.testing.assert_allclose(fv.image_similarity(v, v, "ssim"), 1.0)
    assert fv.image_similarity(np.ones((1, 1, 4, 4)), a[:1, :, :4, :4])[0] == 0.0
    with pytest.raises(ValueError, match="metric"):
        fv.image_similarity(a, b, "pearson")


def test_randomisation_of_a_copy_uses_its_own_generator(digits_cnn):
    kw = dict(steps=4, value_range=(0, 1), progress=False, reference=False)
    a = fv.randomization_check(copy.deepcopy(digits_cnn), "conv1#0", (1, 16, 16), **kw)
    b = fv.randomization_check(copy.deepcopy(digits_cnn), "conv1#0", (1, 16, 16), **kw)
    c = fv.randomization_check(
        copy.deepcopy(digits_cnn), "conv1#0", (1, 16, 16), random_state=1, **kw
    )
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images[1], c.images[1])


def test_one_random_state_seeds_the_check(digits_cnn):
    kw = dict(layers=["fc"], steps=2, value_range=(0, 1), progress=False)
    new = fv.randomization_check(
        digits_cnn, fv.channel("conv2", 0), (1, 16, 16), random_state=3, reference=False, **kw
    )
    assert new.random_state == 3 and new.reference is None
    drawn = fv.randomization_check(
        digits_cnn,
        fv.channel("conv2", 0),
        (1, 16, 16),
        random_state=np.random.default_rng(5),
        reference=False,
        **kw,
    )
    again = fv.randomization_check(
        digits_cnn,
        fv.channel("conv2", 0),
        (1, 16, 16),
        random_state=drawn.random_state,
        reference=False,
        **kw,
    )
    np.testing.assert_array_equal(drawn.images, again.images)
