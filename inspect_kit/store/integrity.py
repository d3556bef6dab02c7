"""Damage detection for stores, and the per-sample input fingerprints that guard a resume.

What is checked, and where:

* every chunk of a numeric ``/samples`` or ``/layers`` dataset carries an HDF5 Fletcher32
  checksum, verified by HDF5 on every read (a bit flip in the data is an error, not a value);
* HDF5's own checksums cover the file's metadata (superblock, object headers, chunk indexes);
* :func:`check_store` (run whenever a store is opened) compares the committed sample count
  with every per-sample dataset's extent, and the file's size with the end of file that HDF5
  recorded: a cleanly closed file shorter than that, or a committed chunk of a file still
  being written (or killed) that lies past the end of the file, is truncation. HDF5 reads
  a missing tail as zeros in SWMR mode, so without this a truncated store read as zeros.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np

from . import schema

logger = logging.getLogger(__name__)

#: how often a SWMR reader re-reads a metadata block whose checksum fails before giving up
#: (HDF5's default of 100, with growing sleeps, turns one damaged block into minutes)
SWMR_READ_ATTEMPTS = 12

#: superblock versions 2 and 3 (libver="latest"): flags at byte 11, end-of-file address at 28
_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def superblock_state(path: str | Path) -> tuple[bool | None, int | None]:
    """``(closed_cleanly, recorded_end_of_file)`` from a version 2/3 superblock at offset 0.

    ``closed_cleanly`` is False while a writer has the file open (or was killed with it open);
    both are None for other superblock versions, which this check then leaves to HDF5.
    """
    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) < 40 or head[:8] != _SIGNATURE or head[8] not in (2, 3) or head[9] != 8:
        return None, None
    return head[11] == 0, int.from_bytes(head[28:36], "little")


@functools.cache
def _hdf5_library() -> ctypes.CDLL | None:
    """The HDF5 library h5py runs on (h5py does not wrap every property-list setter)."""
    candidates = []
    try:
        with open("/proc/self/maps") as maps:
            candidates = [ln.split()[-1] for ln in maps if "libhdf5" in ln and "_hl" not in ln]
    except OSError:
        pass
    here = os.path.dirname(os.path.dirname(h5py.__file__))
    candidates += glob.glob(os.path.join(here, "h5py.libs", "libhdf5-*"))
    candidates += glob.glob(os.path.join(here, "h5py", ".dylibs", "libhdf5.*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
            return lib
        except (OSError, AttributeError):
            continue
    return None


def open_swmr_read(path: str | Path, *, locking: bool | None = None) -> h5py.File:
    """Open ``path`` read-only in SWMR mode with bounded retries.

    ``locking=None`` keeps HDF5's default file locking (what ``h5py.File(path, "r")`` uses, so
    both can be open in one process); False turns it off.
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    if locking is not None:
        fapl.set_file_locking(locking, True)
    lib = _hdf5_library()
    if lib is None or lib.H5Pset_metadata_read_attempts(fapl.id, SWMR_READ_ATTEMPTS) < 0:
        logger.debug("cannot bound HDF5's SWMR read attempts; damaged files open slowly")
    flags = h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ
    return h5py.File(h5py.h5f.open(os.fsencode(str(path)), flags, fapl=fapl))


def open_h5(path: str | Path) -> h5py.File:
    """Open an HDF5 file of a store read-only, the way every reader of stores does.

    A cleanly closed file opens exactly as ``h5py.File(path, "r")`` does (HDF5's default file
    locking), so a plain h5py, xarray or pandas reader and the package can both hold it in one
    process (HDF5 wants the same locking flag for every open of a file in a process). One being
    written (or killed) opens in SWMR mode with bounded retries. If this process already holds
    the file with other settings (a capture writing it, or a reader without locking), the open
    follows those.
    """
    swmr = superblock_state(path)[0] is not True

    def default() -> h5py.File:
        return open_swmr_read(path) if swmr else h5py.File(path, "r")

    def unlocked() -> h5py.File:  # held in this process without locking, or another process
        # writes it (a resume opening it): a reader never waits for a writer
        return open_swmr_read(path, locking=False) if swmr else h5py.File(path, "r", locking=False)

    def as_writer() -> h5py.File:  # this process writes it (a capture feeding from the store)
        return h5py.File(path, "r", libver="latest", swmr=swmr)

    for attempt in (default, unlocked):
        try:
            return attempt()
        except OSError as err:
            text = str(err)
            if not any(k in text for k in ("locking flag", "SWMR", "unable to lock")):
                raise
    return as_writer()


def _chunks_past_end(ds: h5py.Dataset, rows: int, size: int) -> int | None:
    """First row of a chunk holding committed rows that lies past ``size`` bytes, or None."""
    if ds.chunks is None or rows == 0:
        return None
    bad: list[int] = []

    def visit(info: h5py.h5d.StoreInfo) -> None:
        start = info.chunk_offset[0]
        if start < rows and info.byte_offset is not None and info.byte_offset + info.size > size:
            bad.append(start)

    ds.id.chunk_iter(visit)
    return min(bad) if bad else None


def per_sample_datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    """Every dataset under /samples, /layers and /attributions (one row per sample), by path."""
    found: dict[str, h5py.Dataset] = {}
    for top in schema.PER_SAMPLE_GROUPS:
        if top in f:
            f[top].visititems(
                lambda name, obj, top=top: (
                    found.__setitem__(f"{top}/{name}", obj)
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    return found


#: root and layer attribute: a 64-bit hash of the object's other attributes
ATTRS_CHECKSUM = "attrs_checksum"


def attrs_checksum(attrs: h5py.AttributeManager | dict[str, object]) -> np.uint64:
    """64-bit BLAKE2b of an object's attributes (names and decoded values, sorted), without
    :data:`ATTRS_CHECKSUM` itself.

    Examples
    --------
    >>> int(attrs_checksum({"a": 1})) == int(attrs_checksum({"a": 1, ATTRS_CHECKSUM: 7}))
    True
    """
    values = {str(k): schema.decode_attr(attrs[k]) for k in attrs.keys() if k != ATTRS_CHECKSUM}
    text = json.dumps(values, sort_keys=True, default=schema._json_default)
    return np.uint64(
        int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    )


def seal_attrs(obj: h5py.File | h5py.Group | h5py.Dataset) -> None:
    """Write (or update in place) the checksum of ``obj``'s attributes."""
    value = attrs_checksum(obj.attrs)
    if ATTRS_CHECKSUM in obj.attrs:
        obj.attrs.modify(ATTRS_CHECKSUM, value)
    else:
        obj.attrs[ATTRS_CHECKSUM] = value


def check_attrs(f: h5py.File, path: str | Path) -> None:
    """Raise StoreError if the root's or a layer's attributes do not match their checksum.

    Stores written before attribute checksums open as they are, with a note in the log.
    """
    objects: list[tuple[str, h5py.File | h5py.Dataset]] = [("root attributes", f)]
    if schema.LAYERS in f:
        layers = f[schema.LAYERS]
        objects += [(f"attributes of layer {k!r}", layers[k]) for k in layers]
    unsealed = 0
    for what, obj in objects:
        if ATTRS_CHECKSUM not in obj.attrs:
            unsealed += 1
            continue
        stored = obj.attrs[ATTRS_CHECKSUM]
        if not isinstance(stored, np.integer) or int(stored) != int(attrs_checksum(obj.attrs)):
            raise schema.StoreError(
                f"{path} is damaged: the {what} do not match their checksum (a bit flip, a "
                "bad copy, or an edit?); copy the store again from the original"
            )
    if unsealed:
        logger.info(
            "%s was written before attribute checksums: its attributes are not checked", path
        )


def check_store(f: h5py.File, path: str | Path, n: int) -> None:
    """Raise :class:`~inspect_kit.store.StoreError` if the store's committed rows are damaged.

    Cheap (metadata only): sizes and extents, not the data's checksums, which HDF5 verifies
    on every read (:meth:`ActivationStore.verify` reads everything).
    """
    if schema.LAYERS in f:
        for name, link in f[schema.LAYERS].items():
            if not isinstance(link, h5py.Dataset):
                raise schema.StoreError(
                    f"{path} is damaged: /{schema.LAYERS}/{name} is a group, but /{schema.LAYERS} "
                    "holds only one dataset per captured layer"
                )
    check_attrs(f, path)
    from .trust import check_extent, check_foreign_storage

    check_foreign_storage(f, path)
    size = os.path.getsize(path)
    clean, end = superblock_state(path)
    if clean and end is not None and size < end:
        raise schema.StoreError(
            f"{path} is truncated: the file has {size:,} bytes but HDF5 recorded {end:,} when "
            "it was closed (an interrupted copy or download?); copy it again from the original"
        )
    for name, ds in per_sample_datasets(f).items():
        if ds.ndim == 0 or ds.shape[0] < n:
            have = "no rows" if ds.ndim == 0 else f"{ds.shape[0]} rows"
            raise schema.StoreError(
                f"{path} is damaged: /{name} has {have} but the store committed {n} samples"
            )
        check_extent(ds, n, path, name)
        if clean is False:
            row = _chunks_past_end(ds, n, size)
            if row is not None:
                raise schema.StoreError(
                    f"{path} is truncated: the rows of /{name} from {row} on lie past the end of "
                    f"the file ({size:,} bytes); copy it again from the original"
                )


def sample_digests(x: np.ndarray) -> np.ndarray:
    """CRC-32 of each sample's bytes (first axis = samples), seeded with dtype and shape.

    The fingerprint a store keeps of every input it captured, so that ``resume=True`` can
    tell whether it is given the same data in the same order.

    Examples
    --------
    >>> sample_digests(np.zeros((2, 3), np.float32)).shape
    (2,)
    """
    x = np.ascontiguousarray(x)
    seed = zlib.crc32(f"{x.dtype.str}{x.shape[1:]}".encode())
    rows = x.reshape(len(x), -1).view(np.uint8) if x.size else x.reshape(len(x), 0)
    # numpy's stubs declare ndarray a buffer (__buffer__) only for Python >= 3.12
    return np.fromiter(
        (zlib.crc32(r, seed) for r in rows),  # type: ignore[arg-type]
        dtype=np.uint32,
        count=len(x),
    )


def check_resumed_inputs(
    path: str | Path, stored: np.ndarray | None, batches: Iterable[np.ndarray]
) -> None:
    """Raise ValueError unless ``batches`` (host input bytes, samples first) are the data whose
    fingerprints ``stored`` a complete store recorded, in the same order and of the same count.

    What a resume of a partial store checks batch by batch, for a store that is already
    complete: ``resume=True`` means the same capture, never other data.

    Examples
    --------
    >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> check_resumed_inputs("acts.h5", sample_digests(x), [x[:2], x[2:]])
    >>> check_resumed_inputs("acts.h5", sample_digests(x), [x[:2]])
    Traceback (most recent call last):
    ...
    ValueError: cannot resume acts.h5: it holds 3 samples but the data has 2; resume needs the same data in the same order. Capture other data into a new store, or pass overwrite=True to replace this one
    """
    if stored is None:
        logger.info("%s records no input fingerprints: its data cannot be checked", path)
        return
    advice = (
        "resume needs the same data in the same order. Capture other data into a new store, "
        "or pass overwrite=True to replace this one"
    )
    seen = 0
    for x in batches:
        now = sample_digests(x)
        want = stored[seen : seen + len(now)]
        differ = np.flatnonzero(want != now[: len(want)])
        if differ.size:
            raise ValueError(
                f"cannot resume {path}: sample {seen + int(differ[0])} is not the input the store "
                f"captured there (their CRC-32 fingerprints differ); {advice}"
            )
        seen += len(now)
        if seen > len(stored):
            break
    if seen != len(stored):
        more = f"more than {len(stored)}" if seen > len(stored) else str(seen)
        raise ValueError(
            f"cannot resume {path}: it holds {len(stored)} samples but the data has {more}; "
            f"{advice}"
        )
