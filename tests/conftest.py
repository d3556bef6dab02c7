"""Shared test configuration. Trained-model fixtures live in fixtures_models.py."""

from collections.abc import Iterator
from typing import Any

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
def _one_torch_thread() -> Iterator[None]:
    """Every test runs torch on one thread, whatever the test before it set."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module (see tests/_browser.py)."""
    with chromium() as driver:
        yield driver
