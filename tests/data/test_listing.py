"""What a data folder holds (inspect_kit.data.listing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspect_kit.data.listing import (
    is_dicom_file,
    kind_of,
    list_dicom_files,
    list_folder,
    split_key,
    suffix,
    visible_files,
)


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_kinds_by_suffix_and_by_the_dicom_marker(tmp_path):
    marked = _touch(tmp_path / "IM0001", b"\0" * 128 + b"DICM" + b"rest")
    unmarked = _touch(tmp_path / "README", b"just text, long enough " * 10)
    assert suffix(Path("a/B.Nii.Gz")) == ".nii.gz"
    assert [kind_of(Path(n)) for n in ("a.PNG", "b.tif", "c.nii", "d.dcm")] == [
        "images",
        "images",
        "nifti",
        "dicom",
    ]
    assert is_dicom_file(marked) and not is_dicom_file(unmarked)
    assert kind_of(unmarked) is None


def test_hidden_files_and_folders_are_left_out(tmp_path):
    _touch(tmp_path / "b" / "x.png")
    _touch(tmp_path / "a.png")
    _touch(tmp_path / ".hidden.png")
    _touch(tmp_path / ".cache" / "y.png")
    assert [p.relative_to(tmp_path).as_posix() for p in visible_files(tmp_path)] == [
        "a.png",
        "b/x.png",
    ]


def test_a_folder_holds_one_kind(tmp_path):
    _touch(tmp_path / "s" / "1.dcm")
    _touch(tmp_path / "s" / "2.dcm")
    _touch(tmp_path / "notes.txt")
    kind, paths = list_folder(tmp_path)
    assert kind == "dicom" and [p.name for p in paths] == ["1.dcm", "2.dcm"]
    assert list_dicom_files(tmp_path) == paths
    _touch(tmp_path / "img.png")
    with pytest.raises(ValueError, match=r"mixes file types \(1 images, 2 dicom\)"):
        list_folder(tmp_path)
    with pytest.raises(ValueError, match="holds no readable files"):
        list_folder(_touch(tmp_path / "empty" / "a.txt").parent)


def test_split_key_at_the_colon_after_an_existing_file(tmp_path):
    h5 = _touch(tmp_path / "data.h5")
    assert split_key(f"{h5}:group/a:b") == (h5, "group/a:b")
    assert split_key(str(tmp_path)) == (tmp_path, None)
    assert split_key("missing.npz:x") == (Path("missing.npz"), "x")
    assert split_key("C:data") == (Path("C:data"), None)  # a drive letter is no key
