"""The HDF5 store's schema (version 1): paths, attribute encoding, and file opening rules.

Everything that decides where a thing lives in the file is here, so that the writer, the
reader and the README agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = 1

SAMPLES = "samples"
LAYERS = "layers"
INDEX = "samples/index"
LABEL = "samples/label"
PREDICTION = "samples/prediction"
LOGITS = "samples/logits"
META = "samples/meta"
THUMBNAIL = "samples/thumbnail"
#: CRC-32 of each captured input's bytes: the fingerprint a resume compares the data with
INPUT_DIGEST = "samples/input_crc32"

#: root attribute: false until the capture finished cleanly
COMPLETE = "complete"
#: layer attribute: non-finite values seen in the layer
NONFINITE_COUNT = "nonfinite_count"
#: analyses' results: ``similarity/<method>/<key>`` (CKA/RSA matrices with their parameters)
SIMILARITY = "similarity"
#: per-sample voxel size in mm along (D, H, W) under META, written for NIfTI/DICOM volumes;
#: thumbnails use the H and W spacing to show the physical aspect ratio
SPACING_META = ("spacing_d", "spacing_h", "spacing_w")

#: attribute that marks a dataset stored as raw bfloat16 bits in uint16
STORED_AS = "stored_as"
BFLOAT16 = "bfloat16"


def encode_attr(value: Any) -> Any:
    """Return ``value`` in a form HDF5 attributes hold: scalars as they are, the rest as JSON."""
    if isinstance(value, str):
        return str(value)  # plain str: subclasses (torch's version string) confuse h5py
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return value
    return json.dumps(value, default=_json_default)


def decode_attr(value: Any) -> Any:
    """Inverse of :func:`encode_attr`; strings that hold JSON objects or lists are parsed."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    return {k: decode_attr(v) for k, v in attrs.items()}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


class StoreError(ValueError):
    """A file that is not an inspect_kit store, or one this version cannot read.

    Examples
    --------
    >>> try:                                            # doctest: +SKIP
    ...     inspect_kit.open_store("notes.txt")
    ... except inspect_kit.StoreError as err:
    ...     print(err)
    notes.txt is not an HDF5 file, so it cannot be an inspect_kit store
    """


def check_schema(f: h5py.File, path: str | Path) -> None:
    """Raise :class:`StoreError` unless ``f`` is a store of a schema this version reads."""
    if "schema_version" not in f.attrs or SAMPLES not in f:
        raise StoreError(
            f"{path} is an HDF5 file but not an inspect_kit store (it has no 'schema_version' "
            f"attribute and no /{SAMPLES} group); make one with inspect_kit.capture(...)"
        )
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written with store schema version {version}, but this inspect_kit reads "
            f"versions up to {SCHEMA_VERSION}; upgrade inspect-kit to read it"
        )


#: root attribute naming the stores' compression filter (absent or "none": uncompressed)
COMPRESSION = "compression"


def load_filters(compression: Any) -> None:
    """Register the HDF5 filter plugins a store's ``compression`` needs (Blosc: hdf5plugin)."""
    if compression == "blosc":
        try:
            import hdf5plugin  # noqa: F401 - registers the Blosc filter with HDF5
        except ImportError as err:
            raise ImportError(
                "this store is compressed with Blosc, which needs the hdf5plugin package: "
                "pip install 'inspect-kit[scale]' (or hdf5plugin)"
            ) from err


def open_h5_read(path: str | Path) -> h5py.File:
    """Open a store read-only in SWMR mode, with errors that say what the path is.

    Readers take no file lock (``locking=False``), so an open reader never stops a capture
    from finishing or resuming; SWMR keeps what they see consistent.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}: the file does not exist")
    if not h5py.is_hdf5(path):
        raise StoreError(f"{path} is not an HDF5 file, so it cannot be an inspect_kit store")
    from .integrity import open_h5  # integrity needs StoreError from here

    try:
        f = open_h5(path)
    except OSError as err:
        text = str(err)
        if isinstance(err, PermissionError) or "unable to lock" in text or "already open" in text:
            raise
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        if "truncated file" in text and sizes:
            raise StoreError(
                f"{path} is truncated: the file has {int(sizes[1]):,} bytes but HDF5 recorded "
                f"{int(sizes[2]):,} when it was closed (an interrupted copy or download?); "
                "copy it again from the original"
            ) from err
        raise StoreError(f"{path} is damaged: HDF5 cannot open it ({h5_cause(err)})") from err
    try:
        check_schema(f, path)
        load_filters(decode_attr(f.attrs.get(COMPRESSION, "none")))
    except Exception:
        f.close()
        raise
    return f


def h5_cause(err: BaseException) -> str:
    """The first line of an HDF5 error, without the call-site noise."""
    text = " ".join(str(err).split())
    return text[:200] + ("..." if len(text) > 200 else "")
