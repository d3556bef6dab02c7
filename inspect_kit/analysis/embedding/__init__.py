"""Embeddings of layer features: PCA, t-SNE and UMAP, with quality metrics and caching.

``embed(store, layer, method)`` is the one-call entry point; the estimators under it follow
scikit-learn (``fit``/``transform``/``fit_transform``, learned attributes end in ``_``).
"""

from ._api import Embedding, embed, make_estimator
from ._base import BaseEmbedding
from ._features import Features, reduce_rows
from ._pca import PCAEmbedding
from ._tsne import TSNEEmbedding
from ._umap import UMAPEmbedding

__all__ = [
    "BaseEmbedding",
    "Embedding",
    "Features",
    "PCAEmbedding",
    "TSNEEmbedding",
    "UMAPEmbedding",
    "embed",
    "make_estimator",
    "reduce_rows",
]
