"""The HDF5 activation store: schema, streaming writer, lazy reader."""

from .reader import ActivationStore, LayerView, open_store
from .schema import SCHEMA_VERSION, StoreError

__all__ = ["ActivationStore", "LayerView", "open_store", "SCHEMA_VERSION", "StoreError"]
