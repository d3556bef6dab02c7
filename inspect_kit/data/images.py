"""Image files (PNG, JPEG, TIFF, BMP) read as float32 ``(C, H, W)`` arrays, and a Dataset
over a list of files read on access.

8/16-bit integers are scaled to [0, 1]; float TIFFs keep their values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from inspect_kit.data._errors import reading_file
from inspect_kit.data.transforms import SampleTransform, scale_integers


def _image_what(path: Path) -> str:
    suf = path.suffix.lower().lstrip(".")
    return f"{'JPEG' if suf == 'jpg' else suf.upper()} image" if suf else "image"


class FileDataset(Dataset[torch.Tensor]):
    """Files read by ``read`` and transformed by ``process`` on access, in the given order."""

    def __init__(
        self, paths: list[Path], read: Callable[[Path], np.ndarray], process: SampleTransform
    ):
        self.paths = paths
        self.read = read
        self.process = process

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.paths[i]
        with reading_file(path, "file"):
            arr = self.read(path)
        return self.process(arr)


def _image_mode(mode: str, channels: int | None) -> str | None:
    """PIL mode to convert to, or None to keep the raw (high bit depth) values."""
    if channels == 1:
        return "L" if mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr") else None
    if channels == 3:
        return "RGB" if mode not in ("I;16", "I;16B", "I;16L", "I", "F") else None
    if mode in ("1", "L", "LA"):
        return "L"
    if mode in ("P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        return "RGB"
    return None  # I;16, I, F: keep the values


def read_image(path: Path, channels: int | None) -> np.ndarray:
    from PIL import Image

    with reading_file(path, _image_what(path)), Image.open(path) as im:
        target = _image_mode(im.mode, channels)
        if target is not None:
            arr = np.asarray(im.convert(target))
        else:
            arr = np.asarray(im)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # PIL reads 16-bit PNG/TIFF as 32-bit 'I'
    arr = scale_integers(arr)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if channels == 3 and arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    elif channels == 1 and arr.shape[0] != 1:
        arr = arr.mean(axis=0, keepdims=True)
    return arr


def image_shape(path: Path, channels: int | None) -> tuple[int, ...]:
    from PIL import Image

    # the header only (decoding every image twice would double the reading time); a file
    # damaged further in fails when it is read, with the same message naming it
    with reading_file(path, _image_what(path)), Image.open(path) as im:
        w, h = im.size
        mode = im.mode
    if channels is not None:
        c = channels
    else:
        target = _image_mode(mode, None)
        c = 3 if target == "RGB" else 1
    return (c, h, w)
