"""inspect_kit: understand the structure of trained PyTorch networks.

Capture layer activations into HDF5 stores, embed features (PCA, t-SNE, UMAP), visualise
what units respond to, probe autoencoder latents and any layer linearly, compare layers and
models (CKA, RSA), and turn every result into an interactive Plotly figure. Submodules with
more: ``inspect_kit.analysis``, ``inspect_kit.figures``, ``inspect_kit.models``,
``inspect_kit.data``, ``inspect_kit.report``, ``inspect_kit.workflows``.

Importing the package is light: the names below resolve on first use (``lazy_loader``), so
``import inspect_kit`` and ``inspect-kit --help`` load neither torch nor scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from ._version import __version__

# the one lazy loader (lazy_loader, as scikit-image and SciPy use): each name below is imported
# on first access; ``capture`` stays the function once the subpackage of that name is imported
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    # submodules reachable as attributes (`ik.models.SmallCNN`); featurevis is an alias
    submodules=["analysis", "cli", "data", "featurevis", "figures", "models", "report"]
    + ["store", "workflows"],
    submod_attrs={
        "store": ["ActivationStore", "StoreError", "open_store"],
        "capture": ["capture", "list_layers"],
        "analysis.embedding": ["Embedding", "embed"],
        "analysis.latent": ["LatentProbe"],
        "analysis.linear": ["LinearProbe"],
        "analysis.probes": ["linear_probe", "probe_profile"],
        "analysis.weights": ["conv_kernels"],
        "analysis.similarity": ["Similarity", "SimilarityOptions", "cka", "similarity"],
        "workflows.explore": ["explore"],
        "figures": [
            "export_figure",
            "plot_embedding",
            "plot_embedding_grid",
            "plot_similarity",
            "publication_layout",
            "save_html",
        ],
        "workflows.pipeline": ["build_report"],
        # attribution maps (issue 21)
        "analysis.attribution": ["Attribution", "Region", "attribute"],
        # trust metrics of attribution maps (issue 22)
        "analysis.trust": [
            "data_randomization",
            "deletion_insertion",
            "localization_scores",
            "max_sensitivity",
            "model_randomization",
            "road",
        ],
        "data.lesions": ["make_lesion_task"],
    },
)

__all__ = [
    "ActivationStore",
    "Attribution",
    "Embedding",
    "LatentProbe",
    "LinearProbe",
    "Region",
    "Similarity",
    "SimilarityOptions",
    "StoreError",
    "__version__",
    "attribute",
    "build_report",
    "capture",
    "cka",
    "conv_kernels",
    "data_randomization",
    "deletion_insertion",
    "embed",
    "explore",
    "export_figure",
    "featurevis",
    "linear_probe",
    "list_layers",
    "localization_scores",
    "make_lesion_task",
    "max_sensitivity",
    "model_randomization",
    "open_store",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_similarity",
    "probe_profile",
    "publication_layout",
    "road",
    "save_html",
    "similarity",
]


if TYPE_CHECKING:  # for type checkers and IDEs: the names as they resolve
    from . import analysis, data, figures, models, report, store, workflows  # noqa: F401
    from .analysis import featurevis
    from .analysis.attribution import Attribution, Region, attribute
    from .analysis.embedding import Embedding, embed
    from .analysis.latent import LatentProbe
    from .analysis.linear import LinearProbe
    from .analysis.probes import linear_probe, probe_profile
    from .analysis.similarity import Similarity, SimilarityOptions, cka, similarity
    from .analysis.trust import (
        data_randomization,
        deletion_insertion,
        localization_scores,
        max_sensitivity,
        model_randomization,
        road,
    )
    from .analysis.weights import conv_kernels
    from .capture import capture, list_layers
    from .data.lesions import make_lesion_task
    from .figures import (
        export_figure,
        plot_embedding,
        plot_embedding_grid,
        plot_similarity,
        publication_layout,
        save_html,
    )
    from .store import ActivationStore, StoreError, open_store
    from .workflows.explore import explore
    from .workflows.pipeline import build_report
