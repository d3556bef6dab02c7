"""Layer naming and selection, hooks, reductions and the capture loop."""

from .hooks import LayerRecorder, model_device, model_state_preserved, on_device
from .layers import list_layers, resolve_layers
from .loop import capture, state_dict_sha256

__all__ = [
    "LayerRecorder",
    "capture",
    "list_layers",
    "model_device",
    "model_state_preserved",
    "on_device",
    "resolve_layers",
    "state_dict_sha256",
]
