"""inspect_kit: understand the structure of trained PyTorch networks.

Capture layer activations into HDF5 stores, embed features (PCA, t-SNE, UMAP), visualise
what units respond to, probe autoencoder latents and any layer linearly, compare layers and
models (CKA, RSA), and turn every result into an interactive Plotly figure. Submodules with
more: ``inspect_kit.analysis``, ``inspect_kit.figures``, ``inspect_kit.models``,
``inspect_kit.data``, ``inspect_kit.report``, ``inspect_kit.workflows``.

Importing the package is light: the names below resolve on first use (PEP 562), so
``import inspect_kit`` and ``inspect-kit --help`` load neither torch nor scikit-learn.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (imported on first access)
_LAZY = {
    "ActivationStore": "inspect_kit.store",
    "StoreError": "inspect_kit.store",
    "open_store": "inspect_kit.store",
    "capture": "inspect_kit.capture",
    "list_layers": "inspect_kit.capture",
    "Embedding": "inspect_kit.analysis.embedding",
    "embed": "inspect_kit.analysis.embedding",
    "LatentProbe": "inspect_kit.analysis.latent",
    "LinearProbe": "inspect_kit.analysis.linear",
    "linear_probe": "inspect_kit.analysis.probes",
    "probe_profile": "inspect_kit.analysis.probes",
    "conv_kernels": "inspect_kit.analysis.weights",
    "Similarity": "inspect_kit.analysis.similarity",
    "SimilarityOptions": "inspect_kit.analysis.similarity",
    "cka": "inspect_kit.analysis.similarity",
    "similarity": "inspect_kit.analysis.similarity",
    "explore": "inspect_kit.workflows.explore",
    "export_figure": "inspect_kit.figures",
    "plot_embedding": "inspect_kit.figures",
    "plot_embedding_grid": "inspect_kit.figures",
    "plot_similarity": "inspect_kit.figures",
    "publication_layout": "inspect_kit.figures",
    "save_html": "inspect_kit.figures",
    "build_report": "inspect_kit.workflows.pipeline",
    # trust metrics of attribution maps (issue 22)
    "data_randomization": "inspect_kit.analysis.trust",
    "deletion_insertion": "inspect_kit.analysis.trust",
    "localization_scores": "inspect_kit.analysis.trust",
    "max_sensitivity": "inspect_kit.analysis.trust",
    "model_randomization": "inspect_kit.analysis.trust",
    "road": "inspect_kit.analysis.trust",
    "make_lesion_task": "inspect_kit.data.lesions",
}
# submodules reachable as attributes (`ik.models.SmallCNN`); featurevis is an alias
_SUBMODULES = {
    "analysis": "inspect_kit.analysis",
    "capture": None,  # the function shadows the subpackage, as before
    "cli": "inspect_kit.cli",
    "data": "inspect_kit.data",
    "featurevis": "inspect_kit.featurevis",
    "figures": "inspect_kit.figures",
    "models": "inspect_kit.models",
    "report": "inspect_kit.report",
    "store": "inspect_kit.store",
    "workflows": "inspect_kit.workflows",
}

__all__ = [
    "ActivationStore",
    "Embedding",
    "LatentProbe",
    "LinearProbe",
    "Similarity",
    "SimilarityOptions",
    "StoreError",
    "__version__",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif _SUBMODULES.get(name):
        value = importlib.import_module(str(_SUBMODULES[name]))
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {k for k, v in _SUBMODULES.items() if v})


class _Package(types.ModuleType):
    """The package module: ``inspect_kit.capture`` stays the function once the subpackage of
    the same name is imported (the import system would otherwise bind the subpackage)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "capture" and isinstance(value, types.ModuleType):
            return  # the subpackage stays in sys.modules["inspect_kit.capture"]
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:  # for type checkers and IDEs: the names as they resolve
    from . import analysis, data, figures, models, report, store, workflows  # noqa: F401
    from .analysis import featurevis
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
