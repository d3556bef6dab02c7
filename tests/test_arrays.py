"""inspect_kit.arrays.spatial_pool: one pooling for numpy and torch, used by every layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspect_kit.analysis.embedding import reduce_rows
from inspect_kit.analysis.featurevis.exemplars import top_exemplars
from inspect_kit.arrays import spatial_pool
from inspect_kit.capture.reductions import resolve_reduction


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (2, 3, 4, 5, 6)])
def test_numpy_and_torch_pool_alike_and_match_a_loop(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    want_mean = np.array(
        [[x[i, c].mean(dtype=np.float64) for c in range(shape[1])] for i in range(shape[0])]
    )
    want_max = np.array([[x[i, c].max() for c in range(shape[1])] for i in range(shape[0])])
    np.testing.assert_allclose(spatial_pool(x), want_mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(spatial_pool(x, "max"), want_max)
    t = spatial_pool(torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and t.shape == shape[:2]
    np.testing.assert_allclose(t.numpy(), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(spatial_pool(torch.from_numpy(x), "max").numpy(), want_max)
    assert spatial_pool(x, dtype=np.float64).dtype == np.float64
    vectors = x.reshape(shape[0], -1)
    assert spatial_pool(vectors) is vectors
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        spatial_pool(x, "median")


def test_capture_embedding_and_exemplars_pool_the_same_way():
    x = np.random.default_rng(1).normal(size=(6, 3, 4, 4)).astype(np.float32)
    _, at_capture = resolve_reduction("mean")
    captured = at_capture(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(reduce_rows(x, "mean"), captured, rtol=1e-5, atol=1e-6)
    ex = top_exemplars(x, k=2, reduce="mean")
    np.testing.assert_allclose(
        ex.activations[:, 0], np.sort(captured, axis=0)[::-1][0], rtol=1e-5, atol=1e-6
    )
