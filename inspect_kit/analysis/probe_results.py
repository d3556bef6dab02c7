"""What linear probes give back: one probe's :class:`ProbeResult`, a store's :class:`ProbeProfile`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

__all__ = ["ProbeProfile", "ProbeResult"]


@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Outcome of one cross-validated linear probe.

    Attributes
    ----------
    task : {'classification', 'regression'}
    metric : {'balanced_accuracy', 'r2'}
        Classification is scored by balanced accuracy (mean per-class recall), so the chance
        level does not depend on the class frequencies.
    score : float
        Mean of ``fold_scores``.
    score_std : float
        Standard deviation across folds.
    fold_scores : ndarray of shape (cv,)
    chance : float
        Chance level of ``metric`` (see ``chance_method``).
    chance_method : {'balanced', 'dummy', 'permutation'}
        ``'balanced'`` (classification): ``1 / n_classes``, the balanced accuracy of any
        predictor that ignores the features.
        ``'dummy'`` (regression): the cross-validated R² of the training mean (<= 0).
        ``'permutation'``: the mean cross-validated score of the probe on permuted targets
        (permuted within groups' folds, seeded by ``random_state``).
    p_value : float or None
        Permutation p-value (only with ``chance='permutation'``).
    permutation_scores : ndarray or None
    n_samples, n_features : int
    n_classes : int or None
    cv : int
    random_state : int or None
    estimator : sklearn Pipeline or None
        Scaler + linear model refitted on all samples (``refit=True``), for its coefficients.
    n_groups : int or None
        Distinct groups when the cross-validation was grouped (``groups=``), else None.
    warnings : tuple of str
        Why the result should be read with care (e.g. few samples per fold); empty if none.
    solver : {'memory', 'streaming'}
        How the probe was fitted (see :func:`linear_probe`).
    """

    task: str
    metric: str
    score: float
    score_std: float
    fold_scores: np.ndarray
    chance: float
    chance_method: str
    p_value: float | None
    permutation_scores: np.ndarray | None
    n_samples: int
    n_features: int
    n_classes: int | None
    cv: int
    random_state: int | None
    estimator: Pipeline | None = field(default=None, repr=False, compare=False)
    n_groups: int | None = None
    warnings: tuple[str, ...] = ()
    solver: str = "memory"

    def __repr__(self) -> str:
        what = {
            "balanced": "balanced, 1/n_classes",
            "dummy": "mean predictor",
            "permutation": "permuted targets",
        }[self.chance_method]
        p = f", p={self.p_value:.3g}" if self.p_value is not None else ""
        grouped = f", grouped by {self.n_groups} groups" if self.n_groups else ""
        return (
            f"<ProbeResult {self.metric} {self.score:.3f} ± {self.score_std:.3f} ({self.cv}-fold"
            f"{grouped}), "
            f"chance {self.chance:.3f} ({what}{p}); {self.n_samples} samples x "
            f"{self.n_features} features>"
        )

    @property
    def above_chance(self) -> float:
        """``score - chance``."""
        return self.score - self.chance

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (no estimator), e.g. for JSON."""
        return {
            "task": self.task,
            "metric": self.metric,
            "score": self.score,
            "score_std": self.score_std,
            "fold_scores": self.fold_scores.tolist(),
            "chance": self.chance,
            "chance_method": self.chance_method,
            "p_value": self.p_value,
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "cv": self.cv,
            "random_state": self.random_state,
            "n_groups": self.n_groups,
            "warnings": list(self.warnings),
            "solver": self.solver,
        }


@dataclass(frozen=True, eq=False)
class ProbeProfile:
    """Linear probes of one target across the layers of a store (in store order).

    Attributes
    ----------
    layers : list of str
    results : list of ProbeResult
    target : str
    reduce : str
        The reduction as recorded (e.g. 'mean').
    groups : str or None
        The metadata key (or ``'array'``) the cross-validation was grouped by, else None.
    """

    layers: list[str]
    results: list[ProbeResult]
    target: str
    reduce: str
    groups: str | None = None

    def __repr__(self) -> str:
        body = ", ".join(
            f"{n} {r.score:.3f}" for n, r in zip(self.layers, self.results, strict=True)
        )
        return f"<ProbeProfile {self.target} ({self.metric}): {body}>"

    @property
    def metric(self) -> str:
        return self.results[0].metric if self.results else "balanced_accuracy"

    @property
    def scores(self) -> np.ndarray:
        return np.array([r.score for r in self.results], dtype=float)

    @property
    def score_std(self) -> np.ndarray:
        return np.array([r.score_std for r in self.results], dtype=float)

    @property
    def chance(self) -> np.ndarray:
        return np.array([r.chance for r in self.results], dtype=float)

    @property
    def best_layer(self) -> str:
        """The layer with the highest score."""
        return self.layers[int(np.argmax(self.scores))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reduce": self.reduce,
            "groups": self.groups,
            "layers": list(self.layers),
            "results": [r.to_dict() for r in self.results],
        }
