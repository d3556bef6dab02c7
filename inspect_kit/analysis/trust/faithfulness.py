"""Faithfulness: does removing what a map calls relevant change the prediction? (2D and 3D)

- Deletion and insertion (Petsiuk et al., BMVC 2018, "RISE"): voxels are replaced by a
  baseline in order of decreasing relevance (deletion; a faithful map makes the score drop
  fast, low AUC) or copied onto the baseline in that order (insertion; high AUC).
- ROAD (Rong et al., ICML 2022): a share of the most (MoRF) or least (LeRF) relevant voxels
  is removed and *imputed* from its neighbours by noisy linear imputation, so the removal
  itself leaks no shape the model could read; a faithful map makes MoRF fall fast and LeRF
  stay high.

Every perturbed input of a batch of samples is evaluated in model batches of ``batch_size``
under ``torch.no_grad`` with the model in eval mode (restored afterwards), so a 3D volume
costs ``steps`` forward passes, not one per voxel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.hooks import model_device, model_state_preserved

from ._maps import check_fraction_grid, input_tensor, spatial_maps
from .imputation import noisy_linear_impute
from .results import TrustResult

__all__ = ["DeletionInsertion", "Road", "deletion_insertion", "road"]


def _ranks(maps: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Rank of each voxel (0 = most relevant) per sample; ties broken at random if ``rng``."""
    flat = maps.reshape(len(maps), -1)
    if rng is not None:  # a random secondary key: ties do not follow the raster order
        key = rng.random(flat.shape)
        order = np.lexsort((key, -flat), axis=1)
    else:
        order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks


def _targets(model: nn.Module, x: torch.Tensor, target: Any, batch_size: int) -> np.ndarray:
    if target is None:
        logits = _forward(model, [x[i] for i in range(len(x))], batch_size)
        return np.asarray(logits.argmax(axis=1))
    t = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target).astype(np.int64)
    t = np.broadcast_to(t, (len(x),)).copy()
    return t


def _forward(model: nn.Module, inputs: list[torch.Tensor], batch_size: int) -> np.ndarray:
    dev = model_device(model)
    out = []
    with model_state_preserved(model), torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = torch.stack(inputs[start : start + batch_size]).to(dev)
            out.append(model(batch).detach().float().cpu())
    return torch.cat(out).numpy().astype(np.float64)


def _scores(logits: np.ndarray, target: np.ndarray, score: str) -> np.ndarray:
    picked = logits[np.arange(len(logits)), target]
    if score == "logit":
        return np.asarray(picked)
    z = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(np.exp(z[np.arange(len(z)), target]) / np.exp(z).sum(axis=1))


def _baseline(x: torch.Tensor, baseline: Any) -> torch.Tensor:
    if isinstance(baseline, int | float) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if baseline == "mean":
        dims = tuple(range(2, x.ndim))
        return x.mean(dim=dims, keepdim=True).expand_as(x).clone()
    if baseline == "blur":
        from scipy import ndimage

        sigma = [0, 0] + [max(1.0, s / 8) for s in x.shape[2:]]
        return torch.from_numpy(ndimage.gaussian_filter(x.double().numpy(), sigma)).to(x.dtype)
    raise ValueError(f"baseline must be a number, 'mean' or 'blur', got {baseline!r}")


@dataclass
class DeletionInsertion(TrustResult):
    """Deletion and insertion curves (Petsiuk et al., 2018).

    Attributes
    ----------
    fractions : ndarray (K,)
        Share of voxels removed (deletion) or inserted (insertion), from 0 to 1.
    deletion, insertion : ndarray (N, K)
        The target's score (softmax probability or logit) along each curve.
    auc_deletion, auc_insertion : ndarray (N,)
        Trapezoidal area under each curve over ``fractions`` (lower deletion and higher
        insertion AUC are more faithful).
    target : ndarray (N,)
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    auc_deletion: np.ndarray
    auc_insertion: np.ndarray
    target: np.ndarray
    method: str = "attribution"
    params: dict[str, Any] = field(default_factory=dict)

    def to_records(self) -> list[dict[str, Any]]:
        """One row: the method and its mean AUCs (and their standard errors)."""
        n = len(self.auc_deletion)

        def se(a: np.ndarray) -> float:
            return float(a.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

        return [
            {
                "method": self.method,
                "deletion_auc": float(self.auc_deletion.mean()),
                "deletion_auc_se": se(self.auc_deletion),
                "insertion_auc": float(self.auc_insertion.mean()),
                "insertion_auc_se": se(self.auc_insertion),
                "n": n,
            }
        ]


def _steps(n_vox: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.unique(np.round(np.linspace(0, n_vox, steps + 1)).astype(np.int64))
    return counts / n_vox, counts


def deletion_insertion(
    model: nn.Module,
    x: Any,
    maps: Any,
    *,
    target: Any = None,
    steps: int = 20,
    baseline: float | str = 0.0,
    score: str = "probability",
    batch_size: int = 64,
    method: str = "attribution",
    random_state: int | None = 0,
) -> DeletionInsertion:
    """Deletion and insertion curves and their AUC (Petsiuk et al., BMVC 2018), 2D or 3D.

    Voxels are ordered by decreasing relevance (the map summed over channels; ties broken at
    random with ``random_state``). Deletion replaces the first ``k`` voxels of every channel
    with the baseline; insertion starts from the baseline image and copies them back. Both
    use the same baseline, so a random map's two AUCs agree in expectation (deletion at a share
    ``f`` keeps what insertion has inserted at ``1 - f``); Petsiuk et al. inserted onto a
    blurred image (``baseline="blur"``).

    Parameters
    ----------
    model : nn.Module
        Run in eval mode without gradients; its flags come back as they were.
    x : tensor or ndarray, (N, C, H, W) or (N, C, D, H, W)
    maps : tensor or ndarray, (N, *S) or (N, C, *S)
    target : int or array (N,), optional
        Class whose score is followed; default the class predicted on ``x``.
    steps : int, default=20
        Points of each curve beyond the first (at most one per voxel).
    baseline : float, "mean" or "blur", default=0.0
        What a removed voxel becomes: a constant, the sample's per-channel mean, or a Gaussian
        blur of the sample (sigma: an eighth of each side).
    score : {"probability", "logit"}, default="probability"
    batch_size : int, default=64
        Perturbed inputs per forward pass.
    method : str
        Name recorded for the table.
    random_state : int or None, default=0
        Tie-breaking between voxels of equal relevance (None: raster order).

    Returns
    -------
    DeletionInsertion

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> x = torch.rand(2, 1, 8, 8)
    >>> res = deletion_insertion(SmallCNN(n_classes=2), x, torch.rand(2, 8, 8), steps=4)
    >>> res.deletion.shape, res.fractions.tolist()
    ((2, 5), [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    xt = input_tensor(x).detach().cpu()
    m = spatial_maps(maps, tuple(xt.shape[2:]))
    if len(m) != len(xt):
        raise ValueError(f"{len(m)} maps for {len(xt)} inputs")
    base = _baseline(xt, baseline)
    rng = None if random_state is None else np.random.default_rng(random_state)
    ranks = torch.from_numpy(_ranks(m, rng)).reshape((len(xt), 1, *xt.shape[2:]))
    n_vox = int(np.prod(xt.shape[2:]))
    fractions, counts = _steps(n_vox, steps)
    tgt = _targets(model, xt, target, batch_size)

    def inputs(kind: str) -> Iterator[torch.Tensor]:
        for i in range(len(xt)):
            for c in counts:
                removed = ranks[i] < int(c)
                if kind == "deletion":
                    yield torch.where(removed, base[i], xt[i])
                else:
                    yield torch.where(removed, xt[i], base[i])

    curves = {}
    for kind in ("deletion", "insertion"):
        logits = _forward_stream(model, inputs(kind), batch_size)
        curves[kind] = _scores(logits, np.repeat(tgt, len(counts)), score).reshape(len(xt), -1)
    return DeletionInsertion(
        fractions=fractions,
        deletion=curves["deletion"],
        insertion=curves["insertion"],
        auc_deletion=np.trapezoid(curves["deletion"], fractions, axis=1),
        auc_insertion=np.trapezoid(curves["insertion"], fractions, axis=1),
        target=tgt,
        method=method,
        params={"steps": steps, "baseline": baseline, "score": score, "random_state": random_state},
    )


def _forward_stream(
    model: nn.Module, inputs: Iterator[torch.Tensor], batch_size: int
) -> np.ndarray:
    out: list[np.ndarray] = []
    chunk: list[torch.Tensor] = []
    for t in inputs:
        chunk.append(t)
        if len(chunk) == batch_size:
            out.append(_forward(model, chunk, batch_size))
            chunk = []
    if chunk:
        out.append(_forward(model, chunk, batch_size))
    return np.concatenate(out)


@dataclass
class Road(TrustResult):
    """ROAD curves (Rong et al., ICML 2022): the score after removing and imputing voxels.

    Attributes
    ----------
    percentages : ndarray (K,)
        Shares of voxels removed.
    morf, lerf : ndarray (N, K) or None
        Target score with the most (MoRF) / least (LeRF) relevant voxels removed; None when
        that order was not asked for.
    morf_correct, lerf_correct : ndarray (N, K) of bool or None
        Whether the model still predicts the target.
    target : ndarray (N,)
    """

    percentages: np.ndarray
    morf: np.ndarray | None
    lerf: np.ndarray | None
    morf_correct: np.ndarray | None
    lerf_correct: np.ndarray | None
    target: np.ndarray
    method: str = "attribution"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def morf_auc(self) -> float | None:
        """Mean area under the MoRF curve over ``percentages`` (lower is more faithful)."""
        return (
            None if self.morf is None else float(np.trapezoid(self.morf.mean(0), self.percentages))
        )

    @property
    def lerf_auc(self) -> float | None:
        """Mean area under the LeRF curve (higher is more faithful)."""
        return (
            None if self.lerf is None else float(np.trapezoid(self.lerf.mean(0), self.percentages))
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One row: the method, the MoRF and LeRF AUCs and their gap (LeRF - MoRF)."""
        morf, lerf = self.morf_auc, self.lerf_auc
        gap = None if morf is None or lerf is None else lerf - morf
        return [
            {"method": self.method, "road_morf_auc": morf, "road_lerf_auc": lerf, "road_gap": gap}
        ]


def road(
    model: nn.Module,
    x: Any,
    maps: Any,
    *,
    target: Any = None,
    percentages: Any = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    order: str = "both",
    noise: float = 0.01,
    score: str = "probability",
    batch_size: int = 64,
    method: str = "attribution",
    random_state: int = 0,
) -> Road:
    """ROAD: RemOve And Debias with noisy linear imputation (Rong et al., ICML 2022), 2D or 3D.

    For each share ``p`` of ``percentages`` the ``p`` most (MoRF) or least (LeRF) relevant
    voxels are removed and imputed by
    :func:`~inspect_kit.analysis.trust.imputation.noisy_linear_impute` (each removed voxel the
    weighted mean of its 8 / 26 neighbours, solved jointly as one sparse linear system, plus
    Gaussian noise of std ``noise``), and the model's score of the target is recorded.

    Parameters
    ----------
    model : nn.Module
    x : tensor or ndarray, (N, C, H, W) or (N, C, D, H, W)
    maps : tensor or ndarray, (N, *S) or (N, C, *S)
    target : int or array (N,), optional
        Default: the class predicted on ``x``.
    percentages : sequence of float in (0, 1), default=0.1 ... 0.9
    order : {"both", "morf", "lerf"}, default="both"
    noise : float, default=0.01
        Standard deviation of the imputation noise (in input units; Rong et al. use 0.01 on
        images scaled to about unit range).
    score : {"probability", "logit"}
    batch_size : int, default=64
    method : str
    random_state : int, default=0
        Seeds the imputation noise and tie-breaking.

    Returns
    -------
    Road

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> res = road(SmallCNN(n_classes=2), torch.rand(2, 1, 8, 8), torch.rand(2, 8, 8),
    ...            percentages=(0.25, 0.5))
    >>> res.morf.shape, res.lerf.shape
    ((2, 2), (2, 2))
    """
    if order not in ("both", "morf", "lerf"):
        raise ValueError(f"order must be 'both', 'morf' or 'lerf', got {order!r}")
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
    pct = check_fraction_grid(percentages, "percentages", closed=False)
    xt = input_tensor(x).detach().cpu()
    spatial = tuple(xt.shape[2:])
    m = spatial_maps(maps, spatial)
    if len(m) != len(xt):
        raise ValueError(f"{len(m)} maps for {len(xt)} inputs")
    rng = np.random.default_rng(random_state)
    ranks = _ranks(m, rng).reshape((len(xt), *spatial))
    n_vox = int(np.prod(spatial))
    counts = np.round(pct * n_vox).astype(np.int64)
    tgt = _targets(model, xt, target, batch_size)
    xn = xt.double().numpy()
    orders = ["morf", "lerf"] if order == "both" else [order]
    out: dict[str, tuple[np.ndarray, np.ndarray] | tuple[None, None]] = {
        "morf": (None, None),
        "lerf": (None, None),
    }
    for o in orders:

        def inputs(o: str = o) -> Iterator[torch.Tensor]:
            for i in range(len(xt)):
                for c in counts:
                    removed = ranks[i] < c if o == "morf" else ranks[i] >= n_vox - c
                    img = noisy_linear_impute(xn[i], removed, noise=noise, random_state=rng)
                    yield torch.from_numpy(img).to(xt.dtype)

        logits = _forward_stream(model, inputs(), batch_size)
        t = np.repeat(tgt, len(counts))
        out[o] = (
            _scores(logits, t, score).reshape(len(xt), -1),
            (logits.argmax(axis=1) == t).reshape(len(xt), -1),
        )
    return Road(
        percentages=pct,
        morf=out["morf"][0],
        lerf=out["lerf"][0],
        morf_correct=out["morf"][1],
        lerf_correct=out["lerf"][1],
        target=tgt,
        method=method,
        params={"order": order, "noise": noise, "score": score, "random_state": random_state},
    )
