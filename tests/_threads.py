"""The one one-thread helper of the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the count.

    Several pytest workers share two cores; torch's intra-op threads then spin-wait on each
    other and small models train 10-20x slower. One thread is fastest here.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
