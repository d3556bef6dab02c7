"""What every embedding estimator shares: input handling, PCA pre-reduction, quality metrics."""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..metrics import embedding_quality
from ._features import Features, as_features

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


class BaseEmbedding(BaseEstimator):
    """Base class of the embedding estimators (not for direct use).

    Subclasses set ``method`` and implement ``_fit(features) -> coords`` and
    ``_transform(features) -> coords``. ``fit`` records the effective parameters in
    ``params_`` and the quality of the map in ``metrics_``.
    """

    method: str = ""
    _needs_pre_pca: bool = True

    # -- public API ----------------------------------------------------------------------------
    def fit(self, X: Any, y: np.ndarray | None = None) -> BaseEmbedding:
        """Embed ``X``.

        Parameters
        ----------
        X : array-like (N, ...) or Features
            Activations: an array, a store's layer view (read block by block), or
            :class:`~inspect_kit.analysis.embedding.Features`. Spatial maps are reduced with
            ``reduce``.
        y : array (N,), optional
            Labels, used only to measure kNN accuracy in ``metrics_``.

        Returns
        -------
        self
        """
        self._validate_params_common()
        feats = as_features(X, reduce=getattr(self, "reduce", "mean"), progress=self.progress)
        if y is not None and len(y) != feats.n_samples:
            raise ValueError(f"y has {len(y)} labels for {feats.n_samples} samples")
        self.n_features_in_ = int(feats.n_features)
        self.n_samples_fit_ = int(feats.n_samples)
        self._check_n_samples(feats.n_samples)
        coords = self._fit(feats)
        self.embedding_ = np.ascontiguousarray(coords, dtype=np.float32)
        self.params_ = self._effective_params(feats)
        self.metrics_ = self._quality(feats, y) if self.metrics else {}
        return self

    def fit_transform(self, X: Any, y: np.ndarray | None = None) -> np.ndarray:
        """Fit and return ``embedding_`` (N, n_components)."""
        return self.fit(X, y).embedding_

    def transform(self, X: Any) -> np.ndarray:
        """Place new samples ``X`` into the fitted map; returns (n, n_components) float32."""
        if not hasattr(self, "embedding_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")
        feats = as_features(X, reduce=getattr(self, "reduce", "mean"), progress=self.progress)
        if feats.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {feats.n_features} features after reduce={feats.reduction!r}, but the "
                f"map was fitted on {self.n_features_in_}"
            )
        return np.ascontiguousarray(self._transform(feats), dtype=np.float32)

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
                "inspect_kit": package_version("inspect-kit"),
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
        out = embedding_quality(X, self.embedding_[subset], ys, n_neighbors=self.metric_neighbors)
        out["space"] = f"{feats.reduction}-reduced features ({feats.n_features}-d)"
        return out
