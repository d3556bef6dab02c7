"""Gradient methods: saliency, input x gradient, SmoothGrad (and its squared form, VarGrad),
integrated gradients, guided backpropagation.

All of them evaluate the model on many rows (noisy copies, path points) derived from each
sample; rows go through the model ``rows`` at a time (see :mod:`._budget`) so memory stays
bounded whatever the number of steps or samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._budget import spans
from ._targets import ResolvedTarget

__all__ = [
    "IG_RULES",
    "Runner",
    "blur",
    "integrated_gradients",
    "make_baseline",
    "path_weights",
    "smoothgrad",
]

IG_RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


@dataclass
class Runner:
    """The model, the resolved target and how many rows one model call may take."""

    model: nn.Module
    target: ResolvedTarget
    rows: int

    def grad(self, x: torch.Tensor, owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of each row's score w.r.t. its input, and the scores (chunked)."""
        grads, scores = [], []
        for s, e in spans(len(x), self.rows):
            xi = x[s:e].detach().requires_grad_(True)
            with torch.enable_grad():
                sc = self.target.scores(self.model(xi), owner[s:e])
                (g,) = torch.autograd.grad(sc.sum(), xi)
            grads.append(g)
            scores.append(sc.detach())
        return torch.cat(grads), torch.cat(scores)

    def scores(self, x: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """Scores without gradients (chunked)."""
        out = []
        with torch.no_grad():
            for s, e in spans(len(x), self.rows):
                out.append(self.target.scores(self.model(x[s:e]), owner[s:e]))
        return torch.cat(out)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(N, C, *spatial)`` along every spatial axis (sigma in voxels).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1
    >>> round(float(blur(x, 1.0).sum()), 4)
    1.0
    """
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    out = x
    n_sp = x.ndim - 2
    c = x.shape[1]
    conv = (F.conv1d, F.conv2d, F.conv3d)[n_sp - 1]
    for ax in range(n_sp):
        shape = [1] * n_sp
        shape[ax] = len(k)
        weight = k.reshape(1, 1, *shape).repeat(c, 1, *[1] * n_sp)
        pad = [0, 0] * n_sp
        pad[2 * (n_sp - 1 - ax)] = pad[2 * (n_sp - 1 - ax) + 1] = radius
        out = conv(F.pad(out, pad, mode="replicate"), weight, groups=c)
    return out


def make_baseline(
    x: torch.Tensor, baseline: Any, *, sigma: float = 5.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, str]:
    """The integrated-gradients baseline for ``x`` and its description.

    ``"zeros"``, ``"blurred"`` (Gaussian blur, ``sigma`` voxels), ``"uniform"`` (uniform noise
    over each sample's value range, seeded), a number, or a tensor/array broadcastable to
    ``x`` (one per sample or one for all).

    Examples
    --------
    >>> b, what = make_baseline(torch.ones(2, 1, 4, 4), "zeros")
    >>> float(b.abs().sum()), what
    (0.0, 'zeros')
    """
    if isinstance(baseline, str):
        if baseline == "zeros":
            return torch.zeros_like(x), "zeros"
        if baseline in ("blurred", "blur"):
            return blur(x, sigma), f"blurred (sigma {sigma:g} voxels)"
        if baseline == "uniform":
            lo = x.flatten(1).min(1).values.reshape(-1, *[1] * (x.ndim - 1))
            hi = x.flatten(1).max(1).values.reshape(-1, *[1] * (x.ndim - 1))
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            return lo + (hi - lo) * u, "uniform noise over each sample's range"
        raise ValueError(
            f"baseline={baseline!r} is not known; use 'zeros', 'blurred', 'uniform', a number "
            "or a tensor shaped like the input"
        )
    if isinstance(baseline, int | float):
        return torch.full_like(x, float(baseline)), f"constant {baseline:g}"
    b = torch.as_tensor(
        np.asarray(baseline) if not isinstance(baseline, torch.Tensor) else baseline
    )
    b = b.to(x.device, x.dtype)
    try:
        b = b.expand_as(x) if b.ndim == x.ndim else b.unsqueeze(0).expand_as(x)
    except RuntimeError:
        raise ValueError(
            f"baseline of shape {tuple(b.shape)} does not fit inputs {tuple(x.shape)}; give one "
            "per sample (N, C, ...) or one for all (C, ...)"
        ) from None
    return b.clone(), "custom"


def path_weights(steps: int, rule: str) -> tuple[list[float], list[float]]:
    """Path points ``alphas`` and quadrature ``weights`` for integrated gradients.

    Examples
    --------
    >>> path_weights(3, "riemann_trapezoid")
    ([0.0, 0.5, 1.0], [0.25, 0.5, 0.25])
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if rule == "gausslegendre":
        nodes, quad = np.polynomial.legendre.leggauss(steps)
        return [float(v) for v in 0.5 * (nodes + 1)], [float(v) for v in 0.5 * quad]
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("riemann_trapezoid needs steps >= 2")
        a = list(np.linspace(0, 1, steps))
        w = [1 / (2 * (steps - 1))] + [1 / (steps - 1)] * (steps - 2) + [1 / (2 * (steps - 1))]
        return [float(v) for v in a], w
    if rule in ("riemann_left", "riemann_right", "riemann_middle"):
        lo, hi = {
            "riemann_left": (0, 1 - 1 / steps),
            "riemann_right": (1 / steps, 1),
            "riemann_middle": (1 / (2 * steps), 1 - 1 / (2 * steps)),
        }[rule]
        return [float(v) for v in np.linspace(lo, hi, steps)], [1 / steps] * steps
    raise ValueError(f"integration rule {rule!r} is not one of {', '.join(IG_RULES)}")


def integrated_gradients(
    run: Runner,
    x: torch.Tensor,
    baseline: torch.Tensor,
    steps: int,
    rule: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG maps, f(x) and f(baseline) per sample; path points batched by ``run.rows``."""
    alphas, weights = path_weights(steps, rule)
    a = torch.tensor(alphas, dtype=x.dtype, device=x.device)
    w = torch.tensor(weights, dtype=x.dtype, device=x.device)
    maps = torch.zeros_like(x)
    shape = [-1] + [1] * (x.ndim - 1)
    total = len(x) * steps
    # rows are (sample, step) pairs, sample-major, taken run.rows at a time
    for s, e in spans(total, run.rows):
        idx = torch.arange(s, e, device=x.device)
        i, k = idx // steps, idx % steps
        rows = baseline[i] + a[k].reshape(shape) * (x[i] - baseline[i])
        g, _ = run.grad(rows, i)
        maps.index_add_(0, i, g * w[k].reshape(shape))
        if progress is not None:
            progress(e - s)
    maps = maps * (x - baseline)
    owner = torch.arange(len(x), device=x.device)
    return maps, run.scores(x, owner), run.scores(baseline, owner)


def smoothgrad(
    run: Runner,
    x: torch.Tensor,
    samples: int,
    stds: torch.Tensor,
    variant: str,
    generator: torch.Generator | None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """SmoothGrad of the (signed) gradient: mean (``smoothgrad``), mean of squares
    (``smoothgrad-squared``) or variance (``vargrad``) over noisy copies of each sample.

    Noise for one sample's ``samples`` copies is drawn at once (``torch.normal`` with
    ``generator``), then the copies go through the model ``run.rows`` at a time.
    """
    out = torch.empty_like(x)
    for n in range(len(x)):
        std = torch.full((samples, *x.shape[1:]), float(stds[n]), dtype=x.dtype)
        noise = torch.normal(0.0, std, generator=generator).to(x.device)
        total = torch.zeros_like(x[n])
        total_sq = torch.zeros_like(x[n])
        for s, e in spans(samples, run.rows):
            rows = x[n : n + 1] + noise[s:e]
            g, _ = run.grad(rows, torch.full((e - s,), n, device=x.device, dtype=torch.long))
            total += g.sum(0)
            total_sq += (g * g).sum(0)
            if progress is not None:
                progress(e - s)
        mean, mean_sq = total / samples, total_sq / samples
        out[n] = {
            "smoothgrad": mean,
            "smoothgrad-squared": mean_sq,
            "vargrad": mean_sq - mean * mean,
        }[variant]
    return out
