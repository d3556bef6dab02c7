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

from typing import TYPE_CHECKING

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=[
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
    ],
    submod_attrs={
        "base": [
            "SampleColumns",
            "SampleMatch",
            "check_features",
            "layer_features",
            "match_samples",
            "opened",
            "resolve_layer",
            "resolve_layers",
        ],
        "blocks": ["Features"],
        "caveats": ["Caveat", "find_caveats"],
        "embedding": ["Embedding", "PCAEmbedding", "TSNEEmbedding", "UMAPEmbedding", "embed"],
        "latent": ["Interpolation", "LatentProbe", "Traversal", "slerp"],
        "linear": ["LinearProbe", "StreamingOptions"],
        "metrics": [
            "embedding_quality",
            "knn_accuracy",
            "knn_transfer_accuracy",
            "trustworthiness",
        ],
        "probes": ["ProbeProfile", "ProbeResult", "linear_probe", "probe_profile"],
        "similarity": ["Similarity", "SimilarityOptions"],
        "cka_rsa": ["cka", "hsic", "rdm"],
        "weights": ["conv_kernels"],
    },
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
