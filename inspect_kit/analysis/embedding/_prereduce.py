"""PCA before a neighbour-graph method (t-SNE, UMAP): the step they share."""

from __future__ import annotations

import numpy as np

from ..blocks import Features
from ._pca import SOLVERS, PCAEmbedding


class PCAPreReduction:
    """Mixin of :class:`~._base.BaseEmbedding` subclasses with a ``pca_components`` parameter.

    ``fit`` reduces the features to ``pca_components`` principal components first (kept in
    ``pca_`` so ``transform`` projects new samples the same way); None skips it.
    ``pca_solver`` picks the PCA's solver; ``'dask'`` (or ``'auto'`` with an active
    ``dask.distributed`` client and features larger than memory) runs the reading, the
    spatial pooling and the reduction on the cluster, so only the ``(N, pca_components)``
    coordinates come back to the neighbour-graph method.
    """

    pca_components: int | None
    pca_solver: str
    random_state: int | None
    progress: bool
    pca_: PCAEmbedding | None

    def _pre_reduce(self, feats: Features) -> np.ndarray:
        """Features for a neighbour-graph method: PCA to ``pca_components`` first, if asked."""
        p = self.pca_components
        if p is not None and (isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1):
            raise ValueError(f"pca_components must be a positive integer or None, got {p!r}")
        solver = getattr(self, "pca_solver", "auto")
        if solver not in SOLVERS:
            raise ValueError(f"unknown pca_solver={solver!r}; use one of {SOLVERS}")
        if p and feats.n_features > p and feats.n_samples > p:
            self.pca_ = PCAEmbedding(
                n_components=int(p),
                solver=solver,
                random_state=self.random_state,
                metrics=False,
                progress=self.progress,
            ).fit(feats)
            return self.pca_.embedding_
        self.pca_ = None
        return feats.to_numpy()

    def _pre_transform(self, feats: Features) -> np.ndarray:
        pca = getattr(self, "pca_", None)
        if pca is not None:
            reduced: np.ndarray = pca.transform(feats)
            return reduced
        return feats.to_numpy()
