"""Folders of NIfTI and DICOM files as samples: which files make one sample, and its metadata.

The folder and label logic is ours; the geometry (orientation, spacing) is nibabel's, through
:mod:`inspect_kit.data.geometry`. One sample is

- a NIfTI file (3D, or 4D with the sequences/channels last), or one file of the same name from
  each sequence folder (``T1/case01.nii.gz``, ``T2/case01.nii.gz`` -> a 2-channel sample);
- a DICOM series (files grouped by SeriesInstanceUID, ordered along the slice normal), or,
  with ``as_slices``, each 2D slice of every series.

Each sample is reoriented (default RAS), optionally resampled to a spacing and cropped/padded
to a size, and laid out ``(C, D, H, W)`` (a single slice: ``(C, H, W)``). Its geometry and
header tags become per-sample metadata columns.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inspect_kit.data._errors import reading_file
from inspect_kit.data._optional import require
from inspect_kit.data.dicom import (
    SERIES_TAGS,
    DicomFrame,
    DicomSeries,
    assemble_series,
    read_frames,
    scan_dicom_files,
)
from inspect_kit.data.geometry import (
    Volume,
    crop_or_pad,
    reorient,
    reorient_plan,
    resample_like,
    resample_to_spacing,
    spacing_plan,
    to_dhw,
)
from inspect_kit.store.schema import SPACING_META

logger = logging.getLogger(__name__)

#: Metadata columns of a volume's voxel size, in (D, H, W) order (the store's names).
SPACING_COLUMNS = SPACING_META


@dataclass(frozen=True)
class VolumeOptions:
    """How every volume is prepared: orientation, spacing (D, H, W mm), crop/pad size."""

    orientation: str | None = "RAS"
    spacing: tuple[float, float, float] | None = None
    crop: tuple[int, ...] | None = None
    order: int = 1


@dataclass
class Sample:
    """One sample before reading: where its voxels come from and what it will look like."""

    source: Any  # list of NIfTI paths | DicomSeries | DicomFrame
    key_path: Path  # the file that names the sample (labels, 'filename')
    shape: tuple[int, ...]  # (C, D, H, W) or (C, H, W) after preparation
    spacing: tuple[float, ...]  # mm per axis of ``shape[1:]``
    meta: dict[str, Any] = field(default_factory=dict)


def _nifti_volume(paths: Sequence[Path]) -> Volume:
    """Read NIfTI files as one volume; later files (sequences) resampled onto the first's grid."""
    nib = require("nibabel")
    parts: list[Volume] = []
    for path in paths:
        with reading_file(path, "NIfTI file"):
            img = nib.load(str(path))
            arr = np.asarray(img.dataobj, dtype=np.float32)
        parts.append(Volume(_channels_first(arr, path), np.asarray(img.affine, dtype=np.float64)))
    ref = parts[0]
    parts = [ref] + [resample_like(p, ref.array.shape[1:4], ref.affine) for p in parts[1:]]
    return Volume(np.concatenate([p.array for p in parts]), ref.affine)


def _channels_first(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim == 5 and arr.shape[3] == 1:  # (x, y, z, 1, c): NIfTI vector intent
        arr = arr[:, :, :, 0]
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{path.name} has {arr.ndim} dimensions; expected a 3D volume or 4D (channels last)"
        )
    return arr[None] if arr.ndim == 3 else np.moveaxis(arr, 3, 0)


def _nifti_header(path: Path) -> tuple[int, tuple[int, int, int], np.ndarray]:
    nib = require("nibabel")
    with reading_file(path, "NIfTI file"):
        img = nib.load(str(path))
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    if len(shape) not in (3, 4):
        raise ValueError(
            f"{path.name} has {len(shape)} dimensions; expected a 3D volume or 4D (channels last)"
        )
    c = shape[3] if len(shape) == 4 else 1
    return c, (shape[0], shape[1], shape[2]), np.asarray(img.affine, dtype=np.float64)


def _plan(
    channels: int, shape: tuple[int, int, int], affine: np.ndarray, opts: VolumeOptions
) -> tuple[tuple[int, ...], tuple[float, ...], dict[str, Any]]:
    """Shape, spacing and geometry metadata of a prepared sample, from the header alone."""
    nib = require("nibabel")
    source_codes = "".join(nib.orientations.aff2axcodes(affine))
    if opts.orientation is not None:
        _, shape, affine = reorient_plan(shape, affine, opts.orientation)
    if opts.spacing is not None:
        sd, sh, sw = opts.spacing
        shape, affine, _ = spacing_plan(shape, affine, (sw, sh, sd))
    si, sj, sk = (float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    dhw, spacing = (shape[2], shape[1], shape[0]), (sk, sj, si)
    if opts.crop is not None:
        if len(opts.crop) == 2 and dhw[0] != 1:
            raise ValueError(
                f"size={opts.crop} gives H W, but the volumes have {dhw[0]} slices; give D H W"
            )
        crop = opts.crop if len(opts.crop) == 3 else (1, *opts.crop)
        d, h, w = (int(c) for c in crop)
        dhw = (d, h, w)
    meta: dict[str, Any] = {
        "orientation": "".join(nib.orientations.aff2axcodes(affine)),
        "source_orientation": source_codes,
    }
    meta.update(dict(zip(SPACING_COLUMNS, spacing, strict=True)))
    if dhw[0] == 1:  # one slice: a 2D image
        return (channels, *dhw[1:]), spacing[1:], meta
    return (channels, *dhw), spacing, meta


def _prepare(volume: Volume, opts: VolumeOptions) -> np.ndarray:
    if opts.orientation is not None:
        volume = reorient(volume, opts.orientation)
    if opts.spacing is not None:
        sd, sh, sw = opts.spacing
        volume = resample_to_spacing(volume, (sw, sh, sd), order=opts.order)
    arr = to_dhw(volume.array)
    if opts.crop is not None:
        crop = opts.crop if len(opts.crop) == 3 else (1, *opts.crop)
        arr = crop_or_pad(arr, crop)
    return np.ascontiguousarray(arr[:, 0] if arr.shape[1] == 1 else arr)


class VolumeDataset(Dataset[torch.Tensor]):
    """Reads and prepares one sample per item; ``process`` resizes/windows/normalises after."""

    def __init__(self, samples: list[Sample], opts: VolumeOptions, process: Any):
        self.samples = samples
        self.opts = opts
        self.process = process

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, i: int) -> np.ndarray:
        """The i-th sample, prepared, before ``process``."""
        src = self.samples[i].source
        if isinstance(src, DicomFrame):
            plane = read_frames([src])[0]
            return plane[None] if plane.ndim == 2 else np.moveaxis(plane[..., :3], -1, 0)
        volume = src.read() if isinstance(src, DicomSeries) else _nifti_volume(src)
        return _prepare(volume, self.opts)

    def __getitem__(self, i: int) -> torch.Tensor:
        sample: torch.Tensor = self.process(self.read(i))
        return sample


def _salt(id_salt: str | None) -> str:
    if id_salt is not None:
        return str(id_salt)
    logger.info(
        "patient identifiers are hashed with a random salt: equal within this dataset only "
        "(pass id_salt= / --id-salt to compare them across stores)"
    )
    return secrets.token_hex(16)


def nifti_samples(
    folder: Path,
    paths: list[Path],
    opts: VolumeOptions,
    sequences: Sequence[str] | None = None,
) -> list[Sample]:
    """One sample per NIfTI file, or per case name present in every sequence folder."""
    groups: list[list[Path]]
    if sequences:
        groups = _match_sequences(folder, paths, sequences)
    else:
        groups = [[p] for p in paths]
    samples = []
    for group in groups:
        c, shape, affine = _nifti_header(group[0])
        c += sum(_nifti_header(p)[0] for p in group[1:])
        shape_out, spacing, meta = _plan(c, shape, affine, opts)
        if sequences:
            meta["sequences"] = "+".join(sequences)
        samples.append(Sample(group, group[0], shape_out, spacing, meta))
    return samples


def _case_name(path: Path) -> str:
    name = path.name
    for suf in (".nii.gz", ".nii"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _match_sequences(folder: Path, paths: list[Path], sequences: Sequence[str]) -> list[list[Path]]:
    by_seq: dict[str, dict[str, Path]] = {s: {} for s in sequences}
    for p in paths:
        rel = p.relative_to(folder).parts
        if len(rel) >= 2 and rel[0] in by_seq:
            by_seq[rel[0]][_case_name(p)] = p
    missing_dirs = [s for s in sequences if not by_seq[s]]
    if missing_dirs:
        present = sorted({p.relative_to(folder).parts[0] for p in paths})
        raise ValueError(
            f"{folder} has no NIfTI files under {', '.join(missing_dirs)}; sequences name its "
            f"sub-folders (it holds {', '.join(present)})"
        )
    cases = sorted(by_seq[sequences[0]])
    for s in sequences[1:]:
        absent = [c for c in cases if c not in by_seq[s]]
        extra = [c for c in by_seq[s] if c not in by_seq[sequences[0]]]
        if absent or extra:
            which = absent or extra
            where = s if absent else sequences[0]
            raise ValueError(
                f"{folder}: case(s) {', '.join(which[:3])} have no file in {where}/; every "
                "sequence folder must hold one file per case, matched by file name"
            )
    return [[by_seq[s][c] for s in sequences] for c in cases]


def dicom_samples(
    paths: list[Path],
    opts: VolumeOptions,
    *,
    as_slices: bool = False,
    allow_irregular: bool = False,
    skip_unreadable: bool = False,
    keep_identifiers: bool = False,
    id_salt: str | None = None,
) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """One sample per DICOM series (or per slice with ``as_slices``), with header metadata."""
    groups, skipped = scan_dicom_files(paths, skip_unreadable=skip_unreadable)
    if not groups:
        raise ValueError(
            f"none of the {len(paths)} DICOM files could be read "
            f"(e.g. {skipped[0][0]}: {skipped[0][1]})"
            if skipped
            else "no DICOM files"
        )
    salt = _salt(id_salt) if not keep_identifiers else ""
    per_series: list[tuple[str, list[Sample]]] = []  # series in path order, slices by position
    for uid, members in groups.items():
        first = str(min(fr.path for _, frs in members for fr in frs))
        if as_slices:
            per_series.append((first, _slice_samples(uid, members, keep_identifiers, salt)))
            continue
        series = assemble_series(uid, members, allow_irregular=allow_irregular)
        rows, cols = series.frames[0].shape
        shape_out, spacing, meta = _plan(1, (cols, rows, len(series.frames)), series.affine, opts)
        meta.update(series.metadata(keep_identifiers=keep_identifiers, salt=salt))
        meta["n_slices"] = len(series.frames)
        meta["irregular"] = series.irregular or ""
        sample = Sample(series, series.frames[0].path, shape_out, spacing, meta)
        per_series.append((first, [sample]))
    per_series.sort(key=lambda item: item[0])
    samples = [s for _, group in per_series for s in group]
    return samples, skipped


def _slice_samples(
    uid: str, members: list[tuple[Any, list[DicomFrame]]], keep_identifiers: bool, salt: str
) -> list[Sample]:
    """Every 2D frame of a series as its own sample, ordered along the normal when known."""
    header = members[0][0]
    tags = DicomSeries(uid, [], header, np.eye(4), (1.0, 1.0, 1.0)).metadata(
        keep_identifiers=keep_identifiers, salt=salt
    )
    frames = [fr for _, frs in members for fr in frs]
    first = frames[0].orientation
    if first is not None and all(
        fr.position is not None and fr.orientation is not None for fr in frames
    ):
        normal = np.cross(first[:3], first[3:])
        frames.sort(key=lambda fr: float(fr.position @ normal))
    c = int(header.get("SamplesPerPixel", 1) or 1)
    out = []
    for fr in frames:
        ps = fr.pixel_spacing or (np.nan, np.nan)
        meta = {**tags, "spacing_h": float(ps[0]), "spacing_w": float(ps[1])}
        meta["frame"] = -1 if fr.frame is None else fr.frame
        out.append(Sample(fr, fr.path, (min(c, 3), *fr.shape), (ps[0], ps[1]), meta))
    return out


def metadata_columns(samples: list[Sample], folder: Path) -> dict[str, list[Any]]:
    """Per-sample metadata as columns: 'filename' first, then header tags and geometry."""
    cols: dict[str, list[Any]] = {
        "filename": [s.key_path.relative_to(folder).as_posix() for s in samples]
    }
    keys: list[str] = []
    for s in samples:
        keys += [k for k in s.meta if k not in keys]
    for k in keys:
        numeric = k in SPACING_COLUMNS or k in ("SliceThickness", "KVP", "n_slices", "frame")
        missing: Any = np.nan if numeric else ""
        cols[k] = [s.meta.get(k, missing) for s in samples]
    return cols


__all__ = ["SERIES_TAGS", "SPACING_COLUMNS", "VolumeDataset", "VolumeOptions"]
