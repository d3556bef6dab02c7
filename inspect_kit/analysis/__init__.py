"""Pure computation on stores and arrays: embeddings, feature visualization, weights, latent
probing, linear probes, representation similarity (CKA, RSA) and the caveats that say which
of those results are fragile. Nothing here plots.

Names resolve on first use (PEP 562), so importing a light part (the embedding registry)
does not import torch or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
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
    "ProbeProfile": ".probes",
    "ProbeResult": ".probes",
    "linear_probe": ".probes",
    "probe_profile": ".probes",
    "Similarity": ".similarity",
    "cka": ".similarity",
    "conv_kernels": ".weights",
}
_SUBMODULES = (
    "caveats",
    "embedding",
    "featurevis",
    "latent",
    "metrics",
    "probes",
    "similarity",
    "trust",
    "weights",
)

if TYPE_CHECKING:
    from . import featurevis
    from .caveats import Caveat, find_caveats
    from .embedding import Embedding, PCAEmbedding, TSNEEmbedding, UMAPEmbedding, embed
    from .latent import Interpolation, LatentProbe, Traversal, slerp
    from .metrics import embedding_quality, knn_accuracy, knn_transfer_accuracy, trustworthiness
    from .probes import ProbeProfile, ProbeResult, linear_probe, probe_profile
    from .similarity import Similarity, cka
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
    "Interpolation",
    "LatentProbe",
    "PCAEmbedding",
    "Similarity",
    "ProbeProfile",
    "ProbeResult",
    "TSNEEmbedding",
    "Traversal",
    "UMAPEmbedding",
    "cka",
    "conv_kernels",
    "embed",
    "embedding_quality",
    "featurevis",
    "find_caveats",
    "knn_accuracy",
    "knn_transfer_accuracy",
    "linear_probe",
    "probe_profile",
    "slerp",
    "trustworthiness",
]
