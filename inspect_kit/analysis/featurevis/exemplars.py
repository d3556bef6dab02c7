"""Dataset exemplars: the real inputs that excite each unit most, read from an activation store.

Shown beside an optimised image, the top-k exemplars tell whether the picture resembles
anything the network actually sees. The store is streamed chunk by chunk, so memory stays
bounded by one chunk whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from inspect_kit.analysis.base import is_store, layer_blocks, resolve_layer
from inspect_kit.arrays import spatial_pool
from inspect_kit.store import schema

__all__ = ["Exemplars", "top_exemplars"]

_REDUCE = ("mean", "max")


@dataclass
class Exemplars:
    """Top-k samples per unit of one layer.

    Attributes
    ----------
    layer : str
    units : ndarray (U,)
        Channel indices.
    rows : ndarray (U, k)
        Row of each exemplar in the store (or array), most activating first.
    index : ndarray (U, k)
        Position of each exemplar in the user's dataset (``store.index``; equals ``rows`` for
        an array).
    activations : ndarray (U, k)
        The unit's reduced activation for each exemplar, descending.
    thumbnails : ndarray (U, k, h, w) or (U, k, h, w, 3), uint8, or None
    labels : ndarray (U, k) or None
    reduce : str
        How spatial maps were reduced to one number per unit (``"mean"`` matches
        :func:`~inspect_kit.analysis.featurevis.objectives.channel`).
    """

    layer: str
    units: np.ndarray
    rows: np.ndarray
    index: np.ndarray
    activations: np.ndarray
    thumbnails: np.ndarray | None
    labels: np.ndarray | None
    reduce: str

    @property
    def k(self) -> int:
        return int(self.rows.shape[1])

    def for_unit(self, unit: int) -> dict[str, Any]:
        """The exemplars of one channel as a dict (rows, index, activations, thumbnails, labels)."""
        hits = np.flatnonzero(self.units == unit)
        if not hits.size:
            raise KeyError(f"unit {unit} not computed; available: {self.units.tolist()}")
        i = int(hits[0])
        return {
            "rows": self.rows[i],
            "index": self.index[i],
            "activations": self.activations[i],
            "thumbnails": None if self.thumbnails is None else self.thumbnails[i],
            "labels": None if self.labels is None else self.labels[i],
        }


def _reduce_rows(rows: np.ndarray, reduce: str, source_shape: Sequence[int] | None) -> np.ndarray:
    """(n, C, *S) -> (n, C); a layer captured with reduce='flatten' is unflattened first."""
    # source_shape is one sample's shape before the capture's reduction (C, *S)
    if rows.ndim == 2 and source_shape is not None and len(source_shape) >= 2:
        per_sample = tuple(int(s) for s in source_shape)
        if int(np.prod(per_sample)) == rows.shape[1]:
            rows = rows.reshape(rows.shape[0], *per_sample)
    if rows.ndim < 2:
        raise ValueError(f"expected activations (N, C, ...), got rows of shape {rows.shape}")
    if rows.ndim == 2:
        return rows.astype(np.float64, copy=False)
    pooled: np.ndarray = spatial_pool(rows, "max" if reduce == "max" else "mean", dtype=np.float64)
    return pooled


def _array_chunks(arr: np.ndarray, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(arr), batch_size):
        yield start, np.asarray(arr[start : start + batch_size])


def top_exemplars(
    source: Any,
    layer: str | None = None,
    k: int = 9,
    *,
    units: Sequence[int] | None = None,
    reduce: str = "mean",
    thumbnails: np.ndarray | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> Exemplars:
    """The ``k`` most activating samples of each unit (channel) of a stored layer.

    Parameters
    ----------
    source : ActivationStore or ndarray
        A store (``layer`` required) or an activation array ``(N, C, ...)``.
    layer : str, optional
        Stored layer name.
    k : int
        Exemplars per unit.
    units : sequence of int, optional
        Channels to rank (default: all).
    reduce : {"mean", "max"}
        Reduction of each spatial map to one number. ``"mean"`` is what
        ``channel(layer, n)`` maximises.
    thumbnails : ndarray (N, h, w[, 3]), optional
        Previews for an array source (a store's own thumbnails are used otherwise).
    batch_size : int, optional
        Rows read per chunk (default: the store's chunking).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Exemplars

    Examples
    --------
    >>> acts = np.random.default_rng(0).normal(size=(100, 4, 5, 5))
    >>> ex = top_exemplars(acts, k=3, progress=False)
    >>> ex.rows.shape
    (4, 3)
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")

    if isinstance(source, np.ndarray):
        n = len(source)
        name = layer or "array"
        source_shape = None
        chunks = _array_chunks(source, batch_size or 4096)
        dataset_index = np.arange(n)
        thumbs_all = thumbnails
        labels_all = None
    elif is_store(source):
        if layer is None:
            raise ValueError(f"name the layer to rank; stored layers: {source.layers}")
        layer = resolve_layer(source, layer)  # KeyError with close matches for an unknown layer
        view = source[layer]
        n = len(view)
        name = layer
        source_shape = view.attrs.get(schema.SOURCE_SHAPE_ATTR)
        chunks = layer_blocks(source, layer, batch_size)
        dataset_index = np.asarray(source.index)
        thumbs_all = source.thumbnails if thumbnails is None else thumbnails
        labels_all = source.labels
    else:
        raise TypeError(
            f"source must be an ActivationStore or an ndarray (N, C, ...), got {type(source).__name__}"
        )
    if n == 0:
        raise ValueError("the source has no samples")
    if thumbs_all is not None and len(thumbs_all) != n:
        raise ValueError(f"thumbnails have {len(thumbs_all)} rows for {n} samples")
    k_eff = min(k, n)

    best_val: np.ndarray | None = None
    best_row: np.ndarray | None = None
    unit_idx: np.ndarray | None = None
    bar = tqdm(total=n, desc=f"exemplars {name}", disable=not progress)
    for start, rows in chunks:
        red = _reduce_rows(np.asarray(rows), reduce, source_shape)
        if unit_idx is None:
            c = red.shape[1]
            unit_idx = np.arange(c) if units is None else np.asarray(list(units), dtype=np.int64)
            if unit_idx.size == 0 or unit_idx.min() < 0 or unit_idx.max() >= c:
                raise ValueError(f"units must be channel indices in 0..{c - 1}, got {units!r}")
            best_val = np.full((unit_idx.size, 0), -np.inf)
            best_row = np.zeros((unit_idx.size, 0), dtype=np.int64)
        vals = red[:, unit_idx].T  # (U, n)
        row_ids = np.broadcast_to(np.arange(start, start + red.shape[0]), vals.shape)
        cand_val = np.concatenate([best_val, vals], axis=1)
        cand_row = np.concatenate([best_row, row_ids], axis=1)
        if cand_val.shape[1] > k_eff:
            keep = np.argpartition(-cand_val, k_eff - 1, axis=1)[:, :k_eff]
            cand_val = np.take_along_axis(cand_val, keep, axis=1)
            cand_row = np.take_along_axis(cand_row, keep, axis=1)
        best_val, best_row = cand_val, cand_row
        bar.update(red.shape[0])
    bar.close()

    # n > 0 samples, so the loop ran at least once and set these
    assert best_val is not None and best_row is not None and unit_idx is not None
    # Descending activation; ties broken by row so the result does not depend on chunking.
    order = np.lexsort((best_row, -best_val), axis=1)
    best_val = np.take_along_axis(best_val, order, axis=1)
    best_row = np.take_along_axis(best_row, order, axis=1)
    thumbs = None
    if thumbs_all is not None:
        thumbs = np.asarray(thumbs_all)[best_row]
    labels = None if labels_all is None else np.asarray(labels_all)[best_row]
    return Exemplars(
        layer=name,
        units=unit_idx,
        rows=best_row,
        index=dataset_index[best_row],
        activations=best_val,
        thumbnails=thumbs,
        labels=labels,
        reduce=reduce,
    )
