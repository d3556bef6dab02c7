"""Localisation metrics: against Quantus and scikit-learn on the same maps, hand-computed
values, and on the lesion task with a trained model and oracle attributions."""

import warnings

import numpy as np
import pytest
import torch

from inspect_kit.analysis.trust import average_precision, localization_scores, mass_outside

from . import _lesion_models as L


@pytest.fixture(scope="module")
def random_maps():
    rng = np.random.default_rng(0)
    maps = rng.random((8, 1, 20, 20))
    masks = np.zeros((8, 1, 20, 20))
    for i in range(8):
        r, c = rng.integers(2, 14, size=2)
        masks[i, 0, r : r + 5, c : c + 4] = 1
        maps[i, 0, r + 1, c + 1] += 1.0 * (i % 2)  # half of them point into the mask
    return maps, masks


def _quantus(name, maps, masks):
    quantus = pytest.importorskip("quantus")
    metric = getattr(quantus, name)(
        abs=False, normalise=False, disable_warnings=True, display_progressbar=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(
            model=None,
            x_batch=maps.astype(np.float32),
            y_batch=np.zeros(len(maps), int),
            a_batch=maps,
            s_batch=masks,
            channel_first=True,
        )
    return np.asarray(out, dtype=float)


# Quantus and this package compute the same sums in float64: agreement to 1e-9
def test_pointing_game_relevance_mass_and_rank_agree_with_quantus(random_maps):
    maps, masks = random_maps
    ours = localization_scores(maps, masks)
    np.testing.assert_array_equal(ours.pointing_game, _quantus("PointingGame", maps, masks))
    np.testing.assert_allclose(
        ours.relevance_mass, _quantus("RelevanceMassAccuracy", maps, masks), atol=1e-9
    )
    np.testing.assert_allclose(
        ours.relevance_rank, _quantus("RelevanceRankAccuracy", maps, masks), atol=1e-9
    )
    assert (ours.pointing_game[1::2] == 1).all()
    peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
    np.testing.assert_array_equal(
        ours.pointing_game, [s[p] for s, p in zip(masks, peaks, strict=True)]
    )


def test_auprc_matches_scikit_learn(random_maps):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    maps, masks = random_maps
    ours = localization_scores(maps, masks).auprc
    ref = [
        sklearn_metrics.average_precision_score(s.ravel(), m.ravel())
        for m, s in zip(maps, masks, strict=True)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    # ties between scores are one threshold, as scikit-learn counts them
    s, y = np.array([1.0, 1.0, 0.5, 0.5, 0.1]), np.array([1, 0, 1, 0, 0])
    assert average_precision(s, y) == pytest.approx(sklearn_metrics.average_precision_score(y, s))


def test_hand_computed_overlaps_and_volumes_in_3d():
    m = np.zeros((1, 4, 6, 6))
    truth = np.zeros((1, 4, 6, 6), bool)
    truth[0, 1:3, 1:3, 1:3] = True  # 8 voxels
    m[0, 1:3, 1:3, 1:4] = 1.0  # 12 voxels, 8 of them in the mask
    res = localization_scores(m, truth, spacing=(2.0, 1.0, 0.5), top_k=4)
    assert res.volume_unit == "mm^3"
    assert res.mask_volume[0] == pytest.approx(8 * 1.0)
    assert res.otsu_volume[0] == pytest.approx(12 * 1.0)
    assert res.iou_otsu[0] == pytest.approx(8 / 12)
    assert res.dice_otsu[0] == pytest.approx(2 * 8 / 20)
    assert res.relevance_mass[0] == pytest.approx(8 / 12)
    assert res.mask_share[0] == pytest.approx(8 / 144)
    # top 4 of 12 equal values are taken in raster order: (1,1,1), (1,1,2), (1,1,3), (1,2,1),
    # of which (1,1,3) is outside the mask: intersection 3, union 4 + 8 - 3
    assert res.iou_topk[0] == pytest.approx(3 / 9)
    frame = res.to_frame()
    assert frame["iou_otsu"].iloc[0] == pytest.approx(8 / 12)


def test_empty_masks_are_nan_and_shapes_are_checked():
    res = localization_scores(np.random.rand(2, 5, 5), np.zeros((2, 5, 5), bool))
    assert np.isnan(res.pointing_game).all() and np.isnan(res.relevance_mass).all()
    with pytest.raises(ValueError, match="do not match"):
        localization_scores(np.random.rand(2, 5, 5), np.zeros((2, 4, 5), bool))
    with pytest.raises(ValueError, match="spacing"):
        localization_scores(np.random.rand(2, 5, 5), np.ones((2, 5, 5), bool), spacing=(1.0,))


@pytest.mark.parametrize("method", ["gradient", "occlusion"])
def test_oracle_attributions_find_the_lesions_in_2d(method):
    net = L.model(2)
    pos = L.positives(2)
    x = torch.from_numpy(pos.X)
    maps = L.gradient(net, x).abs() if method == "gradient" else L.occlusion(net, x)
    res = localization_scores(maps, pos.lesion_mask, spacing=pos.spacing)
    means = res.means()
    # the lesion is off-centre: pointing at the centre almost never hits it
    assert means["pointing_game"] >= 0.8 > means["centre_baseline"] + 0.5
    # the lesion covers about 1% of the slice; the maps put many times that on it
    assert means["relevance_mass"] > 5 * means["mask_share"]
    assert means["auprc"] > 0.4
    sizes = pos.lesion_volume
    np.testing.assert_allclose(res.mask_volume, sizes)


def test_oracle_attributions_find_the_lesions_in_3d():
    net = L.model(3)
    pos = L.positives(3, n=12)
    maps = L.input_x_gradient(net, torch.from_numpy(pos.X))
    res = localization_scores(maps, pos.lesion_mask, spacing=pos.spacing)
    means = res.means()
    assert res.volume_unit == "mm^3"
    assert means["pointing_game"] >= 0.75 > means["centre_baseline"] + 0.4
    assert means["relevance_mass"] > 5 * means["mask_share"]


def test_shortcut_model_puts_far_more_mass_outside_the_brain():
    """Zech et al. (2018): the model trained where a corner tag predicts the label reads the tag.

    Both models saw tags in training; only for the shortcut model did the tag predict the
    label. Their maps are compared on the same tagged test slices.
    """
    clean, shortcut = L.model(2, "tagged"), L.model(2, "shortcut")
    test = L.task(2, "test", 0.5)
    tagged = test.subset(np.flatnonzero(test.has_tag)[:24])
    assert not (tagged.tag_mask & tagged.brain_mask).any()
    x = torch.from_numpy(tagged.X)
    for fn, factor in [(L.input_x_gradient, 3.0), (L.occlusion, 2.0)]:
        out_clean = mass_outside(fn(clean, x), tagged.brain_mask).mean()
        out_short = mass_outside(fn(shortcut, x), tagged.brain_mask).mean()
        assert out_short > factor * out_clean, (fn.__name__, out_clean, out_short)
