import socket

import numpy as np
import pytest
from scipy import ndimage

from inspect_kit.data import RETINA_CLASSES, load_retina_patches
from inspect_kit.data import retina as retina_module

pytest.importorskip("skimage")


def test_shapes_range_balance_and_determinism():
    X, y, names = load_retina_patches(patch=24, n_per_class=60, random_state=1)
    assert X.shape == (120, 3, 24, 24) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y), [60, 60])
    assert names == list(RETINA_CLASSES) == ["background", "vessel"]
    X2, y2, _ = load_retina_patches(patch=24, n_per_class=60, random_state=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, load_retina_patches(patch=24, n_per_class=60, random_state=2)[0])


def test_vessel_centres_are_dark_ridges_by_an_independent_filter():
    # Labels come from a Sato ridge filter; check them with a different operator: the black
    # top-hat (closing minus image) of the green channel, computed on each patch alone.
    X, y, _ = load_retina_patches(patch=32, n_per_class=150)
    green = X[:, 1]
    closed = ndimage.grey_closing(green, size=(1, 11, 11))
    tophat = (closed - green)[:, 16, 16]
    vessel, background = tophat[y == 1], tophat[y == 0]
    assert np.median(vessel) > 4 * np.median(background)
    # a single threshold on the top-hat separates the classes well
    threshold = np.median(tophat)
    accuracy = ((tophat > threshold) == (y == 1)).mean()
    assert accuracy > 0.85


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="n_per_class <="):
        load_retina_patches(n_per_class=10_000_000)
    with pytest.raises(ValueError, match="quantile"):
        load_retina_patches(vessel_quantile=0.3, background_quantile=0.5)
    with pytest.raises(ValueError, match="scale"):
        load_retina_patches(scale=2.0)


def test_loads_without_network(monkeypatch):
    retina_module._retina.cache_clear()

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    X, _, _ = load_retina_patches(patch=16, n_per_class=5)
    assert X.shape == (10, 3, 16, 16)
