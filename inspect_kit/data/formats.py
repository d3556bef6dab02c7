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

This module is the entry point; the jobs under it live beside it: which files a folder
holds (:mod:`.listing`), image files (:mod:`.images`), ``.npz``/HDF5 arrays
(:mod:`.array_files`), label files (:mod:`.labels_files`), NIfTI/DICOM volumes
(:mod:`.volumes`) and what happens to each sample after reading (:mod:`.transforms`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inspect_kit.data._errors import DataFileError, reading_file
from inspect_kit.data.array_files import (
    ArrayDataset,
    adds_channel_axis,
    check_numeric,
    h5_datasets,
    open_h5,
    open_npz,
)
from inspect_kit.data.images import FileDataset, image_shape, read_image
from inspect_kit.data.labels_files import encode_labels, labels_from_spec
from inspect_kit.data.listing import ARRAY_SUFFIXES, kind_of, list_folder, split_key, suffix
from inspect_kit.data.transforms import Normalize, SampleTransform, channels_of, parse_normalize
from inspect_kit.input_keys import X_KEYS, Y_KEYS, first_key

logger = logging.getLogger(__name__)


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
    path, _ = split_key(str(source))
    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir() or suffix(path) in ARRAY_SUFFIXES:
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
    from inspect_kit.data.geometry import check_orientation

    orientation = check_orientation(orientation)
    if spacing is not None:
        spacing = tuple(float(v) for v in spacing)
        if len(spacing) != 3 or not all(v > 0 for v in spacing):
            raise ValueError(f"spacing={spacing} must be three positive sizes in mm (D H W)")
    norm = parse_normalize(normalize)
    spec = str(source)
    path, key = split_key(spec)
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
    suf = suffix(path)
    if suf == ".npz":
        return _load_npz(path, key, labels, size, window, norm, channels)
    if suf in (".h5", ".hdf5", ".hdf"):
        return _load_h5(path, key, labels, size, window, norm, channels)
    kind = kind_of(path)
    if kind is not None:
        raise ValueError(
            f"{spec} is a single {kind[:-1] if kind.endswith('s') else kind} file; "
            "give the folder that holds the files"
        )
    raise ValueError(f"cannot read {spec!r}: expected a folder, a .npz file, or file.h5:dataset")


def _load_folder(
    folder: Path,
    labels: str | Path | None,
    size: Sequence[int] | None,
    channels: int | None,
    window: tuple[float, float] | None,
    norm: Normalize,
    medical: dict[str, Any],
) -> UserData:
    from inspect_kit.data import volumes

    kind, paths = list_folder(folder)
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
        shapes = [image_shape(p, image_channels) for p in paths]

        def read(p: Path) -> np.ndarray:
            return read_image(p, image_channels)

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
    out_c = {channels_of(c, channels) for c in chans}
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
        label_arr, class_names = labels_from_spec(labels, paths, folder, len(paths))
    elif not medical["sequences"]:
        rels = [p.relative_to(folder).parts for p in paths]
        if all(len(r) >= 2 for r in rels):
            label_arr, class_names = encode_labels([r[0] for r in rels])
    process = SampleTransform(size_t, window, norm, channels)
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
        dataset = FileDataset(paths, read, process)
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


def _load_npz(
    path: Path,
    key: str | None,
    labels: str | Path | None,
    size: Sequence[int] | None,
    window: tuple[float, float] | None,
    norm: Normalize,
    channels: int | None = None,
) -> UserData:
    with open_npz(path) as z:
        files = list(z.files)
        if not files:
            raise DataFileError(
                f"{path}: the .npz file holds no arrays; save the inputs in it, e.g. "
                "np.savez(path, x=images, y=labels)"
            )
        if key is None:
            key = first_key(files, X_KEYS)
            if key is None and len(files) == 1:
                key = files[0]
        if key is None or key not in files:
            raise KeyError(
                f"{path} has no input array {key!r}; name it as {path}:<key> "
                f"(it holds {', '.join(files)})"
            )
        with reading_file(path, ".npz file"):
            x = np.asarray(z[key])
            y_key = first_key([f for f in files if f != key], Y_KEYS)
            y = np.asarray(z[y_key]) if (labels is None and y_key is not None) else None
    check_numeric(x, f"{path}:{key}")
    add_c = adds_channel_axis(x.shape, f"{path}:{key}")
    ndim = x.ndim - 1 + int(add_c)
    size_t = _check_size(size, ndim, "array")
    label_arr, class_names = None, None
    if labels is not None:
        label_arr, class_names = labels_from_spec(labels, None, None, len(x))
    elif y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{path}:{y_key} has shape {y.shape}; expected ({len(x)},)")
        label_arr, class_names = encode_labels(list(y) if y.dtype.kind in "SUO" else y)
    c = channels_of(1 if add_c else int(x.shape[1]), channels)
    sample_shape = (c,) + (size_t or x.shape[1 + int(not add_c) :])
    return UserData(
        dataset=ArrayDataset(x, SampleTransform(size_t, window, norm, channels), add_c),
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
    norm: Normalize,
    channels: int | None = None,
) -> UserData:
    with open_h5(path) as f:
        names = h5_datasets(f)
        if key is None or key not in f or not hasattr(f[key], "shape"):
            raise KeyError(
                f"{path} has no dataset {key!r}; name one as {path}:<dataset> "
                f"(it holds {', '.join(names) or 'no datasets'})"
            )
        shape = tuple(int(s) for s in f[key].shape)
        check_numeric(f[key], f"{path}:{key}")
    add_c = adds_channel_axis(shape, f"{path}:{key}")
    size_t = _check_size(size, len(shape) - 1 + int(add_c), "array")
    label_arr, class_names = None, None
    if labels is not None:
        label_arr, class_names = labels_from_spec(labels, None, None, shape[0])
    c = channels_of(1 if add_c else shape[1], channels)
    sample_shape = (c,) + (size_t or shape[1 + int(not add_c) :])
    return UserData(
        dataset=ArrayDataset(
            None, SampleTransform(size_t, window, norm, channels), add_c, h5=(str(path), key)
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
