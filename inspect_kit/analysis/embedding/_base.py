"""What every embedding estimator shares: input handling, PCA pre-reduction, quality metrics."""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..._version import __version__
from ..blocks import Features, as_features
from ..metrics import embedding_quality

#: dtypes an array input keeps (scikit-learn's rule: float64 stays float64, the rest float32)
_FLOATS = [np.float64, np.float32]

logger = logging.getLogger(__name__)


def require(module: str, package: str, method: str) -> Any:
    """Import an optional backend, or say which package the method needs."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"method={method!r} needs the {package!r} package, which is not installed: "
            f"pip install {package}"
        ) from err


@functools.cache
def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _is_array_input(X: Any) -> bool:
    """Whether ``X`` is what scikit-learn calls array-like (validated eagerly, in memory).

    Store layer views, h5py datasets and :class:`Features` are read lazily block by block
    instead; everything else (ndarrays, lists, DataFrames, sparse matrices) goes through
    :func:`sklearn.utils.validation.validate_data`.
    """
    if isinstance(X, Features):
        return False
    if isinstance(X, np.ndarray | list | tuple) or hasattr(X, "__dataframe__"):
        return True
    if hasattr(X, "columns") or hasattr(X, "tocsr") or hasattr(X, "format"):
        return True  # DataFrames without the interchange protocol, scipy sparse
    return not (hasattr(X, "shape") and hasattr(X, "__getitem__"))


class BaseEmbedding(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: no types
    """Base class of the embedding estimators (not for direct use).

    Subclasses set ``method`` and implement ``_fit(features) -> coords`` and
    ``_transform(features) -> coords``. ``fit`` records the effective parameters in
    ``params_`` and the quality of the map in ``metrics_``.

    The estimators follow scikit-learn's contract (``check_estimator``): array input is
    validated by :func:`sklearn.utils.validation.validate_data` (sparse, 1-D, NaN/inf and
    too-few-sample inputs are refused with scikit-learn's messages), float64 input gives
    float64 coordinates and anything else float32, and ``set_output(transform="pandas")``
    (or ``"polars"``, or the global ``sklearn.set_config``) returns frames whose columns
    are :meth:`get_feature_names_out` (``pca0``, ``pca1``, ...).
    """

    method: str = ""
    _needs_pre_pca: bool = True
    #: scikit-learn checks the estimator fails by design, each with its reason: pass it to
    #: ``check_estimator(est, expected_failed_checks=est.SKLEARN_EXPECTED_FAILED_CHECKS)``
    SKLEARN_EXPECTED_FAILED_CHECKS: ClassVar[dict[str, str]] = {}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # -- input ---------------------------------------------------------------------------------
    def _features(self, X: Any, *, reset: bool) -> Features:
        reduce = getattr(self, "reduce", "mean")
        if not _is_array_input(X):
            feats = as_features(X, reduce=reduce, progress=self.progress)
            if reset:
                self.n_features_in_ = int(feats.n_features)
            return feats
        min_samples = 2 if reset else 1  # a map needs two points; one can be placed in it
        ndim = np.ndim(X) if isinstance(X, list | tuple) else getattr(X, "ndim", 2)
        if ndim > 2:
            # (N, C, H, W) or (N, C, D, H, W) maps: reduced to (N, D) rows by ``reduce``
            arr = check_array(
                X, allow_nd=True, dtype=_FLOATS, ensure_min_samples=min_samples, input_name="X"
            )
            feats = Features(arr, reduce=reduce, progress=self.progress)
            if reset:
                self.n_features_in_ = int(feats.n_features)
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            return feats
        arr = validate_data(self, X, reset=reset, dtype=_FLOATS, ensure_min_samples=min_samples)
        return Features(arr, reduce=reduce, progress=self.progress)

    # -- public API ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BaseEmbedding:
        """Embed ``X``.

        Parameters
        ----------
        X : array-like (N, ...) or Features
            Activations: an array or DataFrame, a store's layer view (read block by block),
            or :class:`~inspect_kit.analysis.embedding.Features`. Spatial maps are reduced
            with ``reduce``.
        y : array (N,), optional
            Labels, used only to measure kNN accuracy in ``metrics_``.

        Returns
        -------
        self
        """
        self._validate_params_common()
        feats = self._features(X, reset=True)
        if y is not None:
            y = np.asarray(y)
            if len(y) != feats.n_samples:
                raise ValueError(f"y has {len(y)} labels for {feats.n_samples} samples")
        self.n_samples_fit_ = int(feats.n_samples)
        self._check_n_samples(feats.n_samples)
        # backends (scikit-learn's PCA/TSNE) must hand back arrays whatever set_config says
        with config_context(transform_output="default"):
            coords = self._fit(feats)
            self.embedding_ = np.ascontiguousarray(coords, dtype=feats.dtype)
            self.params_ = self._effective_params(feats)
            self.metrics_ = self._quality(feats, y) if self.metrics else {}
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit and return ``embedding_`` (N, n_components): the map itself, not a re-placement."""
        return self.fit(X, y, **fit_params).embedding_

    def transform(self, X: Any) -> Any:
        """Place new samples ``X`` into the fitted map; returns (n, n_components)."""
        check_is_fitted(self, "embedding_")
        feats = self._features(X, reset=False)
        if feats.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {feats.n_features} features after reduce={feats.reduction!r}, but "
                f"{type(self).__name__} is expecting {self.n_features_in_} features as input"
            )
        with config_context(transform_output="default"):
            out = self._transform(feats)
        return np.ascontiguousarray(out, dtype=feats.dtype)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the map's axes: ``['pca0', 'pca1']``, ``['tsne0', 'tsne1']``, ...

        Parameters
        ----------
        input_features : array-like of str, optional
            Ignored except for validation against ``feature_names_in_`` (scikit-learn's rule).

        Returns
        -------
        ndarray of str (n_components,)

        Examples
        --------
        >>> from inspect_kit.analysis.embedding import PCAEmbedding
        >>> X = np.random.default_rng(0).normal(size=(20, 5))
        >>> PCAEmbedding(progress=False).fit(X).get_feature_names_out().tolist()
        ['pca0', 'pca1']
        """
        check_is_fitted(self, "embedding_")
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            known = getattr(self, "feature_names_in_", None)
            if known is not None and not np.array_equal(names, known):
                raise ValueError("input_features is not equal to feature_names_in_")
            if known is None and len(names) != self.n_features_in_:
                raise ValueError(
                    f"input_features should have length equal to number of features "
                    f"({self.n_features_in_}), got {len(names)}"
                )
        k = int(self.embedding_.shape[1])
        return np.asarray([f"{self.method}{i}" for i in range(k)], dtype=object)

    # -- shared pieces -------------------------------------------------------------------------
    def _validate_params_common(self) -> None:
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"n_components must be a positive integer, got {k!r}")
        ms = self.metric_samples
        if not isinstance(ms, int | np.integer) or ms < 0:
            raise ValueError(f"metric_samples must be an integer >= 0, got {ms!r}")

    def _check_n_samples(self, n: int) -> None:
        """Subclasses raise when ``n`` samples are too few for their parameters."""

    def _effective_params(self, feats: Features) -> dict[str, Any]:
        params = {k: v for k, v in self.get_params().items() if k != "progress"}
        if callable(params.get("reduce")):
            params["reduce"] = feats.reduction
        params.update(
            method=self.method,
            features=feats.describe(),
            versions={
                "inspect_kit": __version__,
                **self._backend_versions(),
            },
        )
        if self._needs_pre_pca:
            pca = getattr(self, "pca_", None)
            params["pre_pca"] = (
                None
                if pca is None
                else {
                    "n_components": int(pca.n_components),
                    "solver": pca.solver_,
                    "explained_variance": float(pca.explained_variance_ratio_.sum()),
                }
            )
        return params

    def _backend_versions(self) -> dict[str, str | None]:
        return {"scikit-learn": package_version("scikit-learn")}

    def _quality(self, feats: Features, y: np.ndarray | None) -> dict[str, Any]:
        n = feats.n_samples
        m = min(n, int(self.metric_samples))
        if m < 4:
            return {}
        rng = np.random.default_rng(self.random_state)
        subset = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        X = feats.take(subset)
        ys = None if y is None else np.asarray(y)[subset]
        out: dict[str, Any] = embedding_quality(
            X, self.embedding_[subset], ys, n_neighbors=self.metric_neighbors
        )
        out["space"] = f"{feats.reduction}-reduced features ({feats.n_features}-d)"
        return out
