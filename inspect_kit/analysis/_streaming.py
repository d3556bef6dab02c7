"""Linear probes streamed block by block, for layers larger than memory.

A store layer (or a Dask array) is read one block of rows at a time, never whole, and one
pass serves every cross-validation fold (and the refit on all samples). Statistics are float64
sums around a shift (the first block's mean), split by test fold, so each fold's training
statistics leave its test rows out and lose no precision.

- Classification: a first pass gives each fold's training mean and variance; then each of
  ``epochs`` passes feeds every block, standardised with each fold's statistics, to that
  fold's :class:`sklearn.linear_model.SGDClassifier` (logistic loss) through ``partial_fit``;
  a last pass predicts each fold's test rows (``epochs + 2`` reads in all). Blocks are visited
  in a seeded random order and shuffled inside, so the SGD does not see the store's order.
- Regression: exact. The first pass accumulates each fold's Gram matrix and cross products
  (memory O(cv D^2)); their eigendecomposition gives the ridge solution for every penalty at
  once, and a second pass computes each training row's leave-one-out error (the hat matrix's
  diagonal from the eigenvectors) and each test row's prediction: the penalty RidgeCV would
  pick, and RidgeCV's scores, in two reads.

With an active ``dask.distributed`` client and a Dask source, the blocks (reading and
pooling) are computed on the cluster, a few ahead, while the client fits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import Ridge, SGDClassifier
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ._dask import is_dask_array

logger = logging.getLogger(__name__)

#: above this many features a streamed ridge probe (cv + 1 Gram matrices) is refused
MAX_RIDGE_FEATURES = 4096


class BlockSource:
    """Feature rows ``(N, D)`` read one block at a time.

    Parameters
    ----------
    data : Features, dask.array.Array, store layer view, h5py dataset or ndarray
        A :class:`~inspect_kit.analysis.embedding.Features` is read with its own reduction
        and block size; a Dask array block by block (on the active client, if any); anything
        else array-like is wrapped in ``Features(data, reduce="flatten")``.
    block_rows : int, optional
        Rows per block for array-likes (default: about 64 MiB of raw rows).
    """

    def __init__(self, data: Any, block_rows: int | None = None):
        from inspect_kit.analysis.blocks import Features

        self._dask = None
        self._feats = None
        if is_dask_array(data):
            x = data
            if x.ndim == 1:
                x = x[:, None]
            elif x.ndim > 2:
                x = x.reshape((x.shape[0], -1), merge_chunks=True)
            if block_rows:
                x = x.rechunk({0: int(block_rows)})
            self._dask = x
            self.n_samples, self.n_features = (int(s) for s in x.shape)
            edges = np.concatenate([[0], np.cumsum(x.chunks[0])])
            self.name = getattr(data, "name", "features")
        else:
            feats = data if isinstance(data, Features) else None
            if feats is None:
                feats = Features(data, reduce="flatten", block_rows=block_rows, progress=False)
            elif block_rows:
                feats.block_rows = int(block_rows)
            self._feats = feats
            self.n_samples, self.n_features = int(feats.n_samples), int(feats.n_features)
            edges = np.append(np.arange(0, self.n_samples, feats.block_rows), self.n_samples)
            self.name = feats.name
        self.edges = edges.astype(np.int64)
        self.n_blocks = len(self.edges) - 1

    def read(self, order: Any) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows)`` (float64) for the blocks in ``order``."""
        if self._dask is not None:
            from ._dask import iter_dask_blocks

            for start, rows in iter_dask_blocks(self._dask, list(order)):
                rows = np.asarray(rows, dtype=np.float64)
                if not np.isfinite(rows.sum()):
                    raise ValueError(
                        f"{self.name!r} has non-finite values (NaN or inf) in rows "
                        f"{start}-{start + len(rows) - 1}; probes need finite features"
                    )
                yield start, rows
            return
        assert self._feats is not None
        for i in order:
            start, stop = int(self.edges[i]), int(self.edges[i + 1])
            yield start, np.asarray(self._feats.rows(start, stop), dtype=np.float64)


@dataclass
class StreamFit:
    """What :func:`fit_streaming` hands back to :func:`~inspect_kit.analysis.linear_probe`."""

    fold_scores: np.ndarray
    estimator: Pipeline | None
    n_features: int
    n_blocks: int


def _scaler(mean: np.ndarray, var: np.ndarray, n: int) -> StandardScaler:
    """A fitted StandardScaler from streamed statistics (for the refit pipeline)."""
    scaler = StandardScaler()
    scaler.mean_ = mean
    scaler.var_ = var
    scaler.scale_ = np.where(var > 0, np.sqrt(var), 1.0)
    scaler.n_samples_seen_ = n
    scaler.n_features_in_ = len(mean)
    return scaler


def fit_streaming(
    source: BlockSource,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    task: str,
    *,
    C: float,
    alphas: Any,
    alpha: float | None,
    epochs: int,
    refit: bool,
    random_state: int | None,
    progress: bool,
) -> StreamFit:
    """Cross-validated probe over ``source``; ``y`` is class labels or float targets.

    Classification: SGD, L2 strength ``alpha``, by default ``1 / (C * n_train)`` (the SGD
    form of logistic regression's ``C``). Regression: exact ridge, the penalty chosen among
    ``alphas`` by leave-one-out error inside each training fold, as RidgeCV does.
    """
    n = source.n_samples
    if len(y) != n:
        raise ValueError(f"features have {n} rows but targets have {len(y)}")
    test_fold = np.full(n, -1, dtype=np.int64)
    for f, (_, test) in enumerate(folds):
        test_fold[test] = f
    if (test_fold < 0).any():  # every splitter used partitions the samples
        raise ValueError("the cross-validation folds leave samples out of every test fold")
    if task == "classification":
        if not isinstance(epochs, int | np.integer) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        passes = epochs + 2
    else:
        if source.n_features > MAX_RIDGE_FEATURES:
            raise ValueError(
                f"a streamed ridge probe keeps cv + 1 Gram matrices of {source.n_features}^2 "
                f"features; above {MAX_RIDGE_FEATURES} features pool the maps first "
                "(reduce='mean') or reduce them with PCA"
            )
        passes = 2
    bar = tqdm(
        total=passes * source.n_blocks,
        desc=f"probing {source.name} (streamed)",
        unit="block",
        disable=not progress,
        leave=False,
    )
    try:
        if task == "classification":
            return _fit_sgd(source, y, folds, test_fold, C, alpha, epochs, refit, random_state, bar)
        return _fit_ridge(source, y.astype(np.float64), folds, test_fold, alphas, refit, bar)
    finally:
        bar.close()


def _fold_sums(
    source: BlockSource, test_fold: np.ndarray, n_folds: int, bar: Any, y: np.ndarray | None
) -> dict[str, Any]:
    """One pass: sums (around a shift) of rows, squares, and with ``y`` the Gram matrix and
    cross products, in all and per test fold."""
    d = source.n_features
    shift: np.ndarray | None = None
    acc: dict[str, Any] = {
        "s": np.zeros((n_folds + 1, d)),
        "q": np.zeros((n_folds + 1, d)),
    }
    if y is not None:
        acc["g"] = np.zeros((n_folds + 1, d, d))
        acc["xy"] = np.zeros((n_folds + 1, d))
        acc["sy"] = np.zeros(n_folds + 1)
    for start, rows in source.read(range(source.n_blocks)):
        if shift is None:
            shift = rows.mean(axis=0)
        xs = rows - shift
        del rows
        tf = test_fold[start : start + len(xs)]
        yb = None if y is None else y[start : start + len(xs)]
        # the last slot holds the sums over all rows
        for f, m in [(n_folds, slice(None))] + [(int(f), tf == f) for f in np.unique(tf)]:
            part = xs[m]
            acc["s"][f] += part.sum(axis=0)
            acc["q"][f] += (part * part).sum(axis=0)
            if yb is not None:
                acc["g"][f] += part.T @ part
                acc["xy"][f] += part.T @ yb[m]
                acc["sy"][f] += yb[m].sum()
        bar.update(1)
    assert shift is not None
    acc["shift"] = shift
    acc["n"] = np.append(np.bincount(test_fold, minlength=n_folds), len(test_fold))
    return acc


def _train_part(acc: dict[str, Any], key: str, f: int, n_folds: int) -> Any:
    """The sum over fold ``f``'s training rows (all rows for the refit, ``f == n_folds``)."""
    total = acc[key][n_folds]
    return total if f == n_folds else total - acc[key][f]


def _moments(acc: dict[str, Any], f: int, n_folds: int) -> tuple[float, Any, Any]:
    cnt = float(_train_part(acc, "n", f, n_folds))
    mu = _train_part(acc, "s", f, n_folds) / cnt
    var = np.clip(_train_part(acc, "q", f, n_folds) / cnt - mu * mu, 0.0, None)
    return cnt, mu, var


def _fit_sgd(
    source: BlockSource,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    test_fold: np.ndarray,
    C: float,
    alpha: float | None,
    epochs: int,
    refit: bool,
    random_state: int | None,
    bar: Any,
) -> StreamFit:
    k = len(folds)
    acc = _fold_sums(source, test_fold, k, bar, None)
    models_idx = list(range(k)) + ([k] if refit else [])
    means, variances, scales, counts, models = {}, {}, {}, {}, {}
    classes = np.unique(y)
    for f in models_idx:
        cnt, mu, var = _moments(acc, f, k)
        means[f], variances[f], counts[f] = acc["shift"] + mu, var, int(cnt)
        scales[f] = np.where(var > 0, np.sqrt(var), 1.0)
        seed = None if random_state is None else int(random_state) + f
        a = alpha if alpha is not None else 1.0 / (C * cnt)
        models[f] = SGDClassifier(loss="log_loss", alpha=a, average=True, random_state=seed)

    rng = np.random.default_rng(random_state)
    for _ in range(epochs):  # every block feeds every model its training rows
        for start, rows in source.read(rng.permutation(source.n_blocks)):
            perm = rng.permutation(len(rows))
            rows, idx = rows[perm], start + perm
            tf = test_fold[idx]
            for f in models_idx:
                m = tf != f if f < k else slice(None)
                z = (rows[m] - means[f]) / scales[f]
                if len(z):
                    models[f].partial_fit(z, y[idx][m], classes=classes)
            bar.update(1)

    pred = np.empty(len(y), dtype=y.dtype)
    for start, rows in source.read(range(source.n_blocks)):  # each fold predicts its test rows
        tf = test_fold[start : start + len(rows)]
        for f in np.unique(tf):
            m = tf == f
            pred[start + np.flatnonzero(m)] = models[f].predict((rows[m] - means[f]) / scales[f])
        bar.update(1)
    fold_scores = np.array([balanced_accuracy_score(y[t], pred[t]) for _, t in folds])
    estimator = None
    if refit:
        scaler = _scaler(means[k], variances[k], counts[k])
        estimator = Pipeline([("standardscaler", scaler), ("sgdclassifier", models[k])])
    return StreamFit(fold_scores, estimator, source.n_features, source.n_blocks)


def _fit_ridge(
    source: BlockSource,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    test_fold: np.ndarray,
    alphas: Any,
    refit: bool,
    bar: Any,
) -> StreamFit:
    k = len(folds)
    alphas = np.asarray(alphas, dtype=np.float64)
    acc = _fold_sums(source, test_fold, k, bar, y)
    models_idx = list(range(k)) + ([k] if refit else [])
    fits: dict[int, dict[str, Any]] = {}
    for f in models_idx:
        cnt, mu, var = _moments(acc, f, k)
        sd = np.where(var > 0, np.sqrt(var), 1.0)
        y_mean = _train_part(acc, "sy", f, k) / cnt
        # centred scatter and cross products of the standardised training rows
        scatter = _train_part(acc, "g", f, k) - cnt * np.outer(mu, mu)
        cross = _train_part(acc, "xy", f, k) - cnt * mu * y_mean
        evals, evecs = np.linalg.eigh(scatter / np.outer(sd, sd))
        evals = np.clip(evals, 0.0, None)
        inv = 1.0 / (evals[:, None] + alphas[None, :])  # (D, A)
        coefs = evecs @ ((evecs.T @ (cross / sd))[:, None] * inv)  # (D, A): one per penalty
        fits[f] = dict(
            mean=acc["shift"] + mu, sd=sd, var=var, n=cnt, y_mean=y_mean, evecs=evecs,
            inv=inv, coefs=coefs, loo=np.zeros(len(alphas)),
        )  # fmt: skip
    # pass 2: leave-one-out errors of the training rows, predictions of the test rows
    test_pred = np.zeros((len(y), len(alphas)))
    for start, rows in source.read(range(source.n_blocks)):
        idx = np.arange(start, start + len(rows))
        tf = test_fold[idx]
        for f in models_idx:
            fit = fits[f]
            z = (rows - fit["mean"]) / fit["sd"]
            pred = fit["y_mean"] + z @ fit["coefs"]  # (b, A)
            train = tf != f if f < k else np.ones(len(rows), dtype=bool)
            if train.any():
                q = z[train] @ fit["evecs"]
                hat = 1.0 / fit["n"] + (q * q) @ fit["inv"]  # the intercept is not penalised
                err = (y[idx[train], None] - pred[train]) / (1.0 - hat)
                fit["loo"] += (err * err).sum(axis=0)
            if f < k:
                test_pred[idx[~train]] = pred[~train]
        bar.update(1)
    fold_scores = np.array(
        [
            r2_score(y[test], test_pred[test, int(np.argmin(fits[f]["loo"]))])
            for f, (_, test) in enumerate(folds)
        ]
    )
    estimator = None
    if refit:
        fit = fits[k]
        best = int(np.argmin(fit["loo"]))
        ridge = Ridge(alpha=float(alphas[best]))
        ridge.coef_ = fit["coefs"][:, best].copy()
        ridge.intercept_ = float(fit["y_mean"])
        ridge.n_features_in_ = source.n_features
        scaler = _scaler(fit["mean"], fit["var"], int(fit["n"]))
        estimator = Pipeline([("standardscaler", scaler), ("ridge", ridge)])
    return StreamFit(fold_scores, estimator, source.n_features, source.n_blocks)
