"""Feature rows for embedding: from an array or a lazily read store layer, pooled block by block."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from inspect_kit.arrays import POOLINGS, spatial_pool

logger = logging.getLogger(__name__)

#: names accepted by ``reduce=``
REDUCTIONS = ("mean", "max", "flatten", "none")

#: rows read at once are sized to about this many bytes of raw (unreduced) activations
DEFAULT_BLOCK_BYTES = 64 * 2**20


def reduction_label(reduce: str | Callable[..., Any] | None) -> str:
    """How ``reduce`` is recorded with a result."""
    if reduce is None:
        return "none"
    if callable(reduce):
        return f"callable:{getattr(reduce, '__qualname__', repr(reduce))}"
    if reduce not in REDUCTIONS:
        raise ValueError(
            f"unknown reduce={reduce!r}; use one of {', '.join(map(repr, REDUCTIONS))}, None, "
            "or a callable mapping an (n, ...) array to (n, features)"
        )
    return str(reduce)


def reduce_rows(rows: np.ndarray, reduce: str | Callable[..., Any] | None) -> np.ndarray:
    """Turn a block of activations ``(n, ...)`` into feature rows ``(n, D)``.

    ``'mean'``/``'max'`` pool over every axis after the channel axis (global average/max
    pooling of (n, C, H, W) or (n, C, D, H, W) maps to (n, C)); ``'flatten'`` keeps every value.
    Rows that are already vectors pass through whatever ``reduce`` says.
    """
    rows = np.asarray(rows)
    n = rows.shape[0]
    if callable(reduce):
        out = np.asarray(reduce(rows))
        if out.ndim != 2 or out.shape[0] != n:
            raise ValueError(
                f"reduce callable must map ({n}, ...) to ({n}, features); got shape {out.shape}"
            )
        return out
    label = reduction_label(reduce)
    if rows.ndim == 1:
        return rows[:, None]
    if rows.ndim == 2:
        return rows
    if label in POOLINGS:
        # spatial_pool takes tensors too (typed Any); an ndarray in is an ndarray out
        pooled: np.ndarray = spatial_pool(
            rows, label, dtype=np.float64 if label == "mean" else None
        )
        return pooled
    if label == "flatten":
        return rows.reshape(n, -1)
    raise ValueError(
        f"features have spatial shape {rows.shape[1:]}; pick a reduction: reduce='mean' "
        "(global average pooling), 'max' or 'flatten'"
    )


class Features:
    """Feature rows ``(N, D)`` of an array or a store layer, read and pooled block by block.

    Parameters
    ----------
    data : array-like
        ``(N, ...)`` activations: an ndarray, a store's layer view (``store["conv2"]``) or an
        h5py dataset. Only the rows of the block being processed are in memory at a time.
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        Reduction of spatial maps (see :func:`reduce_rows`).
    samples : array of int, optional
        Rows of ``data`` to use, in this order (default: all).
    name : str, optional
        Used in messages (a layer name).
    block_rows : int, optional
        Rows read at once (default: about 64 MiB of raw activations).
    progress : bool
        Progress bar over the blocks of a pass (only when there are several).
    dtype : numpy dtype, optional
        Dtype of the rows handed out: float64 when ``data`` is a float64 array (kept as
        scikit-learn keeps it), float32 otherwise (store layers, float16/bfloat16, integers).
    """

    def __init__(
        self,
        data: Any,
        reduce: str | Callable[..., Any] | None = "mean",
        samples: np.ndarray | None = None,
        name: str | None = None,
        block_rows: int | None = None,
        progress: bool = True,
        dtype: Any = None,
    ):
        if not hasattr(data, "shape") or not hasattr(data, "__getitem__"):
            data = np.asarray(data)
        if dtype is None:
            keep64 = isinstance(data, np.ndarray) and data.dtype == np.float64
            dtype = np.float64 if keep64 else np.float32
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        shape = tuple(data.shape)
        if len(shape) < 1:
            raise ValueError("features must have a sample axis: expected (N, ...), got a scalar")
        self.data = data
        self.reduce = reduce
        self.reduction = reduction_label(reduce)
        self.name = name or getattr(data, "name", None) or "features"
        self.progress = progress
        self.source_shape = shape[1:]
        n_total = shape[0]
        if samples is None:
            self.samples = None
            self.n_samples: int = n_total
        else:
            samples = np.asarray(samples)
            if samples.dtype == bool:
                if samples.shape != (n_total,):
                    raise ValueError(
                        f"a boolean samples mask must have shape ({n_total},), got {samples.shape}"
                    )
                samples = np.flatnonzero(samples)
            if samples.dtype.kind not in "iu" or samples.ndim != 1:
                raise TypeError("samples must be a 1-D array of row positions or a boolean mask")
            samples = np.where(samples < 0, samples + n_total, samples).astype(np.int64)
            if samples.size and (samples.min() < 0 or samples.max() >= n_total):
                raise IndexError(f"samples out of range for {self.name!r} with {n_total} rows")
            self.samples = samples
            self.n_samples = len(samples)
        row_bytes = max(1, int(np.prod(self.source_shape, dtype=np.int64))) * self.dtype.itemsize
        self.block_rows = int(block_rows or max(1, DEFAULT_BLOCK_BYTES // row_bytes))
        if self.n_samples == 0:
            raise ValueError(f"{self.name!r} has no samples to embed")
        self.n_features: int = self._raw_block(0, 1).shape[1]

    # -- reading -----------------------------------------------------------------------------
    def _read(self, positions: np.ndarray | slice) -> np.ndarray:
        if isinstance(self.data, np.ndarray):
            return self.data[positions]
        if isinstance(positions, np.ndarray):
            # h5py fancy indexing wants increasing indices; read sorted, restore the order.
            uniq, inverse = np.unique(positions, return_inverse=True)
            return np.asarray(self.data[uniq])[inverse]
        return np.asarray(self.data[positions])

    def _raw_block(self, start: int, stop: int) -> np.ndarray:
        pos = slice(start, stop) if self.samples is None else self.samples[start:stop]
        rows = reduce_rows(self._read(pos), self.reduce)
        return np.asarray(rows, dtype=self.dtype)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Reduced rows ``start:stop`` (of the selected samples), ``(n, D)`` of ``dtype``.

        One read of the source, whatever else was read before: what streamed estimators call
        block by block, in any order. Raises ValueError on NaN or infinite values.
        """
        rows = self._raw_block(int(start), int(stop))
        self._check_finite_block(rows, np.arange(start, start + len(rows)))
        return rows

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Reduced rows at ``positions`` (into the selected samples), ``(n, D)`` of ``dtype``."""
        positions = np.asarray(positions, dtype=np.int64)
        src = positions if self.samples is None else self.samples[positions]
        rows = np.asarray(reduce_rows(self._read(src), self.reduce), dtype=self.dtype)
        self._check_finite_block(rows, positions)
        return rows

    def blocks(self, desc: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows)``: reduced rows of ``dtype``, one block at a time.

        Raises ValueError at the end of the pass if any value was NaN or infinite, with counts.
        """
        n_blocks = -(-self.n_samples // self.block_rows)
        bad_values = 0
        bad_rows: list[np.ndarray] = []
        bar = tqdm(
            total=n_blocks,
            desc=desc or f"reading {self.name}",
            unit="block",
            disable=not self.progress or n_blocks <= 1,
            leave=False,
        )
        try:
            for start in range(0, self.n_samples, self.block_rows):
                stop = min(self.n_samples, start + self.block_rows)
                rows = self._raw_block(start, stop)
                if not _all_finite(rows):
                    finite = np.isfinite(rows)
                    bad_values += int((~finite).sum())
                    bad_rows.append(start + np.flatnonzero(~finite.all(axis=1)))
                    # the pass fails at its end (with counts); zeros keep consumers quiet
                    rows = np.where(finite, rows, rows.dtype.type(0))
                yield start, rows
                del rows  # don't hold this block while the next one is read
                bar.update(1)
        finally:
            bar.close()
        if bad_values:
            self._raise_non_finite(bad_values, np.concatenate(bad_rows))

    def to_numpy(self) -> np.ndarray:
        """All reduced rows in memory, ``(N, D)`` of ``dtype`` (read block by block).

        A whole ``(N, D)`` ndarray of ``dtype`` is returned as it is (not copied): callers
        must not modify the result in place.
        """
        data = self.data
        if (
            self.samples is None
            and isinstance(data, np.ndarray)
            and data.dtype == self.dtype
            and data.ndim == 2
            and not callable(self.reduce)
        ):
            if not _all_finite(data):
                self._check_finite_block(data, np.arange(len(data)))
            return data
        out = np.empty((self.n_samples, self.n_features), dtype=self.dtype)
        for start, rows in self.blocks():
            out[start : start + len(rows)] = rows
        return out

    @property
    def nbytes(self) -> int:
        """Memory of the reduced features."""
        return self.n_samples * self.n_features * self.dtype.itemsize

    # -- validation --------------------------------------------------------------------------
    def _check_finite_block(self, rows: np.ndarray, positions: np.ndarray) -> None:
        if _all_finite(rows):
            return
        finite = np.isfinite(rows)
        if not finite.all():
            self._raise_non_finite(
                int((~finite).sum()), positions[np.flatnonzero(~finite.all(axis=1))]
            )

    def _raise_non_finite(self, n_values: int, rows: np.ndarray) -> None:
        shown = ", ".join(str(int(r)) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"{self.name!r} has {n_values} non-finite values (NaN or infinite) in {len(rows)} of "
            f"{self.n_samples} samples (sample positions {shown}); analyses need finite "
            "features: leave those samples out with samples=..., or fix the model/capture "
            "that produced them"
        )

    def describe(self) -> dict[str, Any]:
        """What is recorded with a result about the features."""
        return {
            "source_shape": list(self.source_shape),
            "reduce": self.reduction,
            "n_features": int(self.n_features),
            "n_samples": int(self.n_samples),
        }


def _all_finite(rows: np.ndarray) -> bool:
    """Fast check without a boolean copy: the sum is finite when no value is NaN/inf (an
    overflowing sum only sends the caller down its exact, slower path)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(rows.sum()))


def as_features(
    X: Any, reduce: str | Callable[..., Any] | None = "mean", progress: bool = True
) -> Features:
    """Wrap ``X`` (array, layer view, or :class:`Features`) as :class:`Features`."""
    if isinstance(X, Features):
        return X
    return Features(X, reduce=reduce, progress=progress)


# -- on Dask ------------------------------------------------------------------------------------
def _reduce_block(block: np.ndarray, reduce: Any, dtype: Any) -> np.ndarray:
    """One Dask block of raw rows to feature rows (module level: picklable for workers)."""
    return np.asarray(reduce_rows(block, reduce), dtype=dtype)


def dask_features(feats: Features, chunk_bytes: int | None = None, dtype: Any = None) -> Any:
    """The feature rows of ``feats`` as a lazy ``(N, D)`` Dask array, chunked along samples.

    A store layer is read through :meth:`ActivationStore.to_dask` (tasks open the file by
    path, so a ``dask.distributed`` cluster can compute it, pooling included); an in-memory
    array is wrapped. ``chunk_bytes`` sizes the chunks of raw rows (default: the store's
    64 MiB, or ``feats.block_rows``). ``dtype`` (default ``feats.dtype``) is applied inside
    each block's task: a separate ``astype`` made Dask's threaded scheduler hold several
    times the data while reducing it.
    """
    import dask.array as da

    data = feats.data
    store = getattr(data, "_store", None)
    if store is not None and hasattr(store, "to_dask"):
        if chunk_bytes is None:
            x = store.to_dask(data.name)
        else:
            from inspect_kit.store.views import to_dask

            x = to_dask(store, data.name, chunk_bytes=int(chunk_bytes))
    else:
        x = da.from_array(np.asarray(data), chunks=(feats.block_rows,) + feats.source_shape)
    if feats.samples is not None:
        x = x[feats.samples]
    x = x.rechunk({i: -1 for i in range(1, x.ndim)})
    kwargs: dict[str, Any] = {}
    if x.ndim == 1:
        kwargs["new_axis"] = 1
    elif x.ndim > 2:
        kwargs["drop_axis"] = list(range(2, x.ndim))
    dtype = np.dtype(feats.dtype if dtype is None else dtype)
    return x.map_blocks(
        _reduce_block,
        feats.reduce,
        dtype,
        chunks=(x.chunks[0], (feats.n_features,)),
        dtype=dtype,
        **kwargs,
    )


# -- slices of channels at chosen rows (Gram matrices) -------------------------------------------
#: bytes of float64 features converted at once (a slice of channels)
BLOCK_BYTES = 64 * 2**20
#: rows are read from the file at once up to this many bytes as stored
RAW_BYTES = 256 * 2**20


class GramReader:
    """The rows of one layer at given sample positions, as float64 slices of channels.

    Yields ``(n, width)`` blocks whose concatenation along axis 1 is the (reduced) feature
    matrix, each at most about ``block_bytes``. The rows are read from the file once when they
    take at most ``raw_bytes`` as stored (HDF5 reads whole chunks, so slicing channels on disk
    would read each chunk once per slice); wider rows are read a slice of channels at a time.
    """

    def __init__(
        self,
        view: Any,
        reduction: str,
        block_bytes: int | None = None,
        raw_bytes: int | None = None,
    ):
        self.view = view
        self.name = view.name
        self.reduction = reduction
        shape = tuple(view.shape[1:])
        self.source_shape = shape
        self.block_bytes = int(BLOCK_BYTES if block_bytes is None else block_bytes)
        self.raw_bytes = int(RAW_BYTES if raw_bytes is None else raw_bytes)
        self.row_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(view.dtype).itemsize
        if not shape:
            self.n_features = 1
        elif len(shape) == 1 or reduction == "flatten":
            self.n_features = int(np.prod(shape, dtype=np.int64))
        else:
            self.n_features = int(shape[0])

    def _features(self, rows: np.ndarray, n: int) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim > 2 and self.reduction == "mean":
            rows = rows.reshape(n, rows.shape[1], -1).mean(axis=2)
        elif rows.ndim > 2 and self.reduction == "max":
            rows = rows.reshape(n, rows.shape[1], -1).max(axis=2)
        else:
            rows = rows.reshape(n, -1)
        if not np.all(np.isfinite(rows)):
            raise ValueError(
                f"layer {self.name!r} holds NaN or infinite values; analyses need finite features"
            )
        return rows

    def blocks(self, positions: np.ndarray) -> Iterator[np.ndarray]:
        n = len(positions)
        shape = self.source_shape
        if not shape:
            yield self._features(self._read(positions, None), n).reshape(n, 1)
            return
        if len(shape) == 1:
            per_unit, units = 1, shape[0]
        else:
            per_unit, units = int(np.prod(shape[1:], dtype=np.int64)), shape[0]
        step = max(1, self.block_bytes // max(1, n * per_unit * 8))
        whole = self._read(positions, None) if n * self.row_bytes <= self.raw_bytes else None
        for start in range(0, units, step):
            stop = min(units, start + step)
            rows = (
                whole[:, start:stop] if whole is not None else self._read(positions, (start, stop))
            )
            yield self._features(rows, n)

    def _read(self, positions: np.ndarray, units: tuple[int, int] | None) -> np.ndarray:
        """Rows at ``positions`` (in that order), optionally channels ``units[0]:units[1]``.

        Sorted positions are read as runs of contiguous rows (h5py's fancy indexing reads row
        by row, ~10x slower than slices): the next position joins a run when the rows skipped
        cost less than about 1 MiB to read, and a run stays under :data:`BLOCK_BYTES`.
        """
        shape = self.source_shape
        width = 1 if units is None else (units[1] - units[0]) / max(1, shape[0])
        row_bytes = max(1, int(self.row_bytes * width))
        gap = max(1, 2**20 // row_bytes)
        cap = max(1, BLOCK_BYTES // row_bytes)
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        out: np.ndarray | None = None
        i = 0
        while i < len(ordered):
            j = i + 1
            while (
                j < len(ordered)
                and ordered[j] - ordered[j - 1] <= gap
                and ordered[j] - ordered[i] < cap
            ):
                j += 1
            span = slice(int(ordered[i]), int(ordered[j - 1]) + 1)
            block = self.view[span] if units is None else self.view[span, units[0] : units[1]]
            if out is None:
                out = np.empty((len(positions),) + block.shape[1:], dtype=block.dtype)
            out[order[i:j]] = block[ordered[i:j] - ordered[i]]
            i = j
        assert out is not None  # positions is never empty
        return out

    def gram(self, positions: np.ndarray, centre: bool) -> tuple[np.ndarray, np.ndarray]:
        """Linear Gram ``X X^T`` of the rows at ``positions`` and their row sums."""
        n = len(positions)
        G = np.zeros((n, n))
        sums = np.zeros(n)
        for block in self.blocks(positions):
            if centre:
                block = block - block.mean(axis=0)
            G += block @ block.T
            sums += block.sum(axis=1)
        return G, sums
