"""Linear probes: how linearly decodable is a property from a set of features?

A probe is a cross-validated linear model (logistic regression for categorical targets, ridge
regression for continuous ones) fitted on standardised features. Its score is only meaningful
next to a chance level, which every result carries: for classification the score is the
*balanced* accuracy (mean per-class recall), whose chance level is exactly ``1 / n_classes``
whatever the class frequencies; for regression it is R², whose chance level is the score of the
training mean on the same folds (<= 0). With ``chance='permutation'`` the chance level is
instead the mean score of the probe refitted on permuted targets, with a p-value.

Samples that are not independent (slices or patches of one patient, images of one site) must
not be split across training and test folds: pass ``groups=`` (an array, or in
:func:`probe_profile` any metadata key of the store) for grouped cross-validation
(``StratifiedGroupKFold`` for classification, ``GroupKFold`` for regression).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from inspect_kit._names import unknown_name_error
from inspect_kit.analysis._dask import is_dask_array
from inspect_kit.analysis.embedding import reduce_rows
from inspect_kit.store import schema

logger = logging.getLogger(__name__)

__all__ = ["ProbeResult", "ProbeProfile", "default_groups", "linear_probe", "probe_profile"]

#: Metadata keys that name a sample's patient/subject/site, in order of preference: the
#: report groups its probes' cross-validation by the first one present with repeated values.
GROUP_KEYS: tuple[str, ...] = (
    "PatientID",
    "patient_id",
    "patient",
    "subject_id",
    "subject",
    "participant_id",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "volume",
    "site",
    "InstitutionName",
)

Task = Literal["auto", "classification", "regression"]
Solver = Literal["auto", "memory", "streaming"]
_EPOCHS = 5  # SGD passes of a streamed classification probe
_LABEL_ALIASES = ("label", "labels")
_PREDICTION_ALIASES = ("prediction", "predictions")


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


def _infer_task(y: np.ndarray, task: Task) -> Task:
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"task={task!r} is not one of 'auto', 'classification', 'regression'")
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
    chance: Literal["balanced", "dummy", "permutation"] = "balanced",
    n_permutations: int = 100,
    max_iter: int = 2000,
    refit: bool = True,
    n_jobs: int | None = None,
    groups: Any = None,
    solver: Solver = "auto",
    batch_size: int | None = None,
    epochs: int = _EPOCHS,
    sgd_alpha: float | None = None,
    progress: bool = False,
) -> ProbeResult:
    """Cross-validated linear probe of ``targets`` from ``features``, with its chance level.

    Categorical targets get a multinomial logistic regression scored by balanced accuracy
    (mean per-class recall, chance ``1 / n_classes`` whatever the class frequencies),
    continuous ones a ridge regression (penalty chosen among ``alphas`` by efficient
    leave-one-out inside each training fold) scored by R². Features are standardised inside
    the cross-validation pipeline, so no statistics leak from test folds.

    Layers larger than memory are probed with ``solver='streaming'``: the features are read
    block by block (a store layer view, an h5py dataset, a
    :class:`~inspect_kit.analysis.embedding.Features` with its reduction, or a
    ``dask.array.Array``, whose blocks compute on the active ``dask.distributed`` client),
    standardised with each training fold's mean and variance from a first streamed pass, and
    fitted by :class:`~sklearn.linear_model.SGDClassifier` (logistic loss, L2 strength
    ``1 / (C * n_train)``) through ``partial_fit`` over ``epochs`` passes (classification),
    or by an exact ridge regression from streamed Gram matrices with RidgeCV's leave-one-out
    choice of penalty (regression, two passes, up to 4096 features); the same folds, groups
    and chance levels as in memory. Memory holds one block, the targets and one model (or
    Gram matrix) per fold.

    Parameters
    ----------
    features : array-like of shape (N, ...)
        Anything beyond the first axis is flattened. With ``solver='streaming'`` also a store
        layer view, an h5py dataset, a ``Features`` or a Dask array (read block by block).
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
    chance : {'balanced', 'dummy', 'permutation'}
        How the chance level is measured. ``'balanced'`` (default) and ``'dummy'``: a predictor
        that ignores the features, i.e. ``1 / n_classes`` balanced accuracy (averaged over
        the classes present in each test fold) for classification and the training mean's R²
        for regression. ``'permutation'``: the mean score of the probe refitted on
        ``n_permutations`` seeded permutations of the targets (whole groups' targets are
        permuted together when every group has one target), with a p-value.
    n_permutations : int
        Permutations for ``chance='permutation'``.
    max_iter : int
        Iterations of the logistic solver.
    refit : bool
        Refit the probe on all samples and return it as ``result.estimator``.
    n_jobs : int or None
        Parallel folds (scikit-learn semantics).
    groups : array-like of shape (N,), optional
        Group of each sample (patient, site, volume ...). Samples of one group are never split
        between training and test folds (``StratifiedGroupKFold`` for classification,
        ``GroupKFold`` for regression), so what identifies a group cannot leak into the score.
        Needs at least ``cv`` distinct groups.
    solver : {'auto', 'memory', 'streaming'}
        ``'memory'``: scikit-learn's LogisticRegression / RidgeCV on all rows in memory.
        ``'streaming'``: SGD over blocks of rows (see above); ``chance='permutation'`` is
        not available with it. ``'auto'``: 'streaming' for a Dask array, else 'memory'.
    batch_size : int, optional
        Rows per block when streaming (default: about 64 MiB of rows; a Dask array's chunks).
    epochs : int
        Passes of SGD over the data when streaming a classification probe.
    sgd_alpha : float, optional
        L2 strength of the streamed SGD classifier; default ``1 / (C * n_train)``
        (logistic regression's penalty).
    progress : bool
        Progress bar over the streamed blocks.

    Returns
    -------
    ProbeResult
        ``result.warnings`` says when the score is fragile (few test samples per fold, classes
        missing from test folds).

    Raises
    ------
    ValueError
        Too few samples, classes or groups for the cross-validation asked.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 20))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> r = linear_probe(X, y)
    >>> bool(r.score > r.chance + 0.3), r.chance
    (True, 0.5)
    >>> patients = np.repeat(np.arange(30), 10)   # 10 samples per patient
    >>> linear_probe(X, y, groups=patients).n_groups
    30
    >>> r = linear_probe(X, y, solver="streaming", batch_size=64)   # SGD over 64-row blocks
    >>> bool(r.score > r.chance + 0.3), r.solver
    (True, 'streaming')
    """
    if solver not in ("auto", "memory", "streaming"):
        raise ValueError(f"solver={solver!r} is not one of 'auto', 'memory', 'streaming'")
    if solver == "auto":
        solver = "streaming" if is_dask_array(features) else "memory"
    source = None
    if solver == "streaming":
        if chance == "permutation":
            raise ValueError(
                "chance='permutation' refits the probe n_permutations times: not offered with "
                "solver='streaming'; use chance='balanced' (or 'dummy' for regression)"
            )
        from ._streaming import BlockSource

        source = BlockSource(features, block_rows=batch_size)
        X = np.zeros((source.n_samples, 1), dtype=np.float32)  # only its length is used
    else:
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
    if chance not in ("balanced", "dummy", "permutation"):
        raise ValueError(f"chance={chance!r} is not one of 'balanced', 'dummy', 'permutation'")
    task = _infer_task(y, task)
    group_ids: np.ndarray | None = None
    n_groups: int | None = None
    if groups is not None:
        if hasattr(groups, "detach"):
            groups = groups.detach().cpu().numpy()
        g = np.asarray(groups)
        if g.ndim != 1 or len(g) != len(y):
            raise ValueError(
                f"groups must be 1-D with one value per sample ({len(y)}), got shape {g.shape}"
            )
        _, group_ids = np.unique(g, return_inverse=True)
        n_groups = int(group_ids.max()) + 1
        if n_groups < cv:
            raise ValueError(
                f"groups has {n_groups} distinct values but cv={cv} grouped folds need at least "
                f"{cv}; lower cv to {max(2, n_groups)} or pass more groups"
            )
    notes: list[str] = []

    n_classes: int | None = None
    if task == "classification":
        classes, y_codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError(f"a classification probe needs >= 2 classes, got {classes.tolist()}")
        if group_ids is None and counts.min() < cv:
            rare = classes[counts < cv].tolist()
            raise ValueError(
                f"classes {rare[:10]} have fewer than cv={cv} samples; lower cv to "
                f"{max(2, int(counts.min()))} or drop those classes"
            )
        if group_ids is None:
            splitter: Any = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
        else:
            splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=random_state)
        model: Any = LogisticRegression(C=C, max_iter=max_iter)
        metric = scoring = "balanced_accuracy"
    else:
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("continuous targets contain NaN or infinite values")
        if len(y) < cv:
            raise ValueError(f"{len(y)} samples are too few for cv={cv}")
        if group_ids is None:
            splitter = KFold(n_splits=cv, shuffle=True, random_state=random_state)
        else:
            splitter = GroupKFold(n_splits=cv, shuffle=True, random_state=random_state)
        model = RidgeCV(alphas=np.asarray(alphas, dtype=float))
        metric, scoring = "r2", "r2"

    folds = list(splitter.split(X, y, group_ids))
    smallest = min(len(test) for _, test in folds)
    if smallest < 10:
        notes.append(
            f"the smallest test fold has {smallest} samples ({len(y)} in all, cv={cv}): "
            "the score moves in large steps and is fragile"
        )
    if n_classes is not None:  # a classification probe
        missing = [
            fi for fi, (_, test) in enumerate(folds) if len(np.unique(y_codes[test])) < n_classes
        ]
        if missing:
            notes.append(
                f"{len(missing)} of {cv} test folds lack some of the {n_classes} classes "
                "(too few samples or groups per class for this cv)"
            )
    for note in notes:
        logger.warning("linear probe: %s", note)

    pipe = make_pipeline(StandardScaler(), model)
    estimator = None
    if source is not None:
        from ._streaming import fit_streaming

        fit = fit_streaming(
            source,
            y,
            folds,
            task,
            C=C,
            alphas=alphas,
            alpha=sgd_alpha,
            epochs=epochs,
            refit=refit,
            random_state=random_state,
            progress=progress,
        )
        fold_scores, estimator = fit.fold_scores, fit.estimator
    else:
        fold_scores = cross_val_score(pipe, X, y, cv=folds, scoring=scoring, n_jobs=n_jobs)

    p_value = None
    perm_scores = None
    if chance in ("balanced", "dummy"):
        if task == "classification":
            chance = "balanced"
            # a predictor that ignores the features recalls 1/k of the k classes in a test fold
            chance_level = float(
                np.mean([1.0 / len(np.unique(y_codes[test])) for _, test in folds])
            )
        else:
            chance = "dummy"
            chance_level = float(
                np.mean(
                    cross_val_score(
                        DummyRegressor(strategy="mean"), X, y, cv=folds, scoring=scoring
                    )
                )
            )
    else:
        if n_permutations < 1:
            raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
        perm_scores = _permutation_scores(
            pipe, X, y, group_ids, splitter, scoring, n_permutations, random_state, n_jobs
        )
        chance_level = float(np.mean(perm_scores))
        p_value = float((np.sum(perm_scores >= np.mean(fold_scores)) + 1) / (n_permutations + 1))

    if refit and source is None:
        estimator = clone(pipe).fit(X, y)
    return ProbeResult(
        task=task,
        metric=metric,
        score=float(np.mean(fold_scores)),
        score_std=float(np.std(fold_scores)),
        fold_scores=np.asarray(fold_scores, dtype=float),
        chance=chance_level,
        chance_method=chance,
        p_value=p_value,
        permutation_scores=perm_scores,
        n_samples=int(X.shape[0]),
        n_features=int(X.shape[1] if source is None else source.n_features),
        n_classes=n_classes,
        cv=int(cv),
        random_state=random_state,
        estimator=estimator,
        n_groups=n_groups,
        warnings=tuple(notes),
        solver=solver,
    )


def _permutation_scores(
    pipe: Pipeline,
    X: np.ndarray,
    y: np.ndarray,
    group_ids: np.ndarray | None,
    splitter: Any,
    scoring: str,
    n_permutations: int,
    random_state: int | None,
    n_jobs: int | None,
) -> np.ndarray:
    """Cross-validated scores of the probe on seeded permutations of ``y``.

    With groups whose samples share one target, whole groups' targets are permuted (the
    null keeps the group structure); otherwise samples' targets are.
    """
    rng = np.random.default_rng(random_state)
    per_group = None
    if group_ids is not None:
        first = np.unique(group_ids, return_index=True)[1]
        if np.array_equal(y, y[first][group_ids]):
            per_group = y[first]
    scores = np.empty(n_permutations)
    for i in range(n_permutations):
        y_perm = (
            rng.permutation(per_group)[group_ids] if per_group is not None else rng.permutation(y)
        )
        scores[i] = np.mean(
            cross_val_score(
                clone(pipe),
                X,
                y_perm,
                groups=group_ids,
                cv=splitter,
                scoring=scoring,
                n_jobs=n_jobs,
            )
        )
    return scores


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


def default_groups(store: Any) -> str | None:
    """The metadata key a store's probes should be grouped by, or None.

    The first of :data:`GROUP_KEYS` in ``store.metadata`` whose values repeat (several samples
    of one patient, series or site) but are not all the same.

    Examples
    --------
    >>> default_groups(open_store("ct_slices.h5"))  # doctest: +SKIP
    'PatientID'
    """
    metadata = getattr(store, "metadata", None) or {}
    n = len(store)
    for key in GROUP_KEYS:
        if key in metadata:
            values = np.asarray(metadata[key])
            if len(values) != n:
                continue
            n_unique = len(np.unique(values.astype(str)))
            if 1 < n_unique < n:
                return key
    return None


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


def _streamed_features(store: Any, layer: str, reduce: Any, batch_size: int | None) -> Any:
    """A layer's feature rows for a streamed probe: read (and pooled) block by block, on the
    active ``dask.distributed`` cluster if there is one."""
    from inspect_kit.analysis._dask import active_client
    from inspect_kit.analysis.embedding import Features

    feats = Features(store[layer], reduce=reduce, name=layer, block_rows=batch_size, progress=False)
    if active_client() is None or not hasattr(store, "to_dask"):
        return feats
    from inspect_kit.analysis.embedding._pca import dask_features

    row_bytes = int(np.prod(feats.source_shape, dtype=np.int64)) * feats.dtype.itemsize
    return dask_features(feats, chunk_bytes=max(1, row_bytes) * feats.block_rows)


def _auto_solver(
    store: Any, layer: str, reduce: Any, memory_limit: int, probe_kwargs: dict[str, Any]
) -> str:
    """'memory' when a layer's pooled features (and scikit-learn's copies) fit in
    ``memory_limit``, else 'streaming' (never for permutation chance: in memory only)."""
    from inspect_kit.analysis.embedding import Features

    if probe_kwargs.get("chance") == "permutation":
        return "memory"
    feats = Features(store[layer], reduce=reduce, name=layer, progress=False)
    return "memory" if feats.nbytes * 3 <= memory_limit else "streaming"


def _solver_attrs(
    solver: str, results: Sequence[ProbeResult], batch_size: int | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """How a profile was fitted, for the store: the solver asked, the one each layer used,
    the streamed block size and epochs, and the ``dask.distributed`` scheduler it read on."""
    from inspect_kit.analysis._dask import active_client

    used = [r.solver for r in results]
    client = active_client() if "streaming" in used else None
    return {
        "solver": solver,
        "layer_solvers": used,
        "batch_size": -1 if batch_size is None else int(batch_size),
        "epochs": int(kwargs.get("epochs", _EPOCHS)),
        "scheduler": "" if client is None else str(client.scheduler.address),
    }


def probe_profile(
    store: Any,
    layers: Sequence[str] | None = None,
    target: Any = "label",
    reduce: str | Callable[..., Any] | None = "mean",
    *,
    cv: int = 5,
    random_state: int | None = 0,
    save: bool = False,
    progress: bool = True,
    groups: Any = None,
    failures: list[dict[str, str]] | None = None,
    solver: Solver = "memory",
    batch_size: int | None = None,
    memory_limit: int = 2**30,
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
    groups : str or array-like, optional
        Grouped cross-validation (see :func:`linear_probe`): a metadata key of the store (e.g.
        ``'patient_id'`` captured from DICOM, a site ID) or an (N,) array. Samples of one
        group are never split between training and test folds.
    progress : bool
        Show a progress bar over layers.
    failures : list, optional
        With a list, a layer whose probe cannot run (non-finite features, too few samples
        for the folds asked) is logged, appended there as ``{"layer", "error"}`` and left out
        of the profile; the other layers are probed. Without it the error propagates.
    solver : {'memory', 'streaming', 'auto'}
        ``'streaming'`` probes layers larger than memory (see :func:`linear_probe`): each
        layer is read ``batch_size`` rows at a time and pooled block by block, never whole.
        With an active ``dask.distributed`` client, the blocks are read and pooled on the
        cluster's workers (through :meth:`ActivationStore.to_dask`; they must see the
        store's file), a few blocks ahead of the SGD on the client. ``'auto'``: per layer,
        'memory' when its pooled features fit in ``memory_limit`` (as PCA's ``'auto'``
        decides), else 'streaming'. Each result's ``solver`` says which ran.
    batch_size : int, optional
        Rows read at once when streaming (default: about 64 MiB of raw activations).
    memory_limit : int
        Bytes that ``solver='auto'`` lets a layer's features (and scikit-learn's copies) take.
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
        group_name = None
        if groups is not None:
            if isinstance(groups, str):
                group_name = groups
                if groups in ("label", "labels", "prediction", "predictions"):
                    raise ValueError(f"groups={groups!r}: grouping by the target is not a grouping")
            _, groups = _resolve_target(store, groups)
            if len(groups) != n:
                raise ValueError(f"groups has {len(groups)} values but the store has {n} samples")
        probe_kwargs.setdefault("refit", False)
        if solver not in ("memory", "streaming", "auto"):
            raise ValueError(f"solver={solver!r} is not one of 'memory', 'streaming', 'auto'")
        if solver == "streaming" and probe_kwargs.get("chance") == "permutation":
            # linear_probe says the same, but once per layer, each skipped with failures=[]
            raise ValueError(
                "chance='permutation' refits the probe n_permutations times: not offered with "
                "solver='streaming'; use chance='balanced' (or 'dummy' for regression)"
            )
        results = []
        probed = []
        for name in tqdm(layers, desc="probing layers", disable=not progress):
            try:
                layer_solver: str = solver
                if solver == "auto":
                    layer_solver = _auto_solver(store, name, reduce, memory_limit, probe_kwargs)
                if layer_solver == "streaming":
                    X = _streamed_features(store, name, reduce, batch_size)
                else:
                    X = _layer_features(store, name, reduce)
                results.append(
                    linear_probe(
                        X,
                        y,
                        cv=cv,
                        random_state=random_state,
                        groups=groups,
                        **{**probe_kwargs, "solver": layer_solver},
                    )
                )
            except (ValueError, TypeError, np.linalg.LinAlgError) as err:
                if failures is None:
                    raise
                logger.warning("skipping the probe of %s: %s", name, err)
                failures.append({"layer": name, "error": str(err)})
                continue
            probed.append(name)
            logger.info("probe %s -> %s: %.3f", name, target_name, results[-1].score)
        if not probed:
            raise ValueError(
                "no layer could be probed: "
                + "; ".join(f"{f['layer']}: {f['error']}" for f in failures or [])
            )
        layers = probed
        profile = ProbeProfile(
            layers=layers,
            results=results,
            target=target_name,
            reduce=_reduction_label(reduce),
            groups=group_name or ("array" if groups is not None else None),
        )
        if save:
            store.save_result(
                schema.probe_group(target_name),
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
                    "groups": group_name or ("array" if groups is not None else ""),
                    **_solver_attrs(solver, results, batch_size, probe_kwargs),
                },
            )
        return profile
    finally:
        if owned:
            store.close()
