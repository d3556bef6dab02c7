import numpy as np
import pytest
from sklearn.datasets import load_digits

from inspect_kit.data import load_digits_images


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Half-pixel-centred bilinear resampling as an (n_out, n_in) matrix (independent oracle)."""
    M = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        M[i, lo] += 1 - (src - lo)
        M[i, hi] += src - lo
    return M


def test_shapes_dtypes_range_and_labels():
    X, y = load_digits_images(size=16)
    assert X.shape == (1797, 1, 16, 16) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.min() >= 170  # sklearn digits: 174..183 per class
    np.testing.assert_array_equal(y, load_digits().target)


def test_size_8_returns_the_original_images_scaled():
    X, _ = load_digits_images(size=8)
    np.testing.assert_allclose(X[:, 0], load_digits().images / 16.0, atol=1e-7)


@pytest.mark.parametrize("size", [16, 28])
def test_upsampling_matches_a_separable_bilinear_oracle(size):
    X, _ = load_digits_images(size=size)
    M = _bilinear_matrix(8, size)
    expected = np.einsum("ij,njk,lk->nil", M, load_digits().images / 16.0, M)
    np.testing.assert_allclose(X[:, 0], expected, atol=1e-5)


@pytest.mark.parametrize("size", [0, 1, 2.5, "16", True])
def test_invalid_size_is_rejected(size):
    with pytest.raises(ValueError, match="size"):
        load_digits_images(size=size)
