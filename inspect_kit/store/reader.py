"""Lazy, read-only access to an activation store."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._names import unknown_name_error
from ..labels import label_class_mismatch
from . import results as results_store
from . import schema
from .integrity import check_store, per_sample_datasets

logger = logging.getLogger(__name__)
#: (store, error) pairs already warned about by save_result in this process
_WARNED: set[tuple[str, str]] = set()

#: errors h5py raises when what is on disk does not read back (checksums, truncation)
_H5_READ_ERRORS = (OSError, RuntimeError, KeyError)


#: errors that a damaged file makes h5py (or decoding what it read) raise
_DAMAGE_ERRORS = (*_H5_READ_ERRORS, ValueError, TypeError, UnicodeError, IndexError)


def _raised_by_h5py(err: BaseException) -> bool:
    """Whether ``err`` comes from h5py/HDF5 (or decoding bytes), not from this package's checks."""
    if isinstance(err, UnicodeError):
        return True
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and ("h5py" in last or "<frozen" in last or "json" in last)


def _damage(path: Path, what: str, err: BaseException) -> schema.StoreError:
    return schema.StoreError(
        f"{path} is damaged: reading {what} failed ({schema.h5_cause(err) or type(err).__name__}); "
        "the file changed after it was written (a bit flip, a bad copy?)"
    )


def _from_stored(arr: np.ndarray, stored_as: str | None) -> np.ndarray:
    if stored_as == schema.BFLOAT16:
        # bfloat16 is the top half of a float32: widen the raw bits back.
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


class LayerView:
    """A lazily read dataset of a store: slicing reads only the rows asked for.

    Only rows whose batch was committed when the store was opened (or last refreshed) are
    visible, so a view of a store that a capture is still writing (or that was killed) never
    shows half-written rows, and every layer and column has the same length.
    """

    def __init__(self, store: ActivationStore, path: str, name: str):
        self._store = store
        self._path = path
        self.name = name

    @property
    def _ds(self) -> h5py.Dataset:
        return self._store._dataset(self._path)

    def _read(self, ds: h5py.Dataset, sel: Any) -> np.ndarray:
        return self._store._read(ds, sel, self._path)

    @property
    def shape(self) -> tuple[int, ...]:
        with self._store._reading(f"the shape of /{self._path}"):
            return (len(self),) + tuple(self._ds.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        if self.attrs.get(schema.STORED_AS) == schema.BFLOAT16:
            return np.dtype(np.float32)
        dtype: np.dtype[Any] = self._ds.dtype
        return dtype

    @property
    def stored_dtype(self) -> str:
        """The dtype on disk ('bfloat16' for bfloat16 stored as raw bits)."""
        stored_as = self.attrs.get(schema.STORED_AS)
        return stored_as or str(self._ds.dtype)

    @property
    def attrs(self) -> dict[str, Any]:
        with self._store._reading(f"the attributes of /{self._path}"):
            return schema.decode_attrs(self._store._dataset(self._path).attrs)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self._store.n_samples

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        ds = self._ds
        if isinstance(key, tuple):
            first, rest = key[0], key[1:]
        else:
            first, rest = key, ()
        if isinstance(first, slice):
            first = slice(*first.indices(n))
            out = self._read(ds, (first,) + rest)
        elif isinstance(first, int | np.integer):
            i = int(first) + n if first < 0 else int(first)
            if not 0 <= i < n:
                raise IndexError(f"row {first} is out of range for {self.name!r} with {n} rows")
            out = self._read(ds, (i,) + rest)
        else:
            idx = np.asarray(first)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"indices out of range for {self.name!r} with {n} rows")
            # h5py wants increasing unique indices: read sorted, then restore the order asked.
            uniq, inverse = np.unique(idx, return_inverse=True)
            out = (
                self._read(ds, (uniq,) + rest)[inverse]
                if uniq.size
                else self._read(ds, (slice(0, 0),) + rest)
            )
        return _from_stored(np.asarray(out), self.attrs.get(schema.STORED_AS))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr.astype(dtype) if dtype is not None else arr

    def __repr__(self) -> str:
        return f"<LayerView {self.name!r} shape={self.shape} dtype={self.stored_dtype}>"


class ActivationStore:
    """An HDF5 activation store written by :func:`inspect_kit.capture`.

    Opened read-only (SWMR, so it can be read while a capture is still writing it, and
    without a file lock, so it never blocks that capture). A store is a snapshot: it shows
    the samples committed when it was opened, in every layer and column alike, until
    :meth:`refresh`. Layer datasets are read lazily: ``store["conv2"][100:200]`` reads those
    rows only.

    Opening checks that the file is whole (its size, and every per-sample dataset's extent
    against the committed count); every read of numeric data verifies HDF5's per-chunk
    Fletcher32 checksums; :meth:`verify` reads everything. Damage raises
    :class:`~inspect_kit.store.StoreError` naming the file and what is wrong.

    Parameters
    ----------
    path : str or Path
        The store's file.

    Examples
    --------
    >>> store = inspect_kit.open_store("activations.h5")      # doctest: +SKIP
    >>> store.layers                                          # doctest: +SKIP
    ['conv1', 'conv2', 'fc']
    >>> store["conv2"][:8].shape                              # doctest: +SKIP
    (8, 16)
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._datasets: dict[str, h5py.Dataset] = {}
        self._identity: str | None = None
        self._file: h5py.File = schema.open_h5_read(self.path)
        try:
            self._snapshot()
        except BaseException:
            self.close()
            raise

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn any HDF5 error while reading ``what`` into a StoreError naming the file."""
        try:
            yield
        except schema.StoreError:
            raise
        except _DAMAGE_ERRORS as err:
            if not _raised_by_h5py(err):
                raise
            raise _damage(self.path, what, err) from err

    def _snapshot(self) -> None:
        """Fix the committed count and the root attributes, after checking the file."""
        try:
            self._n = int(self._dataset(schema.INDEX).shape[0])
            check_store(self._file, self.path, self._n)
            self._attrs = schema.decode_attrs(self._file.attrs)
        except schema.StoreError:
            raise
        except _H5_READ_ERRORS as err:
            raise schema.StoreError(
                f"{self.path} is damaged: its structure does not read back ({schema.h5_cause(err)})"
            ) from err

    def refresh(self) -> int:
        """See the samples a running capture committed since the store was opened.

        Returns the new number of samples.
        """
        self._reopen()
        return self._n

    def _dataset(self, path: str) -> h5py.Dataset:
        """One h5py.Dataset object per dataset (HDF5's SWMR reads want a single live one)."""
        ds = self._datasets.get(path)
        if ds is None or not ds.id.valid:
            with self._reading(f"/{path}"):
                try:
                    ds = self._datasets[path] = self._file[path]
                except KeyError as err:
                    if path in self._file:  # a link that is there but does not resolve
                        raise schema.StoreError(
                            f"{self.path} is damaged: /{path} does not read back "
                            f"({schema.h5_cause(err)})"
                        ) from err
                    raise
                if not isinstance(ds, h5py.Dataset):
                    raise schema.StoreError(
                        f"{self.path} is damaged: /{path} is a {type(ds).__name__}, not a dataset"
                    )
        return ds

    def _read(self, ds: h5py.Dataset, sel: Any, path: str) -> np.ndarray:
        try:
            rows: np.ndarray = ds[sel]
            return rows
        except _DAMAGE_ERRORS as err:
            if not _raised_by_h5py(err):
                raise
            raise schema.StoreError(
                f"{self.path} is damaged: reading /{path} failed ({schema.h5_cause(err)}); "
                "the file changed after it was written (a bit flip, a bad copy?)"
            ) from err

    def verify(self) -> None:
        """Read every committed row of every dataset, so that HDF5 checks every checksum.

        Raises
        ------
        inspect_kit.store.StoreError
            Naming the file, the dataset and the problem, at the first damage found.

        Examples
        --------
        >>> inspect_kit.open_store("activations.h5").verify()   # doctest: +SKIP
        """
        with self._reading("the store's datasets"):
            self._verify()

    def _verify(self) -> None:
        for path, ds in per_sample_datasets(self._file).items():
            row_bytes = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
            step = max(1, (32 << 20) // row_bytes)
            for start in range(0, self._n, step):
                self._read(self._dataset(path), slice(start, min(self._n, start + step)), path)

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                self._read(obj, (), name)

        for top in self._file:
            if top not in (schema.SAMPLES, schema.LAYERS):
                try:
                    obj = self._file[top]
                except _H5_READ_ERRORS as err:
                    raise schema.StoreError(
                        f"{self.path} is damaged: /{top} does not read back "
                        f"({schema.h5_cause(err)})"
                    ) from err
                visit(top, obj) if isinstance(obj, h5py.Dataset) else obj.visititems(visit)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the file (also done by ``with open_store(...) as store:``)."""
        self._datasets = {}
        if self._file is not None and self._file.id.valid:
            self._file.close()

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reopen(self) -> None:
        self.close()
        self._identity = None
        self._file = schema.open_h5_read(self.path)
        self._snapshot()

    # -- samples ---------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of committed samples (rows whose whole batch was written) in this snapshot."""
        return self._n

    def __len__(self) -> int:
        return self.n_samples

    def _sample_array(self, path: str) -> np.ndarray | None:
        with self._reading(f"/{path}"):
            if path not in self._file:
                return None
        return self._read_samples(path)

    def _read_samples(self, path: str) -> np.ndarray:
        n = self.n_samples
        arr = self._read(self._dataset(path), slice(0, n), path)
        if arr.dtype.kind in "SO":
            with self._reading(f"the strings of /{path}"):
                arr = np.array(
                    [v.decode() if isinstance(v, bytes) else v for v in arr], dtype=object
                )
        return arr

    @property
    def index(self) -> np.ndarray:
        """Position of each sample in the user's dataset, shape (N,)."""
        return self._read_samples(schema.INDEX)

    @property
    def input_digests(self) -> np.ndarray | None:
        """CRC-32 fingerprints of the captured inputs, shape (N,), or None if not recorded."""
        return self._sample_array(schema.INPUT_DIGEST)

    @property
    def labels(self) -> np.ndarray | None:
        return self._sample_array(schema.LABEL)

    @property
    def predictions(self) -> np.ndarray | None:
        return self._sample_array(schema.PREDICTION)

    @property
    def logits(self) -> np.ndarray | None:
        return self._sample_array(schema.LOGITS)

    @property
    def n_outputs(self) -> int | None:
        """Width of the stored logits (the model's number of classes), or None."""
        with self._reading(f"/{schema.LOGITS}"):
            if schema.LOGITS not in self._file or self._file[schema.LOGITS].ndim != 2:
                return None
            return int(self._file[schema.LOGITS].shape[1])

    @property
    def label_mismatch(self) -> str | None:
        """Why the labels are not the model's classes (so no accuracy), or None.

        See :func:`inspect_kit.labels.label_class_mismatch`; uses the logits' width
        and the class names recorded under ``/inputs``.
        """
        labels, predictions = self.labels, self.predictions
        if labels is None or predictions is None:
            return None
        found = self.load_result("inputs")
        names = found[1].get("class_names") if found is not None else None
        return label_class_mismatch(
            labels,
            predictions,
            n_outputs=self.n_outputs,
            class_names=[str(c) for c in names] if names is not None and len(names) else None,
        )

    @property
    def thumbnails(self) -> np.ndarray | None:
        """Small uint8 previews of the inputs, (N, h, w) or (N, h, w, 3), or None."""
        return self._sample_array(schema.THUMBNAIL)

    @property
    def metadata(self) -> dict[str, np.ndarray]:
        """Per-sample metadata columns (patient id, site, ...), strings decoded."""
        with self._reading(f"/{schema.META}"):
            if schema.META not in self._file:
                return {}
            names = list(self._file[schema.META])
        return {k: self._read_samples(f"{schema.META}/{k}") for k in names}

    # -- layers ----------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        """Captured layer names, in capture order."""
        with self._reading(f"/{schema.LAYERS}"):
            if schema.LAYERS not in self._file:
                return []
            grp = self._file[schema.LAYERS]
            return sorted(grp.keys(), key=lambda k: int(grp[k].attrs.get("order", 0)))

    def _check_layer(self, layer: str) -> str:
        if layer not in self.layers:
            raise unknown_name_error(
                layer, self.layers, where=f"store {self.path.name}", see="store.layers"
            )
        return layer

    def __getitem__(self, layer: str) -> LayerView:
        self._check_layer(layer)
        return LayerView(self, f"{schema.LAYERS}/{layer}", layer)

    def __contains__(self, layer: object) -> bool:
        return layer in self.layers

    def to_numpy(self, layer: str, dtype: Any = None) -> np.ndarray:
        """Read a whole layer into memory (see :meth:`iter_chunks` for larger-than-memory)."""
        arr = self[layer][:]
        return arr.astype(dtype, copy=False) if dtype is not None else arr

    def to_dask(self, layer: str) -> Any:
        """A lazy ``dask.array.Array`` of a layer, chunked on the HDF5 chunks along samples.

        Each task opens the file by path, so the array computes on a ``dask.distributed``
        cluster whose workers share the filesystem. Needs ``pip install 'inspect-kit[scale]'``.

        Examples
        --------
        >>> store.to_dask("conv2").mean(axis=0).compute()      # doctest: +SKIP
        """
        from .views import to_dask

        return to_dask(self, layer)

    def to_xarray(self, layer: str) -> Any:
        """The layer as an ``xarray.DataArray`` (dims sample, channel, spatial axes; samples'
        index, label, prediction and metadata as coordinates) over :meth:`to_dask`.

        Examples
        --------
        >>> store.to_xarray("conv2").groupby("label").mean("sample")   # doctest: +SKIP
        """
        from .views import to_xarray

        return to_xarray(self, layer)

    def iter_chunks(
        self, layer: str, batch_size: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows)`` blocks of a layer, ``batch_size`` rows at a time.

        The default block is the dataset's HDF5 chunk rounded up to about 64 MiB, so memory
        stays bounded by the block, not the store.
        """
        view = self[layer]
        n = len(view)
        if batch_size is None:
            ds = view._ds
            row_bytes = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
            chunk_rows = ds.chunks[0] if ds.chunks else 1
            batch_size = max(chunk_rows, (64 * 2**20 // row_bytes) // chunk_rows * chunk_rows)
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive number of rows, got {batch_size}")
        for start in range(0, n, batch_size):
            yield start, view[start : min(n, start + batch_size)]

    # -- provenance ------------------------------------------------------------------------
    @property
    def provenance(self) -> dict[str, Any]:
        """Schema and library versions, model class and hash, the capture's config, created, complete."""
        return dict(self._attrs)

    @property
    def complete(self) -> bool:
        """True once the capture finished cleanly (as of this snapshot)."""
        return bool(self._attrs.get(schema.COMPLETE_ATTR, False))

    # -- results saved by analyses -----------------------------------------------------------
    @property
    def identity(self) -> str:
        """The hash naming this snapshot of this capture (what its results file is keyed by)."""
        if self._identity is None:
            self._identity = results_store.store_identity(self._attrs, self._n, self.input_digests)
        return self._identity

    def save_result(self, group: str, data: dict[str, np.ndarray], attrs: dict[str, Any]) -> bool:
        """Write analysis results under ``<group>/<key>`` of the store's results file.

        Results go to ``<store>.results.h5`` beside the store, replaced atomically under the
        store's write lock (:mod:`inspect_kit.store.results`): the store itself is never
        written after its capture. A write that cannot happen (a read-only folder, a full
        disk, another process writing the store) logs one warning and returns False; the
        result is then recomputed next time.

        Returns
        -------
        bool
            Whether the result was saved.
        """
        group = group.strip("/")
        if group.split("/")[0] in (schema.SAMPLES, schema.LAYERS):
            raise ValueError(f"results cannot be written under /{group}: that is captured data")
        try:
            results_store.write_result(self.path, self.identity, group, data, attrs)
        except OSError as err:
            # one line per store and cause: a report on a read-only folder tries many writes
            key = (str(self.path), type(err).__name__)
            level = logging.DEBUG if key in _WARNED else logging.WARNING
            _WARNED.add(key)
            logger.log(level, "results not saved (%s): %s", group, err)
            return False
        return True

    def load_result(self, group: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Read what :meth:`save_result` wrote (or a store of an older version holds in
        itself), or None if nothing is there."""
        group = group.strip("/")
        found = results_store.read_result(self.path, self.identity, group)
        if found is not None:
            return found
        with self._reading(f"the result /{group}"):
            if group.split("/")[0] in (schema.SAMPLES, schema.LAYERS) or group not in self._file:
                return None
            grp = self._file[group]
            if not isinstance(grp, h5py.Group):
                return None
            return results_store._decode_group(grp)

    def results(self, prefix: str = "") -> list[str]:
        """Groups written by :meth:`save_result` (optionally only those under ``prefix``)."""
        found: list[str] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group) and any(
                isinstance(v, h5py.Dataset) for v in obj.values()
            ):
                found.append(name)

        with self._reading("the results"):
            for top in self._file:
                if top in (schema.SAMPLES, schema.LAYERS):
                    continue
                obj = self._file[top]
                visit(top, obj)
                if isinstance(obj, h5py.Group):
                    obj.visititems(lambda n, o, top=top: visit(f"{top}/{n}", o))
        found += [
            g for g in results_store.result_groups(self.path, self.identity) if g not in found
        ]
        return [g for g in found if g.startswith(prefix.strip("/"))]

    # -- display ---------------------------------------------------------------------------
    def summary(self) -> str:
        """A human-readable summary: provenance, samples and one line per layer."""
        p = self.provenance
        lines = [
            f"inspect_kit store {self.path}",
            f"  model      {p.get('model_class')}  sha256 {str(p.get('model_sha256'))[:12]}",
            f"  created    {p.get('created')}  torch {p.get('torch_version')}  "
            f"inspect_kit {p.get('inspect_kit_version')}  schema v{p.get('schema_version')}",
            f"  samples    {self.n_samples}  complete={self.complete}",
        ]
        extras = [
            name
            for name, val in (
                ("labels", schema.LABEL),
                ("predictions", schema.PREDICTION),
                ("logits", schema.LOGITS),
                ("thumbnails", schema.THUMBNAIL),
            )
            if val in self._file
        ]
        extras += [f"meta:{k}" for k in self.metadata]
        lines.append(f"  per-sample {', '.join(extras) or '-'}")
        if self.labels is not None and self.predictions is not None and self.n_samples:
            mismatch = self.label_mismatch
            if mismatch:
                lines.append(
                    f"  accuracy   not shown: the labels are not the model's classes ({mismatch})"
                )
            else:
                acc = float(np.mean(self.labels == self.predictions))
                lines.append(f"  accuracy   {acc:.3f} (prediction vs label)")
        lines.append("  layers:")
        for name in self.layers:
            v = self[name]
            a = v.attrs
            lines.append(
                f"    {name:<28} {str(v.shape[1:]):<18} {v.stored_dtype:<9} "
                f"{a.get('module_type', '')} reduce={a.get('reduction')} "
                f"source={tuple(a.get('source_shape', ()))}"
            )
        results = self.results()
        if results:
            lines.append(f"  results: {', '.join(results)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        status = "open" if self._file and self._file.id.valid else "closed"
        return f"<ActivationStore {self.path.name} {status} samples={self.n_samples if status == 'open' else '?'} layers={len(self.layers) if status == 'open' else '?'}>"


def open_store(path: str | os.PathLike[str]) -> ActivationStore:
    """Open an activation store read-only.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`inspect_kit.capture`.

    Returns
    -------
    ActivationStore

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    inspect_kit.store.StoreError
        If the file is not a store, or was written by a newer schema.

    Examples
    --------
    >>> with inspect_kit.open_store("activations.h5") as store:   # doctest: +SKIP
    ...     print(store.summary())
    """
    return ActivationStore(path)
