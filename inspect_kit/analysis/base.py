"""The store-facing base every analysis stands on.

An analysis reads an activation store only through this module (and :mod:`.cache` for its
results, :mod:`.blocks` for the block readers):

- :func:`opened` takes a path or an open store and hands back an open store, closing it
  afterwards only if it opened it;
- :func:`resolve_layers` / :func:`resolve_layer` turn layer specs (the one grammar of
  :mod:`inspect_kit.hooks.spec`: dotted names, ``name:1`` calls, ``name[0]`` outputs, globs)
  into the store's layer names, with close matches for unknown ones;
- :func:`match_samples` pairs the rows of two stores by their dataset index;
- :func:`layer_features` reads a layer in blocks, pooled or flattened
  (:class:`~inspect_kit.analysis.blocks.Features`; :func:`~inspect_kit.analysis.blocks.dask_features`
  for the same rows on Dask);
- :func:`check_features` validates an in-memory feature matrix (numeric, 2-D, finite, enough
  samples);
- :class:`SampleColumns` carries the per-sample columns (index, labels, predictions,
  metadata, thumbnails) of the samples an analysis uses, as one typed object.

A new analysis (e.g. attribution maps) is its maths plus these calls::

    with opened(path) as store:
        layer = resolve_layer(store, "layer4")
        columns = SampleColumns.from_store(store)
        feats = layer_features(store, layer, reduce="mean")
        for start, rows in feats.blocks():
            ...
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspect_kit._names import unknown_name_error
from inspect_kit.hooks.spec import glob_regex, is_glob, parse_layer_spec

from .blocks import Features

logger = logging.getLogger(__name__)

__all__ = [
    "SampleColumns",
    "SampleMatch",
    "check_features",
    "is_store",
    "layer_blocks",
    "layer_features",
    "match_samples",
    "open_path",
    "opened",
    "resolve_layer",
    "resolve_layers",
    "sample_positions",
]

#: target names that mean the store's labels / predictions
LABEL_NAMES = ("label", "labels")
PREDICTION_NAMES = ("prediction", "predictions")


# -- opening --------------------------------------------------------------------------------------
def is_store(obj: Any) -> bool:
    """Whether ``obj`` is an open activation store (anything with its reading API).

    Examples
    --------
    >>> is_store(np.zeros((3, 2)))
    False
    """
    return all(hasattr(obj, a) for a in ("layers", "iter_chunks", "save_result", "load_result"))


def open_path(path: str | os.PathLike[str]) -> Any:
    """Open the store at ``path`` read-only; the caller closes it (or keeps it open, as the
    explorer does for as long as it shows the store).

    Examples
    --------
    >>> store = open_path("acts.h5")              # doctest: +SKIP
    """
    from inspect_kit.store import open_store

    return open_store(Path(path))


@contextmanager
def opened(store: Any) -> Iterator[Any]:
    """An open store from a path or a store; a store this opened is closed on exit.

    Parameters
    ----------
    store : ActivationStore, str or os.PathLike
        A path is opened read-only (:func:`inspect_kit.open_store`); a store is used as it is
        and left open.

    Examples
    --------
    >>> with opened("acts.h5") as store:          # doctest: +SKIP
    ...     store.layers
    ['conv1', 'fc']
    """
    if isinstance(store, str | os.PathLike):
        owned = open_path(store)
        try:
            yield owned
        finally:
            owned.close()
        return
    if not is_store(store):
        raise TypeError(
            f"expected an ActivationStore or the path of one, got {type(store).__name__}"
        )
    yield store


# -- layers ---------------------------------------------------------------------------------------
def _stored_call(name: str) -> tuple[str, int, str]:
    """``(module, call, output)`` of a stored layer name (a first call has no ``:0``)."""
    spec = parse_layer_spec(name)
    return spec.module, 0 if spec.call is None else spec.call, spec.output


def resolve_layers(store: Any, layers: str | Iterable[str] | None = None) -> list[str]:
    """The store's layer names for layer specs, in the order given (globs: in capture order).

    Parameters
    ----------
    store : ActivationStore
    layers : str or iterable of str, optional
        Layer specs (:mod:`inspect_kit.hooks.spec`): a stored name (``"conv1"``,
        ``"relu:1"``, ``"lstm[0]"``), ``"relu:0"`` for ``"relu"``, or a glob over module
        names (``"layer*.conv"``, ``"**.relu"``) that keeps the call and output it names
        (the first call when none). Default: every stored layer.

    Raises
    ------
    KeyError
        A name the store does not hold, or a glob matching none (with close matches).
    ValueError
        No layers at all, or a unit (``#3``): analyses of whole layers read no single unit.

    Examples
    --------
    >>> resolve_layers(store, ["conv*", "fc"])     # doctest: +SKIP
    ['conv1', 'conv2', 'fc']
    """
    stored = list(store.layers)
    if layers is None:
        if not stored:
            raise ValueError(f"store {getattr(store, 'path', '')} holds no layers")
        return stored
    specs = [layers] if isinstance(layers, str) else list(layers)
    if not specs:
        raise ValueError("no layers given: pass layer names, globs, or None for every layer")
    where = f"store {Path(str(getattr(store, 'path', 'store'))).name}"
    parsed_stored = {name: _stored_call(name) for name in stored}
    out: list[str] = []
    for spec in specs:
        parsed = parse_layer_spec(spec)
        if parsed.unit is not None:
            raise ValueError(
                f"{spec!r} names unit {parsed.unit}; this analysis reads whole layers: "
                f"pass {parsed.key!r}"
            )
        call = 0 if parsed.call is None else parsed.call
        if is_glob(parsed.module):
            pattern = glob_regex(parsed.module)
            found = [
                name
                for name, (module, c, output) in parsed_stored.items()
                if pattern.fullmatch(module) and c == call and output == parsed.output
            ]
            if not found:
                raise unknown_name_error(spec, stored, where=where, see="store.layers")
        else:
            found = [
                name
                for name, key in parsed_stored.items()
                if key == (parsed.module, call, parsed.output)
            ]
            if not found:
                raise unknown_name_error(spec, stored, where=where, see="store.layers")
        out += [name for name in found if name not in out]
    return out


def resolve_layer(store: Any, layer: str | None = None) -> str:
    """One layer of the store: ``layer`` resolved (see :func:`resolve_layers`), or the only one.

    Raises
    ------
    ValueError
        ``layer`` is None and the store holds several layers (they are listed), or a glob
        matches several.

    Examples
    --------
    >>> resolve_layer(store, "fc")                  # doctest: +SKIP
    'fc'
    """
    if layer is None:
        stored = list(store.layers)
        if len(stored) == 1:
            return str(stored[0])
        raise ValueError(
            f"the store has {len(stored)} layers; pick one with layer=... "
            f"(stored layers: {', '.join(stored) or 'none'})"
        )
    found = resolve_layers(store, [layer])
    if len(found) != 1:
        raise ValueError(f"{layer!r} matches {len(found)} layers ({', '.join(found)}); name one")
    return found[0]


# -- samples --------------------------------------------------------------------------------------
def sample_positions(samples: Any, n: int) -> np.ndarray | None:
    """Row positions (int64) from positions or a boolean mask over ``n`` rows; None stays None.

    Negative positions count from the end.

    Examples
    --------
    >>> sample_positions([0, -1], 5).tolist(), sample_positions(np.arange(3) > 0, 3).tolist()
    ([0, 4], [1, 2])
    """
    if samples is None:
        return None
    arr = np.asarray(samples)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a boolean samples mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError("samples must be a 1-D array of row positions or a boolean mask")
    pos: np.ndarray = np.where(arr < 0, arr + n, arr).astype(np.int64)
    if pos.size and (pos.min() < 0 or pos.max() >= n):
        raise IndexError(f"samples out of range for {n} rows")
    return pos


@dataclass(frozen=True)
class SampleMatch:
    """Rows of two stores that hold the same samples, ordered by dataset index.

    ``positions_a[i]`` in the first store and ``positions_b[i]`` in the second are the sample
    whose dataset index is ``index[i]``.
    """

    positions_a: np.ndarray
    positions_b: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def match_samples(a: Any, b: Any) -> SampleMatch:
    """Pair the rows of stores ``a`` and ``b`` by ``/samples/index``; samples only one holds
    are left out (and logged).

    Raises
    ------
    ValueError
        A store holds a sample twice, or the stores share no sample.

    Examples
    --------
    >>> m = match_samples(run1, run2)          # doctest: +SKIP
    >>> run1["fc"][m.positions_a[:5]], run2["fc"][m.positions_b[:5]]  # doctest: +SKIP
    """
    ia, ib = np.asarray(a.index, dtype=np.int64), np.asarray(b.index, dtype=np.int64)
    for s, idx in ((a, ia), (b, ib)):
        if len(np.unique(idx)) != len(idx):
            raise ValueError(
                f"{s.path} holds some samples more than once (/samples/index has duplicates); "
                "samples cannot be matched between stores"
            )
    common, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    if not len(common):

        def span(idx: np.ndarray) -> str:
            return f"{idx.min()}..{idx.max()}" if len(idx) else "none"

        raise ValueError(
            f"{a.path} and {b.path} hold no sample in common: their /samples/index values do "
            f"not overlap (dataset indices {span(ia)} and {span(ib)}); compare stores captured "
            "from the same dataset"
        )
    if len(common) < max(len(ia), len(ib)):
        logger.info(
            "using the %d samples both stores hold (%s has %d, %s has %d)",
            len(common),
            Path(a.path).name,
            len(ia),
            Path(b.path).name,
            len(ib),
        )
    return SampleMatch(pa.astype(np.int64), pb.astype(np.int64), common.astype(np.int64))


def _subset(arr: Any, positions: np.ndarray | None) -> Any:
    if arr is None:
        return None
    arr = np.asarray(arr)
    return arr if positions is None else arr[positions]


@dataclass(frozen=True, eq=False)
class SampleColumns:
    """The per-sample columns of the samples an analysis uses, one row per sample.

    Attributes
    ----------
    index : ndarray (N,) int64
        Position of each sample in the user's dataset (``/samples/index``).
    labels, predictions : ndarray (N,) or None
    metadata : mapping of str to ndarray (N,)
        Patient id, site, scanner ... (``/samples/meta``).
    thumbnails : ndarray (N, h, w[, 3]) uint8 or None
    positions : ndarray (N,) int64 or None
        Rows of the source these samples are (None: every row, in order).
    source : str or None
        Path of the store they came from.
    label_mismatch : str or None
        Why the store's labels are not its model's classes, if they are not.

    Examples
    --------
    >>> cols = SampleColumns.from_arrays(4, labels=[0, 1, 1, 0], samples=[1, 2])
    >>> len(cols), cols.labels.tolist(), cols.index.tolist()
    (2, [1, 1], [1, 2])
    >>> cols.target("label")[1].tolist()
    [1, 1]
    """

    index: np.ndarray
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    metadata: Mapping[str, np.ndarray] = field(default_factory=dict)
    thumbnails: np.ndarray | None = None
    positions: np.ndarray | None = None
    source: str | None = None
    label_mismatch: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", np.asarray(self.index, dtype=np.int64))
        n = len(self.index)
        for name in ("labels", "predictions", "thumbnails", "positions"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} samples")
        for key, value in self.metadata.items():
            if len(value) != n:
                raise ValueError(f"metadata[{key!r}] has {len(value)} entries for {n} samples")

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def from_store(
        cls,
        store: Any,
        samples: Any = None,
        *,
        labels: Any = None,
        predictions: Any = None,
        metadata: Mapping[str, Any] | None = None,
        thumbnails: Any = None,
        read_thumbnails: bool = True,
    ) -> SampleColumns:
        """The columns of a store's rows ``samples`` (default all); given columns replace the
        store's (they are aligned with the store's rows, and subset with them)."""
        n = len(store)
        pos = sample_positions(samples, n)
        if thumbnails is None and read_thumbnails:
            thumbnails = store.thumbnails
        check = getattr(store, "label_mismatch", None)
        mismatch = (
            check if isinstance(check, str) and labels is None and predictions is None else None
        )
        return cls(
            index=_subset(store.index, pos),
            labels=_subset(labels if labels is not None else store.labels, pos),
            predictions=_subset(predictions if predictions is not None else store.predictions, pos),
            metadata={k: _subset(v, pos) for k, v in (metadata or store.metadata or {}).items()},
            thumbnails=_subset(thumbnails, pos),
            positions=pos,
            source=str(store.path),
            label_mismatch=mismatch,
        )

    @classmethod
    def from_arrays(
        cls,
        n: int,
        samples: Any = None,
        *,
        labels: Any = None,
        predictions: Any = None,
        metadata: Mapping[str, Any] | None = None,
        thumbnails: Any = None,
    ) -> SampleColumns:
        """Columns of ``n`` in-memory samples (their index is their position)."""
        pos = sample_positions(samples, n)
        return cls(
            index=pos if pos is not None else np.arange(n, dtype=np.int64),
            labels=_subset(labels, pos),
            predictions=_subset(predictions, pos),
            metadata={k: _subset(v, pos) for k, v in (metadata or {}).items()},
            thumbnails=_subset(thumbnails, pos),
            positions=pos,
        )

    def take(self, rows: Any) -> SampleColumns:
        """The columns of some of these samples (positions into them, or a boolean mask)."""
        pos = sample_positions(rows, len(self))
        assert pos is not None
        return replace(
            self,
            index=self.index[pos],
            labels=_subset(self.labels, pos),
            predictions=_subset(self.predictions, pos),
            metadata={k: np.asarray(v)[pos] for k, v in self.metadata.items()},
            thumbnails=_subset(self.thumbnails, pos),
            positions=pos if self.positions is None else self.positions[pos],
        )

    def target(self, name: str) -> tuple[str, np.ndarray]:
        """``(canonical name, values)`` of a column by name: ``'label'``, ``'prediction'`` or a
        metadata key.

        Raises
        ------
        KeyError
            The column is missing (with close matches).
        """
        if name in LABEL_NAMES:
            if self.labels is None:
                raise KeyError("the store has no labels; capture with labels=... or pass an array")
            return "label", np.asarray(self.labels)
        if name in PREDICTION_NAMES:
            if self.predictions is None:
                raise KeyError("the store has no predictions (the model's output was not logits)")
            return "prediction", np.asarray(self.predictions)
        if name in self.metadata:
            return name, np.asarray(self.metadata[name])
        options = ["label", "prediction", *self.metadata]
        raise unknown_name_error(name, options, kind="target", where="the store")


# -- features -------------------------------------------------------------------------------------
def layer_blocks(
    store: Any, layer: str, block_rows: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, rows)``: a layer's raw rows (as stored, unreduced), a block at a time.

    ``block_rows`` defaults to the layer's HDF5 chunk rounded up to about 64 MiB.

    Examples
    --------
    >>> for start, rows in layer_blocks(store, "conv2", 256):   # doctest: +SKIP
    ...     ...
    """
    name = resolve_layer(store, layer)
    yield from store.iter_chunks(name, batch_size=block_rows)


def layer_features(
    store: Any,
    layer: str,
    reduce: str | Callable[..., Any] | None = "mean",
    *,
    samples: Any = None,
    block_rows: int | None = None,
    progress: bool = False,
    dtype: Any = None,
) -> Features:
    """The feature rows ``(N, D)`` of a store layer, read (and pooled) block by block.

    Parameters
    ----------
    store : ActivationStore
    layer : str
        A layer spec (resolved with :func:`resolve_layer`).
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        How spatial maps become vectors (layers stored already pooled pass through).
    samples : positions or boolean mask, optional
        Only these rows, in this order.
    block_rows : int, optional
        Rows read at once (default: about 64 MiB of raw activations).
    progress : bool
        Progress bar over a pass's blocks.
    dtype : numpy dtype, optional
        Of the rows handed out (default float32).

    Examples
    --------
    >>> feats = layer_features(store, "conv2", "mean")          # doctest: +SKIP
    >>> X = feats.to_numpy()                                    # doctest: +SKIP
    """
    name = resolve_layer(store, layer)
    view = store[name]
    return Features(
        view,
        reduce=reduce,
        samples=sample_positions(samples, len(view)),
        name=name,
        block_rows=block_rows,
        progress=progress,
        dtype=dtype,
    )


def check_features(
    X: Any, *, name: str = "features", min_samples: int = 1, float64: bool = False
) -> np.ndarray:
    """An in-memory feature matrix ``(N, D)``, validated: numeric, finite, enough samples.

    Everything after the first axis is flattened (a 1-D ``X`` is one feature). Torch tensors
    are accepted. The dtype is float64 when ``float64`` or when ``X`` is float64, float32
    otherwise.

    Raises
    ------
    ValueError
        No samples, fewer than ``min_samples``, or NaN/inf values.
    TypeError
        Not numeric.

    Examples
    --------
    >>> check_features(np.ones((3, 2, 2))).shape
    (3, 4)
    >>> check_features([[0.0, float("nan")]])
    Traceback (most recent call last):
    ...
    ValueError: features hold NaN or infinite values; drop or impute them first
    """
    if hasattr(X, "detach"):  # a torch tensor, without importing torch here
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be (N, ...) with N > 0 samples, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.reshape(arr.shape[0], -1)
    dtype = np.float64 if float64 or arr.dtype == np.float64 else np.float32
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} hold NaN or infinite values; drop or impute them first")
    if len(arr) < min_samples:
        raise ValueError(f"{name} hold {len(arr)} samples; at least {min_samples} are needed")
    return arr
