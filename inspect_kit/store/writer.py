"""Streaming writer: appends batches to chunked, resizable HDF5 datasets from a background thread.

Commit protocol: each batch writes its layer rows, per-sample columns and input fingerprints,
flushes, then appends the ``samples/index`` rows and flushes again. Readers count committed
samples by the length of ``samples/index``, so a batch cut off by a crash is never visible,
and a resume truncates the other datasets back to that length.

Nothing half-made: a new store is written under ``<name>.partial`` and renamed to its name
once its first batch is committed, so a capture that fails (or is killed) before that leaves
no store behind, and ``overwrite=True`` keeps the old file until the new one holds data.

Write errors are errors: datasets are written without HDF5's chunk cache, so a full disk or
an I/O error surfaces in the write itself (not later, in a destructor), and reaches the
capturing thread as one :class:`StoreWriteError` naming the file and the cause. Everything
the final step writes exists before the file switches to SWMR mode, so finishing is an
in-place update that no reader can block.
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import lock as _lock
from . import schema
from .integrity import check_store, open_swmr_read, sample_digests, seal_attrs

logger = logging.getLogger(__name__)

#: target bytes per HDF5 chunk; rows per chunk follow from the row size and the batch size
CHUNK_BYTES = 1 << 20
#: smallest chunk worth having when a batch is smaller than that
MIN_CHUNK_BYTES = 1 << 16
#: Fletcher32 checksum on every chunk of numeric per-sample datasets (benchmarks turn it off
#: to measure its cost; stores written without it read the same, with less protection)
FLETCHER32 = True


class StoreWriteError(OSError):
    """Writing a store failed (a full disk, a quota, an I/O error).

    The rows committed before the failure stay readable and the store says
    ``complete = False``; ``errno`` is the operating system's error number when known.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Batch:
    """One batch of rows, already on the host as numpy arrays."""

    index: np.ndarray
    layers: dict[str, np.ndarray]
    label: np.ndarray | None = None
    prediction: np.ndarray | None = None
    logits: np.ndarray | None = None
    thumbnail: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    #: attribution rows by path under /attributions (``<method>/<key>/maps`` ...)
    attributions: dict[str, np.ndarray] = field(default_factory=dict)
    #: the inputs as host bytes (samples first), fingerprinted by the writer thread
    inputs: np.ndarray | None = None
    #: position of the batch in the data, for error messages
    number: int = 0
    #: called by the writer thread once the batch's arrays are no longer needed
    release: Any = None
    #: called by the writer thread before the arrays are read (e.g. wait for an async copy)
    ready: Any = None


def _storable(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "UO":
        return np.asarray([str(v) for v in arr], dtype=object)
    return arr


def _h5_dtype(arr: np.ndarray) -> Any:
    return h5py.string_dtype() if arr.dtype.kind in "UO" else arr.dtype


def _chunk_rows(row_shape: tuple[int, ...], itemsize: int, batch: int = 1) -> int:
    """Rows per chunk: about CHUNK_BYTES, aligned with the batch so appends fill whole chunks."""
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    cap = int(max(1, min(4096, CHUNK_BYTES // row_bytes)))
    batch = max(1, batch)
    if batch >= cap:  # a batch spans several chunks: the largest divisor of the batch
        return max(d for d in range(1, cap + 1) if batch % d == 0)
    per = max(1, min(cap // batch, -(-MIN_CHUNK_BYTES // (batch * row_bytes))))
    return batch * per


#: compression= choices; "blosc" (LZ4 with byte shuffle) needs the hdf5plugin package
COMPRESSIONS = (None, "gzip", "lzf", "blosc")


def compression_options(compression: str | None) -> dict[str, Any]:
    """h5py create_dataset keywords for a ``compression=`` choice."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression={compression!r} is not one of None, 'gzip', 'lzf', 'blosc'")
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    schema.load_filters("blosc")
    import hdf5plugin

    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))


def _field_name(path: str) -> str:
    """How a user knows a per-sample field: labels, metadata 'site', layer 'conv1' ..."""
    names = {
        schema.LABEL: "labels",
        schema.PREDICTION: "predictions",
        schema.LOGITS: "logits",
        schema.THUMBNAIL: "thumbnails",
    }
    if path in names:
        return names[path]
    if path.startswith(schema.META + "/"):
        return f"metadata {path[len(schema.META) + 1 :]!r}"
    if path.startswith(schema.LAYERS + "/"):
        return f"layer {path[len(schema.LAYERS) + 1 :]!r}"
    return path


def _errno_of(err: BaseException) -> int | None:
    if isinstance(err, OSError) and err.errno:
        return int(err.errno)
    found = re.search(r"errno = (\d+)", str(err))
    return int(found.group(1)) if found else None


def _is_unclean_close(err: OSError) -> bool:
    text = str(err)
    return "already open for write" in text or "truncated file" in text or "SWMR" in text


def _close_quietly(f: h5py.File | None) -> BaseException | None:
    """Close ``f`` and every object open in it; return the error instead of raising it.

    A file whose last flush failed may refuse to close at first; trying again (and dropping
    every handle) keeps HDF5 from retrying in destructors at interpreter exit.
    """
    if f is None:
        return None
    err: BaseException | None = None
    for _ in range(3):
        try:
            if f.id.valid:
                f.close()
            return None
        except Exception as e:  # noqa: BLE001 - reported by the caller
            err = e
    return err


def _copy_rows(src: h5py.Dataset, dst_parent: h5py.File, name: str, rows: int) -> None:
    ds = dst_parent.create_dataset(
        name,
        shape=(rows,) + src.shape[1:],
        maxshape=(None,) + src.shape[1:],
        chunks=src.chunks,
        dtype=src.dtype,
        fletcher32=src.fletcher32,
        compression=src.compression,
        compression_opts=src.compression_opts,
        shuffle=src.shuffle,
    )
    row_bytes = max(1, src.dtype.itemsize * int(np.prod(src.shape[1:], dtype=np.int64)))
    step = max(1, (64 << 20) // row_bytes)
    for s in range(0, rows, step):
        ds[s : min(rows, s + step)] = src[s : min(rows, s + step)]
    for k, v in src.attrs.items():
        ds.attrs[k] = v


def recover_killed_store(path: Path) -> int:
    """Rewrite a store whose writer was killed into a clean file, keeping committed rows.

    A writer killed in SWMR mode leaves consistency flags that stop HDF5 from opening the file
    for writing again (h5clear's job). The file still reads cleanly, so the committed rows are
    copied into a new file that replaces the old one atomically. Returns the committed row count.
    """
    tmp = path.with_name(path.name + ".recover")
    with _lock.write_lock(path), open_swmr_read(path) as src:
        schema.check_schema(src, path)
        n = int(src[schema.INDEX].shape[0])
        check_store(src, path, n)
        with h5py.File(tmp, "w", libver="latest") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v

            def copy(name: str, obj: Any) -> None:
                parent_name, _, leaf = name.rpartition("/")
                parent = dst[parent_name] if parent_name else dst
                if isinstance(obj, h5py.Group):
                    g = dst.require_group(name)
                    for k, v in obj.attrs.items():
                        g.attrs[k] = v
                elif name.split("/")[0] in schema.PER_SAMPLE_GROUPS:
                    _copy_rows(obj, parent, leaf, min(n, obj.shape[0]))
                else:
                    src.copy(obj, parent, name=leaf)

            src.visititems(copy)
    os.replace(tmp, path)
    logger.info("recovered %d committed samples from a killed capture in %s", n, path)
    return n


class StoreWriter:
    """Owns the HDF5 file while a capture runs; see the module docstring for the protocol.

    Parameters
    ----------
    path : Path
        The store's file.
    attrs : dict
        Root attributes (provenance) written when the file is created.
    resume : bool
        Continue an existing store instead of creating one.
    queue_size : int
        Batches that may wait for the writer; bounds host memory.
    expected_rows : int, optional
        Samples the capture will write, when known: chunks hold no more rows than this.
    compression : {None, "gzip", "lzf", "blosc"}
        Filter of the numeric datasets (chunking along samples stays).
    overwrite : bool
        A new store may replace a file already at ``path``. Checked again once the write lock
        is held, so a capture that started when no store was there never replaces one that
        another capture finished meanwhile.

    The store's write lock (:mod:`inspect_kit.store.lock`) is taken before anything is touched
    and held until :meth:`close`; a second writer gets :class:`StoreLockedError`.
    """

    def __init__(
        self,
        path: Path,
        attrs: dict[str, Any],
        *,
        resume: bool,
        queue_size: int = 4,
        expected_rows: int | None = None,
        compression: str | None = None,
        overwrite: bool = True,
    ):
        self._expected_rows = expected_rows
        self._filters = compression_options(compression)
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._attrs = attrs
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._raised = False
        self._thread: threading.Thread | None = None
        self._layer_attrs: dict[str, dict[str, Any]] = {}
        self._file: h5py.File | None = None
        self._ds: dict[str, h5py.Dataset] = {}
        #: per-sample fields (dataset paths) and their row shapes, fixed by the first batch
        self._fields: dict[str, tuple[int, ...]] | None = None
        self._digests = True
        self.nonfinite: dict[str, int] = {}
        self.bytes_written = 0
        self.n_done = 0
        #: rows of the batches accepted so far (committed or queued): what a failure keeps
        self._accepted = 0
        self._renamed = resume
        _lock.acquire(self.path)
        self._locked = True
        try:
            if not resume and not overwrite and self.path.exists():
                raise FileExistsError(
                    f"{self.path} was written by another capture meanwhile; pass overwrite=True "
                    "to replace it, or resume=True to continue it"
                )
            if resume:
                self._open_existing()
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            _lock.release(self.path)

    # -- structure -------------------------------------------------------------------------
    def _open_existing(self) -> None:
        try:
            self._file = self._h5(self.path, "a")
        except OSError as err:
            text = str(err)
            if "already open" in text and "read-only" in text:
                raise OSError(
                    f"{self.path} is open in this process (an ActivationStore); close it with "
                    "store.close() before writing to it again"
                ) from err
            if "unable to lock" in text:
                raise OSError(
                    f"{self.path} is open in another process that locks it (a reader such as "
                    "h5py.File or a notebook's open_store); close it there, then resume"
                ) from err
            if not _is_unclean_close(err):
                raise
            recover_killed_store(self.path)
            self._file = self._h5(self.path, "a")
        f = self._file
        try:
            schema.check_schema(f, self.path)
            self.n_done = self._accepted = int(f[schema.INDEX].shape[0])
            check_store(f, self.path, self.n_done)

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset) and obj.shape and obj.shape[0] > self.n_done:
                    obj.resize(self.n_done, axis=0)

            for top in schema.PER_SAMPLE_GROUPS:
                if top in f:
                    f[top].visititems(visit)
            for name in f[schema.LAYERS]:
                ds = f[f"{schema.LAYERS}/{name}"]
                if schema.NONFINITE_COUNT not in ds.attrs:
                    ds.attrs[schema.NONFINITE_COUNT] = np.int64(0)
                seal_attrs(ds)
            f.attrs[schema.COMPLETE_ATTR] = False
            seal_attrs(f)
            self._ds = {p: f[p] for p in [schema.INDEX, *self._per_sample_paths(f)] if p in f}
            self._digests = schema.INPUT_DIGEST in f
            self._fields = {
                p: tuple(ds.shape[1:])
                for p, ds in self._ds.items()
                if p not in (schema.INDEX, schema.INPUT_DIGEST)
            }
            f.flush()
            f.swmr_mode = True
        except BaseException:
            _close_quietly(self._file)
            self._file = None
            raise

    @staticmethod
    def _per_sample_paths(f: h5py.File) -> list[str]:
        found: list[str] = []
        for top in (t for t in schema.PER_SAMPLE_GROUPS if t in f):
            f[top].visititems(
                lambda n, o, top=top: (
                    found.append(f"{top}/{n}") if isinstance(o, h5py.Dataset) else None
                )
            )
        return found

    @property
    def _open_file(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError(f"{self.path}: the store writer is not open")
        return self._file

    @staticmethod
    def _h5(path: Path, mode: str) -> h5py.File:
        # No chunk cache: a write error surfaces in the write, not in a later destructor.
        return h5py.File(path, mode, libver="latest", rdcc_nbytes=0)

    def set_layer_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        """Attributes for a layer dataset, applied when it is created."""
        self._layer_attrs[name] = attrs

    def _create(self, path: str, arr: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        row_shape = tuple(arr.shape[1:])
        dtype = _h5_dtype(arr)
        string = dtype == h5py.string_dtype()
        batch = max(1, arr.shape[0])
        rows = _chunk_rows(row_shape, 8 if string else arr.dtype.itemsize, batch)
        if self._expected_rows:  # HDF5 allocates whole chunks: none larger than the store
            rows = min(rows, int(self._expected_rows))
        if self._filters and not string:
            # A compressed chunk rewritten by the next batch is stored anew (HDF5 does not
            # reuse the old space), so chunks hold a divisor of the batch: every batch then
            # writes whole chunks once.
            rows = next(r for r in range(min(rows, batch), 0, -1) if batch % r == 0)
        self._ds[path] = ds = self._open_file.create_dataset(
            path,
            shape=(0,) + row_shape,
            maxshape=(None,) + row_shape,
            chunks=(rows,) + row_shape,
            dtype=dtype,
            fletcher32=FLETCHER32 and not string,  # no filters on variable-length strings
            **({} if string else self._filters),
        )
        for k, v in (attrs or {}).items():
            ds.attrs[k] = schema.encode_attr(v)
        if path.startswith(schema.LAYERS + "/"):
            seal_attrs(ds)

    def _initialise(self, batch: Batch) -> None:
        """Create the file and every dataset from the first batch, then switch to SWMR."""
        self._file = f = self._h5(self.partial, "w")
        for k, v in self._attrs.items():
            f.attrs[k] = schema.encode_attr(v)
        f.attrs[schema.COMPLETE_ATTR] = False
        seal_attrs(f)
        f.create_group(schema.SAMPLES)
        f.create_group(schema.LAYERS)
        for order, (name, arr) in enumerate(batch.layers.items()):
            attrs = dict(self._layer_attrs.get(name, {}))
            attrs["order"] = order
            attrs[schema.NONFINITE_COUNT] = np.int64(0)  # updated in place when finishing
            self._create(f"{schema.LAYERS}/{name}", arr, attrs)
        for path, arr in self._columns(batch):
            self._create(path, arr, self._layer_attrs.get(path))
        if batch.inputs is not None:
            self._create(schema.INPUT_DIGEST, np.zeros(len(batch.index), np.uint32))
        else:
            self._digests = False
        self._create(schema.INDEX, batch.index)
        f.flush()
        f.swmr_mode = True

    @staticmethod
    def _columns(batch: Batch) -> list[tuple[str, np.ndarray]]:
        cols = [
            (schema.LABEL, batch.label),
            (schema.PREDICTION, batch.prediction),
            (schema.LOGITS, batch.logits),
            (schema.THUMBNAIL, batch.thumbnail),
        ]
        cols += [(f"{schema.META}/{k}", v) for k, v in batch.meta.items()]
        cols += [(f"{schema.ATTRIBUTIONS}/{k}", v) for k, v in batch.attributions.items()]
        return [(p, _storable(a)) for p, a in cols if a is not None]

    def _check_fields(self, batch: Batch) -> None:
        """Every batch carries the same per-sample fields, with the same row shapes."""
        fields = {f"{schema.LAYERS}/{k}": tuple(a.shape[1:]) for k, a in batch.layers.items()}
        fields.update({p: tuple(a.shape[1:]) for p, a in self._columns(batch)})
        if self._fields is None:
            self._fields = fields
            return
        before = "the store" if self.n_done and self._thread is None else "the earlier batches"
        stored_layers = {p for p in self._fields if p.startswith(schema.LAYERS + "/")}
        new_layers = {p for p in fields if p.startswith(schema.LAYERS + "/")}
        if stored_layers != new_layers and before == "the store":
            raise ValueError(
                f"cannot resume {self.path}: it holds layers "
                f"{sorted(p.split('/', 1)[1] for p in stored_layers)} but this capture produced "
                f"{sorted(batch.layers)}; capture the same layers, or start a new store"
            )
        missing = sorted(set(self._fields) - set(fields))
        extra = sorted(set(fields) - set(self._fields))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {', '.join(map(_field_name, missing))} that {before} had")
            if extra:
                parts.append(f"has {', '.join(map(_field_name, extra))} that {before} did not")
            raise ValueError(
                f"batch {batch.number} {' and '.join(parts)}; per-sample fields must come with "
                f"every batch or with none (the {self._accepted} samples before it are kept "
                f"in {self.path.name})"
            )
        for p, shape in fields.items():
            if shape != self._fields[p]:
                raise ValueError(
                    f"batch {batch.number}: {_field_name(p)} rows are {shape} but {before} had "
                    f"{self._fields[p]}; every batch must give rows of the same shape (same "
                    "reduce= and input size)"
                )

    # -- appending -------------------------------------------------------------------------
    def _append(self, path: str, arr: np.ndarray) -> None:
        ds = self._ds[path]
        n = ds.shape[0]
        ds.resize(n + arr.shape[0], axis=0)
        ds[n:] = arr
        self.bytes_written += arr.nbytes

    def _write(self, batch: Batch) -> None:
        if batch.ready is not None:
            batch.ready()
        for name, arr in batch.layers.items():
            # A sum is finite iff every term is (barring overflow, which the exact count
            # below then sorts out) and costs far less than an elementwise mask.
            if arr.dtype.kind == "f" and not np.isfinite(arr.sum(dtype=np.float64)):
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                if bad:
                    self.nonfinite[name] = self.nonfinite.get(name, 0) + bad
            self._append(f"{schema.LAYERS}/{name}", arr)
        for path, arr in self._columns(batch):
            self._append(path, arr)
        if self._digests:
            assert batch.inputs is not None  # the capture loop sends the inputs of every batch
            self._append(schema.INPUT_DIGEST, sample_digests(batch.inputs))
        self._open_file.flush()  # the rows reach the file before the index that commits them
        self._append(schema.INDEX, batch.index)
        self._open_file.flush()
        self.n_done += len(batch.index)
        if not self._renamed:
            from .results import remove_results

            remove_results(self.path)  # results of the store this one replaces
            os.replace(self.partial, self.path)
            self._renamed = True
        if batch.release is not None:
            batch.release()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is not None:
                continue  # drain without writing after a failure
            try:
                self._write(batch)
            except BaseException as err:  # noqa: BLE001 - handed to the capturing thread
                self._error = err

    def put(self, batch: Batch) -> None:
        """Queue a batch for writing (blocks while the queue is full)."""
        self.raise_if_failed()
        self._check_fields(batch)
        if batch.inputs is not None and len(batch.inputs) != len(batch.index):
            raise ValueError(f"batch {batch.number}: inputs and index differ in length")
        if self._file is None:
            try:
                self._initialise(batch)
            except Exception as err:
                self._error = err
                self.raise_if_failed()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="inspect_kit-writer", daemon=True
            )
            self._thread.start()
        self._queue.put(batch)
        self._accepted += len(batch.index)

    def stored_digests(self, start: int, stop: int) -> np.ndarray | None:
        """The input fingerprints of committed samples ``start:stop`` (None if not recorded)."""
        if self._file is None or not self._digests or schema.INPUT_DIGEST not in self._ds:
            return None
        digests: np.ndarray = self._ds[schema.INPUT_DIGEST][start:stop]
        return digests

    def _wrap(self, err: BaseException) -> StoreWriteError:
        code = _errno_of(err)
        if code is not None:
            name = _errno.errorcode.get(code, "")
            cause = f"{os.strerror(code)} ({name})" if name else os.strerror(code)
        else:
            cause = " ".join(str(err).split()) or type(err).__name__
        done = (
            f"the {self.n_done} samples committed before stay readable (complete=False); "
            "rerun with resume=True once the cause is fixed"
            if self.n_done
            else "nothing was committed, so no store was left behind"
        )
        wrapped = StoreWriteError(f"writing {self.path} failed: {cause}; {done}")
        wrapped.errno, wrapped.filename = code, str(self.path)
        return wrapped

    def raise_if_failed(self) -> None:
        """Raise the writer thread's error (once) as a :class:`StoreWriteError`."""
        if self._error is not None and not self._raised:
            self._raised = True
            err = self._error
            if isinstance(err, StoreWriteError | ValueError):
                raise err
            raise self._wrap(err) from err

    def close(self, *, complete: bool) -> None:
        """Write what is queued, record the outcome in place, close the file.

        Every attribute written here was created before the file switched to SWMR mode, so
        this is an in-place update: nothing reopens the file, and no reader can block it.
        A store that never committed a batch is removed.
        """
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        f = self._file
        if f is not None and self._error is None and self.n_done:
            try:
                for name, count in self.nonfinite.items():
                    ds = self._ds[f"{schema.LAYERS}/{name}"]
                    total = int(ds.attrs.get(schema.NONFINITE_COUNT, 0)) + count
                    ds.attrs.modify(schema.NONFINITE_COUNT, np.int64(total))
                    seal_attrs(ds)
                if complete:
                    f.flush()
                    f.attrs.modify(schema.COMPLETE_ATTR, True)
                    seal_attrs(f)
                f.flush()
            except Exception as err:  # noqa: BLE001 - raised below, once
                self._error = err
        self._ds = {}
        self._file = None
        failed = _close_quietly(f)
        if failed is not None and self._error is None:
            self._error = failed
        if not self._renamed:
            self.partial.unlink(missing_ok=True)
        self._unlock()
        if self._error is not None and not self._raised:
            self.raise_if_failed()
