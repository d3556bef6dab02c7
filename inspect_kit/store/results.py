"""Results beside the store: ``<store>.results.h5``, written whole and swapped in atomically.

A complete capture is never opened for writing again. Everything written after it -- the
CLI's ``/inputs`` record, embedding, probe, similarity and latent caches, report results --
goes to a sidecar file beside the store, and every write of it is atomic: the new sidecar is
written to ``<sidecar>.tmp-<pid>`` (the old one's groups copied, the new group added),
flushed to disk, then renamed over the old one under the store's write lock. A kill, a full
disk or an I/O error during a result write therefore leaves the store untouched (its
``verify()`` passes) and the old sidecar as it was; losing the sidecar loses cached results
(recomputed by the next command, with one line saying so), never captured data.

The sidecar names the snapshot of the store it describes (creation time, model hash, capture
config, committed samples and their input fingerprints): results of another capture at the same
path, or of the store before a resume added samples, are never read back as this one's.
"""

from __future__ import annotations

import errno as _errno
import glob
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import lock as _lock
from . import schema

logger = logging.getLogger(__name__)

#: root attribute of a sidecar: the identity of the store snapshot its results describe
IDENTITY_ATTR = "store_identity"
SUFFIX = ".results.h5"

_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def results_path(store_path: str | os.PathLike[str]) -> Path:
    """The sidecar of the store at ``store_path``: ``<store>.results.h5``.

    Examples
    --------
    >>> results_path("runs/acts.h5").name
    'acts.h5.results.h5'
    """
    p = Path(store_path)
    return p.with_name(p.name + SUFFIX)


def store_identity(attrs: dict[str, Any], n_samples: int, digests: np.ndarray | None) -> str:
    """A short hash naming one snapshot of one capture (see the module docstring).

    Examples
    --------
    >>> len(store_identity({"created": "2026-01-01T00:00:00+00:00"}, 3, None))
    32
    """
    h = hashlib.sha256()
    for key in (schema.CREATED_ATTR, schema.MODEL_SHA256_ATTR, schema.CONFIG_ATTR):
        h.update(json.dumps(attrs.get(key), sort_keys=True, default=str).encode())
    h.update(str(int(n_samples)).encode())
    if digests is not None:
        h.update(np.ascontiguousarray(digests[:4096], dtype=np.uint32).tobytes())
    return h.hexdigest()[:32]


def _warn_damaged(sidecar: Path, err: BaseException) -> None:
    logger.warning(
        "the results file %s does not read back (%s): its cached results are ignored and "
        "recomputed; the captured data are not affected",
        sidecar,
        schema.h5_cause(err),
    )


def _open_sidecar(sidecar: Path, identity: str) -> h5py.File | None:
    """The sidecar opened read-only when it holds this snapshot's results, else None."""
    if not sidecar.is_file():
        return None
    try:
        f = h5py.File(sidecar, "r")
    except _H5_ERRORS as err:
        _warn_damaged(sidecar, err)
        return None
    try:
        found = schema.decode_attr(f.attrs.get(IDENTITY_ATTR, ""))
    except _H5_ERRORS as err:
        f.close()
        _warn_damaged(sidecar, err)
        return None
    if found != identity:
        f.close()
        logger.info(
            "%s holds results of another capture (or of fewer samples) of this store: ignored",
            sidecar,
        )
        return None
    return f


def _decode_group(grp: h5py.Group) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    data = {
        k: (v.asstr()[()] if v.dtype.kind == "O" else v[()])
        for k, v in grp.items()
        if isinstance(v, h5py.Dataset)
    }
    return data, schema.decode_attrs(grp.attrs)


def read_result(
    store_path: str | os.PathLike[str], identity: str, group: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``(data, attrs)`` of a result group in the sidecar, or None (absent, stale, damaged).

    Examples
    --------
    >>> read_result("no/such/acts.h5", "0" * 32, "probes/label") is None
    True
    """
    sidecar = results_path(store_path)
    f = _open_sidecar(sidecar, identity)
    if f is None:
        return None
    try:
        with f:
            obj = f.get(group.strip("/"))
            if not isinstance(obj, h5py.Group):
                return None
            return _decode_group(obj)
    except _H5_ERRORS as err:
        _warn_damaged(sidecar, err)
        return None


def result_groups(store_path: str | os.PathLike[str], identity: str) -> list[str]:
    """Every group of the sidecar that holds a dataset (what ``store.results()`` lists)."""
    sidecar = results_path(store_path)
    f = _open_sidecar(sidecar, identity)
    if f is None:
        return []
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and any(isinstance(v, h5py.Dataset) for v in obj.values()):
            found.append(name)

    try:
        with f:
            f.visititems(visit)
    except _H5_ERRORS as err:
        _warn_damaged(sidecar, err)
        return []
    return found


def _copy_except(src: h5py.Group, dst: h5py.Group, skip: str, prefix: str = "") -> None:
    for name, obj in src.items():
        full = f"{prefix}{name}"
        if full == skip:
            continue
        if isinstance(obj, h5py.Group) and skip.startswith(full + "/"):
            sub = dst.require_group(name)
            for k, v in obj.attrs.items():
                sub.attrs[k] = v
            _copy_except(obj, sub, skip, full + "/")
        else:
            src.copy(obj, dst, name=name)


def remove_stale_writes(store_path: str | os.PathLike[str]) -> None:
    """Remove sidecar writes a killed process left (call with the write lock held)."""
    sidecar = results_path(store_path)
    for tmp in glob.glob(glob.escape(str(sidecar)) + ".tmp-*"):
        try:
            os.unlink(tmp)
        except OSError:
            continue
        logger.warning(
            "removed %s, a result write that was interrupted (killed?); its result is "
            "recomputed, the captured data and the other results are as they were",
            tmp,
        )


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_result(
    store_path: str | os.PathLike[str],
    identity: str,
    group: str,
    data: dict[str, Any],
    attrs: dict[str, Any],
) -> None:
    """Replace the result ``group`` in the sidecar, atomically, under the store's write lock.

    Raises
    ------
    OSError
        :class:`~inspect_kit.store.lock.StoreLockedError` when another process writes the
        store, or :class:`~inspect_kit.store.StoreWriteError` naming the sidecar and the cause
        (a full disk, a read-only folder); the store and the old sidecar are then unchanged.

    Examples
    --------
    >>> write_result("acts.h5", identity, "probes/label", {"acc": acc}, {})   # doctest: +SKIP
    """
    from .writer import StoreWriteError, _close_quietly, _errno_of

    group = group.strip("/")
    sidecar = results_path(store_path)
    tmp = sidecar.with_name(f"{sidecar.name}.tmp-{os.getpid()}")
    with _lock.write_lock(store_path):
        remove_stale_writes(store_path)
        old = _open_sidecar(sidecar, identity)
        out: h5py.File | None = None
        try:
            out = h5py.File(tmp, "w", libver="latest", rdcc_nbytes=0)
            _fill(out, old, sidecar, identity, group, data, attrs)
            out.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, sidecar)
            _fsync_dir(sidecar.parent)
        except BaseException as err:
            _close_quietly(out)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            if not isinstance(err, OSError | RuntimeError):
                raise
            code = _errno_of(err)
            cause = (
                f"{os.strerror(code)} ({_errno.errorcode.get(code, code)})"
                if code
                else schema.h5_cause(err)
            )
            wrapped = StoreWriteError(
                f"writing the result {group} to {sidecar} failed: {cause}; the store's captured "
                "data and its earlier results are unchanged"
            )
            wrapped.errno, wrapped.filename = code, str(sidecar)
            raise wrapped from err
        finally:
            if old is not None:
                old.close()


def _fill(
    out: h5py.File,
    old: h5py.File | None,
    sidecar: Path,
    identity: str,
    group: str,
    data: dict[str, Any],
    attrs: dict[str, Any],
) -> None:
    out.attrs[IDENTITY_ATTR] = identity
    if old is not None:
        try:
            _copy_except(old, out, group)
        except _H5_ERRORS as err:  # a damaged old sidecar: start afresh
            _warn_damaged(sidecar, err)
            for name in list(out):
                del out[name]
    grp = out.require_group(group)
    for key, value in data.items():
        value = np.asarray(value)
        if value.dtype.kind in "UO":
            value = value.astype(h5py.string_dtype())
        grp.create_dataset(key, data=value)
    for key, value in attrs.items():
        grp.attrs[key] = schema.encode_attr(value)


def remove_results(store_path: str | os.PathLike[str]) -> None:
    """Delete the sidecar of a store being replaced (call with the write lock held)."""
    sidecar = results_path(store_path)
    if sidecar.exists():
        sidecar.unlink()
        logger.info("removed %s: it described the store this capture replaces", sidecar)
