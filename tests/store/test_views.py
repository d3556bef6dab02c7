"""Dask and xarray views of a store equal its numpy rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import inspect_kit

da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 1, 8, 8)).astype(np.float32)
    path = tmp_path_factory.mktemp("views") / "s.h5"
    with pytest.MonkeyPatch.context() as mp:  # small HDF5 chunks: 4 rows of layer "1"
        mp.setattr("inspect_kit.store.writer.CHUNK_BYTES", 1000)
        inspect_kit.capture(
            model, x, ["1", "3"], path, labels=rng.integers(0, 2, 37), batch_size=8,
            metadata={"site": [f"s{i % 3}" for i in range(37)]}, dtype="bfloat16",
            progress=False,
        ).close()  # fmt: skip
    return path


def test_to_dask_equals_numpy_on_chunk_boundaries(store_path: Path) -> None:
    from inspect_kit.store.views import to_dask

    with inspect_kit.open_store(store_path) as store:
        for name in ("1", "3"):
            x = store.to_dask(name)
            ref = store.to_numpy(name)
            assert isinstance(x, da.Array) and x.shape == ref.shape and x.dtype == np.float32
            np.testing.assert_array_equal(x.compute(), ref)  # bfloat16 widened as numpy does
            np.testing.assert_array_equal(x[5:30:7].compute(), ref[5:30:7])
            h5_rows = store._file[f"layers/{name}"].chunks[0]
            assert all(c % h5_rows == 0 for c in x.chunks[0][:-1])
        assert store._file["layers/1"].chunks[0] == 4
        small = to_dask(store, "1", chunk_bytes=1)  # one HDF5 chunk per Dask chunk
        assert small.chunks[0] == (4,) * 9 + (1,)
        # read as float32: 432 B a row, 6000 B -> 3 HDF5 chunks of 4 rows
        assert to_dask(store, "1", chunk_bytes=6000).chunks[0][:2] == (12, 12)
        np.testing.assert_allclose(
            small.mean(axis=0).compute(), store.to_numpy("1").mean(axis=0), rtol=1e-6
        )


def test_to_xarray_dims_and_coords(store_path: Path) -> None:
    pytest.importorskip("xarray")
    with inspect_kit.open_store(store_path) as store:
        arr = store.to_xarray("1")
        assert arr.dims == ("sample", "channel", "y", "x")
        assert arr.shape == (37, 3, 6, 6)
        np.testing.assert_array_equal(arr["sample"].values, np.arange(37))
        np.testing.assert_array_equal(arr["label"].values, store.labels)
        assert list(arr["site"].values[:4]) == ["s0", "s1", "s2", "s0"]
        by_label = arr.groupby("label").mean("sample").compute()
        ref = store.to_numpy("1")[store.labels == 1].mean(axis=0)
        np.testing.assert_allclose(by_label.sel(label=1).values, ref, rtol=1e-6)
        assert store.to_xarray("3").dims == ("sample", "channel")
        assert arr.attrs["module_type"] == "ReLU"
