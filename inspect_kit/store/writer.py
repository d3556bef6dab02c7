"""Streaming writer: appends batches to chunked, resizable HDF5 datasets from a background thread.

Commit protocol: each batch writes its layer rows and per-sample columns first and the
``samples/index`` rows last, then flushes. Readers count committed samples by the length of
``samples/index``, so a batch cut off by a crash is never visible, and a resume truncates the
other datasets back to that length.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import schema

logger = logging.getLogger(__name__)

#: target bytes per HDF5 chunk; rows per chunk follow from the row size
CHUNK_BYTES = 1 << 20


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


def _chunk_rows(row_shape: tuple[int, ...], itemsize: int, expected_rows: int | None = None) -> int:
    """Rows per chunk: about CHUNK_BYTES, at most 4096 rows, and no more than the capture's
    expected sample count (HDF5 allocates whole chunks, so a 16-sample store of 1 MB chunks
    would be mostly empty space)."""
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    rows = max(1, min(4096, CHUNK_BYTES // row_bytes))
    if expected_rows is not None and expected_rows > 0:
        rows = min(rows, int(expected_rows))
    return int(rows)


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


def _is_unclean_close(err: OSError) -> bool:
    text = str(err)
    return "already open for write" in text or "truncated file" in text or "SWMR" in text


def recover_killed_store(path: Path) -> int:
    """Rewrite a store whose writer was killed into a clean file, keeping committed rows.

    A writer killed in SWMR mode leaves consistency flags that stop HDF5 from opening the file
    for writing again (h5clear's job). The file still reads cleanly, so the committed rows are
    copied into a new file that replaces the old one atomically. Returns the committed row count.
    """
    tmp = path.with_name(path.name + ".recover")
    with h5py.File(path, "r", libver="latest", swmr=True) as src:
        schema.check_schema(src, path)
        n = int(src[schema.INDEX].shape[0])
        with h5py.File(tmp, "w", libver="latest") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v

            def copy(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Group):
                    g = dst.require_group(name)
                    for k, v in obj.attrs.items():
                        g.attrs[k] = v
                    return
                top = name.split("/")[0]
                if top not in (schema.SAMPLES, schema.LAYERS):
                    src.copy(
                        obj,
                        dst[name.rsplit("/", 1)[0]] if "/" in name else dst,
                        name=name.rsplit("/", 1)[-1],
                    )
                    return
                rows = min(n, obj.shape[0])
                ds = dst.create_dataset(
                    name,
                    shape=(rows,) + obj.shape[1:],
                    maxshape=(None,) + obj.shape[1:],
                    chunks=obj.chunks,
                    dtype=obj.dtype,
                )
                step = max(
                    1, (64 << 20) // max(1, obj.dtype.itemsize * int(np.prod(obj.shape[1:])))
                )
                for s in range(0, rows, step):
                    ds[s : min(rows, s + step)] = obj[s : min(rows, s + step)]
                for k, v in obj.attrs.items():
                    ds.attrs[k] = v

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
    ):
        self._expected_rows = expected_rows
        self._filters = compression_options(compression)
        try:
            self._open(Path(path), attrs, resume=resume, queue_size=queue_size)
        except OSError as err:
            if (
                "already open" in str(err)
                and "read-only" in str(err)
                or "truncate a file which is already open" in str(err)
            ):
                raise OSError(
                    f"{path} is open in this process (an ActivationStore); close it with "
                    "store.close() before writing to it again"
                ) from err
            raise

    def _open(self, path: Path, attrs: dict[str, Any], *, resume: bool, queue_size: int) -> None:
        self.path = Path(path)
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._layer_attrs: dict[str, dict[str, Any]] = {}
        self.nonfinite: dict[str, int] = {}
        self.bytes_written = 0
        if resume:
            try:
                self._file = h5py.File(self.path, "a", libver="latest")
            except OSError as err:
                if not _is_unclean_close(err):
                    raise
                recover_killed_store(self.path)
                self._file = h5py.File(self.path, "a", libver="latest")
            schema.check_schema(self._file, self.path)
            self.n_done = int(self._file[schema.INDEX].shape[0])
            self._truncate(self.n_done)
            self._file.attrs["complete"] = False
            self._initialised = True
            self._file.flush()
            self._file.swmr_mode = True
        else:
            self._file = h5py.File(self.path, "w", libver="latest")
            for k, v in attrs.items():
                self._file.attrs[k] = schema.encode_attr(v)
            self._file.attrs["complete"] = False
            self._file.create_group(schema.SAMPLES)
            self._file.create_group(schema.LAYERS)
            self.n_done = 0
            self._initialised = False

    # -- structure -------------------------------------------------------------------------
    def _truncate(self, n: int) -> None:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.shape and obj.shape[0] > n:
                obj.resize(n, axis=0)

        for top in (schema.SAMPLES, schema.LAYERS):
            if top in self._file:
                self._file[top].visititems(visit)

    def set_layer_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        """Attributes for a layer dataset, applied when it is created."""
        self._layer_attrs[name] = attrs

    def _create(self, path: str, arr: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        row_shape = tuple(arr.shape[1:])
        dtype = _h5_dtype(arr)
        text = dtype == h5py.string_dtype()
        itemsize = 8 if text else arr.dtype.itemsize
        rows = _chunk_rows(row_shape, itemsize, self._expected_rows)
        if self._filters and not text:
            # A compressed chunk rewritten by the next batch is stored anew (HDF5 does not
            # reuse the old space), so chunks hold a divisor of the batch: every batch then
            # writes whole chunks once.
            batch = max(1, arr.shape[0])
            rows = next(r for r in range(min(rows, batch), 0, -1) if batch % r == 0)
        ds = self._file.create_dataset(
            path,
            shape=(0,) + row_shape,
            maxshape=(None,) + row_shape,
            chunks=(rows,) + row_shape,
            dtype=dtype,
            **({} if text else self._filters),
        )
        for k, v in (attrs or {}).items():
            ds.attrs[k] = schema.encode_attr(v)

    def _initialise(self, batch: Batch) -> None:
        """Create every dataset from the first batch, then switch to SWMR writing."""
        for order, (name, arr) in enumerate(batch.layers.items()):
            attrs = dict(self._layer_attrs.get(name, {}))
            attrs["order"] = order
            self._create(f"{schema.LAYERS}/{name}", arr, attrs)
        for path, arr in self._columns(batch):
            self._create(path, arr)
        self._create(schema.INDEX, batch.index)
        self._file.flush()
        self._file.swmr_mode = True
        self._initialised = True

    @staticmethod
    def _columns(batch: Batch) -> list[tuple[str, np.ndarray]]:
        cols = [
            (schema.LABEL, batch.label),
            (schema.PREDICTION, batch.prediction),
            (schema.LOGITS, batch.logits),
            (schema.THUMBNAIL, batch.thumbnail),
        ]
        cols += [(f"{schema.META}/{k}", v) for k, v in batch.meta.items()]
        return [(p, _storable(a)) for p, a in cols if a is not None]

    def _check_matches(self, batch: Batch) -> None:
        """On resume, the new batches must fit the datasets that are already there."""
        stored = set(self._file[schema.LAYERS].keys())
        if set(batch.layers) != stored:
            raise ValueError(
                f"cannot resume {self.path}: it holds layers {sorted(stored)} but this capture "
                f"produced {sorted(batch.layers)}; capture the same layers, or start a new store"
            )
        for name, arr in batch.layers.items():
            have = self._file[f"{schema.LAYERS}/{name}"].shape[1:]
            if tuple(arr.shape[1:]) != tuple(have):
                raise ValueError(
                    f"cannot resume {self.path}: layer {name!r} rows are {tuple(have)} in the "
                    f"store but {tuple(arr.shape[1:])} now; use the same reduce= and input size"
                )

    # -- appending -------------------------------------------------------------------------
    def _append(self, path: str, arr: np.ndarray) -> None:
        ds = self._file[path]
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
            if path not in self._file:
                raise ValueError(
                    f"batch has {path} but the first batch did not; every batch must carry "
                    "the same per-sample fields"
                )
            self._append(path, arr)
        self._append(schema.INDEX, batch.index)  # last: this commits the batch
        self._file.flush()
        self.n_done += len(batch.index)
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
        if not self._initialised:
            self._initialise(batch)
        elif self._thread is None and self.n_done:
            self._check_matches(batch)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="inspect_kit-writer", daemon=True
            )
            self._thread.start()
        self.raise_if_failed()
        self._queue.put(batch)

    def raise_if_failed(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"writing to {self.path} failed: {err}") from err

    def close(self, *, complete: bool, attrs: dict[str, Any] | None = None) -> None:
        """Write what is queued, close the file, then record the outcome.

        HDF5 forbids creating attributes in SWMR-write mode, so the final attributes are
        written after reopening the file normally.
        """
        try:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
        finally:
            self._file.close()
        with h5py.File(self.path, "r+", libver="latest") as f:
            for name, count in self.nonfinite.items():
                ds = f[f"{schema.LAYERS}/{name}"]
                ds.attrs["nonfinite_count"] = int(ds.attrs.get("nonfinite_count", 0)) + count
            for k, v in (attrs or {}).items():
                f.attrs[k] = schema.encode_attr(v)
            f.attrs["complete"] = bool(complete and self._error is None)
        self.raise_if_failed()
