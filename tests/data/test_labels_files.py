"""Labels from CSV files, arrays and sub-folders (inspect_kit.data.labels_files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspect_kit.data.labels_files import (
    encode_labels,
    labels_for_files,
    labels_from_spec,
    read_array_labels,
    read_label_csv,
)


def test_encoding_keeps_numbers_and_codes_names_in_sorted_order():
    codes, names = encode_labels(["tumour", "healthy", "tumour"])
    assert codes.tolist() == [1, 0, 1] and names == ["healthy", "tumour"]
    assert encode_labels(["3", "1"])[0].tolist() == [3, 1]
    assert encode_labels(np.array([2.0, 5.0]))[0].dtype == np.int64
    floats, none = encode_labels(["0.5", "1.25"])
    assert floats.tolist() == [0.5, 1.25] and none is None


def test_csv_with_header_semicolons_and_blank_rows(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("filename;label\na.png;cat\n\nsub/b.png;dog\n", encoding="utf-8")
    assert read_label_csv(p) == {"a.png": "cat", "sub/b.png": "dog"}
    one = tmp_path / "one.csv"
    one.write_text("a.png\nb.png\n")
    with pytest.raises(ValueError, match="expected two"):
        read_label_csv(one)


def test_csv_keys_match_path_name_or_stem(tmp_path):
    paths = [tmp_path / "x" / "a.png", tmp_path / "y" / "b.png", tmp_path / "c.nii.gz"]
    table = {"x/a.png": "1", "b.png": "2", "c": "3"}
    assert labels_for_files(table, paths, tmp_path, Path("l.csv")) == ["1", "2", "3"]
    with pytest.raises(ValueError, match="no label for 1 of 3 files"):
        labels_for_files({"a.png": "1", "b.png": "2"}, paths, tmp_path, Path("l.csv"))


def test_array_labels_from_npz_and_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4)), labels=np.array([2, 0, 1]))
    assert read_array_labels(str(tmp_path / "d.npz")).tolist() == [2, 0, 1]
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["meta/y"] = np.array([b"b", b"a", b"b"])
    codes, names = labels_from_spec(f"{tmp_path / 'd.h5'}:meta/y", None, None, 3)
    assert codes.tolist() == [1, 0, 1] and names == ["a", "b"]
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        labels_from_spec(f"{tmp_path / 'd.h5'}:meta/y", None, None, 4)
    with pytest.raises(KeyError, match="meta/y"):
        read_array_labels(f"{tmp_path / 'd.h5'}:nope")


def test_index_rows_for_arrays(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("index,label\n1,b\n0,a\n")
    codes, names = labels_from_spec(p, None, None, 2)
    assert codes.tolist() == [0, 1] and names == ["a", "b"]
    with pytest.raises(ValueError, match="no label for 1 of 3 samples"):
        labels_from_spec(p, None, None, 3)
