"""Linear probes: how linearly decodable is a property from a set of features?

A probe is a cross-validated linear model (logistic regression for categorical targets, ridge
regression for continuous ones) fitted on standardised features. Its score is only meaningful
next to a chance level, which every result carries: for classification the score is the
*balanced* accuracy (mean per-class recall), whose chance level is exactly ``1 / n_classes``
whatever the class frequencies; for regression it is R², whose chance level is the score of the
training mean on the same folds (<= 0). With ``chance='permutation'`` the chance level is
instead the mean score of the probe refitted on permuted targets, with a p-value.

Samples that are not independent (slices or patches of one patient, images of one site) must
not be split across training and test folds: pass ``groups=`` for grouped cross-validation
(``StratifiedGroupKFold`` for classification, ``GroupKFold`` for regression).

:class:`LinearProbe` is the estimator (scikit-learn's contract); :func:`linear_probe` the
one-call convenience that returns its :class:`ProbeResult`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from inspect_kit._names import unknown_name_error

from ._dask import is_dask_array
from .base import SampleColumns, check_features, is_store, layer_features, opened, resolve_layer
from .blocks import Features
from .probe_results import ProbeResult

logger = logging.getLogger(__name__)

__all__ = ["LinearProbe", "ProbeResult", "StreamingOptions", "linear_probe"]

Task = Literal["auto", "classification", "regression"]
Solver = Literal["auto", "memory", "streaming"]
Chance = Literal["balanced", "dummy", "permutation"]
DEFAULT_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)
_EPOCHS = 5  # SGD passes of a streamed classification probe
_FLOATS = [np.float64, np.float32]


@dataclass(frozen=True)
class StreamingOptions:
    """How a probe is streamed (``solver='streaming'``): rows per block, SGD passes, penalty.

    Attributes
    ----------
    batch_size : int or None
        Rows per block (default: about 64 MiB of rows; a Dask array's chunks).
    epochs : int
        Passes of SGD over the data (classification).
    sgd_alpha : float or None
        L2 strength of the streamed SGD classifier; default ``1 / (C * n_train)``
        (logistic regression's penalty).

    Examples
    --------
    >>> StreamingOptions(batch_size=256).epochs
    5
    """

    batch_size: int | None = None
    epochs: int = _EPOCHS
    sgd_alpha: float | None = None


class LinearProbe(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """Cross-validated linear probe with its chance level, as a scikit-learn estimator.

    Categorical targets get a multinomial logistic regression scored by balanced accuracy
    (mean per-class recall, chance ``1 / n_classes`` whatever the class frequencies),
    continuous ones a ridge regression (penalty chosen among ``alphas`` by efficient
    leave-one-out inside each training fold) scored by R². Features are standardised inside
    the cross-validation pipeline, so no statistics leak from test folds.

    Layers larger than memory are probed with ``solver='streaming'``: the features are read
    block by block (a store layer, a store layer view, an h5py dataset, a
    :class:`~inspect_kit.analysis.blocks.Features` with its reduction, or a
    ``dask.array.Array``, whose blocks compute on the active ``dask.distributed`` client),
    standardised with each training fold's mean and variance from a first streamed pass, and
    fitted by :class:`~sklearn.linear_model.SGDClassifier` (logistic loss, L2 strength
    ``1 / (C * n_train)``) through ``partial_fit`` over ``streaming.epochs`` passes
    (classification), or by an exact ridge regression from streamed Gram matrices with
    RidgeCV's leave-one-out choice of penalty (regression, two passes, up to 4096 features);
    the same folds, groups and chance levels as in memory.

    Parameters
    ----------
    task : {'auto', 'classification', 'regression'}
        ``'auto'``: float targets are continuous, everything else (int, bool, str) categorical.
    cv : int
        Number of (stratified, for classification) shuffled folds.
    C : float
        Inverse L2 strength of the logistic regression.
    alphas : sequence of float
        Candidate ridge penalties.
    chance : {'balanced', 'dummy', 'permutation'}
        How the chance level is measured. ``'balanced'`` and ``'dummy'``: a predictor that
        ignores the features, i.e. ``1 / n_classes`` balanced accuracy (averaged over the
        classes present in each test fold) for classification and the training mean's R² for
        regression. ``'permutation'``: the mean score of the probe refitted on
        ``n_permutations`` seeded permutations of the targets (whole groups' targets are
        permuted together when every group has one target), with a p-value.
    n_permutations : int
        Permutations for ``chance='permutation'``.
    max_iter : int
        Iterations of the logistic solver.
    refit : bool
        Refit the probe on all samples (``estimator_``, what :meth:`predict` uses).
    solver : {'auto', 'memory', 'streaming'}
        ``'memory'``: scikit-learn's LogisticRegression / RidgeCV on all rows in memory.
        ``'streaming'``: SGD over blocks of rows (see above); ``chance='permutation'`` is not
        available with it. ``'auto'``: 'streaming' for a Dask array, else 'memory'.
    streaming : StreamingOptions, optional
        Block size, SGD passes and penalty of a streamed probe.
    layer : str, optional
        The layer to read when ``fit`` is given a store (optional when it holds one).
    reduce : {'mean', 'max', 'flatten'} or callable
        How a store layer's maps become vectors (as in :func:`inspect_kit.embed`).
    n_jobs : int or None
        Parallel folds (scikit-learn semantics).
    random_state : int or None
        Seed of the fold shuffling and of the permutations; recorded in the result.
    progress : bool
        Progress bar over the streamed blocks.

    Attributes
    ----------
    result_ : ProbeResult
        Score, folds, chance level, warnings.
    score_, score_std_, chance_ : float
    fold_scores_ : ndarray (cv,)
    task_ : {'classification', 'regression'}
    classes_ : ndarray or None
        The classes of a classification probe.
    estimator_ : sklearn Pipeline or None
        Scaler + linear model refitted on all samples (``refit=True``).
    n_features_in_ : int
    solver_ : {'memory', 'streaming'}

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 20))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> probe = LinearProbe(cv=5).fit(X, y)
    >>> bool(probe.score_ > probe.chance_ + 0.3), probe.chance_
    (True, 0.5)
    >>> probe.predict(X[:3]).tolist() == y[:3].tolist()
    True
    >>> LinearProbe(layer="fc").fit("acts.h5", "label").score_   # doctest: +SKIP
    """

    #: scikit-learn checks the estimator (with its defaults) fails by design, with the reason:
    #: ``check_estimator(LinearProbe(), expected_failed_checks=...)``; with ``cv=3`` none fails
    SKLEARN_EXPECTED_FAILED_CHECKS: ClassVar[dict[str, str]] = {
        "check_fit2d_1feature": (
            "the check fits 10 samples in 3 classes, too few for cv=5 stratified folds: the "
            "probe refuses (naming the rare classes and the cv that would work) rather than "
            "score folds that lack a class"
        ),
    }

    def __init__(
        self,
        *,
        task: Task = "auto",
        cv: int = 5,
        C: float = 1.0,
        alphas: tuple[float, ...] = DEFAULT_ALPHAS,
        chance: Chance = "balanced",
        n_permutations: int = 100,
        max_iter: int = 2000,
        refit: bool = True,
        solver: Solver = "auto",
        streaming: StreamingOptions | None = None,
        layer: str | None = None,
        reduce: Any = "mean",
        n_jobs: int | None = None,
        random_state: int | None = 0,
        progress: bool = False,
    ):
        self.task = task
        self.cv = cv
        self.C = C
        self.alphas = alphas
        self.chance = chance
        self.n_permutations = n_permutations
        self.max_iter = max_iter
        self.refit = refit
        self.solver = solver
        self.streaming = streaming
        self.layer = layer
        self.reduce = reduce
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.target_tags.required = True
        return tags

    # -- input ---------------------------------------------------------------------------------
    def _matrix(self, X: Any, *, reset: bool) -> np.ndarray:
        """An in-memory (N, D) matrix: maps and tensors flattened, arrays validated."""
        if isinstance(X, Features):
            X = X.to_numpy()
        elif hasattr(X, "detach") or (hasattr(X, "ndim") and X.ndim > 2):
            X = check_features(X, name="features")
        elif not hasattr(X, "shape") and np.ndim(X) > 2:
            X = check_features(X, name="features")
        out: np.ndarray = validate_data(self, X, reset=reset, dtype=_FLOATS)
        return out

    def _source(self, X: Any, solver: str) -> tuple[Any, np.ndarray | None]:
        """``(BlockSource, None)`` when streaming, else ``(None, matrix)``."""
        if solver == "streaming":
            from ._streaming import BlockSource

            opts = self.streaming or StreamingOptions()
            source = BlockSource(X, block_rows=opts.batch_size)
            self.n_features_in_ = int(source.n_features)
            return source, None
        return None, self._matrix(X, reset=True)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = "label", groups: Any = None) -> LinearProbe:
        """Cross-validate the probe of ``y`` from ``X`` (and refit it on all samples).

        Parameters
        ----------
        X : array-like (N, D), store, or block source
            Features (maps and tensors are flattened); with ``solver='streaming'`` also a
            store layer view, an h5py dataset, a ``Features`` or a Dask array; or an
            :class:`~inspect_kit.ActivationStore` (or its path), read at ``layer`` with
            ``reduce``.
        y : array-like (N,) or str
            Targets; with a store also ``'label'``, ``'prediction'`` or a metadata key.
        groups : array-like (N,) or str, optional
            Group of each sample (patient, site, volume ...; with a store also a metadata
            key). Samples of one group are never split between training and test folds, so
            what identifies a group cannot leak into the score. Needs >= ``cv`` groups.

        Returns
        -------
        self
        """
        if isinstance(X, str | os.PathLike) or is_store(X):
            with opened(X) as store:
                return self._fit_store(store, y, groups)
        return self._fit(X, y, groups)

    def _fit_store(self, store: Any, y: Any, groups: Any) -> LinearProbe:
        columns = SampleColumns.from_store(store, read_thumbnails=False)
        if isinstance(y, str):
            y = columns.target(y)[1]
        if isinstance(groups, str):
            groups = columns.target(groups)[1]
        layer = resolve_layer(store, self.layer)
        opts = self.streaming or StreamingOptions()
        feats = layer_features(store, layer, self.reduce, block_rows=opts.batch_size)
        return self._fit(feats, y, groups)

    def _fit(self, X: Any, y: Any, groups: Any) -> LinearProbe:
        solver = self.solver
        if solver not in ("auto", "memory", "streaming"):
            raise ValueError(f"solver={solver!r} is not one of 'auto', 'memory', 'streaming'")
        if solver == "auto":
            solver = "streaming" if is_dask_array(X) else "memory"
        chance = self.chance
        if solver == "streaming" and chance == "permutation":
            raise ValueError(
                "chance='permutation' refits the probe n_permutations times: not offered with "
                "solver='streaming'; use chance='balanced' (or 'dummy' for regression)"
            )
        source, matrix = self._source(X, solver)
        n = int(source.n_samples) if matrix is None else len(matrix)
        y = _targets(y, n)
        cv = self.cv
        if not isinstance(cv, int | np.integer) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
        if n < cv:
            raise ValueError(f"n_samples={n} are too few for cv={cv} folds")
        if chance not in ("balanced", "dummy", "permutation"):
            raise ValueError(f"chance={chance!r} is not one of 'balanced', 'dummy', 'permutation'")
        task = _infer_task(y, self.task)
        group_ids, n_groups = _group_ids(groups, len(y), cv)
        split = _Split.make(task, y, group_ids, cv, self.random_state)
        model: Any = (
            LogisticRegression(C=self.C, max_iter=self.max_iter)
            if task == "classification"
            else RidgeCV(alphas=np.asarray(self.alphas, dtype=float))
        )
        y = split.y
        X_for_split = matrix if matrix is not None else np.zeros((n, 1), dtype=np.float32)
        folds = list(split.splitter.split(X_for_split, y, group_ids))
        notes = _fold_notes(folds, split, cv, len(y))
        pipe = make_pipeline(StandardScaler(), model)
        estimator = None
        if source is not None:
            from ._streaming import fit_streaming

            opts = self.streaming or StreamingOptions()
            fit = fit_streaming(
                source,
                y,
                folds,
                task,
                C=self.C,
                alphas=self.alphas,
                alpha=opts.sgd_alpha,
                epochs=opts.epochs,
                refit=self.refit,
                random_state=self.random_state,
                progress=self.progress,
            )
            fold_scores, estimator = fit.fold_scores, fit.estimator
        else:
            fold_scores = cross_val_score(
                pipe, matrix, y, cv=folds, scoring=split.metric, n_jobs=self.n_jobs
            )
        chance_method, chance_level, p_value, perm_scores = self._chance(
            pipe, X_for_split, y, group_ids, split, folds, fold_scores
        )
        if self.refit and source is None:
            estimator = clone(pipe).fit(matrix, y)
        self.task_ = task
        self.classes_ = split.classes
        self.estimator_ = estimator
        self.solver_ = solver
        self.fold_scores_ = np.asarray(fold_scores, dtype=float)
        self.score_ = float(np.mean(fold_scores))
        self.score_std_ = float(np.std(fold_scores))
        self.chance_ = chance_level
        self.result_ = ProbeResult(
            task=task,
            metric=split.metric,
            score=self.score_,
            score_std=self.score_std_,
            fold_scores=self.fold_scores_,
            chance=chance_level,
            chance_method=chance_method,
            p_value=p_value,
            permutation_scores=perm_scores,
            n_samples=int(n),
            n_features=int(self.n_features_in_),
            n_classes=None if split.classes is None else len(split.classes),
            cv=int(cv),
            random_state=self.random_state,
            estimator=estimator,
            n_groups=n_groups,
            warnings=tuple(notes),
            solver=solver,
        )
        return self

    def _chance(
        self,
        pipe: Pipeline,
        X: np.ndarray,
        y: np.ndarray,
        group_ids: np.ndarray | None,
        split: _Split,
        folds: list[tuple[np.ndarray, np.ndarray]],
        fold_scores: np.ndarray,
    ) -> tuple[str, float, float | None, np.ndarray | None]:
        """``(method, level, p-value, permutation scores)`` of the chance level."""
        if self.chance in ("balanced", "dummy"):
            if split.task == "classification":
                assert split.codes is not None
                # a predictor that ignores the features recalls 1/k of the k classes in a fold
                level = np.mean([1.0 / len(np.unique(split.codes[t])) for _, t in folds])
                return "balanced", float(level), None, None
            dummy = DummyRegressor(strategy="mean")
            scores = cross_val_score(dummy, X, y, cv=folds, scoring=split.metric)
            return "dummy", float(np.mean(scores)), None, None
        if self.n_permutations < 1:
            raise ValueError(f"n_permutations must be >= 1, got {self.n_permutations}")
        perm = _permutation_scores(
            pipe,
            X,
            y,
            group_ids,
            split.splitter,
            split.metric,
            self.n_permutations,
            self.random_state,
            self.n_jobs,
        )
        p_value = float((np.sum(perm >= np.mean(fold_scores)) + 1) / (self.n_permutations + 1))
        return "permutation", float(np.mean(perm)), p_value, perm

    # -- use -----------------------------------------------------------------------------------
    def _fitted_model(self) -> Pipeline:
        check_is_fitted(self, "result_")
        if self.estimator_ is None:
            raise ValueError("this probe was fitted with refit=False: refit=True to predict")
        return self.estimator_

    def predict(self, X: Any) -> np.ndarray:
        """Targets predicted by the probe refitted on all samples (``estimator_``)."""
        model = self._fitted_model()
        out: np.ndarray = model.predict(self._matrix(X, reset=False))
        return out

    def score(self, X: Any, y: Any) -> float:
        """Balanced accuracy (classification) or R² (regression) of :meth:`predict` on X, y."""
        pred = self.predict(X)
        y = np.asarray(y)
        if self.task_ == "classification":
            return float(balanced_accuracy_score(y, pred))
        return float(r2_score(y.astype(np.float64), pred))


@dataclass(frozen=True, eq=False)
class _Split:
    """The folds' splitter and scoring for a task, with the targets as the model sees them."""

    task: str
    splitter: Any
    metric: str
    y: np.ndarray
    classes: np.ndarray | None = None
    codes: np.ndarray | None = None

    @classmethod
    def make(
        cls, task: str, y: np.ndarray, group_ids: np.ndarray | None, cv: int, seed: int | None
    ) -> _Split:
        if task == "classification":
            classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
            if len(classes) < 2:
                raise ValueError(
                    f"a classification probe needs >= 2 classes, got {classes.tolist()}"
                )
            if group_ids is None and counts.min() < cv:
                rare = classes[counts < cv].tolist()
                raise ValueError(
                    f"classes {rare[:10]} have fewer than cv={cv} samples; lower cv to "
                    f"{max(2, int(counts.min()))} or drop those classes"
                )
            kind: Any = StratifiedKFold if group_ids is None else StratifiedGroupKFold
            splitter = kind(n_splits=cv, shuffle=True, random_state=seed)
            return cls(task, splitter, "balanced_accuracy", y, classes, codes)
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("continuous targets contain NaN or infinite values")
        if len(y) < cv:
            raise ValueError(f"{len(y)} samples are too few for cv={cv}")
        kind = KFold if group_ids is None else GroupKFold
        return cls(task, kind(n_splits=cv, shuffle=True, random_state=seed), "r2", y)


def _targets(targets: Any, n: int) -> np.ndarray:
    if targets is None or isinstance(targets, str):
        raise ValueError(
            "LinearProbe requires y to be passed, but the target y is None"
            if targets is None
            else f"y={targets!r} names a store column: pass a store as X, or an array as y"
        )
    if hasattr(targets, "detach"):
        targets = targets.detach().cpu().numpy()
    y = np.asarray(targets)
    if y.ndim != 1:
        y = y.squeeze()
        if y.ndim != 1:
            raise ValueError(f"targets must be 1-D (N,), got shape {np.asarray(targets).shape}")
    if len(y) != n:
        raise ValueError(f"features have {n} rows but targets have {len(y)}")
    if y.dtype == object:
        type_of_target(y, input_name="y", raise_unknown=True)  # mixed types: unknown labels
    return y


def _group_ids(groups: Any, n: int, cv: int) -> tuple[np.ndarray | None, int | None]:
    if groups is None:
        return None, None
    if hasattr(groups, "detach"):
        groups = groups.detach().cpu().numpy()
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must be 1-D with one value per sample ({n}), got shape {g.shape}")
    _, ids = np.unique(g, return_inverse=True)
    n_groups = int(ids.max()) + 1
    if n_groups < cv:
        raise ValueError(
            f"groups has {n_groups} distinct values but cv={cv} grouped folds need at least "
            f"{cv}; lower cv to {max(2, n_groups)} or pass more groups"
        )
    return ids, n_groups


def _fold_notes(
    folds: list[tuple[np.ndarray, np.ndarray]], split: _Split, cv: int, n: int
) -> list[str]:
    """Why the score is fragile: tiny test folds, classes missing from test folds."""
    notes: list[str] = []
    smallest = min(len(test) for _, test in folds)
    if smallest < 10:
        notes.append(
            f"the smallest test fold has {smallest} samples ({n} in all, cv={cv}): "
            "the score moves in large steps and is fragile"
        )
    if split.classes is not None and split.codes is not None:
        k = len(split.classes)
        missing = [i for i, (_, t) in enumerate(folds) if len(np.unique(split.codes[t])) < k]
        if missing:
            notes.append(
                f"{len(missing)} of {cv} test folds lack some of the {k} classes "
                "(too few samples or groups per class for this cv)"
            )
    for note in notes:
        logger.warning("linear probe: %s", note)
    return notes


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


def probe_estimator(**params: Any) -> LinearProbe:
    """A :class:`LinearProbe` from its parameters, or from :class:`StreamingOptions` fields
    (``batch_size``, ``epochs``, ``sgd_alpha``) given as keywords; unknown names raise."""
    stream = {f.name for f in fields(StreamingOptions)}
    shorthand = {k: params.pop(k) for k in list(params) if k in stream}
    valid = list(LinearProbe().get_params())
    for key in params:
        if key not in valid:
            raise unknown_name_error(
                key, [*valid, *stream], kind="parameter", where="linear_probe", error=TypeError
            )
    if shorthand:
        base = params.get("streaming") or StreamingOptions()
        params["streaming"] = replace(base, **shorthand)
    return LinearProbe(**params)


def linear_probe(
    features: Any,
    targets: Any,
    cv: int = 5,
    random_state: int | None = 0,
    *,
    groups: Any = None,
    **params: Any,
) -> ProbeResult:
    """Cross-validated linear probe of ``targets`` from ``features``, with its chance level.

    A thin convenience over :class:`LinearProbe`: ``LinearProbe(cv=cv, ...).fit(features,
    targets, groups).result_``. A 1-D ``features`` is one feature per sample.

    Parameters
    ----------
    features : array-like (N, ...), store layer, Features or Dask array
        As for :meth:`LinearProbe.fit`.
    targets : array-like (N,)
    cv : int
        Number of folds.
    random_state : int or None
        Seed of the folds and permutations; recorded.
    groups : array-like (N,), optional
        Grouped cross-validation (see :meth:`LinearProbe.fit`).
    **params
        Any other :class:`LinearProbe` parameter (``task``, ``C``, ``chance``, ``solver``,
        ``refit`` ...), and :class:`StreamingOptions` fields (``batch_size``, ``epochs``,
        ``sgd_alpha``) as a shorthand for ``streaming=``.

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
    probe = probe_estimator(cv=cv, random_state=random_state, **params)
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    if isinstance(features, np.ndarray | list | tuple) and np.ndim(features) == 1:
        features = np.asarray(features)[:, None]
    result: ProbeResult = probe.fit(features, targets, groups).result_
    return result
