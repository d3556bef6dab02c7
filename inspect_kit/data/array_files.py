"""Array files: ``.npz`` archives and HDF5 datasets, opened with errors that name the file,
and a Dataset over their rows (HDF5 read lazily, opened once per process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inspect_kit.data._errors import DataFileError, reading_file
from inspect_kit.data._optional import require
from inspect_kit.data.transforms import SampleTransform, scale_integers

H5_HINT = "the file may be truncated or damaged"


def open_h5(path: Path | str) -> Any:
    """``h5py.File(path, 'r')``, or a :class:`DataFileError` naming the file.

    Examples
    --------
    >>> with open_h5("data.h5") as f:   # doctest: +SKIP
    ...     f["images"].shape
    """
    h5py = require("h5py")
    with reading_file(path, "HDF5 file", H5_HINT):
        return h5py.File(path, "r")


def open_npz(path: Path) -> Any:
    """``np.load(path)`` without pickles, or a :class:`DataFileError` naming the file.

    Examples
    --------
    >>> with open_npz(Path("data.npz")) as z:   # doctest: +SKIP
    ...     z.files
    ['x', 'y']
    """
    with reading_file(path, ".npz file", "save arrays with np.savez(path, x=images)"):
        return np.load(path, allow_pickle=False)


def h5_datasets(f: Any) -> list[str]:
    """The names of every dataset in an open HDF5 file or group.

    Examples
    --------
    >>> with open_h5("data.h5") as f:   # doctest: +SKIP
    ...     h5_datasets(f)
    ['images', 'meta/labels']
    """
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if hasattr(o, "shape") else None)
    return names


def check_numeric(arr: Any, source: str) -> None:
    """Inputs must be numbers: strings, objects or records cannot feed a model.

    Examples
    --------
    >>> check_numeric(np.zeros(3), "x.npz:x")
    """
    kind = np.dtype(arr.dtype).kind
    if kind not in "biuf":
        raise DataFileError(
            f"{source}: holds {np.dtype(arr.dtype)} values, not numbers; the inputs must be "
            "a numeric array of images or volumes"
        )


def adds_channel_axis(shape: tuple[int, ...], source: str) -> bool:
    """Whether a channel axis must be added: (N, H, W) -> (N, 1, H, W).

    Examples
    --------
    >>> adds_channel_axis((10, 28, 28), "x.npz:x"), adds_channel_axis((10, 3, 28, 28), "x")
    (True, False)
    """
    if len(shape) == 3:
        return True
    if len(shape) in (4, 5):
        return False
    raise ValueError(
        f"{source} has shape {shape}; expected (N, H, W), (N, C, H, W) or (N, C, D, H, W)"
    )


class ArrayDataset(Dataset[torch.Tensor]):
    """Rows of an in-memory array or a lazily opened HDF5 dataset."""

    def __init__(
        self,
        array: Any,
        process: SampleTransform,
        channel_axis_added: bool,
        h5: tuple[str, str] | None = None,
    ):
        self._array = array
        self._h5 = h5
        self._file: Any = None
        self.process = process
        self.channel_axis_added = channel_axis_added
        self._n = int(array.shape[0]) if array is not None else 0
        if h5 is not None:
            with open_h5(h5[0]) as f:
                self._n = int(f[h5[1]].shape[0])

    def _rows(self) -> Any:
        if self._h5 is None:
            return self._array
        if self._file is None:  # opened per process (DataLoader workers fork)
            self._file = open_h5(self._h5[0])
        return self._file[self._h5[1]]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> torch.Tensor:
        if self._h5 is None:
            row = np.asarray(self._array[int(i)])
        else:
            with reading_file(self._h5[0], "HDF5 file", H5_HINT):
                row = np.asarray(self._rows()[int(i)])
        if self.channel_axis_added:
            row = row[None]
        row = scale_integers(row)
        return self.process(row)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        return state
