"""The embedding cache keeps one map per parameter set: 3D, then 2D, then 3D reuses both."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture, embed
from inspect_kit.analysis.embedding import _api


def test_3d_then_2d_then_3d_reuses_both(tmp_path, monkeypatch):
    d = load_digits()
    X = torch.tensor(d.images[:150, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU()).eval()
    store = capture(
        model, X, ["1"], tmp_path / "s.h5", labels=d.target[:150], overwrite=True, progress=False
    )
    try:
        three = embed(store, "1", "pca", n_components=3, progress=False)
        two = embed(store, "1", "pca", n_components=2, progress=False)
        maxed = embed(store, "1", "pca", n_components=2, reduce="max", progress=False)
        assert not (three.from_cache or two.from_cache or maxed.from_cache)

        def no_fit(*args, **kwargs):
            raise AssertionError("recomputed a map the cache holds")

        monkeypatch.setattr(_api.PCAEmbedding, "fit", no_fit)
        again3 = embed(store, "1", "pca", n_components=3, progress=False)
        again2 = embed(store, "1", "pca", n_components=2, progress=False)
        again_max = embed(store, "1", "pca", n_components=2, reduce="max", progress=False)
        assert again3.from_cache and again2.from_cache and again_max.from_cache
        np.testing.assert_array_equal(again3.coords, three.coords)
        np.testing.assert_array_equal(again2.coords, two.coords)
        np.testing.assert_array_equal(again_max.coords, maxed.coords)
        assert again3.n_components == 3 and again2.n_components == 2
        # the latest map stays where reports read it
        assert "embeddings/1/pca" in store.results()
    finally:
        store.close()
