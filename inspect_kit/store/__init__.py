"""The HDF5 activation store: schema, streaming writer, lazy reader, integrity checks."""

from .reader import ActivationStore, LayerView, open_store
from .schema import SCHEMA_VERSION, StoreError
from .writer import StoreWriteError

__all__ = [
    "ActivationStore",
    "LayerView",
    "open_store",
    "SCHEMA_VERSION",
    "StoreError",
    "StoreWriteError",
]
