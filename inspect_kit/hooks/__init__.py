"""The user's model: the layer-spec grammar, the one hook engine, device and state helpers.

Shared by capture and by the analyses that need a live model (feature visualization, its
sanity check, latent probing), so that none of them imports another's internals.
"""

from .engine import Captured, LayerRecorder, StopForward, flatten_output, select_outputs
from .layers import list_layers, resolve_layers, unknown_layer_error
from .spec import LayerSpec, glob_regex, is_glob, parse_layer_spec
from .state import model_device, model_state_preserved, on_device

__all__ = [
    "Captured",
    "LayerRecorder",
    "LayerSpec",
    "StopForward",
    "flatten_output",
    "glob_regex",
    "is_glob",
    "list_layers",
    "model_device",
    "model_state_preserved",
    "on_device",
    "parse_layer_spec",
    "resolve_layers",
    "select_outputs",
    "unknown_layer_error",
]
