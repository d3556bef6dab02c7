"""Top-k dataset exemplars from a real activation store, against a brute-force oracle."""

import numpy as np
import pytest

from inspect_kit.analysis.featurevis import top_exemplars
from inspect_kit.capture import capture
from inspect_kit.store import open_store
from tests.numeric import assert_close


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory, digits_cnn, digits):
    path = tmp_path_factory.mktemp("fv") / "digits.h5"
    store = capture(
        digits_cnn,
        digits.X_test,
        ["conv2", "conv3"],
        path,
        labels=digits.y_test,
        progress=False,
    )
    store.close()
    store = open_store(path)
    yield store
    store.close()


def brute_force(acts, k, reduce):
    flat = acts.reshape(acts.shape[0], acts.shape[1], -1)
    red = flat.max(2) if reduce == "max" else flat.mean(2)
    order = np.argsort(-red, axis=0, kind="stable")[:k].T  # (C, k)
    return order, np.take_along_axis(red.T, order, axis=1)


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_store_exemplars_match_brute_force(digits_store, reduce):
    acts = digits_store.to_numpy("conv2")
    ex = top_exemplars(digits_store, "conv2", k=5, reduce=reduce, batch_size=100, progress=False)
    rows, vals = brute_force(acts, 5, reduce)
    # float32 spatial means (or maxima) reduced block by block vs all at once
    assert_close(ex.activations, vals, terms=int(np.prod(acts.shape[2:])))
    np.testing.assert_array_equal(ex.rows, rows)
    np.testing.assert_array_equal(ex.index, digits_store.index[rows])
    np.testing.assert_array_equal(ex.thumbnails, digits_store.thumbnails[rows])
    np.testing.assert_array_equal(ex.labels, digits_store.labels[rows])
    assert (np.diff(ex.activations, axis=1) <= 0).all()
    assert ex.units.tolist() == list(range(acts.shape[1]))


def test_chunking_does_not_change_the_result(digits_store):
    a = top_exemplars(digits_store, "conv3", k=4, units=[5, 1], batch_size=37, progress=False)
    b = top_exemplars(digits_store, "conv3", k=4, units=[5, 1], batch_size=1000, progress=False)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.units.tolist() == [5, 1]
    assert a.for_unit(1)["rows"].tolist() == a.rows[1].tolist()
    with pytest.raises(KeyError, match="available"):
        a.for_unit(3)


def test_exemplars_of_a_trained_unit_share_a_class(digits_store):
    # conv3 units of a digits classifier are class-selective: the top exemplars of most
    # units are dominated by one digit, far above the 10% a random draw would give
    ex = top_exemplars(digits_store, "conv3", k=10, batch_size=200, progress=False)
    purity = [np.bincount(lab, minlength=10).max() / 10 for lab in ex.labels]
    assert np.mean(purity) > 0.5


def test_array_source_and_flattened_layers(tmp_path, digits_cnn, digits):
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(50, 3, 4, 4))
    thumbs = rng.integers(0, 255, size=(50, 8, 8), dtype=np.uint8)
    ex = top_exemplars(acts, k=3, thumbnails=thumbs, batch_size=7, progress=False)
    rows, vals = brute_force(acts, 3, "mean")
    np.testing.assert_array_equal(ex.rows, rows)
    np.testing.assert_array_equal(ex.index, rows)
    np.testing.assert_array_equal(ex.thumbnails, thumbs[rows])
    # a layer captured flattened is unflattened with its stored source shape
    store = capture(
        digits_cnn,
        digits.X_test[:64],
        ["conv2"],
        tmp_path / "flat.h5",
        reduce="flatten",
        progress=False,
    )
    flat = top_exemplars(store, "conv2", k=3, batch_size=64, progress=False)
    acts = store.to_numpy("conv2").reshape(64, 16, 8, 8)
    rows, _ = brute_force(acts, 3, "mean")
    np.testing.assert_array_equal(flat.rows, rows)
    store.close()


def test_errors(digits_store):
    with pytest.raises(KeyError, match="conv2"):
        top_exemplars(digits_store, "conv22", progress=False)
    with pytest.raises(ValueError, match="reduce"):
        top_exemplars(digits_store, "conv2", reduce="median", progress=False)
    with pytest.raises(ValueError, match="units"):
        top_exemplars(digits_store, "conv2", units=[99], batch_size=100, progress=False)
    with pytest.raises(ValueError, match="name the layer"):
        top_exemplars(digits_store, progress=False)
    with pytest.raises(TypeError):
        top_exemplars([1, 2, 3], progress=False)
