"""The analysis base: opening, the layer grammar on stores, sample matching, block reading,
SampleColumns, feature validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit import capture
from inspect_kit.analysis.base import (
    SampleColumns,
    check_features,
    layer_features,
    match_samples,
    opened,
    resolve_layer,
    resolve_layers,
    sample_positions,
)
from inspect_kit.analysis.blocks import Features, dask_features


class Twice(nn.Module):
    """conv -> relu, with relu called twice (stored as relu and relu:1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(3 * 5 * 5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.conv(x))
        h = self.relu(h - 0.1)
        return self.head(h.flatten(1))


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return Twice().eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(60, 1, 5, 5)).astype(np.float32)


def _capture(net, X, path, order, offset=0, layers=("conv", "relu", "relu:1", "head")):
    order = np.asarray(order)
    site = np.array(["A", "B", "C"])[order % 3]
    batches = [
        {
            "x": torch.from_numpy(X[order[i : i + 16]]),
            "y": torch.from_numpy(order[i : i + 16] % 2),
            "index": torch.from_numpy(order[i : i + 16] + offset),
            "site": list(site[i : i + 16]),
        }
        for i in range(0, len(order), 16)
    ]
    return capture(net, batches, list(layers), path, thumbnails="slice", progress=False)


@pytest.fixture
def store(net, images, tmp_path):
    with _capture(net, images, tmp_path / "a.h5", np.arange(len(images))) as s:
        yield s


def test_opened_takes_a_path_or_a_store_and_closes_only_what_it_opened(store):
    with opened(store) as same:
        assert same is store
    assert store.n_samples == 60  # still open
    with opened(str(store.path)) as fresh:
        assert fresh is not store and fresh.layers == store.layers
    assert "closed" in repr(fresh) and "open" in repr(store)
    with pytest.raises(TypeError, match="ActivationStore"):
        with opened(np.zeros(3)):
            pass


def test_layers_resolve_with_the_one_grammar(store):
    assert resolve_layers(store) == ["conv", "relu", "relu:1", "head"]
    assert resolve_layers(store, "relu:1") == ["relu:1"]
    assert resolve_layers(store, ["relu:0", "conv"]) == ["relu", "conv"]  # :0 is the first call
    assert resolve_layers(store, ["*"]) == ["conv", "relu", "head"]  # first calls
    assert resolve_layers(store, ["*:1"]) == ["relu:1"]
    assert resolve_layers(store, ["re*", "relu"]) == ["relu"]  # no duplicates
    with pytest.raises(KeyError, match="relu"):
        resolve_layers(store, ["rleu"])
    with pytest.raises(ValueError, match="whole layers"):
        resolve_layers(store, ["conv#2"])
    assert resolve_layer(store, "head") == "head"
    with pytest.raises(ValueError, match="4 layers"):
        resolve_layer(store, None)
    with pytest.raises(ValueError, match="matches 3 layers"):
        resolve_layer(store, "*")


@pytest.mark.parametrize("reduce", ["mean", "max", "flatten"])
@pytest.mark.parametrize("block_rows", [7, 16, 1000])
def test_blocks_pooled_or_flattened_equal_the_whole_layer(store, reduce, block_rows):
    raw = store.to_numpy("relu").astype(np.float64)  # (60, 3, 5, 5)
    want = {
        "mean": raw.mean(axis=(2, 3)),
        "max": raw.max(axis=(2, 3)),
        "flatten": raw.reshape(60, -1),
    }[reduce]
    feats = layer_features(store, "relu", reduce, block_rows=block_rows)
    got = np.concatenate([rows for _, rows in feats.blocks()])
    starts = [s for s, _ in feats.blocks()]
    assert starts == list(range(0, 60, block_rows))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 rows
    np.testing.assert_allclose(feats.to_numpy(), want, rtol=1e-5, atol=1e-6)
    # some samples, in a chosen order
    pos = np.array([59, 3, 17, 3])
    some = layer_features(store, "relu", reduce, samples=pos, block_rows=block_rows)
    np.testing.assert_allclose(some.to_numpy(), want[pos], rtol=1e-5, atol=1e-6)
    # the same rows on Dask
    lazy = dask_features(feats, dtype=np.float64)
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-5, atol=1e-6)


def test_samples_of_two_stores_match_by_dataset_index(net, images, tmp_path, store):
    perm = np.random.default_rng(1).permutation(60)[:45]  # another order, 15 missing
    with _capture(net, images, tmp_path / "b.h5", perm) as other:
        match = match_samples(store, other)
        assert len(match) == 45
        np.testing.assert_array_equal(match.index, np.sort(perm))
        np.testing.assert_array_equal(store.index[match.positions_a], match.index)
        np.testing.assert_array_equal(other.index[match.positions_b], match.index)
        # the matched rows hold the same sample's activations
        a = store.to_numpy("head")[match.positions_a]
        b = other.to_numpy("head")[match.positions_b]
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with _capture(net, images, tmp_path / "c.h5", np.arange(10), offset=100) as apart:
        with pytest.raises(ValueError, match="no sample in common"):
            match_samples(store, apart)


def test_sample_columns_are_one_typed_object(store):
    cols = SampleColumns.from_store(store)
    assert dataclasses.is_dataclass(cols) and len(cols) == 60
    with pytest.raises(dataclasses.FrozenInstanceError):
        cols.labels = None  # type: ignore[misc]
    np.testing.assert_array_equal(cols.index, np.arange(60))
    np.testing.assert_array_equal(cols.labels, np.arange(60) % 2)
    assert cols.thumbnails is not None and cols.thumbnails.shape[0] == 60
    assert cols.metadata["site"][4] == "B" and cols.source == str(store.path)
    some = SampleColumns.from_store(store, [5, 1], read_thumbnails=False)
    assert some.thumbnails is None and some.positions.tolist() == [5, 1]
    assert some.labels.tolist() == [1, 1] and some.metadata["site"].tolist() == ["C", "B"]
    assert some.take([1]).index.tolist() == [1] and some.take([1]).positions.tolist() == [1]
    mask = np.zeros(60, dtype=bool)
    mask[[2, 9]] = True
    assert SampleColumns.from_store(store, mask).index.tolist() == [2, 9]
    # given columns replace the store's, aligned with its rows
    own = SampleColumns.from_store(store, [0, 2], labels=np.arange(60) * 10)
    assert own.labels.tolist() == [0, 20]
    assert cols.target("labels")[0] == "label" and cols.target("site")[1][0] == "A"
    with pytest.raises(KeyError, match="site"):
        cols.target("sites")
    name, pred = cols.target("predictions")
    assert name == "prediction"
    np.testing.assert_array_equal(pred, store.to_numpy("head").argmax(axis=1))
    with pytest.raises(KeyError, match="no predictions"):
        SampleColumns.from_arrays(3).target("prediction")
    with pytest.raises(ValueError, match="labels has 3 entries for 2 samples"):
        SampleColumns(index=np.arange(2), labels=np.arange(3))


def test_positions_and_feature_validation():
    assert sample_positions(None, 4) is None
    assert sample_positions([-1, 0], 4).tolist() == [3, 0]
    with pytest.raises(IndexError):
        sample_positions([4], 4)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        sample_positions(np.ones(3, dtype=bool), 4)
    X = check_features(torch.ones(5, 2, 3))
    assert X.shape == (5, 6) and X.dtype == np.float32
    assert check_features(np.ones((3, 2)), float64=True).dtype == np.float64
    assert check_features(np.arange(4)).shape == (4, 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_features([[1.0, np.inf]])
    with pytest.raises(TypeError, match="numeric"):
        check_features(np.array([["a"]]))
    with pytest.raises(ValueError, match="N > 0"):
        check_features(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        check_features(np.zeros((3, 2)), min_samples=4)


def test_features_name_non_finite_rows():
    X = np.zeros((20, 3), dtype=np.float32)
    X[[4, 11], 1] = np.nan
    with pytest.raises(ValueError, match=r"2 non-finite values .* in 2 of 20 samples.*4, 11"):
        Features(X, block_rows=8).to_numpy()
