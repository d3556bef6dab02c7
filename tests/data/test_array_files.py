"""Array files (inspect_kit.data.array_files): rows of .npz and HDF5 arrays, errors that name
the file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from inspect_kit.data._errors import DataFileError
from inspect_kit.data.array_files import (
    ArrayDataset,
    adds_channel_axis,
    check_numeric,
    h5_datasets,
    open_h5,
    open_npz,
)
from inspect_kit.data.transforms import SampleTransform


def test_layouts():
    assert adds_channel_axis((5, 8, 8), "x") is True
    assert adds_channel_axis((5, 1, 4, 8, 8), "x") is False
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        adds_channel_axis((5, 8), "x")


def test_rows_of_an_in_memory_uint8_array_scale_and_gain_a_channel():
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    ds = ArrayDataset(x, SampleTransform(), channel_axis_added=True)
    assert len(ds) == 2
    np.testing.assert_allclose(ds[1].numpy(), x[1][None] / 255.0, rtol=1e-6)


def test_hdf5_rows_are_read_lazily_and_survive_pickling(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(0).random((4, 2, 5, 5)).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["g/images"] = x
    with open_h5(tmp_path / "d.h5") as f:
        assert h5_datasets(f) == ["g/images"]
    ds = ArrayDataset(None, SampleTransform(), False, h5=(str(tmp_path / "d.h5"), "g/images"))
    np.testing.assert_array_equal(ds[3].numpy(), x[3])
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers: the file reopens per process
    np.testing.assert_array_equal(clone[0].numpy(), x[0])


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="broken.npz"):
        open_npz(bad)
    with pytest.raises(DataFileError, match="not numbers"):
        check_numeric(np.array(["a"]), "strings.npz:x")
