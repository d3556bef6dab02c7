"""Embeddings of layer features: PCA, t-SNE and UMAP, with quality metrics and caching.

``embed(store, layer, method)`` is the one-call entry point; the estimators under it follow
scikit-learn (``fit``/``transform``/``fit_transform``, learned attributes end in ``_``). The
methods live in one registry (:mod:`~inspect_kit.analysis.embedding.registry`): a new
method is an estimator and one :func:`register_method` call. Names resolve on first use, so
reading the registry (the command line does) imports no scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .registry import (
    EmbeddingMethod,
    default_methods,
    display_name,
    get_method,
    method_names,
    register_method,
    unregister_method,
)

_LAZY = {
    "Embedding": "._api",
    "embed": "._api",
    "make_estimator": "._api",
    "BaseEmbedding": "._base",
    "Features": "..blocks",
    "reduce_rows": "..blocks",
    "PCAEmbedding": "._pca",
    "TSNEEmbedding": "._tsne",
    "UMAPEmbedding": "._umap",
}

if TYPE_CHECKING:
    from ..blocks import Features, reduce_rows
    from ._api import Embedding, embed, make_estimator
    from ._base import BaseEmbedding
    from ._pca import PCAEmbedding
    from ._tsne import TSNEEmbedding
    from ._umap import UMAPEmbedding


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
