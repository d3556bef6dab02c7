"""What a store records about its model and inputs, so a report can rebuild them.

``inspect-kit capture`` and ``inspect-kit demo`` write the group ``/inputs`` (model factory,
weights file, factory arguments, data source and options, sample shape, class names, value
range); ``inspect-kit report STORE`` reads it back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

logger = logging.getLogger(__name__)


#: Group of the store that records the model and inputs a CLI capture or the demo used.
INPUTS_GROUP = "inputs"
#: How the demo's model and data are named in that record.
DEMO_MODEL = "inspect_kit.models:SmallCNN"
DEMO_DATA = "inspect_kit.data:load_mni_patches"


def value_range_of(x: np.ndarray) -> tuple[float, float]:
    """The 0.1-99.9 percentile range of inputs: the range feature visualization stays in."""
    lo, hi = np.percentile(np.asarray(x, dtype=np.float64), [0.1, 99.9])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def record_inputs(store: Any, record: Mapping[str, Any]) -> None:
    """Write how the store's model and inputs can be rebuilt (``/inputs``)."""
    shape = np.asarray(record.get("sample_shape") or [], dtype=np.int64)
    # attributes cannot hold None: leave missing entries out (read back as absent)
    attrs = {k: v for k, v in record.items() if v is not None}
    store.save_result(INPUTS_GROUP, {"sample_shape": shape}, attrs)


def read_inputs_record(store: Any) -> dict[str, Any]:
    """The ``/inputs`` record of a store (empty when the store has none)."""
    found = store.load_result(INPUTS_GROUP)
    return dict(found[1]) if found is not None else {}


def model_mismatch(model: nn.Module, store: Any) -> str | None:
    """Why ``model`` is not the model ``store`` was captured from, or None.

    Compares the state-dict SHA-256 of ``model`` with the store's ``model_sha256``
    provenance; a store without one cannot be checked (None, logged at info level).

    Examples
    --------
    >>> model_mismatch(net, open_store("acts.h5"))       # doctest: +SKIP
    'the store was captured from weights with sha256 3f2a9c1e0b7d, this model has 9e41...'
    """
    from inspect_kit.capture import state_dict_sha256

    expected = (getattr(store, "provenance", None) or {}).get("model_sha256")
    if not expected:
        logger.info("the store records no model_sha256: its model cannot be checked")
        return None
    actual = state_dict_sha256(model)
    if actual == expected:
        return None
    return (
        f"the store was captured from weights with sha256 {str(expected)[:12]}, this model has "
        f"{actual[:12]}"
    )


def class_names_of(record: Mapping[str, Any]) -> list[str] | None:
    """The class names a record holds, or None."""
    names = record.get("class_names")
    return list(names) if names else None


def load_recorded_model(
    record: Mapping[str, Any], device: Any, expected_sha256: str | None = None
) -> nn.Module | None:
    """Rebuild the recorded model; None (with a warning) when it is not the captured one.

    A factory without a weights file (``torchvision.models:resnet18``) initialises at random,
    so the rebuilt model is checked against the store's ``model_sha256``.
    """
    from inspect_kit.capture import state_dict_sha256
    from inspect_kit.models.registry import load_model

    spec = record.get("model")
    if not spec:
        return None
    weights = record.get("weights")
    if weights and not Path(weights).is_file():
        logger.warning("the recorded weights %s are gone; pass --model and --weights", weights)
        return None
    model = load_model(spec, weights=weights, model_args=record.get("model_args"), device=device)
    if expected_sha256 and state_dict_sha256(model) != expected_sha256:
        logger.warning(
            "%s%s does not rebuild the captured model (its weights differ from the store's "
            "sha256 %s): skipping the analyses that need the model; pass --model and --weights",
            spec,
            f" with {weights}" if weights else " without a weights file",
            str(expected_sha256)[:12],
        )
        return None
    return model


def load_recorded_inputs(record: Mapping[str, Any]) -> np.ndarray | None:
    """Read the recorded inputs again (the demo's patches, or the user's files), or None."""
    source = record.get("data")
    if not source:
        return None
    opts = dict(record.get("data_options") or {})
    if source == DEMO_DATA:
        from inspect_kit.data import load_mni_patches

        return load_mni_patches(**opts)[0]
    from inspect_kit.data.formats import load_data

    keep = (
        "labels",
        "size",
        "channels",
        "window",
        "normalize",
        "orientation",
        "spacing",
        "as_slices",
        "sequences",
        "allow_irregular",
        "skip_unreadable",
        "keep_identifiers",
    )
    return load_data(source, **{k: v for k, v in opts.items() if k in keep}).to_array()
