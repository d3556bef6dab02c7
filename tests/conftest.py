"""Shared test configuration. Trained-model fixtures live in fixtures_models.py."""

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from tests._browser import chromium
from tests._threads import one_thread

pytest_plugins = ["tests.fixtures_models"]


def pytest_configure(config):
    # Two pytest workers share two cores: torch's intra-op threads would spin-wait on each
    # other and make small models 10x slower. One thread per worker is fastest here.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _same_global_rng_for_every_test():
    """Every test starts from the same global RNG state and leaves it as it found it.

    Module initialisers (``nn.Linear``, torchvision factories) and ``torch.rand`` draw from
    the global generators; seeding them per test makes a test's numbers independent of which
    tests ran before it in the same worker (test order, xdist distribution).
    """
    saved = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Every test runs torch on one thread, whatever the test before it set."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module (see tests/_browser.py)."""
    with chromium() as driver:
        yield driver
