"""Robustness and repeatability of attribution maps (2D and 3D).

- Max-sensitivity (Yeh et al., NeurIPS 2019): the largest relative change of a sample's map
  over small uniform perturbations of its input; an explanation that jumps under noise the
  model hardly notices is not describing the model.
- Seed-to-seed agreement: for stochastic methods (SmoothGrad, random baselines, sampled
  occlusion), how similar the maps of the same inputs are between random seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.seeding import RandomState, resolve_seed

from ._maps import AttributeFn, call_attribute, input_tensor, spatial_maps
from .results import TrustResult
from .similarity import SIMILARITY_METRICS, map_similarity

__all__ = ["MaxSensitivity", "SeedAgreement", "max_sensitivity", "seed_agreement"]


@dataclass
class MaxSensitivity(TrustResult):
    """Per-sample max-sensitivity: ``max_k ||m(x + d_k) - m(x)|| / ||m(x)||`` (Frobenius)."""

    values: np.ndarray
    radius: float
    n_perturbations: int
    method: str = "attribution"
    params: dict[str, Any] = field(default_factory=dict)

    def to_records(self) -> list[dict[str, Any]]:
        """One row: the method and the mean max-sensitivity (lower is more robust)."""
        return [{"method": self.method, "max_sensitivity": float(np.nanmean(self.values))}]


def max_sensitivity(
    model: nn.Module,
    x: Any,
    attribute_fn: AttributeFn,
    *,
    radius: float = 0.02,
    n_perturbations: int = 10,
    batch_size: int = 64,
    method: str = "attribution",
    random_state: RandomState = 0,
) -> MaxSensitivity:
    """Max-sensitivity of an attribution method under uniform input noise (Yeh et al., 2019).

    Each sample is perturbed ``n_perturbations`` times by independent uniform noise in
    ``[-radius, radius]`` per voxel; the perturbed copies go through ``attribute_fn`` in
    batches of ``batch_size``. The change of the map is measured relative to the map's own
    norm (Quantus's ``MaxSensitivity`` divides by the unperturbed map's Frobenius norm too), so
    the score does not depend on the map's scale. Unlike Quantus, perturbations that change the
    prediction are kept.

    Parameters
    ----------
    model : nn.Module
    x : tensor or ndarray, (N, C, H, W) or (N, C, D, H, W)
    attribute_fn : callable (model, x) -> maps
    radius : float, default=0.02
        Half-width of the uniform noise, in input units.
    n_perturbations : int, default=10
    batch_size : int, default=64
        Perturbed inputs per call of ``attribute_fn``.
    method : str
    random_state : int, Generator or None

    Returns
    -------
    MaxSensitivity

    Examples
    --------
    >>> def edges(model, x):  # an "attribution" that is the input itself
    ...     return x
    >>> x = torch.ones(2, 1, 8, 8)
    >>> res = max_sensitivity(torch.nn.Identity(), x, edges, radius=0.01, n_perturbations=3)
    >>> bool((res.values <= 0.01 + 1e-6).all())
    True
    """
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    if (
        isinstance(n_perturbations, bool)
        or not isinstance(n_perturbations, int)
        or n_perturbations < 1
    ):
        raise ValueError(f"n_perturbations must be a positive int, got {n_perturbations!r}")
    seed = resolve_seed(random_state)
    xt = input_tensor(x).detach()
    ref = call_attribute(attribute_fn, model, xt)
    gen = torch.Generator().manual_seed(seed)
    noisy = xt.unsqueeze(1).repeat_interleave(n_perturbations, dim=1).flatten(0, 1)
    noise = (torch.rand(noisy.shape, generator=gen, dtype=torch.float64) * 2 - 1) * radius
    noisy = noisy + noise.to(device=xt.device, dtype=xt.dtype)
    maps = np.concatenate(
        [
            call_attribute(attribute_fn, model, noisy[s : s + batch_size])
            for s in range(0, len(noisy), batch_size)
        ]
    ).reshape(len(xt), n_perturbations, -1)
    flat = ref.reshape(len(xt), 1, -1)
    diff = np.linalg.norm(maps - flat, axis=2).max(axis=1)
    norm = np.linalg.norm(flat[:, 0], axis=1)
    values = np.divide(diff, norm, out=np.full(len(xt), np.nan), where=norm > 0)
    return MaxSensitivity(
        values=values,
        radius=float(radius),
        n_perturbations=n_perturbations,
        method=method,
        params={"random_state": seed, "batch_size": batch_size},
    )


@dataclass
class SeedAgreement(TrustResult):
    """Similarity of a stochastic method's maps between seeds.

    Attributes
    ----------
    scores : ndarray (P, N)
        One row per pair of seeds, one column per sample.
    pairs : list of (int, int)
    metric : str
    """

    scores: np.ndarray
    pairs: list[tuple[int, int]]
    metric: str
    method: str = "attribution"

    @property
    def mean(self) -> float:
        """Mean agreement over pairs and samples (1 = the same map whatever the seed)."""
        return float(self.scores.mean())

    def to_records(self) -> list[dict[str, Any]]:
        """One row: the method and its mean seed-to-seed agreement."""
        return [{"method": self.method, f"seed_agreement_{self.metric}": self.mean}]


def seed_agreement(
    model: nn.Module,
    x: Any,
    attribute_fn: Callable[[nn.Module, torch.Tensor, int], Any],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    metric: str = "spearman",
    method: str = "attribution",
) -> SeedAgreement:
    """Seed-to-seed agreement of a stochastic attribution method.

    Parameters
    ----------
    model : nn.Module
    x : tensor or ndarray, (N, C, H, W) or (N, C, D, H, W)
    attribute_fn : callable (model, x, seed) -> maps
        The method with its randomness seeded by the third argument.
    seeds : sequence of int, default=(0, 1, 2)
        At least two; every pair is compared.
    metric : str, default="spearman"
        One of ``SIMILARITY_METRICS``.
    method : str

    Returns
    -------
    SeedAgreement

    Examples
    --------
    >>> def noisy(model, x, seed):
    ...     g = torch.Generator().manual_seed(seed)
    ...     return x + 0.01 * torch.randn(x.shape, generator=g)
    >>> res = seed_agreement(torch.nn.Identity(), torch.rand(3, 1, 8, 8), noisy)
    >>> res.mean > 0.9
    True
    """
    seeds = list(seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least two different seeds, got {seeds!r}")
    if metric not in SIMILARITY_METRICS:
        raise ValueError(f"metric must be one of {SIMILARITY_METRICS}, got {metric!r}")
    xt = input_tensor(x)
    spatial = tuple(xt.shape[2:])
    maps = {s: spatial_maps(attribute_fn(model, xt, s), spatial) for s in seeds}
    pairs = list(combinations(seeds, 2))
    scores = np.stack([map_similarity(maps[a], maps[b], metric) for a, b in pairs])
    return SeedAgreement(scores=scores, pairs=pairs, metric=metric, method=method)
