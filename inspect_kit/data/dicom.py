"""Read DICOM images in physical units; pydicom's bundled CT and MR test files as examples."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspect_kit.data._optional import require

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


def _float_or_none(value: object) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def read_dicom(path: str | os.PathLike) -> DicomImage:
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
    from pydicom.pixels import apply_modality_lut

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
