"""Dask helpers shared by the analyses: the active ``dask.distributed`` client, block streaming.

Nothing here starts a cluster: analyses compute on the client the user made active
(``Client(...)`` or ``with Client(...)``), or on Dask's local threads when there is none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def active_client() -> Any:
    """The ``dask.distributed`` client in use (``Client(...)`` made it the default), or None.

    None when ``distributed`` is not installed or no client is active.

    Examples
    --------
    >>> active_client() is None      # no Client made in this process
    True
    """
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # "No clients found"
        return None


def is_dask_array(data: Any) -> bool:
    """Whether ``data`` is a ``dask.array.Array`` (without importing Dask)."""
    return type(data).__module__.startswith("dask.") and hasattr(data, "blocks")


def iter_dask_blocks(
    x: Any, order: Sequence[int], lookahead: int = 2
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, rows)`` for the blocks of ``x`` along its first axis, in ``order``.

    Each block is computed alone (its rows are the only ones brought back); with an active
    ``dask.distributed`` client the next ``lookahead`` blocks are already computing on the
    cluster while the caller uses the current one.

    Parameters
    ----------
    x : dask.array.Array
        ``(N, ...)``; its chunks along axis 0 are the blocks.
    order : sequence of int
        Block numbers, in the order wanted (each block may appear more than once).
    lookahead : int
        Blocks computed ahead on a cluster (bounded memory: ``lookahead + 1`` blocks).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.arange(10, chunks=4)
    >>> [(s, b.tolist()) for s, b in iter_dask_blocks(x, [2, 0])]
    [(8, [8, 9]), (0, [0, 1, 2, 3])]
    """
    starts = np.concatenate([[0], np.cumsum(x.chunks[0])]).astype(np.int64)
    client = active_client()
    if client is None:
        for i in order:
            yield int(starts[i]), np.asarray(x.blocks[int(i)].compute())
        return
    pending: deque[tuple[int, Any]] = deque()
    todo = iter(order)
    for i in todo:
        pending.append((int(i), client.compute(x.blocks[int(i)])))
        if len(pending) > lookahead:
            break
    while pending:
        i, future = pending.popleft()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append((int(nxt), client.compute(x.blocks[int(nxt)])))
        rows = np.asarray(future.result())
        del future
        yield int(starts[i]), rows
