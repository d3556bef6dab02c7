"""inspect_kit: understand the structure of trained PyTorch networks.

Capture layer activations into HDF5 stores, embed features (PCA, t-SNE, UMAP), visualise
what units respond to, probe autoencoder latents and any layer linearly, and turn every
result into an interactive Plotly figure.
"""

__version__ = "0.1.0"

import sys as _sys  # noqa: E402

from .analysis import featurevis  # noqa: E402
from .analysis.latent import LatentProbe  # noqa: E402
from .analysis.weights import conv_kernels  # noqa: E402
from .analysis.probes import linear_probe, probe_profile  # noqa: E402
from .capture import capture, list_layers  # noqa: E402
from .store import ActivationStore, StoreError, open_store  # noqa: E402

# `import inspect_kit.featurevis` and `from inspect_kit import featurevis` name one module
_sys.modules[__name__ + ".featurevis"] = featurevis

__all__ = [
    "ActivationStore",
    "LatentProbe",
    "StoreError",
    "__version__",
    "capture",
    "conv_kernels",
    "featurevis",
    "linear_probe",
    "list_layers",
    "open_store",
    "probe_profile",
]
