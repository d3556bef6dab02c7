"""Dask and xarray views of a store's layers, for analyses over stores larger than memory.

The Dask array reads through :class:`H5Rows`, a small picklable accessor that opens the
file by path in each task (read-only, SWMR), so it works with the threaded scheduler and
with a ``dask.distributed`` cluster whose workers see the same filesystem. Dask chunks are
whole multiples of the HDF5 chunks along the samples axis (a chunk is never read twice) and
hold full rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import schema
from .integrity import open_h5

if TYPE_CHECKING:
    from .reader import ActivationStore

#: target bytes of one Dask chunk (a whole number of HDF5 chunks along the samples)
DASK_CHUNK_BYTES = 64 << 20


class H5Rows:
    """Array-like over the first ``n`` rows of one HDF5 dataset, opened per read.

    Parameters
    ----------
    path : str or Path
        The store's file.
    dataset : str
        The dataset inside it (``layers/<name>``).
    n : int
        Rows visible (the store's committed samples).

    Examples
    --------
    >>> rows = H5Rows("acts.h5", "layers/conv1", n=100)      # doctest: +SKIP
    >>> rows[:10].shape                                      # doctest: +SKIP
    (10, 16)
    """

    def __init__(self, path: str | Path, dataset: str, n: int):
        self.path = str(Path(path).resolve())
        self.dataset = dataset
        with open_h5(self.path) as f:
            self.compression = schema.decode_attr(f.attrs.get(schema.COMPRESSION, "none"))
            ds = f[dataset]
            self.stored_as = schema.decode_attr(ds.attrs.get(schema.STORED_AS, ""))
            self.shape: tuple[int, ...] = (int(n),) + tuple(ds.shape[1:])
            stored = ds.dtype
        self.dtype = np.dtype(np.float32) if self.stored_as == schema.BFLOAT16 else stored
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        from .reader import _from_stored

        schema.load_filters(self.compression)  # a fresh worker process registers Blosc
        with open_h5(self.path) as f:
            out = np.asarray(f[self.dataset][key])
        return _from_stored(out, self.stored_as)

    def __len__(self) -> int:
        return self.shape[0]


def hdf5_chunk_rows(path: str | Path, dataset: str) -> int:
    """Rows per HDF5 chunk of ``dataset``; for a virtual dataset of a torchrun store, the rows
    that one chunk of every part covers (the parts interleave row by row)."""
    with open_h5(path) as f:
        ds = f[dataset]
        if ds.chunks:
            return int(ds.chunks[0])
        if ds.is_virtual:
            sources = ds.virtual_sources()
            if sources:
                src = Path(sources[0].file_name)
                if not src.is_absolute():
                    src = Path(path).parent / src
                with open_h5(src) as part:
                    chunks = part[sources[0].dset_name].chunks
                if chunks:
                    return int(chunks[0]) * len(sources)
        return max(1, int(ds.shape[0]))


def to_dask(store: ActivationStore, layer: str, *, chunk_bytes: int = DASK_CHUNK_BYTES) -> Any:
    """A lazy ``dask.array.Array`` of a layer, chunked along samples on HDF5 chunk boundaries.

    Parameters
    ----------
    store : ActivationStore
    layer : str
        A stored layer (close matches are suggested for unknown names).
    chunk_bytes : int
        Target size of a Dask chunk; rounded to whole HDF5 chunks (at least one).

    Returns
    -------
    dask.array.Array
        Shape (N, ...) in the store's sample order; float32 for bfloat16 stored layers.

    Examples
    --------
    >>> x = store.to_dask("conv2")                    # doctest: +SKIP
    >>> x.mean(axis=0).compute().shape                # doctest: +SKIP
    (16,)
    """
    try:
        import dask.array as da
    except ImportError as err:  # pragma: no cover - dask is in the scale extra
        raise ImportError(
            "to_dask needs dask; install it with pip install 'inspect-kit[scale]'"
        ) from err
    view = store[layer]  # validates the name
    n = len(view)
    rows = H5Rows(store.path, f"{schema.LAYERS}/{layer}", n)
    h5_rows = hdf5_chunk_rows(store.path, f"{schema.LAYERS}/{layer}")
    row_bytes = max(1, int(np.prod(rows.shape[1:], dtype=np.int64)) * rows.dtype.itemsize)
    per = max(1, chunk_bytes // (h5_rows * row_bytes)) * h5_rows
    chunks = (max(1, min(per, n)),) + rows.shape[1:]
    return da.from_array(
        rows, chunks=chunks, lock=False, asarray=True, fancy=False, name=f"{layer}-{store.path}"
    )


def _dims(layer_attrs: dict[str, Any], ndim: int) -> tuple[str, ...]:
    if ndim == 1:
        return ("sample",)
    first = "feature" if layer_attrs.get("reduction") == "flatten" else "channel"
    spatial = {0: (), 1: ("position",), 2: ("y", "x"), 3: ("z", "y", "x")}.get(ndim - 2)
    if spatial is None:
        spatial = tuple(f"axis{i}" for i in range(2, ndim))
    return ("sample", first) + spatial


def to_xarray(store: ActivationStore, layer: str) -> Any:
    """The layer as an ``xarray.DataArray`` over :func:`to_dask`, with named dimensions.

    Dimensions are ``sample``, ``channel`` (``feature`` for flattened maps) and the spatial
    axes ``y, x`` (2D maps), ``z, y, x`` (3D maps) or ``position`` (1D); the sample
    coordinate is the dataset position (``/samples/index``), with ``label``, ``prediction``
    and each 1-D metadata column as further coordinates along ``sample``.

    Examples
    --------
    >>> arr = store.to_xarray("conv2")                         # doctest: +SKIP
    >>> arr.groupby("label").mean("sample").compute()          # doctest: +SKIP
    """
    try:
        import xarray as xr
    except ImportError as err:  # pragma: no cover - xarray is in the scale extra
        raise ImportError(
            "to_xarray needs xarray; install it with pip install 'inspect-kit[scale]'"
        ) from err
    data = to_dask(store, layer)
    attrs = store[layer].attrs
    dims = _dims(attrs, data.ndim)
    coords: dict[str, Any] = {"sample": store.index}
    for name, values in (("label", store.labels), ("prediction", store.predictions)):
        if values is not None:
            coords[name] = ("sample", values)
    for name, values in store.metadata.items():
        if values is not None and values.ndim == 1 and name not in coords:
            coords[name] = ("sample", values)
    scalar_attrs = {
        k: v for k, v in attrs.items() if isinstance(v, str | int | float | bool | np.generic)
    }
    return xr.DataArray(data, dims=dims, coords=coords, name=layer, attrs=scalar_attrs)
