"""Worker run by tests/capture/test_distributed.py under torchrun (not collected by pytest)."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch import nn

import inspect_kit
from inspect_kit.capture import WriteOptions


def build(n: int) -> tuple[nn.Module, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    meta = {"site": np.array([f"site{i % 3}" for i in range(n)]), "age": np.arange(n) * 1.5}
    return model, x, labels, meta


def die_after(model: nn.Module, k: int) -> None:
    """os._exit(1) before the (k+1)-th forward pass (a hook: weights and names unchanged)."""
    calls = [0]

    def hook(module: nn.Module, args: object) -> None:
        calls[0] += 1
        if calls[0] > k:
            os._exit(1)

    model.register_forward_pre_hook(hook)


def main() -> int:
    path, n, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume"
    model, x, labels, meta = build(n)
    layers = ["1", "3"]
    kill = os.environ.get("IK_TEST_KILL_RANK")
    if kill is not None and int(os.environ["RANK"]) == int(kill):
        die_after(model, int(os.environ["IK_TEST_KILL_AFTER"]))
    store = inspect_kit.capture(
        model,
        x,
        layers,
        path,
        labels=labels,
        metadata=meta,
        batch_size=2,
        reduce=None,
        resume=resume,
        progress=False,
        write=WriteOptions(distributed=True),
    )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
