"""inspect_kit: understand the structure of trained PyTorch networks.

Capture layer activations into HDF5 stores, embed features (PCA, t-SNE, UMAP), visualise
what units respond to, probe autoencoder latents and any layer linearly, and turn every
result into an interactive Plotly figure.
"""

__version__ = "0.1.0"

from .analysis.latent import LatentProbe  # noqa: E402
from .analysis.probes import linear_probe, probe_profile  # noqa: E402
from .capture import capture, list_layers  # noqa: E402
from .store import ActivationStore, StoreError, open_store  # noqa: E402

__all__ = [
    "ActivationStore",
    "LatentProbe",
    "StoreError",
    "__version__",
    "capture",
    "linear_probe",
    "list_layers",
    "open_store",
    "probe_profile",
]
