"""Pure computation on stores and arrays: embeddings, feature visualization, weights, latent
probing, linear probes, representation similarity (CKA, RSA) and the caveats that say which
of those results are fragile. Nothing here plots.

Names resolve on first use (PEP 562), so importing a light part (the embedding registry)
does not import torch or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=[
        "caveats",
        "embedding",
        "featurevis",
        "latent",
        "metrics",
        "probes",
        "similarity",
        "trust",
        "weights",
    ],
    submod_attrs={
        "caveats": ["Caveat", "find_caveats"],
        "embedding": ["Embedding", "PCAEmbedding", "TSNEEmbedding", "UMAPEmbedding", "embed"],
        "latent": ["Interpolation", "LatentProbe", "Traversal", "slerp"],
        "metrics": [
            "embedding_quality",
            "knn_accuracy",
            "knn_transfer_accuracy",
            "trustworthiness",
        ],
        "probes": ["ProbeProfile", "ProbeResult", "linear_probe", "probe_profile"],
        "similarity": ["Similarity", "cka"],
        "weights": ["conv_kernels"],
    },
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
