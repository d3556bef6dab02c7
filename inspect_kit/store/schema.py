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

# -- groups ------------------------------------------------------------------------------------
#: captured data: per-sample columns, and one dataset per captured layer call
SAMPLES = "samples"
LAYERS = "layers"
#: analyses' results (written with ``ActivationStore.save_result``)
EMBEDDINGS = "embeddings"
#: ``embedding_cache/<layer>/<method>/<key>``: every parameter set's map, not only the latest
EMBEDDING_CACHE = "embedding_cache"
LATENT = "latent"
PROBES = "probes"
#: ``similarity/<method>/<key>``: CKA/RSA matrices with their parameters
SIMILARITY = "similarity"
#: ``attributions/...``: attribution maps and their parameters
ATTRIBUTIONS = "attributions"
#: how the model and data were named at capture: data, never code
INPUTS = "inputs"
#: ``attributions/<method>/<key>/{maps,score,target_class[,completeness_gap]}``: attribution
#: maps, one row per sample like /layers, written by the same writer; ``<key>`` is a hash of
#: the method's target and parameters (kept in the maps dataset's attributes)
ATTRIBUTIONS = "attributions"
#: groups whose datasets have one row per committed sample
PER_SAMPLE_GROUPS = (SAMPLES, LAYERS, ATTRIBUTIONS)
#: groups that hold results rather than captured data
RESULT_GROUPS = (EMBEDDINGS, EMBEDDING_CACHE, LATENT, PROBES, SIMILARITY, ATTRIBUTIONS, INPUTS)
#: every top-level group a store can hold
GROUPS = (SAMPLES, LAYERS, ATTRIBUTIONS, *RESULT_GROUPS)

# -- per-sample columns ------------------------------------------------------------------------
INDEX = f"{SAMPLES}/index"
LABEL = f"{SAMPLES}/label"
PREDICTION = f"{SAMPLES}/prediction"
LOGITS = f"{SAMPLES}/logits"
META = f"{SAMPLES}/meta"
THUMBNAIL = f"{SAMPLES}/thumbnail"
#: CRC-32 of each captured input's bytes: the fingerprint a resume compares the data with
INPUT_DIGEST = f"{SAMPLES}/input_crc32"
#: layer attribute: non-finite values seen in the layer
NONFINITE_COUNT = "nonfinite_count"
#: per-sample voxel size in mm along (D, H, W) under META, written for NIfTI/DICOM volumes;
#: thumbnails use the H and W spacing to show the physical aspect ratio
SPACING_META = ("spacing_d", "spacing_h", "spacing_w")

# -- root attributes (provenance) -------------------------------------------------------------
SCHEMA_VERSION_ATTR = "schema_version"
INSPECT_KIT_VERSION_ATTR = "inspect_kit_version"
TORCH_VERSION_ATTR = "torch_version"
NUMPY_VERSION_ATTR = "numpy_version"
CREATED_ATTR = "created"
MODEL_CLASS_ATTR = "model_class"
MODEL_SHA256_ATTR = "model_sha256"
CONFIG_ATTR = "config"
#: false until the capture finished cleanly
COMPLETE_ATTR = "complete"
ROOT_ATTRS = (
    SCHEMA_VERSION_ATTR,
    INSPECT_KIT_VERSION_ATTR,
    TORCH_VERSION_ATTR,
    NUMPY_VERSION_ATTR,
    CREATED_ATTR,
    MODEL_CLASS_ATTR,
    MODEL_SHA256_ATTR,
    CONFIG_ATTR,
    COMPLETE_ATTR,
)

# -- layer dataset attributes -----------------------------------------------------------------
MODULE_PATH_ATTR = "module_path"
MODULE_TYPE_ATTR = "module_type"
CALL_INDEX_ATTR = "call_index"
REDUCTION_ATTR = "reduction"
SOURCE_SHAPE_ATTR = "source_shape"
LAYER_ATTRS = (
    MODULE_PATH_ATTR,
    MODULE_TYPE_ATTR,
    CALL_INDEX_ATTR,
    REDUCTION_ATTR,
    SOURCE_SHAPE_ATTR,
)

#: sub-group of a latent result holding its correlations with the per-sample columns
LATENT_CORRELATIONS = "correlations"


def embedding_group(layer: str, method: str) -> str:
    """Where an embedding of ``layer`` by ``method`` is cached: ``embeddings/<layer>/<method>``."""
    return f"{EMBEDDINGS}/{layer}/{method}"


def embedding_variant_group(layer: str, method: str, key: str) -> str:
    """Where the map of one parameter set (cache ``key``) is kept:
    ``embedding_cache/<layer>/<method>/<key[:24]>``."""
    return f"{EMBEDDING_CACHE}/{layer}/{method}/{key[:24]}"


def attribution_group(method: str, key: str) -> str:
    """``attributions/<method>/<hash>``: where one method's maps for one target and parameter
    set live (``key`` is the JSON of the method, target and parameters).

    Examples
    --------
    >>> attribution_group("gradcam", '{"layer": "layer4"}').startswith("attributions/gradcam/")
    True
    """
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{ATTRIBUTIONS}/{method}/{digest}"


def probe_group(target: str) -> str:
    """Where a probe profile of ``target`` is kept: ``probes/<target>``."""
    return f"{PROBES}/{target}"


def latent_correlations_group(group: str = LATENT) -> str:
    """Where a latent probe's correlations are kept: ``latent/correlations``."""
    return f"{group}/{LATENT_CORRELATIONS}"


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
    if SCHEMA_VERSION_ATTR not in f.attrs or SAMPLES not in f:
        raise StoreError(
            f"{path} is an HDF5 file but not an inspect_kit store (it has no '{SCHEMA_VERSION_ATTR}' "
            f"attribute and no /{SAMPLES} group); make one with inspect_kit.capture(...)"
        )
    version = int(f.attrs[SCHEMA_VERSION_ATTR])
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
    try:
        if not h5py.is_hdf5(path):
            raise StoreError(f"{path}: not an HDF5 file, so it cannot be an inspect_kit store")
        from .integrity import open_h5  # integrity needs StoreError from here

        f = open_h5(path)
    except (OSError, RuntimeError, KeyError) as err:  # h5py raises any of them for damage
        text = str(err)
        if isinstance(err, BlockingIOError | PermissionError) or "already open" in text:
            raise
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        if "truncated file" in text and sizes:
            raise StoreError(
                f"{path}: not a readable HDF5 file: it is truncated, damaged (the file has "
                f"{int(sizes[1]):,} bytes but HDF5 recorded {int(sizes[2]):,} when it was "
                "closed: an interrupted copy or download?); copy it again from the original"
            ) from err
        raise StoreError(
            f"{path}: not a readable HDF5 file ({h5_cause(err)}); the store may be truncated "
            "or damaged"
        ) from err
    try:
        check_schema(f, path)
        load_filters(decode_attr(f.attrs.get(COMPRESSION, "none")))
    except (OSError, RuntimeError, KeyError, TypeError, UnicodeError) as err:
        f.close()
        raise StoreError(
            f"{path} is damaged: reading its root attributes failed ({h5_cause(err)})"
        ) from err
    except Exception:
        f.close()
        raise
    return f


def h5_cause(err: BaseException) -> str:
    """The first line of an HDF5 error, without the call-site noise."""
    text = " ".join(str(err).split())
    return text[:200] + ("..." if len(text) > 200 else "")
