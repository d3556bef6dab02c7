"""Read DICOM images in physical units; pydicom's bundled CT and MR test files as examples."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from inspect_kit.data._errors import DataFileError, describe_error, reading_file
from inspect_kit.data._optional import require
from inspect_kit.data.geometry import Volume
from inspect_kit.data.listing import list_dicom_files

logger = logging.getLogger(__name__)

#: Small uncompressed CT and MR slices that pydicom ships inside its package (no download).
DICOM_EXAMPLES: tuple[str, ...] = ("CT_small.dcm", "MR_small.dcm")


@dataclass(frozen=True)
class DicomImage:
    """One DICOM image in physical units with the metadata an analysis usually needs.

    Attributes
    ----------
    pixels : np.ndarray of float32
        ``(H, W)`` (or ``(frames, H, W)``) after the modality LUT / rescale slope and intercept:
        Hounsfield units for CT, the scanner's arbitrary units for MR.
    modality : str
        DICOM Modality, e.g. ``'CT'`` or ``'MR'``.
    units : str
        ``'HU'`` for CT, otherwise the RescaleType if present, else ``'arbitrary'``.
    pixel_spacing : tuple of float or None
        Row and column spacing in mm.
    slice_thickness : float or None
        In mm.
    rescale_slope, rescale_intercept : float
        As stored in the file (1 and 0 when absent).
    patient_id, path : str
    metadata : dict
        A few more tags when present (Manufacturer, BodyPartExamined, ...), as strings.
    """

    pixels: np.ndarray
    modality: str
    units: str
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    rescale_slope: float
    rescale_intercept: float
    patient_id: str
    path: str
    metadata: dict[str, str] = field(default_factory=dict)


_EXTRA_TAGS = (
    "Manufacturer",
    "BodyPartExamined",
    "SeriesDescription",
    "PhotometricInterpretation",
    "StudyDate",
)


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def read_dicom(path: str | os.PathLike[str]) -> DicomImage:
    """Read one DICOM file and return its pixels in physical units.

    The modality LUT (rescale slope/intercept, or a LUT sequence) is applied, so CT comes
    back in Hounsfield units.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    DicomImage

    Examples
    --------
    >>> from inspect_kit.data import dicom_example_paths, read_dicom
    >>> ct = read_dicom(dicom_example_paths(["CT_small.dcm"])[0])
    >>> ct.modality, ct.units, ct.pixels.shape
    ('CT', 'HU', (128, 128))
    """
    pydicom = require("pydicom")
    from pydicom.pixels.processing import apply_modality_lut

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no DICOM file at {str(path)!r}")
    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise ValueError(f"{path.name} has no pixel data (Modality {ds.get('Modality', '?')})")
    pixels = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)
    modality = str(ds.get("Modality", ""))
    rescale_type = str(ds.get("RescaleType", "") or "")
    units = "HU" if modality == "CT" else (rescale_type or "arbitrary")
    spacing = ds.get("PixelSpacing")
    spacing_t = (float(spacing[0]), float(spacing[1])) if spacing is not None else None
    meta = {tag: str(ds.get(tag)) for tag in _EXTRA_TAGS if ds.get(tag) not in (None, "")}
    return DicomImage(
        pixels=pixels,
        modality=modality,
        units=units,
        pixel_spacing=spacing_t,
        slice_thickness=_float_or_none(ds.get("SliceThickness")),
        rescale_slope=_float_or_none(ds.get("RescaleSlope")) or 1.0,
        rescale_intercept=_float_or_none(ds.get("RescaleIntercept")) or 0.0,
        patient_id=str(ds.get("PatientID", "")),
        path=str(path),
        metadata=meta,
    )


def dicom_example_paths(names: Sequence[str] = DICOM_EXAMPLES) -> list[Path]:
    """Paths of DICOM test files that ship inside pydicom (never downloaded).

    Parameters
    ----------
    names : sequence of str, default=DICOM_EXAMPLES
        File names in pydicom's test data, e.g. ``'CT_small.dcm'``, ``'MR_small.dcm'``.

    Examples
    --------
    >>> from inspect_kit.data import dicom_example_paths
    >>> [p.name for p in dicom_example_paths()]
    ['CT_small.dcm', 'MR_small.dcm']
    """
    require("pydicom")
    from pydicom.data import get_testdata_file

    if isinstance(names, str):
        names = [names]
    paths = []
    for name in names:
        found = get_testdata_file(name, download=False)
        if found is None:
            raise FileNotFoundError(
                f"{name!r} is not among the DICOM files bundled with this pydicom; "
                f"use one of {list(DICOM_EXAMPLES)}"
            )
        paths.append(Path(found))
    return paths


def load_dicom_images(names: Sequence[str] = DICOM_EXAMPLES) -> list[DicomImage]:
    """Load pydicom's bundled example images (a CT and an MR slice by default).

    Parameters
    ----------
    names : sequence of str, default=DICOM_EXAMPLES
        Bundled file names, see :func:`dicom_example_paths`.

    Returns
    -------
    list of DicomImage
        For the defaults: a 128x128 CT slice in HU (0.66 mm pixels) and a 64x64 MR slice
        (0.31 mm pixels).

    Examples
    --------
    >>> from inspect_kit.data import load_dicom_images
    >>> [(im.modality, im.pixels.shape) for im in load_dicom_images()]
    [('CT', (128, 128)), ('MR', (64, 64))]
    """
    return [read_dicom(p) for p in dicom_example_paths(names)]


# -- series: a folder of DICOM files as volumes --------------------------------------------------
#: Header tags that become per-sample metadata columns (``/samples/meta/<tag>``).
SERIES_TAGS: tuple[str, ...] = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "InstitutionName",
    "SeriesDescription",
    "SliceThickness",
    "KVP",
)
_NUMERIC_TAGS = ("SliceThickness", "KVP")
#: Tags whose values identify a person; hashed unless ``keep_identifiers=True``.
IDENTIFYING_TAGS: tuple[str, ...] = ("PatientID",)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def hash_identifier(value: str, salt: str) -> str:
    """A salted SHA-256 prefix of an identifier: stable for one salt, not reversible.

    Examples
    --------
    >>> hash_identifier("1CT1", salt="study-42")
    'sha256:00f8239569d33e2b'
    """
    if not value:
        return ""
    digest = hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()
    return f"sha256:{digest[:16]}"


@dataclass(frozen=True)
class DicomFrame:
    """One 2D image of a series: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int | None
    position: np.ndarray | None  # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray | None  # ImageOrientationPatient: row then column cosines
    pixel_spacing: tuple[float, float] | None  # (row, column) mm
    rescale: tuple[float, float] | None  # per-frame slope/intercept (enhanced), else None
    shape: tuple[int, int]


@dataclass
class DicomSeries:
    """The slices of one series, ordered along the slice normal, and its geometry.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID.
    frames : list of DicomFrame
        Ordered by position along the normal (not by file name or InstanceNumber).
    header : pydicom Dataset
        The first file's header (no pixel data).
    affine : ndarray (4, 4)
        Voxel (column, row, slice) -> RAS+ mm.
    spacing : (row, column, slice) float
        PixelSpacing and the distance between slice positions, in mm.
    irregular : str or None
        Why the geometry is irregular, when it was loaded anyway (``allow_irregular``).
    """

    uid: str
    frames: list[DicomFrame]
    header: Any
    affine: np.ndarray
    spacing: tuple[float, float, float]
    irregular: str | None = None

    @property
    def paths(self) -> list[Path]:
        return list(dict.fromkeys(f.path for f in self.frames))

    def read(self) -> Volume:
        """The series' voxels ``(1, columns, rows, slices)`` in physical units with its affine."""
        planes = read_frames(self.frames, f"series {self.uid}")
        bad = next((fr for fr, p in zip(self.frames, planes, strict=True) if p.ndim != 2), None)
        if bad is not None:
            raise OSError(
                f"DICOM file {bad.path} (series {self.uid}) holds colour or multi-sample "
                "pixels; they cannot form a volume (load 2D slices with as_slices=True)"
            )
        stack = np.stack(planes)  # (slices, rows, columns)
        if str(self.header.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            stack = stack.max() + stack.min() - stack  # inverted grayscale
        return Volume(np.ascontiguousarray(stack.transpose(2, 1, 0)[None]), self.affine)

    def metadata(self, *, keep_identifiers: bool = False, salt: str = "") -> dict[str, Any]:
        """Header tags of :data:`SERIES_TAGS` (identifiers hashed unless kept), as columns."""
        out: dict[str, Any] = {}
        for tag in SERIES_TAGS:
            value = self.header.get(tag)
            if tag in _NUMERIC_TAGS:
                out[tag] = _float_or_none(value)
                out[tag] = np.nan if out[tag] is None else out[tag]
                continue
            text = "" if value is None else str(value)
            if tag in IDENTIFYING_TAGS and not keep_identifiers:
                text = hash_identifier(text, salt)
            out[tag] = text
        return out


def read_frames(frames: Sequence[DicomFrame], where: str = "") -> list[np.ndarray]:
    """Pixels of each frame in physical units (modality LUT / per-frame rescale, RT dose in Gy).

    Planes are ``(rows, columns)``, or ``(rows, columns, samples)`` for colour. Any failure names
    the file.
    """
    pydicom = require("pydicom")
    from pydicom.pixels.processing import apply_modality_lut

    planes: list[np.ndarray] = []
    current: tuple[Path | None, np.ndarray | None] = (None, None)
    for fr in frames:
        if current[0] != fr.path:  # frames come grouped by file: decode each file once
            try:
                ds = pydicom.dcmread(fr.path)
                if "PixelData" not in ds:
                    raise ValueError("it has no pixel data")
                arr = ds.pixel_array
                if fr.rescale is None:
                    arr = apply_modality_lut(arr, ds)
                arr = np.asarray(arr, dtype=np.float32)
                if "DoseGridScaling" in ds:  # RT dose: stored integers -> Gy
                    arr = arr * np.float32(ds.DoseGridScaling)
            except Exception as err:
                suffix = f" ({where})" if where else ""
                raise DataFileError(
                    f"{fr.path}: not a readable DICOM file{suffix} ({describe_error(err)})"
                ) from err
            current = (fr.path, arr)
        decoded = current[1]
        assert decoded is not None  # set on the first frame of every file, just above
        plane = decoded if fr.frame is None else decoded[fr.frame]
        if fr.rescale is not None:
            plane = plane * np.float32(fr.rescale[0]) + np.float32(fr.rescale[1])
        planes.append(plane.astype(np.float32, copy=False))
    return planes


def _floats(value: Any, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) else None


def _group_item(ds: Any, seq: str, frame: int | None) -> Any:
    """An item of a functional group macro: per-frame first, then shared (enhanced DICOM)."""
    for where, idx in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(where)
        if groups is None or idx is None or idx >= len(groups):
            continue
        inner = groups[idx].get(seq)
        if inner:
            return inner[0]
    return None


def dicom_frames(path: Path, ds: Any) -> list[DicomFrame]:
    """The 2D frames of one file with their geometry (single-frame, enhanced, RT dose)."""
    shape = (int(ds.Rows), int(ds.Columns))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    iop = _floats(ds.get("ImageOrientationPatient"), 6)
    ipp = _floats(ds.get("ImagePositionPatient"), 3)
    ps = _floats(ds.get("PixelSpacing"), 2)
    if n_frames == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        spacing = None if ps is None else (float(ps[0]), float(ps[1]))
        return [DicomFrame(path, None, ipp, iop, spacing, None, shape)]
    frames = []
    offsets = _floats(ds.get("GridFrameOffsetVector"), n_frames)
    for f in range(n_frames):
        pos, ori, pix, rescale = ipp, iop, ps, None
        plane = _group_item(ds, "PlanePositionSequence", f)
        if plane is not None:
            pos = _floats(plane.get("ImagePositionPatient"), 3)
        orient = _group_item(ds, "PlaneOrientationSequence", f)
        if orient is not None:
            ori = _floats(orient.get("ImageOrientationPatient"), 6)
        measures = _group_item(ds, "PixelMeasuresSequence", f)
        if measures is not None and _floats(measures.get("PixelSpacing"), 2) is not None:
            pix = _floats(measures.get("PixelSpacing"), 2)
        value = _group_item(ds, "PixelValueTransformationSequence", f)
        if value is not None:
            rescale = (
                _float_or_none(value.get("RescaleSlope")) or 1.0,
                _float_or_none(value.get("RescaleIntercept")) or 0.0,
            )
        elif "PerFrameFunctionalGroupsSequence" in ds:
            rescale = (1.0, 0.0)
        if plane is None and offsets is not None and ipp is not None and iop is not None:
            normal = np.cross(iop[:3], iop[3:])
            # RT dose: offsets along the normal, relative when the first one is 0, else absolute
            base = 0.0 if offsets[0] == 0 else float(ipp @ normal)
            pos = ipp + (offsets[f] - base) * normal
        spacing = None if pix is None else (float(pix[0]), float(pix[1]))
        frames.append(DicomFrame(path, f, pos, ori, spacing, rescale, shape))
    return frames


def read_dicom_header(path: Path) -> Any:
    """The header of a DICOM image file (no pixel data), or an error that names the file."""
    pydicom = require("pydicom")
    with reading_file(path, "DICOM file"):
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    if "Rows" not in ds or "Columns" not in ds:
        raise ValueError(
            f"{path} has no pixel data (Modality {ds.get('Modality', '?')}, "
            f"SOP class {ds.get('SOPClassUID', '?')}); it is not an image"
        )
    return ds


def scan_dicom_files(
    paths: Sequence[Path], *, skip_unreadable: bool = False
) -> tuple[dict[str, list[tuple[Any, list[DicomFrame]]]], list[tuple[Path, str]]]:
    """Read every file's header and group the files by SeriesInstanceUID.

    Returns ``({uid: [(header, frames), ...]}, skipped)``; ``skipped`` lists ``(path, reason)``
    of unreadable files when ``skip_unreadable`` (otherwise the first one raises).
    """
    groups: dict[str, list[tuple[Any, list[DicomFrame]]]] = {}
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        try:
            ds = read_dicom_header(path)
            frames = dicom_frames(path, ds)
        except Exception as err:
            if not skip_unreadable:
                raise ValueError(
                    f"{err}; remove it, or pass skip_unreadable=True (--skip-unreadable) to "
                    "load the other files"
                ) from err
            skipped.append((path, str(err)))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or f"no-series-uid:{path}")
        groups.setdefault(uid, []).append((ds, frames))
    if skipped:
        lines = "\n".join(f"  {p}: {why}" for p, why in skipped)
        logger.warning("skipped %d unreadable file(s):\n%s", len(skipped), lines)
    return groups, skipped


def assemble_series(
    uid: str, members: list[tuple[Any, list[DicomFrame]]], *, allow_irregular: bool = False
) -> DicomSeries:
    """Order a series' frames along the slice normal and check that they form a regular grid.

    Raises
    ------
    ValueError
        Mixed orientations or image sizes, slices at the same position, missing slices (a gap
        over 1.5x the median spacing) or uneven spacing; naming the series and a file. With
        ``allow_irregular`` the last three load with a warning instead.
    """
    header = members[0][0]
    frames = [fr for _, frs in members for fr in frs]
    first = frames[0].path

    def where() -> str:
        return f"series {uid} ({len(frames)} slices, e.g. {first})"

    shapes = {fr.shape for fr in frames}
    if len(shapes) > 1:
        raise ValueError(f"{where()} mixes image sizes {sorted(shapes)}; it is not one volume")
    no_geometry = [fr for fr in frames if fr.position is None or fr.orientation is None]
    if no_geometry:
        if len(frames) > 1:
            raise ValueError(
                f"{where()}: {no_geometry[0].path} has no ImagePositionPatient/"
                "ImageOrientationPatient, so its slices cannot be ordered in space; load the "
                "files as 2D images with as_slices=True (--slices)"
            )
        only = frames[0]  # one image without geometry: axial at the origin
        iop = np.array([1.0, 0, 0, 0, 1, 0]) if only.orientation is None else only.orientation
        pos = np.zeros(3) if only.position is None else only.position
        frames = [
            DicomFrame(first, only.frame, pos, iop, only.pixel_spacing, only.rescale, only.shape)
        ]
    # every frame has a position and an orientation from here on (checked just above)
    orients = np.stack(cast(list[np.ndarray], [fr.orientation for fr in frames]))
    if np.abs(orients - orients[0]).max() > 1e-3:
        n_kinds = len({tuple(np.round(o, 3)) for o in orients})
        raise ValueError(
            f"{where()} mixes {n_kinds} slice orientations (e.g. a localizer among axial "
            "slices); it is not one volume. Separate them, or load 2D slices with "
            "as_slices=True (--slices)"
        )
    row, col = orients[0][:3], orients[0][3:]
    normal = np.cross(row, col)
    positions = np.stack(cast(list[np.ndarray], [fr.position for fr in frames]))
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    frames = [frames[i] for i in order]
    along, positions = along[order], positions[order]
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    problems: list[str] = []
    if len(frames) > 1:
        steps = np.diff(along)
        if np.any(steps < 1e-3):
            dup = int(np.sum(steps < 1e-3))
            raise ValueError(
                f"{where()} holds {dup + 1 if dup == 1 else dup} slices at the same position "
                "(several echoes, phases or acquisitions in one series?); it is not one volume. "
                "Split the series, or load 2D slices with as_slices=True (--slices)"
            )
        median = float(np.median(steps))
        gaps = np.flatnonzero(steps > 1.5 * median)
        if gaps.size:
            g = int(gaps[0])
            problems.append(
                f"missing slices: a gap of {steps[g]:.3g} mm between {frames[g].path.name} and "
                f"{frames[g + 1].path.name} where the slices are {median:.3g} mm apart"
            )
        elif np.abs(steps - median).max() > 0.1 * median:
            problems.append(f"uneven slice spacing ({steps.min():.3g} to {steps.max():.3g} mm)")
        # gantry tilt: positions drift in-plane from slice to slice
        inplane = positions - positions[0] - np.outer(along - along[0], normal)
        if np.linalg.norm(inplane, axis=1).max() > 0.5 * min(ps):
            problems.append("slice positions shift in-plane (gantry tilt): the grid is sheared")
        slice_step = median
    else:
        slice_step = (
            _float_or_none(header.get("SpacingBetweenSlices"))
            or _float_or_none(header.get("SliceThickness"))
            or 1.0
        )
    irregular = None
    if problems:
        irregular = "; ".join(problems)
        if not allow_irregular:
            raise ValueError(
                f"{where()} is irregular: {irregular}. Fix the series, or load it anyway "
                "with allow_irregular=True (--allow-irregular)"
            )
        warnings.warn(
            f"{where()} is irregular ({irregular}); loaded with a uniform spacing of "
            f"{slice_step:.3g} mm",
            UserWarning,
            stacklevel=3,
        )
    lps = np.eye(4)
    lps[:3, 0] = row * ps[1]  # column index moves along the row direction
    lps[:3, 1] = col * ps[0]
    lps[:3, 2] = normal * slice_step
    lps[:3, 3] = positions[0]
    return DicomSeries(
        uid=uid,
        frames=frames,
        header=header,
        affine=_LPS_TO_RAS @ lps,
        spacing=(float(ps[0]), float(ps[1]), float(slice_step)),
        irregular=irregular,
    )


def find_dicom_series(
    folder: str | os.PathLike[str],
    *,
    allow_irregular: bool = False,
    skip_unreadable: bool = False,
) -> tuple[list[DicomSeries], list[tuple[Path, str]]]:
    """Find the DICOM series in a folder (recursively) and assemble each into a volume.

    Parameters
    ----------
    folder : str or path-like
    allow_irregular : bool
        Load series with missing slices, uneven spacing or gantry tilt with a warning.
    skip_unreadable : bool
        Skip files that are not readable DICOM images (logged and returned) instead of stopping.

    Returns
    -------
    series : list of DicomSeries
        Sorted by SeriesInstanceUID's first file path.
    skipped : list of (Path, str)
        Unreadable files and why.

    Examples
    --------
    >>> series, skipped = find_dicom_series("patient01/")        # doctest: +SKIP
    >>> vol = series[0].read(); vol.array.shape, series[0].spacing  # doctest: +SKIP
    ((1, 512, 512, 120), (0.7, 0.7, 2.5))
    """
    paths = list_dicom_files(Path(folder))
    groups, skipped = scan_dicom_files(paths, skip_unreadable=skip_unreadable)
    series = [assemble_series(uid, m, allow_irregular=allow_irregular) for uid, m in groups.items()]
    series.sort(key=lambda s: str(s.frames[0].path))
    return series, skipped
