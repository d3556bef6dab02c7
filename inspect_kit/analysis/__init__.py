"""Pure computation on stores and arrays: embeddings, feature visualization, weights, latent
probing, linear probes and representation similarity (CKA, RSA). Nothing here plots."""

from . import featurevis
from .embedding import Embedding, PCAEmbedding, TSNEEmbedding, UMAPEmbedding, embed
from .latent import Interpolation, LatentProbe, Traversal, slerp
from .metrics import embedding_quality, knn_accuracy, knn_transfer_accuracy, trustworthiness
from .probes import ProbeProfile, ProbeResult, linear_probe, probe_profile
from .similarity import Similarity, cka  # not its function: this name stays the module
from .weights import conv_kernels

__all__ = [
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
    "knn_accuracy",
    "knn_transfer_accuracy",
    "linear_probe",
    "probe_profile",
    "slerp",
    "trustworthiness",
]
