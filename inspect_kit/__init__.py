"""inspect_kit: understand the structure of trained PyTorch networks.

Capture layer activations into HDF5 stores, embed features (PCA, t-SNE, UMAP), visualise
what units respond to, probe autoencoder latents and any layer linearly, compare layers and
models (CKA, RSA), and turn every result into an interactive Plotly figure. Submodules with
more: ``inspect_kit.analysis``, ``inspect_kit.figures``, ``inspect_kit.models``,
``inspect_kit.data``, ``inspect_kit.report``.
"""

__version__ = "0.1.0"

import sys as _sys  # noqa: E402

from .analysis import featurevis  # noqa: E402
from .analysis.embedding import Embedding, embed  # noqa: E402
from .analysis.latent import LatentProbe  # noqa: E402
from .analysis.probes import linear_probe, probe_profile  # noqa: E402
from .analysis.similarity import Similarity, cka, similarity  # noqa: E402
from .analysis.weights import conv_kernels  # noqa: E402
from .capture import capture, list_layers  # noqa: E402
from .figures import (  # noqa: E402
    explore,
    export_figure,
    plot_embedding,
    plot_embedding_grid,
    plot_similarity,
    publication_layout,
    save_html,
)
from .report.pipeline import build_report  # noqa: E402
from .store import ActivationStore, StoreError, open_store  # noqa: E402

# `import inspect_kit.featurevis` and `from inspect_kit import featurevis` name one module
_sys.modules[__name__ + ".featurevis"] = featurevis

__all__ = [
    "ActivationStore",
    "Embedding",
    "LatentProbe",
    "Similarity",
    "StoreError",
    "__version__",
    "build_report",
    "capture",
    "cka",
    "conv_kernels",
    "embed",
    "explore",
    "export_figure",
    "featurevis",
    "linear_probe",
    "list_layers",
    "open_store",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_similarity",
    "probe_profile",
    "publication_layout",
    "save_html",
    "similarity",
]
