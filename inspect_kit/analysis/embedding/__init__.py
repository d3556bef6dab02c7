"""Embeddings of layer features: PCA, t-SNE and UMAP, with quality metrics and caching.

``embed(store, layer, method)`` is the one-call entry point; the estimators under it follow
scikit-learn (``fit``/``transform``/``fit_transform``, learned attributes end in ``_``). The
methods live in one registry (:mod:`~inspect_kit.analysis.embedding.registry`): a new
method is an estimator and one :func:`register_method` call. Names resolve on first use, so
reading the registry (the command line does) imports no scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

# the block reader is the analysis base's (numpy only), re-exported where embeddings were read
from ..blocks import Features, reduce_rows
from .registry import (
    EmbeddingMethod,
    default_methods,
    display_name,
    get_method,
    method_names,
    register_method,
    unregister_method,
)

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_api": ["Embedding", "embed", "make_estimator"],
        "_base": ["BaseEmbedding"],
        "_pca": ["PCAEmbedding"],
        "_tsne": ["TSNEEmbedding"],
        "_umap": ["UMAPEmbedding"],
    },
)

if TYPE_CHECKING:
    from ._api import Embedding, embed, make_estimator
    from ._base import BaseEmbedding
    from ._pca import PCAEmbedding
    from ._tsne import TSNEEmbedding
    from ._umap import UMAPEmbedding


__all__ = [
    "BaseEmbedding",
    "Embedding",
    "EmbeddingMethod",
    "Features",
    "PCAEmbedding",
    "TSNEEmbedding",
    "UMAPEmbedding",
    "default_methods",
    "display_name",
    "embed",
    "get_method",
    "make_estimator",
    "method_names",
    "reduce_rows",
    "register_method",
    "unregister_method",
]
