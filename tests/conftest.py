"""Shared test configuration. Trained-model fixtures live in fixtures_models.py."""

import torch

pytest_plugins = ["tests.fixtures_models"]


def pytest_configure(config):
    # Two pytest workers share two cores: torch's intra-op threads would spin-wait on each
    # other and make small models 10x slower. One thread per worker is fastest here.
    torch.set_num_threads(1)
