"""Damaged or mistaken files give one line naming the file and the problem, never a traceback.

Each case runs the ``inspect-kit`` command in-process (one in a real process) and checks the
exit status, that stderr is exactly ``inspect-kit <cmd>: error: <file>: <problem>``, and that
no terminal escape code appears anywhere in what the user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from inspect_kit.cli import main
from inspect_kit.data._errors import DataFileError
from inspect_kit.data.formats import load_data
from inspect_kit.data.labels_files import read_label_csv

TINY = ["inspect_kit.models:SmallCNN", "--model-args", '{"n_classes": 3, "widths": [4, 8, 8]}']


def _error_line(capsys, args: list[str], command: str, path: Path | str) -> str:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "\x1b" not in out + err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"inspect-kit {command}: error: {path}: "
    assert lines[0].startswith(prefix), (lines[0], prefix)
    return lines[0][len(prefix) :]


def _capture(data: str, out: Path, *extra: str) -> list[str]:
    return ["capture", *TINY, data, "--out", str(out), "--layers", "fc", "-q", *extra]


def _png_folder(root: Path) -> Path:
    folder = root / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _h5(path: Path) -> bytes:
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((4, 8, 8), np.float32)
    return path.read_bytes()


def test_corrupt_png(tmp_path, capsys):
    folder = _png_folder(tmp_path)
    bad = folder / "2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not the rest of a png" * 3)
    problem = _error_line(capsys, _capture(str(folder), tmp_path / "s.h5"), "capture", bad)
    assert problem.startswith("not a readable PNG image")
    assert not (tmp_path / "s.h5").exists()
    # a PNG whose header is fine but whose pixel data is cut off fails when it is read,
    # with the same kind of message
    good = (folder / "0.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFileError, match=r"2\.png: not a readable PNG image"):
        data = load_data(folder)
        for i in range(len(data)):
            data.dataset[i]


def test_a_dcm_that_is_not_dicom(tmp_path, capsys):
    folder = tmp_path / "ct"
    folder.mkdir()
    bad = folder / "slice1.dcm"
    bad.write_text("patient notes, not an image\n")
    problem = _error_line(capsys, _capture(str(folder), tmp_path / "s.h5"), "capture", bad)
    assert problem.startswith("not a readable DICOM file (no DICOM header")
    assert "force" not in problem  # pydicom's advice to its own callers is not ours


@pytest.mark.parametrize("case", ["empty", "strings", "not a zip"])
def test_empty_string_and_broken_npz(tmp_path, capsys, case):
    path = tmp_path / "d.npz"
    if case == "empty":
        np.savez(path)
        expected, shown = "the .npz file holds no arrays", path
    elif case == "strings":
        np.savez(path, x=np.array(["a.png", "b.png", "c.png"]))
        expected, shown = "holds <U5 values, not numbers", f"{path}:x"
    else:
        path.write_bytes(b"PK\x03\x04 truncated")
        expected, shown = "not a readable .npz file", path
    problem = _error_line(capsys, _capture(str(path), tmp_path / "s.h5"), "capture", shown)
    assert problem.startswith(expected), problem


def test_a_binary_labels_csv(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.float32))
    labels = tmp_path / "labels.csv"
    labels.write_bytes(bytes(range(256)) * 8)
    args = _capture(str(tmp_path / "d.npz"), tmp_path / "s.h5", "--labels", str(labels))
    assert _error_line(capsys, args, "capture", labels).startswith("not a text CSV file")
    # text that is not UTF-8 (no NUL bytes) says which byte
    labels.write_bytes(b"file,label\n\xff\xfe.png,a\n")
    with pytest.raises(DataFileError, match=r"labels\.csv: not a readable CSV file.*0xff"):
        read_label_csv(labels)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_truncated_or_corrupt_h5_as_data_and_as_store(tmp_path, capsys, damage):
    raw = _h5(tmp_path / "good.h5")
    path = tmp_path / f"{damage}.h5"
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(raw[:8] + b"\x00" * 64 + raw[72:])
    args = _capture(f"{path}:x", tmp_path / "s.h5")
    assert _error_line(capsys, args, "capture", path).startswith("not a readable HDF5 file")
    for command in (["embed", str(path), "--out", str(tmp_path / "figs")], ["report", str(path)]):
        problem = _error_line(capsys, command, command[0], path)
        assert problem.startswith("not a readable HDF5 file") and "damaged" in problem


def test_unwritable_output_paths(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.float32))
    a_file = tmp_path / "d.npz"
    out = a_file / "s.h5"  # its parent is a file
    problem = _error_line(capsys, _capture(str(a_file), out), "capture", out)
    assert problem == f"cannot be written: {a_file} is a file, not a folder"
    figs = a_file / "figures"
    problem = _error_line(
        capsys, ["embed", str(tmp_path / "missing.h5"), "--out", str(figs)], "embed", figs
    )
    assert "is a file, not a folder" in problem
    # a folder given where a store file is expected
    problem = _error_line(capsys, _capture(str(a_file), tmp_path), "capture", tmp_path)
    assert problem.startswith("is a folder")
    # a new sub-folder for the store is made, as report and demo make theirs
    assert main(_capture(str(a_file), tmp_path / "new" / "s.h5")) == 0
    assert (tmp_path / "new" / "s.h5").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_output_in_a_read_only_folder(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.float32))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        out = locked / "s.h5"
        problem = _error_line(capsys, _capture(str(tmp_path / "d.npz"), out), "capture", out)
        assert problem == f"cannot be written: no permission to write in {locked}"
    finally:
        locked.chmod(0o755)


def test_no_escape_codes_even_when_a_library_sends_them(tmp_path, capsys):
    (tmp_path / "net.py").write_text(
        "def build():\n"
        "    raise ValueError('\\x1b[31mbroken\\x1b[0m model \\x1b]8;;http://x\\x07link\\x1b]8;;\\x07')\n"
    )
    code = main(["layers", f"{tmp_path / 'net.py'}:build"])
    err = capsys.readouterr().err
    assert code == 1 and "\x1b" not in err and "\x07" not in err
    assert "broken model link" in err


def test_a_real_process_prints_one_line_and_exits_1(tmp_path):
    folder = _png_folder(tmp_path)
    bad = folder / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    proc = subprocess.run(
        [sys.executable, "-m", "inspect_kit", *_capture(str(folder), tmp_path / "s.h5")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"inspect-kit capture: error: {bad}: not a readable PNG image")
    assert proc.stderr.count("\n") == 1 and "\x1b" not in proc.stderr + proc.stdout
    assert json.dumps(proc.stdout) == '""'
