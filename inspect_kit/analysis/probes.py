"""Linear probes: how linearly decodable is a property from a set of features?

A probe is a cross-validated linear model (logistic regression for categorical targets, ridge
regression for continuous ones) fitted on standardised features. Its score is only meaningful
next to a chance level, which every result carries: the score of a prediction that ignores the
features (majority class, or the training mean), measured on the same folds, or the mean score
of the probe refitted on permuted targets.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import (
    KFold,
    StratifiedKFold,
    cross_val_score,
    permutation_test_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from inspect_kit._names import unknown_name_error
from inspect_kit.analysis.embedding import reduce_rows

logger = logging.getLogger(__name__)

__all__ = ["ProbeResult", "ProbeProfile", "linear_probe", "probe_profile"]

Task = Literal["auto", "classification", "regression"]
_LABEL_ALIASES = ("label", "labels")
_PREDICTION_ALIASES = ("prediction", "predictions")


@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Outcome of one cross-validated linear probe.

    Attributes
    ----------
    task : {'classification', 'regression'}
    metric : {'accuracy', 'r2'}
    score : float
        Mean of ``fold_scores``.
    score_std : float
        Standard deviation across folds.
    fold_scores : ndarray of shape (cv,)
    chance : float
        Chance level of ``metric`` (see ``chance_method``).
    chance_method : {'dummy', 'permutation'}
        ``'dummy'``: the cross-validated score of a predictor that ignores the features
        (majority class for classification, training mean for regression: R² <= 0).
        ``'permutation'``: the mean cross-validated score of the probe on permuted targets.
    p_value : float or None
        Permutation p-value (only with ``chance='permutation'``).
    permutation_scores : ndarray or None
    n_samples, n_features : int
    n_classes : int or None
    cv : int
    random_state : int or None
    estimator : sklearn Pipeline or None
        Scaler + linear model refitted on all samples (``refit=True``), for its coefficients.
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

    def __repr__(self) -> str:
        what = {"dummy": "majority class" if self.metric == "accuracy" else "mean predictor",
                "permutation": "permuted targets"}[self.chance_method]
        p = f", p={self.p_value:.3g}" if self.p_value is not None else ""
        return (
            f"<ProbeResult {self.metric} {self.score:.3f} ± {self.score_std:.3f} ({self.cv}-fold), "
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
    """

    layers: list[str]
    results: list[ProbeResult]
    target: str
    reduce: str

    def __repr__(self) -> str:
        body = ", ".join(f"{n} {r.score:.3f}" for n, r in zip(self.layers, self.results, strict=True))
        return f"<ProbeProfile {self.target} ({self.metric}): {body}>"

    @property
    def metric(self) -> str:
        return self.results[0].metric if self.results else "accuracy"

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
            "layers": list(self.layers),
            "results": [r.to_dict() for r in self.results],
        }


def _infer_task(y: np.ndarray, task: Task) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ValueError(
            f"task={task!r} is not one of 'auto', 'classification', 'regression'"
        )
    if task != "auto":
        return task
    if y.dtype.kind == "f":
        n_unique = len(np.unique(y))
        if n_unique <= 10:
            logger.warning(
                "float target with only %d distinct values is treated as continuous (ridge, R²);"
                " pass task='classification' if it is categorical",
                n_unique,
            )
        return "regression"
    if y.dtype.kind == "c":
        raise TypeError("complex targets are not supported")
    return "classification"


def _as_2d_features(features: Any) -> np.ndarray:
    if hasattr(features, "detach"):  # torch tensor, without importing torch here
        features = features.detach().cpu().numpy()
    X = np.asarray(features)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"features must be (N, ...) with N > 0, got shape {X.shape}")
    X = X.reshape(X.shape[0], -1)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"features must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64 if X.dtype == np.float64 else np.float32, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError("features contain NaN or infinite values; drop or impute them first")
    return X


def linear_probe(
    features: Any,
    targets: Any,
    cv: int = 5,
    random_state: int | None = 0,
    *,
    task: Task = "auto",
    C: float = 1.0,
    alphas: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4),
    chance: Literal["dummy", "permutation"] = "dummy",
    n_permutations: int = 100,
    max_iter: int = 2000,
    refit: bool = True,
    n_jobs: int | None = None,
) -> ProbeResult:
    """Cross-validated linear probe of ``targets`` from ``features``, with its chance level.

    Categorical targets get a multinomial logistic regression scored by accuracy, continuous
    ones a ridge regression (penalty chosen among ``alphas`` by efficient leave-one-out inside
    each training fold) scored by R². Features are standardised inside the cross-validation
    pipeline, so no statistics leak from test folds.

    Parameters
    ----------
    features : array-like of shape (N, ...)
        Anything beyond the first axis is flattened.
    targets : array-like of shape (N,)
    cv : int
        Number of (stratified, for classification) shuffled folds.
    random_state : int or None
        Seed of the fold shuffling and of the permutations; recorded in the result.
    task : {'auto', 'classification', 'regression'}
        ``'auto'``: float targets are continuous, everything else (int, bool, str) categorical.
    C : float
        Inverse L2 strength of the logistic regression.
    alphas : sequence of float
        Candidate ridge penalties.
    chance : {'dummy', 'permutation'}
        How the chance level is measured (see :class:`ProbeResult`).
    n_permutations : int
        Permutations for ``chance='permutation'``.
    max_iter : int
        Iterations of the logistic solver.
    refit : bool
        Refit the probe on all samples and return it as ``result.estimator``.
    n_jobs : int or None
        Parallel folds (scikit-learn semantics).

    Returns
    -------
    ProbeResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 20))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> r = linear_probe(X, y)
    >>> r.score > r.chance + 0.3
    True
    """
    X = _as_2d_features(features)
    if hasattr(targets, "detach"):
        targets = targets.detach().cpu().numpy()
    y = np.asarray(targets)
    if y.ndim != 1:
        y = y.squeeze()
        if y.ndim != 1:
            raise ValueError(f"targets must be 1-D (N,), got shape {np.asarray(targets).shape}")
    if len(y) != len(X):
        raise ValueError(f"features have {len(X)} rows but targets have {len(y)}")
    if not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
    if chance not in ("dummy", "permutation"):
        raise ValueError(f"chance={chance!r} is not one of 'dummy', 'permutation'")
    task = _infer_task(y, task)

    n_classes: int | None = None
    if task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError(f"a classification probe needs >= 2 classes, got {classes.tolist()}")
        if counts.min() < cv:
            rare = classes[counts < cv].tolist()
            raise ValueError(
                f"classes {rare[:10]} have fewer than cv={cv} samples; lower cv to "
                f"{max(2, int(counts.min()))} or drop those classes"
            )
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
        model = LogisticRegression(C=C, max_iter=max_iter)
        dummy = DummyClassifier(strategy="most_frequent")
        metric, scoring = "accuracy", "accuracy"
    else:
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("continuous targets contain NaN or infinite values")
        if len(y) < cv:
            raise ValueError(f"{len(y)} samples are too few for cv={cv}")
        splitter = KFold(n_splits=cv, shuffle=True, random_state=random_state)
        model = RidgeCV(alphas=np.asarray(alphas, dtype=float))
        dummy = DummyRegressor(strategy="mean")
        metric, scoring = "r2", "r2"

    pipe = make_pipeline(StandardScaler(), model)
    fold_scores = cross_val_score(pipe, X, y, cv=splitter, scoring=scoring, n_jobs=n_jobs)

    p_value = None
    perm_scores = None
    if chance == "dummy":
        chance_level = float(
            np.mean(cross_val_score(dummy, X, y, cv=splitter, scoring=scoring))
        )
    else:
        if n_permutations < 1:
            raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
        _, perm_scores, p_value = permutation_test_score(
            clone(pipe), X, y, cv=splitter, scoring=scoring, n_permutations=n_permutations,
            random_state=random_state, n_jobs=n_jobs,
        )
        chance_level = float(np.mean(perm_scores))
        p_value = float(p_value)

    estimator = clone(pipe).fit(X, y) if refit else None
    return ProbeResult(
        task=task,
        metric=metric,
        score=float(np.mean(fold_scores)),
        score_std=float(np.std(fold_scores)),
        fold_scores=np.asarray(fold_scores, dtype=float),
        chance=chance_level,
        chance_method=chance,
        p_value=p_value,
        permutation_scores=None if perm_scores is None else np.asarray(perm_scores),
        n_samples=int(X.shape[0]),
        n_features=int(X.shape[1]),
        n_classes=n_classes,
        cv=int(cv),
        random_state=random_state,
        estimator=estimator,
    )


def _resolve_target(store: Any, target: Any) -> tuple[str, np.ndarray]:
    if not isinstance(target, str):
        return "target", np.asarray(target)
    if target in _LABEL_ALIASES:
        y = store.labels
        if y is None:
            raise KeyError("the store has no labels; capture with labels=... or pass an array")
        return "label", np.asarray(y)
    if target in _PREDICTION_ALIASES:
        y = store.predictions
        if y is None:
            raise KeyError("the store has no predictions (the model's output was not logits)")
        return "prediction", np.asarray(y)
    metadata = store.metadata or {}
    if target in metadata:
        return target, np.asarray(metadata[target])
    options = ["label", "prediction", *metadata]
    raise unknown_name_error(target, options, kind="target", where="the store")


def _reduction_label(reduce: Any) -> str:
    if reduce is None or isinstance(reduce, str):
        return str(reduce).lower()
    return f"callable:{getattr(reduce, '__qualname__', repr(reduce))}"


def _layer_features(store: Any, layer: str, reduce: Any) -> np.ndarray:
    # Blocks of about 64 MiB keep memory bounded whatever the layer's size. The block size is
    # passed explicitly: the default path of iter_chunks trips an HDF5 2.0 SWMR read error.
    shape = tuple(store[layer].shape[1:]) if hasattr(store, "__getitem__") else ()
    row_bytes = max(1, int(np.prod(shape, dtype=np.int64)) * 4)
    rows = max(64, (64 * 2**20) // row_bytes)
    parts = [reduce_rows(block, reduce) for _, block in store.iter_chunks(layer, batch_size=rows)]
    return np.concatenate(parts, axis=0) if parts else np.empty((0, 0))


def probe_profile(
    store: Any,
    layers: Sequence[str] | None = None,
    target: Any = "label",
    reduce: str | Callable | None = "mean",
    *,
    cv: int = 5,
    random_state: int | None = 0,
    save: bool = False,
    progress: bool = True,
    **probe_kwargs: Any,
) -> ProbeProfile:
    """Linear probe of one target from each layer of an activation store.

    Shows where in depth a property becomes linearly decodable: the score per layer against
    its chance level.

    Parameters
    ----------
    store : ActivationStore or path
        A store written by :func:`inspect_kit.capture.capture`.
    layers : sequence of str, optional
        Layers in the order to report; default all of ``store.layers`` (capture order).
    target : str or array-like
        ``'label'``, ``'prediction'``, a metadata key, or an (N,) array.
    reduce : {'mean', 'max', 'flatten'} or callable
        How unreduced activations (N, C, *spatial) become vectors (as in
        :func:`inspect_kit.embed`); ``'mean'`` gives one feature per channel. Layers captured
        already reduced pass through.
    cv, random_state
        Passed to :func:`linear_probe` and recorded.
    save : bool
        Also write the profile to the store under ``probes/<target>``.
    progress : bool
        Show a progress bar over layers.
    **probe_kwargs
        Further :func:`linear_probe` arguments (``task``, ``C``, ``chance`` ...).
        ``refit`` defaults to False here.

    Returns
    -------
    ProbeProfile

    Examples
    --------
    >>> profile = probe_profile("digits.h5", target="label")  # doctest: +SKIP
    >>> profile.best_layer  # doctest: +SKIP
    'fc'
    """
    owned = False
    if isinstance(store, (str, os.PathLike)):
        from inspect_kit.store import open_store

        store = open_store(store)
        owned = True
    try:
        available = list(store.layers)
        if layers is None:
            layers = available
        elif isinstance(layers, str):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ValueError("no layers to probe: the store has none and none were given")
        for name in layers:
            if name not in available:
                raise unknown_name_error(name, available, where="the store", see="store.layers")
        target_name, y = _resolve_target(store, target)
        n = len(store)
        if len(y) != n:
            raise ValueError(f"target has {len(y)} values but the store has {n} samples")
        probe_kwargs.setdefault("refit", False)
        results = []
        for name in tqdm(layers, desc="probing layers", disable=not progress):
            X = _layer_features(store, name, reduce)
            results.append(linear_probe(X, y, cv=cv, random_state=random_state, **probe_kwargs))
            logger.info("probe %s -> %s: %.3f", name, target_name, results[-1].score)
        profile = ProbeProfile(
            layers=layers, results=results, target=target_name, reduce=_reduction_label(reduce)
        )
        if save:
            store.save_result(
                f"probes/{target_name}",
                {
                    "score": profile.scores,
                    "score_std": profile.score_std,
                    "chance": profile.chance,
                    "fold_scores": np.stack([r.fold_scores for r in results]),
                },
                {
                    "layers": list(layers),
                    "metric": profile.metric,
                    "reduce": _reduction_label(reduce),
                    "cv": cv,
                    "random_state": -1 if random_state is None else random_state,
                    "chance_method": results[0].chance_method,
                },
            )
        return profile
    finally:
        if owned:
            store.close()
