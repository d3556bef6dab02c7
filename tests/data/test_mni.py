import socket

import numpy as np
import pytest

from inspect_kit.data import TISSUE_CLASSES, load_mni_patches, mni_patches
from inspect_kit.data import mni as mni_module

nilearn_datasets = pytest.importorskip("nilearn.datasets")


@pytest.fixture(scope="module")
def nilearn_maps():
    """The template and tissue maps read straight from nilearn (the oracle)."""
    t1 = np.asarray(
        nilearn_datasets.load_mni152_template(resolution=1).dataobj
    )  # float32 in [0, 1]
    gm = np.asarray(nilearn_datasets.load_mni152_gm_template(resolution=1).dataobj, np.float64)
    wm = np.asarray(nilearn_datasets.load_mni152_wm_template(resolution=1).dataobj, np.float64)
    return t1, gm, wm


@pytest.mark.parametrize("dim, patch", [(2, 16), (3, 12), (2, 9)])
def test_shapes_dtypes_and_balance(dim, patch):
    X, y, names = load_mni_patches(dim=dim, patch=patch, n_per_class=50)
    assert X.shape == (150, 1) + (patch,) * dim and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50])
    assert names == list(TISSUE_CLASSES) == ["csf", "grey matter", "white matter"]
    assert np.isfinite(X).all()
    # shuffled, not sorted by class
    assert not np.all(np.diff(y) >= 0)


def test_deterministic_per_seed():
    a = load_mni_patches(dim=2, n_per_class=40, random_state=3)
    b = load_mni_patches(dim=2, n_per_class=40, random_state=3)
    c = load_mni_patches(dim=2, n_per_class=40, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_labels_agree_with_nilearn_tissue_maps(nilearn_maps):
    t1, gm, wm = nilearn_maps
    p = mni_patches(dim=3, patch=12, n_per_class=200, purity=0.7)
    y, info = p.y, p.info
    np.testing.assert_array_equal(
        y, load_mni_patches(dim=3, patch=12, n_per_class=200, purity=0.7)[1]
    )
    i, j, k = info["center_voxel"].T
    g, w = np.clip(gm[i, j, k], 0, 1), np.clip(wm[i, j, k], 0, 1)
    prob = np.stack([np.clip(1 - g - w, 0, 1), g, w], axis=1)
    np.testing.assert_array_equal(prob.argmax(axis=1), y)
    assert (prob.max(axis=1) >= 0.7).all()
    assert (t1[i, j, k] > 0.2).all()  # inside nilearn's brain mask
    np.testing.assert_allclose(info["tissue_probability"], prob, atol=1e-6)
    # mean intensity per class follows T1 contrast: csf < grey < white
    means = [t1[i, j, k][y == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]


@pytest.mark.parametrize("dim", [2, 3])
def test_patch_pixels_are_the_template_around_the_centre(nilearn_maps, dim):
    t1 = nilearn_maps[0]
    p = 8
    patches = mni_patches(dim=dim, patch=p, n_per_class=10, intensity_jitter=0.0, noise=0.0)
    X, info = patches.X, patches.info
    brain = t1[t1 > 0.2].astype(np.float64)  # float32 comparison, as nilearn's brain mask
    raw = X * brain.std() + brain.mean()  # undo the documented standardisation
    off = np.arange(p) - p // 2
    for n, (ci, cj, ck) in enumerate(info["center_voxel"]):
        # nilearn arrays are (x: left->right, y: post->ant, z: inf->sup); patches are
        # (D, H, W) = (inferior->superior, anterior->posterior, left->right).
        block = t1[np.ix_(ci + off, cj - off, ck + (off if dim == 3 else np.zeros(1, int)))]
        expected = block[:, :, 0].T if dim == 2 else block.transpose(2, 1, 0)
        np.testing.assert_allclose(raw[n, 0], expected, atol=1e-5)


def test_centre_mm_follows_the_affine():
    info = mni_patches(dim=2, n_per_class=5).info
    affine = nilearn_datasets.load_mni152_template(resolution=1).affine
    hom = np.c_[info["center_voxel"], np.ones(len(info["center_voxel"]))]
    np.testing.assert_allclose(info["center_mm"], (hom @ affine.T)[:, :3])


def test_jitter_makes_the_centre_intensity_ambiguous():
    # Without jitter the centre voxel nearly decides the class; with the default jitter a
    # one-feature threshold on it does clearly worse, so a model must use context.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    def centre_accuracy(**kw):
        X, y, _ = load_mni_patches(dim=2, patch=16, n_per_class=300, **kw)
        return cross_val_score(LogisticRegression(), X[:, 0, 8, 8, None], y, cv=3).mean()

    clean = centre_accuracy(intensity_jitter=0.0, noise=0.0)
    default = centre_accuracy()
    assert clean > 0.95
    assert default < clean - 0.05


def test_too_many_samples_and_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="n_per_class <="):
        load_mni_patches(dim=3, patch=16, n_per_class=10_000_000)
    with pytest.raises(ValueError, match="dim must be 2"):
        load_mni_patches(dim=4)
    with pytest.raises(ValueError, match="purity"):
        load_mni_patches(purity=0.2)
    with pytest.raises(ValueError, match="patch"):
        load_mni_patches(patch=0)


def test_loads_without_network(monkeypatch):
    mni_module._mni_volumes.cache_clear()
    mni_module._candidates.cache_clear()

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    X, _, _ = load_mni_patches(dim=2, n_per_class=5)
    assert X.shape == (15, 1, 16, 16)


def test_cached_volumes_are_read_only():
    vol = mni_module._mni_volumes(1)
    with pytest.raises(ValueError):
        vol.t1[0, 0, 0] = 1.0
