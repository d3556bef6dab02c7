"""Lesion-task data, reference models and oracle attributions, built once per test session.

The attributions are written here, independently of the package's attribution code: a plain
gradient through ``torch.autograd``, input x gradient, an occlusion loop and an "attribution"
that ignores the model (the input's Sobel magnitude).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

from inspect_kit.data.lesions import LesionTask, make_lesion_task
from inspect_kit.models.lesions import fit_lesion_cnn


@functools.cache
def task(dim: int, split: str, shortcut: float | None = None) -> LesionTask:
    n = {("train", 2): 600, ("test", 2): 200, ("train", 3): 320, ("test", 3): 100}[(split, dim)]
    seed = {"train": 0, "test": 1}[split] + (0 if shortcut is None else int(100 * shortcut))
    return make_lesion_task(dim, n, shortcut=shortcut, random_state=seed)


@functools.cache
def model(dim: int, kind: str = "clean") -> torch.nn.Module:
    """kind: clean (no tags), tagged (tags independent of the label), shortcut (the tag is
    on every positive and on no negative), permuted (labels permuted)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    epochs = {2: 6, 3: 8}[dim]
    if kind in ("shortcut", "tagged"):
        p = 1.0 if kind == "shortcut" else 0.5
        net, _ = fit_lesion_cnn(task(dim, "train", p), epochs=epochs)
    elif kind == "permuted":
        net, _ = fit_lesion_cnn(task(dim, "train"), epochs=3, permute_labels=True)
    else:
        net, _ = fit_lesion_cnn(task(dim, "train"), epochs=epochs)
    return net.eval()


def gradient(model: torch.nn.Module, x: torch.Tensor, target: int = 1) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, target].sum(), x)
    return grad


def input_x_gradient(model: torch.nn.Module, x: torch.Tensor, target: int = 1) -> torch.Tensor:
    return x.detach() * gradient(model, x, target)


def occlusion(
    model: torch.nn.Module, x: torch.Tensor, target: int = 1, window: int = 4, stride: int = 2
) -> torch.Tensor:
    """Drop of the target logit when a zero-filled window covers a voxel, averaged over the
    windows that cover it (every window of a sample in one batch)."""
    x = x.detach()
    spatial = tuple(x.shape[2:])
    starts = [sorted({*range(0, n - window + 1, stride), n - window}) for n in spatial]
    corners = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(spatial))
    boxes = [tuple(slice(int(c), int(c) + window) for c in corner) for corner in corners]
    count = torch.zeros(spatial)
    for sl in boxes:
        count[sl] += 1
    out = torch.zeros((x.shape[0], *spatial))
    with torch.no_grad():
        for i in range(len(x)):
            batch = x[i : i + 1].repeat(len(boxes), *([1] * (x.ndim - 1)))
            for k, sl in enumerate(boxes):
                batch[(k, slice(None), *sl)] = 0.0
            drop = model(x[i : i + 1])[0, target] - model(batch)[:, target]
            for k, sl in enumerate(boxes):
                out[(i, *sl)] += drop[k]
    return out / count


def sobel(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    a = x.detach().cpu().numpy()[:, 0].astype(np.float64)
    axes = range(1, a.ndim)
    return np.sqrt(sum(ndimage.sobel(a, axis=k) ** 2 for k in axes))


def positives(dim: int, n: int = 24) -> LesionTask:
    """Test samples with a lesion (what the localisation metrics are scored on)."""
    t = task(dim, "test")
    return t.subset(np.flatnonzero(t.y == 1)[:n])
