"""The MNI152 lesion task: anatomy, measured lesion sizes, the shortcut tag, and reference
CNNs that detect the lesions on held-out data."""

import numpy as np
import pytest

from inspect_kit.data.lesions import LESION_CLASSES, make_lesion_task
from inspect_kit.data.mni import _mni_volumes
from inspect_kit.models import evaluate_classifier

pytest.importorskip("nilearn.datasets")


@pytest.mark.parametrize("dim", [2, 3])
def test_shapes_labels_masks_and_reproducibility(dim):
    t = make_lesion_task(dim, 30, random_state=3)
    side = {2: 32, 3: 16}[dim]
    assert t.X.shape == (30, 1) + (side,) * dim and t.X.dtype == np.float32
    assert t.lesion_mask.shape == t.brain_mask.shape == (30,) + (side,) * dim
    axes = tuple(range(1, dim + 1))
    np.testing.assert_array_equal(t.lesion_mask.any(axis=axes), t.y == 1)
    assert not t.tag_mask.any() and not t.has_tag.any()
    # every lesion voxel inside the brain; the brain covers a good part of the grid
    assert not (t.lesion_mask & ~t.brain_mask).any()
    assert 0.25 < t.brain_mask.mean() < 0.8
    again = make_lesion_task(dim, 30, random_state=3)
    np.testing.assert_array_equal(t.X, again.X)
    other = make_lesion_task(dim, 30, random_state=4)
    assert not np.array_equal(t.X, other.X)
    assert LESION_CLASSES == ("no lesion", "lesion")


def test_measured_sizes_follow_the_radius():
    t = make_lesion_task(3, 40, size=32, voxel_mm=5.0, radius_mm=(9.0, 12.0), random_state=0)
    pos = t.y == 1
    np.testing.assert_allclose(t.lesion_volume[pos], t.lesion_mask[pos].sum(axis=(1, 2, 3)) * 125.0)
    sphere = 4 / 3 * np.pi * t.radius_mm[pos] ** 3
    ratio = t.lesion_volume[pos] / sphere
    assert 0.8 < ratio.mean() < 1.2  # voxelised balls of about 2 voxels' radius
    assert ((t.radius_mm[pos] >= 9.0) & (t.radius_mm[pos] <= 12.0)).all()
    assert np.isnan(t.radius_mm[~pos]).all() and (t.lesion_volume[~pos] == 0).all()
    t2 = make_lesion_task(2, 40, size=48, voxel_mm=4.0, radius_mm=(8.0, 10.0), random_state=0)
    p2 = t2.y == 1
    assert t2.volume_unit == "mm^2"
    ratio2 = t2.lesion_volume[p2] / (np.pi * t2.radius_mm[p2] ** 2)
    assert 0.8 < ratio2.mean() < 1.2


def test_lesions_sit_in_white_matter_and_are_hyperintense():
    t = make_lesion_task(2, 60, noise=0.0, gain_jitter=0.0, random_state=1)
    pos = np.flatnonzero(t.y == 1)
    # centre intensity: white matter (~0.87 in the template) plus the contrast
    centres = np.array([t.X[i, 0][tuple(t.lesion_center[i])] for i in pos])
    assert centres.mean() > 0.87 + 0.6
    # the template's brightest tissue stays below what a lesion centre reaches
    assert (t.X[t.y == 0].max(axis=(1, 2, 3)) <= 1.0 + 1e-6).all()
    vol = _mni_volumes(1)
    assert vol.prob.shape[0] == 3  # csf, grey, white: the map the centres were drawn from


def test_shortcut_tag_is_outside_the_brain_and_follows_the_label():
    t = make_lesion_task(2, 200, shortcut=0.9, random_state=2)
    agree = (t.has_tag == (t.y == 1)).mean()
    assert 0.84 < agree < 0.96
    assert not (t.tag_mask & t.brain_mask).any()
    np.testing.assert_array_equal(t.tag_mask.any(axis=(1, 2)), t.has_tag)
    tagged = t.X[t.has_tag][:, 0][:, :3, :3]
    assert tagged.mean() > 1.2
    perfect = make_lesion_task(3, 20, shortcut=1.0, random_state=0)
    np.testing.assert_array_equal(perfect.has_tag, perfect.y == 1)
    assert not (perfect.tag_mask & perfect.brain_mask).any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dim"):
        make_lesion_task(4)
    with pytest.raises(ValueError, match="shortcut"):
        make_lesion_task(2, 4, shortcut=0.2)
    with pytest.raises(ValueError, match="radius_mm"):
        make_lesion_task(2, 4, radius_mm=(5.0, 2.0))
    with pytest.raises(ValueError, match="field of view"):
        make_lesion_task(2, 4, size=16, voxel_mm=4.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_reference_cnns_detect_lesions_on_held_out_data(dim):
    from tests.analysis.trust import _lesion_models as L

    test = L.task(dim, "test")
    res = evaluate_classifier(L.model(dim), test.X, test.y)
    assert res["accuracy"] > 0.9  # chance is about 0.5
    assert res["balanced_accuracy"] > 0.9


def test_permuted_labels_model_does_not_generalise():
    from tests.analysis.trust import _lesion_models as L

    test = L.task(2, "test")
    assert evaluate_classifier(L.model(2, "permuted"), test.X, test.y)["accuracy"] < 0.7
