"""Chunks follow the sample count; compression is a recorded choice that round-trips exactly."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import inspect_kit
from inspect_kit.capture import WriteOptions


def _capture(path: Path, n: int, **kw: object) -> inspect_kit.ActivationStore:
    torch.manual_seed(0)
    model = nn.Sequential(
        *[nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()) for _ in range(6)]
    )
    x = np.random.default_rng(1).standard_normal((n, 8, 16, 16)).astype(np.float32)
    layers = [f"{i}.{j}" for i in range(6) for j in range(2)]  # 12 full maps of 8 KiB a row
    return inspect_kit.capture(model, x, layers, path, batch_size=4, thumbnails=None,
                               progress=False, **kw)  # fmt: skip


def test_small_capture_makes_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "small.h5"
    with _capture(path, 6) as store:
        raw = sum(store[name][:].nbytes for name in store.layers)
        chunks = {store._file[f"layers/{name}"].chunks[0] for name in store.layers}
    assert chunks == {6}  # not 128 rows of 8 KiB (1 MiB) for a 6-sample store
    # 12 layers x 6 rows x 8 KiB = 576 KiB of activations; 1 MiB chunks made ~12.5 MiB
    assert path.stat().st_size < 1.3 * raw + 64_000


@pytest.mark.parametrize("compression", ["gzip", "lzf", "blosc"])
def test_compression_round_trips_exactly(tmp_path: Path, compression: str) -> None:
    if compression == "blosc":
        pytest.importorskip("hdf5plugin")
    plain = _capture(tmp_path / "plain.h5", 10)
    packed = _capture(
        tmp_path / f"{compression}.h5", 10, write=WriteOptions(compression=compression)
    )
    with plain, packed:
        assert packed.provenance["config"]["compression"] == compression
        for name in plain.layers:
            np.testing.assert_array_equal(packed[name][:], plain[name][:])
        np.testing.assert_array_equal(packed.to_dask("5.1").compute(), plain["5.1"][:])
    with h5py.File(tmp_path / f"{compression}.h5", "r") as f:
        assert f.attrs["compression"] == compression
    # ReLU maps are half zeros: every filter must save space on them
    assert (tmp_path / f"{compression}.h5").stat().st_size < 0.9 * (
        tmp_path / "plain.h5"
    ).stat().st_size


def test_unknown_compression_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression='zstd' is not one of None, 'gzip'"):
        _capture(tmp_path / "z.h5", 4, write=WriteOptions(compression="zstd"))
    assert not (tmp_path / "z.h5").exists()
