"""Labels: a CSV of ``filename,label`` (or ``index,label``) rows, an array in an ``.npz`` or
HDF5 file, or sub-folder names, encoded as integers, floats, or class codes with names.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspect_kit.data._errors import DataFileError, reading_file
from inspect_kit.data.array_files import h5_datasets, open_h5, open_npz
from inspect_kit.data.listing import ARRAY_SUFFIXES, split_key, suffix
from inspect_kit.input_keys import Y_KEYS, first_key


def encode_labels(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """Integers stay integers, numbers stay floats, anything else becomes sorted class codes."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64), None
    if arr.dtype.kind == "f":
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64), None
        return arr.astype(np.float64), None
    strs = [str(v).strip() for v in values]
    try:
        ints = [int(s) for s in strs]
        return np.asarray(ints, dtype=np.int64), None
    except ValueError:
        pass
    try:
        floats = np.asarray([float(s) for s in strs], dtype=np.float64)
        return floats, None
    except ValueError:
        pass
    names = sorted(set(strs))
    lookup = {n: i for i, n in enumerate(names)}
    return np.asarray([lookup[s] for s in strs], dtype=np.int64), names


_HEADER_WORDS = {
    "file",
    "filename",
    "path",
    "name",
    "image",
    "index",
    "id",
    "label",
    "class",
    "target",
    "y",
    "sample",
}


def read_label_csv(path: str | Path) -> dict[str, str]:
    """Read ``key,label`` rows (an optional header is skipped) into a dict.

    Examples
    --------
    >>> read_label_csv("labels.csv")     # doctest: +SKIP
    {'case001.png': 'tumour', 'case002.png': 'healthy'}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    expected = "expected a text file of 'filename,label' rows"
    with open(path, "rb") as fb:
        if b"\x00" in fb.read(4096):
            raise DataFileError(f"{path}: not a text CSV file (it holds binary data); {expected}")
    with (
        reading_file(path, "CSV file", expected),
        open(path, newline="", encoding="utf-8-sig") as f,
    ):
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = [r for r in csv.reader(f, dialect) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataFileError(f"{path}: the label file is empty; {expected}")
    if len(rows[0]) < 2:
        raise DataFileError(
            f"{path}: the label file has {len(rows[0])} column(s); expected two: 'filename,label'"
        )
    head = [c.strip().lower() for c in rows[0][:2]]
    if head[0] in _HEADER_WORDS and head[1] in _HEADER_WORDS:
        rows = rows[1:]
    out: dict[str, str] = {}
    for r in rows:
        out[r[0].strip()] = r[1].strip()
    return out


def labels_for_files(
    table: dict[str, str], paths: list[Path], root: Path, csv_path: Path
) -> list[str]:
    """Match CSV keys to files by relative path, file name, or name without suffix."""
    by_key: dict[str, str] = {}
    for key, value in table.items():
        k = key.replace("\\", "/")
        by_key[k] = value
    found: list[str] = []
    missing: list[str] = []
    for p in paths:
        rel = p.relative_to(root).as_posix()
        stem = p.name[: -len(suffix(p))] if suffix(p) else p.name
        for k in (rel, p.name, stem, str(p)):
            if k in by_key:
                found.append(by_key[k])
                break
        else:
            missing.append(rel)
    if missing:
        raise ValueError(
            f"{csv_path} has no label for {len(missing)} of {len(paths)} files "
            f"(e.g. {', '.join(missing[:3])}); its first column must name each file "
            "(relative path, file name, or name without suffix)"
        )
    return found


def read_array_labels(spec: str) -> np.ndarray:
    path, key = split_key(spec)
    if not path.exists():
        raise FileNotFoundError(f"label source {path} does not exist")
    if suffix(path) == ".npz":
        with open_npz(path) as z:
            key = key or first_key(z.files, Y_KEYS)
            if key is None or key not in z.files:
                raise KeyError(f"{path} has no array {key!r}; it holds {', '.join(z.files)}")
            with reading_file(path, ".npz file"):
                return np.asarray(z[key])
    with open_h5(path) as f:
        if key is None or key not in f:
            raise KeyError(
                f"{path} has no dataset {key!r}; name one as {path}:<dataset> "
                f"(it holds {', '.join(h5_datasets(f))})"
            )
        arr: np.ndarray = f[key][()]
    if arr.dtype.kind in "SO":
        arr = np.asarray([v.decode() if isinstance(v, bytes) else v for v in arr])
    return arr


def labels_from_spec(
    labels: str | Path, paths: list[Path] | None, root: Path | None, n: int
) -> tuple[np.ndarray, list[str] | None]:
    spec = str(labels)
    lpath, key = split_key(spec)
    if suffix(lpath) in ARRAY_SUFFIXES:
        arr = read_array_labels(spec)
        if arr.ndim != 1 or len(arr) != n:
            raise ValueError(
                f"labels {spec} have shape {arr.shape}; expected ({n},), one per sample"
            )
        return encode_labels(list(arr) if arr.dtype.kind in "SUO" else arr)
    table = read_label_csv(lpath)
    if paths is not None and root is not None:
        return encode_labels(labels_for_files(table, paths, root, lpath))
    # arrays: rows 'index,label'
    missing = [i for i in range(n) if str(i) not in table]
    if missing:
        raise ValueError(
            f"{lpath} has no label for {len(missing)} of {n} samples (e.g. index "
            f"{', '.join(map(str, missing[:3]))}); for array data its first column is the sample index"
        )
    return encode_labels([table[str(i)] for i in range(n)])
