"""Read a user's own data for the command line: image, NIfTI and DICOM folders, .npz, HDF5.

:func:`load_data` turns a path into a :class:`UserData`: a lazily read ``torch`` Dataset of
float32 samples shaped ``(C, H, W)`` (images) or ``(C, D, H, W)`` (volumes), with labels
(from a CSV, from sub-folder names, or from an array beside the inputs) and per-sample
metadata such as the file name, so that a capture can carry them into the store.

Supported sources
-----------------
- a folder of images: PNG, JPEG, TIFF, BMP (8/16-bit integers scaled to [0, 1]; float TIFF kept)
- a folder of NIfTI volumes (``.nii``, ``.nii.gz``), reoriented to RAS and laid out (D, H, W) =
  (inferior->superior, anterior->posterior, left->right) like :func:`load_mni_patches`
- a folder of DICOM files: one volume per series (Hounsfield units for CT), or one 2D sample
  per slice with ``as_slices`` (see :mod:`inspect_kit.data.volumes`)
- ``file.npz`` (inputs under x/X/images/data or ``file.npz:key``; labels under y/labels)
- ``file.h5:dataset`` (an HDF5 dataset, read lazily)

Labels come from ``labels="labels.csv"`` (rows ``filename,label``; for arrays, ``index,label``),
from ``labels="file.npz:key"`` / ``"file.h5:dataset"``, or, for a folder whose files sit in
sub-folders, from the sub-folder names (``data/tumour/a.png`` has label ``tumour``).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from inspect_kit.data._errors import DataFileError, reading_file
from inspect_kit.data._optional import require


def _image_what(path: Path) -> str:
    suf = path.suffix.lower().lstrip(".")
    return f"{'JPEG' if suf == 'jpg' else suf.upper()} image" if suf else "image"


_H5_HINT = "the file may be truncated or damaged"


def _open_h5(path: Path | str) -> Any:
    """``h5py.File(path, 'r')``, or a :class:`DataFileError` naming the file."""
    h5py = require("h5py")
    with reading_file(path, "HDF5 file", _H5_HINT):
        return h5py.File(path, "r")


logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
ARRAY_X_KEYS = ("x", "X", "images", "image", "inputs", "data", "volumes")
ARRAY_Y_KEYS = ("y", "Y", "labels", "label", "targets", "target")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class UserData:
    """A user's dataset, read lazily, with its labels and per-sample metadata.

    Attributes
    ----------
    dataset : torch.utils.data.Dataset
        Yields float32 tensors ``(C, H, W)`` or ``(C, D, H, W)``, in a fixed order.
    labels : ndarray (N,) or None
        Integer class codes (see ``class_names``), integers as given, or floats.
    class_names : list of str or None
        Names of the integer codes when labels were strings (sub-folders, CSV names).
    metadata : dict of str to ndarray (N,)
        Per-sample columns: ``filename`` for files, DICOM patient/modality/series, ...
    kind : str
        'images', 'nifti', 'dicom', 'npz' or 'hdf5'.
    source : str
        The path that was read.
    sample_shape : tuple of int
        Shape of one sample, ``(C, H, W)`` or ``(C, D, H, W)``.
    skipped : list of (str, str)
        Files left out as unreadable (``skip_unreadable=True``) and why.
    """

    dataset: Dataset[torch.Tensor]
    labels: np.ndarray | None
    class_names: list[str] | None
    metadata: dict[str, np.ndarray]
    kind: str
    source: str
    sample_shape: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # torch's Dataset declares no __len__

    @property
    def is_volume(self) -> bool:
        return len(self.sample_shape) == 4

    def to_array(self) -> np.ndarray:
        """All samples stacked into one float32 array ``(N, C, ...)`` (reads everything)."""
        return np.stack([np.asarray(self.dataset[i]) for i in range(len(self))]).astype(
            np.float32, copy=False
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for provenance."""
        return {
            "kind": self.kind,
            "source": self.source,
            "n_samples": len(self),
            "sample_shape": list(self.sample_shape),
            "labels": None if self.labels is None else str(self.labels.dtype),
            "class_names": self.class_names,
            "metadata": sorted(self.metadata),
            **self.options,
        }


# -- per-sample processing ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Processing:
    """What happens to every sample after reading: resize, window, normalise."""

    size: tuple[int, ...] | None = None
    window: tuple[float, float] | None = None
    normalize: str | tuple[Sequence[float], Sequence[float]] | None = None
    channels: int | None = None

    def __call__(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if self.channels is not None:
            t = _adapt_channels(t, self.channels)
        if self.size is not None and tuple(t.shape[1:]) != self.size:
            mode = "bilinear" if t.ndim == 3 else "trilinear"
            if t.ndim == 4:  # torch has no 3D antialiasing: Gaussian pre-filter as skimage does
                t = _antialias_3d(t, self.size)
            t = F.interpolate(
                t[None], size=self.size, mode=mode, align_corners=False, antialias=t.ndim == 3
            )[0]
        if self.window is not None:
            lo, hi = self.window
            t = ((t.clamp(lo, hi) - lo) / (hi - lo)).float()
        if self.normalize == "zscore":
            t = (t - t.mean()) / t.std().clamp_min(1e-8)
        elif self.normalize == "imagenet":
            t = _normalise(t, IMAGENET_MEAN, IMAGENET_STD)
        elif isinstance(self.normalize, tuple):
            t = _normalise(t, *self.normalize)
        return t.contiguous()


def _antialias_3d(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    factors = np.asarray(t.shape[1:], dtype=np.float64) / np.asarray(size, dtype=np.float64)
    sigma = np.maximum(0.0, (factors - 1.0) / 2.0)
    if not np.any(sigma > 0):
        return t
    from scipy import ndimage

    arr = t.numpy()
    out = np.stack([ndimage.gaussian_filter(c, sigma=sigma, mode="nearest") for c in arr])
    return torch.from_numpy(out.astype(np.float32, copy=False))


def _adapt_channels(t: torch.Tensor, channels: int) -> torch.Tensor:
    """One channel repeated to ``channels``, several averaged to one; equal counts kept."""
    c = t.shape[0]
    if c == channels:
        return t
    if c == 1:
        return t.expand(channels, *t.shape[1:]).contiguous()
    if channels == 1:
        return t.mean(dim=0, keepdim=True)
    raise ValueError(
        f"samples have {c} channels; channels={channels} can only be made from 1 channel "
        f"(repeated) or {channels} (kept), and channels=1 averages any count"
    )


def _channels_of(c: int, channels: int | None) -> int:
    """The channel count after :func:`_adapt_channels` (raises like it does)."""
    if channels is None or c == channels:
        return c
    if c == 1 or channels == 1:
        return channels
    return int(_adapt_channels(torch.zeros(c, 1), channels).shape[0])


def _normalise(t: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    c = t.shape[0]
    mean_t = torch.as_tensor(list(mean), dtype=t.dtype)
    std_t = torch.as_tensor(list(std), dtype=t.dtype)
    if mean_t.numel() not in (1, c) or std_t.numel() not in (1, c):
        raise ValueError(
            f"normalize has {mean_t.numel()} means / {std_t.numel()} stds for samples with {c} "
            "channel(s); give one value, or one per channel"
        )
    shape = (-1,) + (1,) * (t.ndim - 1)
    return (t - mean_t.view(shape)) / std_t.view(shape)


def _parse_normalize(normalize: Any) -> str | tuple[tuple[float, ...], tuple[float, ...]] | None:
    if normalize in (None, "none", "None"):
        return None
    if normalize in ("imagenet", "zscore"):
        return str(normalize)
    if isinstance(normalize, str):
        try:
            mean_s, std_s = normalize.split("/") if "/" in normalize else normalize.split(",")
            return (
                tuple(float(v) for v in mean_s.split(":")),
                tuple(float(v) for v in std_s.split(":")),
            )
        except ValueError:
            pass
    elif isinstance(normalize, tuple | list) and len(normalize) == 2:
        mean, std = normalize
        mean = (mean,) if np.isscalar(mean) else tuple(mean)
        std = (std,) if np.isscalar(std) else tuple(std)
        return (tuple(float(v) for v in mean), tuple(float(v) for v in std))
    raise ValueError(
        f"normalize={normalize!r} not understood; use None, 'imagenet', 'zscore' or "
        "'MEAN,STD' (per channel: 'M1:M2:M3,S1:S2:S3')"
    )


# -- datasets ------------------------------------------------------------------------------------
class _FileDataset(Dataset[torch.Tensor]):
    def __init__(self, paths: list[Path], read: Callable[[Path], np.ndarray], process: _Processing):
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


class _ArrayDataset(Dataset[torch.Tensor]):
    """Rows of an in-memory array or a lazily opened HDF5 dataset."""

    def __init__(
        self,
        array: Any,
        process: _Processing,
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
            with _open_h5(h5[0]) as f:
                self._n = int(f[h5[1]].shape[0])

    def _rows(self) -> Any:
        if self._h5 is None:
            return self._array
        if self._file is None:  # opened per process (DataLoader workers fork)
            self._file = _open_h5(self._h5[0])
        return self._file[self._h5[1]]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> torch.Tensor:
        if self._h5 is None:
            row = np.asarray(self._array[int(i)])
        else:
            with reading_file(self._h5[0], "HDF5 file", _H5_HINT):
                row = np.asarray(self._rows()[int(i)])
        if self.channel_axis_added:
            row = row[None]
        row = _scale_integers(row)
        return self.process(row)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        return state


def _scale_integers(arr: np.ndarray) -> np.ndarray:
    """uint8 -> [0, 1] by 255, uint16 by 65535; other types unchanged (as float32)."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32, copy=False)


# -- readers -------------------------------------------------------------------------------------
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


def _read_image(path: Path, channels: int | None) -> np.ndarray:
    from PIL import Image

    with reading_file(path, _image_what(path)), Image.open(path) as im:
        target = _image_mode(im.mode, channels)
        if target is not None:
            arr = np.asarray(im.convert(target))
        else:
            arr = np.asarray(im)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # PIL reads 16-bit PNG/TIFF as 32-bit 'I'
    arr = _scale_integers(arr)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if channels == 3 and arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    elif channels == 1 and arr.shape[0] != 1:
        arr = arr.mean(axis=0, keepdims=True)
    return arr


def _image_shape(path: Path, channels: int | None) -> tuple[int, ...]:
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


def _is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


# -- listing files and labels -----------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _kind_of(path: Path) -> str | None:
    suf = _suffix(path)
    if suf in IMAGE_SUFFIXES:
        return "images"
    if suf in NIFTI_SUFFIXES:
        return "nifti"
    if _is_dicom_file(path):
        return "dicom"
    return None


def _visible_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )


def _list_folder(folder: Path) -> tuple[str, list[Path]]:
    files = _visible_files(folder)
    kinds: dict[str, list[Path]] = {}
    for p in files:
        k = _kind_of(p)
        if k is not None:
            kinds.setdefault(k, []).append(p)
    if not kinds:
        raise ValueError(
            f"{folder} holds no readable files; expected images ({', '.join(IMAGE_SUFFIXES)}), "
            f"NIfTI ({', '.join(NIFTI_SUFFIXES)}) or DICOM files"
        )
    if len(kinds) > 1:
        counts = ", ".join(f"{len(v)} {k}" for k, v in kinds.items())
        raise ValueError(
            f"{folder} mixes file types ({counts}); put one kind of file in a data folder"
        )
    kind, paths = next(iter(kinds.items()))
    return kind, paths


def _encode_labels(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[str] | None]:
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


def _labels_for_files(
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
        stem = p.name[: -len(_suffix(p))] if _suffix(p) else p.name
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


def _split_key(spec: str) -> tuple[Path, str | None]:
    """'file.h5:group/images' -> (Path('file.h5'), 'group/images'); 'data/' -> (Path, None).

    The split is at the colon whose left side is an existing file (HDF5 keys may hold '/'
    and ':'); a path that exists as given has no key.
    """
    if Path(spec).exists():
        return Path(spec), None
    for i in range(len(spec) - 1, 0, -1):
        if spec[i] != ":":
            continue
        head = spec[:i]
        if len(head) == 1 and head.isalpha():  # a Windows drive letter
            break
        if Path(head).is_file():
            return Path(head), spec[i + 1 :] or None
    head, sep, tail = spec.rpartition(":")
    if sep and head and not (len(head) == 1 and head.isalpha()):
        return Path(head), tail or None
    return Path(spec), None


def _read_array_labels(spec: str) -> np.ndarray:
    path, key = _split_key(spec)
    if not path.exists():
        raise FileNotFoundError(f"label source {path} does not exist")
    if _suffix(path) == ".npz":
        with _open_npz(path) as z:
            key = key or next((k for k in ARRAY_Y_KEYS if k in z.files), None)
            if key is None or key not in z.files:
                raise KeyError(f"{path} has no array {key!r}; it holds {', '.join(z.files)}")
            with reading_file(path, ".npz file"):
                return np.asarray(z[key])
    with _open_h5(path) as f:
        if key is None or key not in f:
            raise KeyError(
                f"{path} has no dataset {key!r}; name one as {path}:<dataset> "
                f"(it holds {', '.join(_h5_datasets(f))})"
            )
        arr: np.ndarray = f[key][()]
    if arr.dtype.kind in "SO":
        arr = np.asarray([v.decode() if isinstance(v, bytes) else v for v in arr])
    return arr


def _h5_datasets(f: Any) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if hasattr(o, "shape") else None)
    return names


# -- array layout --------------------------------------------------------------------------------
def _array_layout(shape: tuple[int, ...], source: str) -> bool:
    """Whether a channel axis must be added: (N, H, W) -> (N, 1, H, W)."""
    if len(shape) == 3:
        return True
    if len(shape) in (4, 5):
        return False
    raise ValueError(
        f"{source} has shape {shape}; expected (N, H, W), (N, C, H, W) or (N, C, D, H, W)"
    )


def _check_size(size: Sequence[int] | None, ndim: int, what: str) -> tuple[int, ...] | None:
    if size is None:
        return None
    size = tuple(int(s) for s in size)
    if len(size) != ndim - 1 or any(s < 1 for s in size):
        dims = "H W" if ndim == 3 else "D H W"
        raise ValueError(
            f"size={size} does not fit {what} samples; give {ndim - 1} positive sizes ({dims})"
        )
    return size


# -- the entry point -----------------------------------------------------------------------------
def readable_source(source: str | Path) -> str | None:
    """None when ``source`` is data :func:`load_data` reads; otherwise why it is not.

    Checks only that the path exists and has a supported form (a folder, a ``.npz`` file, an
    HDF5 file), without reading it: what a store records as its data is re-read only then.

    Examples
    --------
    >>> readable_source("/no/such/folder")
    '/no/such/folder does not exist'
    """
    path, _ = _split_key(str(source))
    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir() or _suffix(path) in (".npz", ".h5", ".hdf5", ".hdf"):
        return None
    return f"{path} is not a folder, a .npz file or an HDF5 file"


def load_data(
    source: str | Path,
    *,
    labels: str | Path | None = None,
    size: Sequence[int] | None = None,
    channels: int | None = None,
    window: tuple[float, float] | None = None,
    normalize: Any = None,
    orientation: str | None = "RAS",
    spacing: Sequence[float] | None = None,
    as_slices: bool = False,
    sequences: Sequence[str] | None = None,
    allow_irregular: bool = False,
    skip_unreadable: bool = False,
    keep_identifiers: bool = False,
    id_salt: str | None = None,
    reorient: bool | None = None,
) -> UserData:
    """Open a user's data folder or array file for capture and analysis.

    Parameters
    ----------
    source : str or Path
        A folder of images (PNG/JPEG/TIFF/BMP), NIfTI volumes or DICOM files (searched
        recursively); ``file.npz`` or ``file.npz:key``; ``file.h5:dataset``.
    labels : str or Path, optional
        A CSV of ``filename,label`` rows (``index,label`` for arrays), or an array
        ``file.npz:key`` / ``file.h5:dataset``. Without it, labels come from sub-folder names
        (when every file sits in a sub-folder) or from the ``.npz``'s ``y``/``labels``.
    size : sequence of int, optional
        ``(H, W)`` or ``(D, H, W)``. Without ``spacing``, every sample is resized to it
        (bilinear / trilinear; needed when the files differ in size). With ``spacing``,
        volumes are centre-cropped or padded (with their minimum) to it instead.
    channels : int, optional
        Channels the model expects, for every format: images convert to grayscale (1) or RGB
        (3); a one-channel sample is repeated to any count; ``1`` averages several.
    window : (low, high), optional
        Clip to an intensity window and scale it to [0, 1] (e.g. ``(-1000, 400)`` HU).
    normalize : {None, 'imagenet', 'zscore'} or 'MEAN,STD'
        Normalisation after windowing: ImageNet's per-channel statistics, per-sample z-score,
        or given values.
    orientation : str or None, default 'RAS'
        NIfTI volumes and DICOM series are reoriented so their voxel axes point along these
        codes (nibabel's closest canonical for 'RAS'); None keeps the stored order. Samples
        are laid out (D, H, W) = (inferior->superior, anterior->posterior, left->right) for RAS.
    spacing : (d, h, w) float, optional
        Resample volumes to this voxel size in mm (trilinear, with a Gaussian anti-aliasing
        filter where the grid gets coarser).
    as_slices : bool
        DICOM: one 2D sample per slice (for 2D networks) instead of one volume per series.
    sequences : list of str, optional
        NIfTI: sub-folders that hold one sequence each (``["T1", "T2", "FLAIR"]``); files of
        the same name across them form one multi-channel sample, resampled onto the first's
        grid.
    allow_irregular : bool
        Load DICOM series with missing slices, uneven spacing or gantry tilt with a warning
        instead of an error.
    skip_unreadable : bool
        Skip files that cannot be read (logged; listed in ``UserData.skipped``) instead of
        stopping at the first.
    keep_identifiers : bool
        Keep DICOM PatientID verbatim in the metadata; by default it is a salted SHA-256 prefix.
    id_salt : str, optional
        The salt of those hashes; give the same one to compare IDs across stores (default: a
        random salt per call).
    reorient : bool, optional
        Deprecated spelling: ``reorient=False`` is ``orientation=None``.

    Returns
    -------
    UserData

    Raises
    ------
    FileNotFoundError, ValueError, KeyError
        A missing path, unreadable or mixed files (named), samples of different sizes without
        ``size``, irregular DICOM series, labels that do not match the samples.

    Examples
    --------
    >>> data = load_data("scans/", labels="labels.csv", size=(128, 128))    # doctest: +SKIP
    >>> len(data), data.sample_shape, data.class_names                     # doctest: +SKIP
    (240, (1, 128, 128), ['healthy', 'tumour'])
    >>> ct = load_data("dicom/", spacing=(1, 1, 1), size=(160, 192, 192))  # doctest: +SKIP
    >>> ct.metadata["Manufacturer"], ct.metadata["spacing_d"]             # doctest: +SKIP
    """
    if channels is not None and (int(channels) != channels or channels < 1):
        raise ValueError(f"channels={channels!r}; give a positive channel count, or None")
    channels = None if channels is None else int(channels)
    if window is not None:
        lo, hi = (float(v) for v in window)
        if not hi > lo:
            raise ValueError(f"window={window} must be (low, high) with high > low")
        window = (lo, hi)
    if reorient is False:
        orientation = None
    from inspect_kit.data.geometry import check_orientation

    orientation = check_orientation(orientation)
    if spacing is not None:
        spacing = tuple(float(v) for v in spacing)
        if len(spacing) != 3 or not all(v > 0 for v in spacing):
            raise ValueError(f"spacing={spacing} must be three positive sizes in mm (D H W)")
    norm = _parse_normalize(normalize)
    spec = str(source)
    path, key = _split_key(spec)
    if path.is_dir():
        if key is not None:
            raise ValueError(f"{spec}: a ':key' suffix only applies to .npz and HDF5 files")
        medical = {
            "orientation": orientation,
            "spacing": spacing,
            "as_slices": as_slices,
            "sequences": list(sequences) if sequences else None,
            "allow_irregular": allow_irregular,
            "skip_unreadable": skip_unreadable,
            "keep_identifiers": keep_identifiers,
            "id_salt": id_salt,
        }
        return _load_folder(path, labels, size, channels, window, norm, medical)
    if not path.exists():
        raise FileNotFoundError(
            f"data {spec!r} does not exist; give a folder of images/NIfTI/DICOM files, "
            "a .npz file, or an HDF5 dataset as file.h5:dataset"
        )
    suf = _suffix(path)
    if suf == ".npz":
        return _load_npz(path, key, labels, size, window, norm, channels)
    if suf in (".h5", ".hdf5", ".hdf"):
        return _load_h5(path, key, labels, size, window, norm, channels)
    kind = _kind_of(path)
    if kind is not None:
        raise ValueError(
            f"{spec} is a single {kind[:-1] if kind.endswith('s') else kind} file; "
            "give the folder that holds the files"
        )
    raise ValueError(f"cannot read {spec!r}: expected a folder, a .npz file, or file.h5:dataset")


def list_dicom_files(folder: Path) -> list[Path]:
    """The DICOM files under ``folder`` (recursively; hidden files and folders left out)."""
    return [p for p in _visible_files(folder) if _kind_of(p) == "dicom"]


def _load_folder(
    folder: Path,
    labels: str | Path | None,
    size: Sequence[int] | None,
    channels: int | None,
    window: tuple[float, float] | None,
    norm: Any,
    medical: dict[str, Any],
) -> UserData:
    from inspect_kit.data import volumes

    kind, paths = _list_folder(folder)
    skipped: list[tuple[Path, str]] = []
    spacing = medical["spacing"]
    if medical["as_slices"] and kind != "dicom":
        raise ValueError(f"as_slices (--slices) applies to DICOM folders; {folder} holds {kind}")
    if medical["sequences"] and kind != "nifti":
        raise ValueError(f"sequences apply to NIfTI folders; {folder} holds {kind}")
    if spacing is not None and medical["as_slices"]:
        raise ValueError(
            "spacing resamples volumes; with as_slices (--slices) give the 2D size (--size H W)"
        )
    if spacing is not None and kind == "images":
        raise ValueError(
            f"spacing applies to NIfTI and DICOM volumes, whose headers give their voxel size; "
            f"{folder} holds images without one (use size=)"
        )
    if kind == "images":
        meta: dict[str, list[Any]] = {"filename": [p.relative_to(folder).as_posix() for p in paths]}
        image_channels = channels if channels in (1, 3) else None
        shapes = [_image_shape(p, image_channels) for p in paths]

        def read(p: Path) -> np.ndarray:
            return _read_image(p, image_channels)

        spatial_spacing = None
    else:
        crop = None
        if spacing is not None and size is not None:
            crop = tuple(int(v) for v in size)
            if len(crop) not in (2, 3) or any(v < 1 for v in crop):
                raise ValueError(f"size={tuple(size)}: give positive sizes D H W (or H W)")
        opts = volumes.VolumeOptions(medical["orientation"], spacing, crop)
        if kind == "nifti":
            samples = volumes.nifti_samples(folder, paths, opts, medical["sequences"])
        else:
            samples, skipped = volumes.dicom_samples(
                paths,
                opts,
                as_slices=medical["as_slices"],
                allow_irregular=medical["allow_irregular"],
                skip_unreadable=medical["skip_unreadable"],
                keep_identifiers=medical["keep_identifiers"],
                id_salt=medical["id_salt"],
            )
        paths = [s.key_path for s in samples]
        shapes = [s.shape for s in samples]
        meta = volumes.metadata_columns(samples, folder)
        spatial_spacing = [s.spacing for s in samples]
        if crop is not None:
            size = None  # cropped/padded already: no interpolation after
    ndims = {len(s) for s in shapes}
    if len(ndims) > 1:
        raise ValueError(f"{folder} mixes 2D images and 3D volumes; use one kind per folder")
    size_t = _check_size(size, ndims.pop(), kind)
    chans = {s[0] for s in shapes}
    if len(chans) > 1 and channels is None:
        hint = "; pass channels=1 or 3 (--channels)" if kind == "images" else ""
        raise ValueError(f"{folder} holds samples with {sorted(chans)} channels{hint}")
    out_c = {_channels_of(c, channels) for c in chans}
    spatial = {s[1:] for s in shapes}
    if size_t is None and len(spatial) > 1:
        examples = sorted(spatial)[:3]
        raise ValueError(
            f"{folder} holds samples of {len(spatial)} different sizes (e.g. "
            f"{', '.join(map(str, examples))}); give a common size (--size)"
        )
    sample_shape = (out_c.pop(), *(size_t or shapes[0][1:]))
    if spatial_spacing is not None and size_t is not None:
        # interpolated to size: each voxel now covers old * n / size mm
        for k, col in zip(volumes.SPACING_COLUMNS[-len(size_t) :], range(len(size_t)), strict=True):
            meta[k] = [
                sp[col] * sh[1 + col] / size_t[col]
                for sp, sh in zip(spatial_spacing, shapes, strict=True)
            ]

    label_arr, class_names = None, None
    if labels is not None:
        label_arr, class_names = _labels_from_spec(labels, paths, folder, len(paths))
    elif not medical["sequences"]:
        rels = [p.relative_to(folder).parts for p in paths]
        if all(len(r) >= 2 for r in rels):
            label_arr, class_names = _encode_labels([r[0] for r in rels])
    process = _Processing(size_t, window, norm, channels)
    options = {
        "size": list(size_t) if size_t else (list(size) if size else None),
        "channels": channels,
        "window": list(window) if window else None,
        "normalize": norm if not isinstance(norm, tuple) else [list(norm[0]), list(norm[1])],
        "labels_from": str(labels)
        if labels is not None
        else ("sub-folders" if label_arr is not None else None),
    }
    if kind != "images":
        options.update(
            {
                "orientation": medical["orientation"],
                "spacing": list(spacing) if spacing else None,
                "as_slices": medical["as_slices"],
                "sequences": medical["sequences"],
            }
        )
        dataset: Dataset[torch.Tensor] = volumes.VolumeDataset(samples, opts, process)
    else:
        dataset = _FileDataset(paths, read, process)
    return UserData(
        dataset=dataset,
        labels=label_arr,
        class_names=class_names,
        metadata={k: _column(v) for k, v in meta.items()},
        kind=kind,
        source=str(folder),
        sample_shape=tuple(int(s) for s in sample_shape),
        options=options,
        skipped=[(str(p), why) for p, why in skipped],
    )


def _column(values: list[Any]) -> np.ndarray:
    """Numbers as float64 (missing as NaN), anything else as strings."""
    if values and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    ):
        return np.asarray(values, dtype=np.float64)
    return np.asarray(["" if v is None else str(v) for v in values], dtype=object)


def _labels_from_spec(
    labels: str | Path, paths: list[Path] | None, root: Path | None, n: int
) -> tuple[np.ndarray, list[str] | None]:
    spec = str(labels)
    lpath, key = _split_key(spec)
    if _suffix(lpath) in (".npz", ".h5", ".hdf5", ".hdf"):
        arr = _read_array_labels(spec)
        if arr.ndim != 1 or len(arr) != n:
            raise ValueError(
                f"labels {spec} have shape {arr.shape}; expected ({n},), one per sample"
            )
        return _encode_labels(list(arr) if arr.dtype.kind in "SUO" else arr)
    table = read_label_csv(lpath)
    if paths is not None and root is not None:
        return _encode_labels(_labels_for_files(table, paths, root, lpath))
    # arrays: rows 'index,label'
    missing = [i for i in range(n) if str(i) not in table]
    if missing:
        raise ValueError(
            f"{lpath} has no label for {len(missing)} of {n} samples (e.g. index "
            f"{', '.join(map(str, missing[:3]))}); for array data its first column is the sample index"
        )
    return _encode_labels([table[str(i)] for i in range(n)])


def _open_npz(path: Path) -> Any:
    """``np.load(path)`` without pickles, or a :class:`DataFileError` naming the file."""
    with reading_file(path, ".npz file", "save arrays with np.savez(path, x=images)"):
        return np.load(path, allow_pickle=False)


def _check_numeric(arr: Any, source: str) -> None:
    """Inputs must be numbers: strings, objects or records cannot feed a model."""
    kind = np.dtype(arr.dtype).kind
    if kind not in "biuf":
        raise DataFileError(
            f"{source}: holds {np.dtype(arr.dtype)} values, not numbers; the inputs must be "
            "a numeric array of images or volumes"
        )


def _load_npz(
    path: Path,
    key: str | None,
    labels: str | Path | None,
    size: Sequence[int] | None,
    window: tuple[float, float] | None,
    norm: Any,
    channels: int | None = None,
) -> UserData:
    with _open_npz(path) as z:
        files = list(z.files)
        if not files:
            raise DataFileError(
                f"{path}: the .npz file holds no arrays; save the inputs in it, e.g. "
                "np.savez(path, x=images, y=labels)"
            )
        if key is None:
            key = next((k for k in ARRAY_X_KEYS if k in files), None)
            if key is None and len(files) == 1:
                key = files[0]
        if key is None or key not in files:
            raise KeyError(
                f"{path} has no input array {key!r}; name it as {path}:<key> "
                f"(it holds {', '.join(files)})"
            )
        with reading_file(path, ".npz file"):
            x = np.asarray(z[key])
            y_key = next((k for k in ARRAY_Y_KEYS if k in files and k != key), None)
            y = np.asarray(z[y_key]) if (labels is None and y_key is not None) else None
    _check_numeric(x, f"{path}:{key}")
    add_c = _array_layout(x.shape, f"{path}:{key}")
    ndim = x.ndim - 1 + int(add_c)
    size_t = _check_size(size, ndim, "array")
    label_arr, class_names = None, None
    if labels is not None:
        label_arr, class_names = _labels_from_spec(labels, None, None, len(x))
    elif y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{path}:{y_key} has shape {y.shape}; expected ({len(x)},)")
        label_arr, class_names = _encode_labels(list(y) if y.dtype.kind in "SUO" else y)
    c = _channels_of(1 if add_c else int(x.shape[1]), channels)
    sample_shape = (c,) + (size_t or x.shape[1 + int(not add_c) :])
    return UserData(
        dataset=_ArrayDataset(x, _Processing(size_t, window, norm, channels), add_c),
        labels=label_arr,
        class_names=class_names,
        metadata={},
        kind="npz",
        source=f"{path}:{key}",
        sample_shape=tuple(int(s) for s in sample_shape),
        options={
            "size": list(size_t) if size_t else None,
            "window": list(window) if window else None,
        },
    )


def _load_h5(
    path: Path,
    key: str | None,
    labels: str | Path | None,
    size: Sequence[int] | None,
    window: tuple[float, float] | None,
    norm: Any,
    channels: int | None = None,
) -> UserData:
    with _open_h5(path) as f:
        names = _h5_datasets(f)
        if key is None or key not in f or not hasattr(f[key], "shape"):
            raise KeyError(
                f"{path} has no dataset {key!r}; name one as {path}:<dataset> "
                f"(it holds {', '.join(names) or 'no datasets'})"
            )
        shape = tuple(int(s) for s in f[key].shape)
        _check_numeric(f[key], f"{path}:{key}")
    add_c = _array_layout(shape, f"{path}:{key}")
    size_t = _check_size(size, len(shape) - 1 + int(add_c), "array")
    label_arr, class_names = None, None
    if labels is not None:
        label_arr, class_names = _labels_from_spec(labels, None, None, shape[0])
    c = _channels_of(1 if add_c else shape[1], channels)
    sample_shape = (c,) + (size_t or shape[1 + int(not add_c) :])
    return UserData(
        dataset=_ArrayDataset(
            None, _Processing(size_t, window, norm, channels), add_c, h5=(str(path), key)
        ),
        labels=label_arr,
        class_names=class_names,
        metadata={},
        kind="hdf5",
        source=f"{path}:{key}",
        sample_shape=tuple(int(s) for s in sample_shape),
        options={
            "size": list(size_t) if size_t else None,
            "window": list(window) if window else None,
        },
    )
