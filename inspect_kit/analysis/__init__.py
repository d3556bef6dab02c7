"""Pure computation on stores and arrays: embeddings, feature visualization, weights, latent
probing, linear probes, representation similarity (CKA, RSA) and the caveats that say which
of those results are fragile. Nothing here plots.

Every analysis reads stores through one base (:mod:`.base`: open, resolve layers, match
samples, read blocks, :class:`SampleColumns`) and keeps its results in one cache
(:mod:`.cache`); a new analysis is its maths on top of those two.

Names resolve on first use (PEP 562), so importing a light part (the embedding registry)
does not import torch or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "SampleColumns": ".base",
    "SampleMatch": ".base",
    "check_features": ".base",
    "layer_features": ".base",
    "match_samples": ".base",
    "opened": ".base",
    "resolve_layer": ".base",
    "resolve_layers": ".base",
    "Features": ".blocks",
    "Caveat": ".caveats",
    "find_caveats": ".caveats",
    "Embedding": ".embedding",
    "PCAEmbedding": ".embedding",
    "TSNEEmbedding": ".embedding",
    "UMAPEmbedding": ".embedding",
    "embed": ".embedding",
    "Interpolation": ".latent",
    "LatentProbe": ".latent",
    "Traversal": ".latent",
    "slerp": ".latent",
    "embedding_quality": ".metrics",
    "knn_accuracy": ".metrics",
    "knn_transfer_accuracy": ".metrics",
    "trustworthiness": ".metrics",
    "LinearProbe": ".linear",
    "StreamingOptions": ".linear",
    "ProbeProfile": ".probes",
    "ProbeResult": ".probes",
    "linear_probe": ".probes",
    "probe_profile": ".probes",
    "Similarity": ".similarity",
    "SimilarityOptions": ".similarity",
    "cka": ".cka_rsa",
    "hsic": ".cka_rsa",
    "rdm": ".cka_rsa",
    "conv_kernels": ".weights",
}
_SUBMODULES = (
    "base",
    "blocks",
    "cache",
    "caveats",
    "cka_rsa",
    "embedding",
    "featurevis",
    "latent",
    "linear",
    "metrics",
    "probes",
    "similarity",
    "trust",
    "weights",
)

if TYPE_CHECKING:
    from . import featurevis
    from .base import (
        SampleColumns,
        SampleMatch,
        check_features,
        layer_features,
        match_samples,
        opened,
        resolve_layer,
        resolve_layers,
    )
    from .blocks import Features
    from .caveats import Caveat, find_caveats
    from .cka_rsa import cka, hsic, rdm
    from .embedding import Embedding, PCAEmbedding, TSNEEmbedding, UMAPEmbedding, embed
    from .latent import Interpolation, LatentProbe, Traversal, slerp
    from .linear import LinearProbe, StreamingOptions
    from .metrics import embedding_quality, knn_accuracy, knn_transfer_accuracy, trustworthiness
    from .probes import ProbeProfile, ProbeResult, linear_probe, probe_profile
    from .similarity import Similarity, SimilarityOptions
    from .weights import conv_kernels


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "Caveat",
    "Embedding",
    "Features",
    "Interpolation",
    "LatentProbe",
    "LinearProbe",
    "PCAEmbedding",
    "SampleColumns",
    "SampleMatch",
    "Similarity",
    "SimilarityOptions",
    "StreamingOptions",
    "ProbeProfile",
    "ProbeResult",
    "TSNEEmbedding",
    "Traversal",
    "UMAPEmbedding",
    "check_features",
    "cka",
    "conv_kernels",
    "embed",
    "embedding_quality",
    "featurevis",
    "find_caveats",
    "hsic",
    "knn_accuracy",
    "knn_transfer_accuracy",
    "layer_features",
    "linear_probe",
    "match_samples",
    "opened",
    "probe_profile",
    "rdm",
    "resolve_layer",
    "resolve_layers",
    "slerp",
    "trustworthiness",
]
