"""Turn the many shapes of user data into a stream of uniform batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..input_keys import X_KEYS, Y_KEYS, first_key

# capture, autoencoder training and feature visualization all read a batch's input through
# batch_input: the one rule of inspect_kit.input_keys
DEFAULT_BATCH = 64


def input_key(batch: Mapping[str, Any]) -> str:
    """The key of a dict batch that holds the input (the first of
    :data:`inspect_kit.input_keys.X_KEYS` present).

    Raises
    ------
    KeyError
        No key names the input; the message lists the batch's keys and the accepted ones.

    Examples
    --------
    >>> input_key({"img": 0, "label": 1})
    'img'
    """
    key = first_key(batch, X_KEYS)
    if key is None:
        raise KeyError(
            f"a dict batch with keys {sorted(batch)}: none of them names the input; "
            f"use one of {', '.join(X_KEYS)}"
        )
    return key


def batch_input(batch: Any) -> Any:
    """The input part of a batch given as ``x``, ``(x, y, ...)`` or a dict (see
    :func:`input_key`), as it was given (tensor or array).

    Examples
    --------
    >>> batch_input({"img": [1.0, 2.0], "y": [0, 1]})
    [1.0, 2.0]
    >>> batch_input(([3.0], [1]))
    [3.0]
    """
    if isinstance(batch, Mapping):
        return batch[input_key(batch)]
    if isinstance(batch, tuple | list):
        return batch[0]
    return batch


@dataclass
class InputBatch:
    x: torch.Tensor
    y: np.ndarray | None = None
    index: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def slice(self, start: int) -> InputBatch:
        return InputBatch(
            self.x[start:],
            None if self.y is None else self.y[start:],
            None if self.index is None else self.index[start:],
            {k: v[start:] for k, v in self.meta.items()},
        )


def _to_numpy(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _to_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(
        f"{what} must be a tensor or numpy array, got {type(x).__name__}; "
        "batches may be x, (x, y, ...) or dicts with an 'x'/'image'/'input' key"
    )


def parse_batch(item: Any, number: int) -> InputBatch:
    """Read one batch given as ``x``, ``(x, y, ...)`` or a dict."""
    if isinstance(item, torch.Tensor | np.ndarray):
        return InputBatch(_to_tensor(item, f"batch {number}"))
    if isinstance(item, Mapping):
        try:
            xk = input_key(item)
        except KeyError as err:
            raise KeyError(f"batch {number}: {err.args[0]}") from None
        x = _to_tensor(item[xk], f"batch {number}[{xk!r}]")
        yk = first_key(item, Y_KEYS)
        y = None if yk is None else _to_numpy(item[yk])
        index = _to_numpy(item["index"]).astype(np.int64) if "index" in item else None
        meta = {}
        for k, v in item.items():
            if k in (xk, yk, "index"):
                continue
            arr = np.asarray(v) if isinstance(v, list | tuple) else _to_numpy(v)
            if arr.ndim >= 1 and len(arr) == len(x):
                meta[k] = arr
        return InputBatch(x, y, index, meta)
    if isinstance(item, list | tuple) and item:
        x = _to_tensor(item[0], f"batch {number}[0]")
        y = _to_numpy(item[1]) if len(item) > 1 and item[1] is not None else None
        return InputBatch(x, y)
    raise TypeError(
        f"batch {number} is a {type(item).__name__}; batches must be a tensor/array x, "
        "a tuple (x, y, ...), or a dict with an 'x'/'image'/'input' key"
    )


@dataclass
class InputStream:
    batches: Iterator[InputBatch]
    n_samples: int | None
    description: dict[str, Any]


def _array_batches(x: torch.Tensor, batch_size: int) -> Iterator[InputBatch]:
    for s in range(0, len(x), batch_size):
        yield InputBatch(x[s : s + batch_size])


def _parsed(it: Iterable[Any]) -> Iterator[InputBatch]:
    for number, item in enumerate(it):
        yield parse_batch(item, number)


def _with_columns(
    batches: Iterator[InputBatch],
    labels: np.ndarray | None,
    metadata: dict[str, np.ndarray],
) -> Iterator[InputBatch]:
    """Attach user-given labels/metadata (aligned with the sample order) and running indices."""
    offset = 0
    for number, b in enumerate(batches):
        n = len(b)
        if b.y is not None and len(b.y) != n:
            raise ValueError(
                f"batch {number} has {n} inputs but {len(b.y)} labels; inputs and labels must "
                "have the same batch size"
            )
        if labels is not None:
            if offset + n > len(labels):
                raise ValueError(
                    f"labels= has {len(labels)} entries but the data has more samples "
                    f"(at least {offset + n}); give one label per sample"
                )
            b.y = labels[offset : offset + n]
        for k, col in metadata.items():
            if offset + n > len(col):
                raise ValueError(
                    f"metadata[{k!r}] has {len(col)} entries but the data has more samples "
                    f"(at least {offset + n}); give one value per sample"
                )
            b.meta[k] = col[offset : offset + n]
        if b.index is None:
            b.index = np.arange(offset, offset + n, dtype=np.int64)
        offset += n
        yield b


def make_stream(
    data: Any,
    *,
    batch_size: int | None,
    labels: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> InputStream:
    """Normalise ``data`` (DataLoader, Dataset, tensor/array, iterable of batches) to batches."""
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    labels_arr = None if labels is None else _to_numpy(labels)
    meta = {
        k: _to_numpy(v) if not isinstance(v, list) else np.asarray(v)
        for k, v in (metadata or {}).items()
    }
    n: int | None = None
    if isinstance(data, torch.Tensor | np.ndarray):
        x = _to_tensor(data, "data")
        n = len(x)
        bs = batch_size or DEFAULT_BATCH
        batches: Iterator[InputBatch] = _array_batches(x, bs)
        desc = {"kind": "array", "shape": list(x.shape), "dtype": str(x.dtype), "batch_size": bs}
    elif isinstance(data, DataLoader):
        try:
            n = len(data.dataset)  # type: ignore[arg-type]  # torch's Dataset declares no __len__
        except TypeError:
            n = None
        batches = _parsed(data)
        desc = {
            "kind": "DataLoader",
            "dataset": type(data.dataset).__name__,
            "batch_size": data.batch_size,
        }
        sampler = type(getattr(data, "sampler", None)).__name__
        desc["sampler"] = sampler
    elif isinstance(data, Dataset) or (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, list | tuple)
    ):
        bs = batch_size or DEFAULT_BATCH
        loader = DataLoader(data, batch_size=bs, shuffle=False)
        n = len(data)  # type: ignore[arg-type]  # torch's Dataset declares no __len__
        batches = _parsed(loader)
        desc = {"kind": "Dataset", "dataset": type(data).__name__, "batch_size": bs}
    elif isinstance(data, Iterable):
        batches = _parsed(data)
        desc = {"kind": "iterable", "type": type(data).__name__}
    else:
        raise TypeError(
            f"data of type {type(data).__name__} is not supported; pass a DataLoader, a Dataset, "
            "a tensor or numpy array of inputs, or an iterable of batches"
        )
    if labels_arr is not None and n is not None and len(labels_arr) != n:
        raise ValueError(f"labels= has {len(labels_arr)} entries but data has {n} samples")
    for k, col in meta.items():
        if n is not None and len(col) != n:
            raise ValueError(f"metadata[{k!r}] has {len(col)} entries but data has {n} samples")
    desc["n_samples"] = n
    return InputStream(_with_columns(batches, labels_arr, meta), n, desc)
