"""The capture loop, input streams and reductions.

Layer naming and the hooks live in :mod:`inspect_kit.hooks`; their names are re-exported here
because capture's users reach for them beside :func:`capture`.
"""

from inspect_kit.hooks import (
    LayerRecorder,
    list_layers,
    model_device,
    model_state_preserved,
    on_device,
    resolve_layers,
)

from .loop import WriteOptions, capture, state_dict_sha256

__all__ = [
    "WriteOptions",
    "LayerRecorder",
    "capture",
    "list_layers",
    "model_device",
    "model_state_preserved",
    "on_device",
    "resolve_layers",
    "state_dict_sha256",
]
