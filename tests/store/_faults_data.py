"""The model and data of tests/store/test_faults.py, importable by its subprocesses (torch only)."""

import numpy as np
import torch
from torch import nn

N, BATCH = 40, 4


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))


def tiny_data(n: int = N, seed: int = 5) -> list[dict]:
    x = torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
    return [
        {
            "x": x[s : s + BATCH],
            "y": torch.arange(s, s + BATCH) % 3,
            "site": np.arange(s, s + BATCH) % 2,
        }
        for s in range(0, n, BATCH)
    ]
