"""What a store records about its model and inputs, so a report can rebuild them.

``inspect-kit capture`` and ``inspect-kit demo`` write the group ``/inputs`` (model factory,
weights file, factory arguments, data source and options, sample shape, class names, value
range); ``inspect-kit report STORE`` reads it back.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from inspect_kit.models.registry import check_json_args
from inspect_kit.store import schema
from inspect_kit.store.trust import checked_record

logger = logging.getLogger(__name__)


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
    store.save_result(schema.INPUTS, {"sample_shape": shape}, attrs)


def read_inputs_record(store: Any) -> dict[str, Any]:
    """The ``/inputs`` record of a store (empty when the store has none)."""
    found = store.load_result(schema.INPUTS)
    if found is None:
        return {}
    # a store is data: shapes and paths it records are checked before anything uses them
    return checked_record(found[1], getattr(store, "path", "the store"))


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


def rebuild_command(store_path: str | Path, record: Mapping[str, Any]) -> str:
    """The ``inspect-kit report`` command that names the recorded model explicitly.

    The recorded factory is shown as it is unless it names a module of Python's standard library
    (never a model), which is replaced by a placeholder.

    Examples
    --------
    >>> rebuild_command("acts.h5", {"model": "mynets:Net", "weights": "best.pt"})
    'inspect-kit report acts.h5 --model mynets:Net --weights best.pt'
    """
    spec = str(record.get("model") or "")
    top = spec.rpartition(":")[0].split(".")[0]
    args = record.get("model_args")
    if not spec or not top or top in sys.stdlib_module_names or top == "builtins":
        spec, args = "PACKAGE.MODULE:FACTORY", None  # its arguments were not a model's either
    parts = ["inspect-kit", "report", str(store_path), "--model", spec]
    weights = record.get("weights")
    parts += ["--weights", str(weights) if weights else "WEIGHTS.pt"]
    if args:
        try:
            parts += ["--model-args", json.dumps(check_json_args(args))]
        except ValueError:
            parts += ["--model-args", "JSON"]
    return shlex.join(parts)


def load_recorded_model(
    record: Mapping[str, Any],
    device: Any,
    expected_sha256: str | None = None,
    store_path: str | Path = "STORE",
) -> nn.Module | None:
    """Rebuild the recorded model from a well-known model zoo; None (with a warning) when it is
    not the captured one.

    A store is data: its record can only name a constructor of a zoo in
    :data:`inspect_kit.models.registry.MODEL_ZOOS` with plain JSON arguments. Any other factory
    (a module of the user's, a ``file.py``) raises :class:`UntrustedModelError` with the command
    that names the model explicitly; nothing named in the store is imported. A factory without a
    weights file (``torchvision.models:resnet18``) initialises at random, so the rebuilt model is
    checked against the store's ``model_sha256``.
    """
    from inspect_kit.capture import state_dict_sha256
    from inspect_kit.models.registry import UntrustedModelError, load_zoo_model

    spec = record.get("model")
    if not spec:
        return None
    weights = record.get("weights")
    if weights is not None and not isinstance(weights, str):
        weights = None
    if weights and not Path(weights).is_file():
        logger.warning(
            "the recorded weights %s are gone; to profile the model run: %s",
            weights,
            rebuild_command(store_path, record),
        )
        return None
    try:
        model = load_zoo_model(
            str(spec), weights=weights, model_args=record.get("model_args"), device=device
        )
    except UntrustedModelError as err:
        raise UntrustedModelError(
            f"{store_path} records the model as {str(spec)!r} ({err}); a store is data and never "
            "chooses code to run, so only models of torchvision.models, timm, "
            "monai.networks.nets and inspect_kit.models are rebuilt from it. Name the model "
            f"yourself if you trust it: {rebuild_command(store_path, record)} "
            "(or add --no-featurevis to skip what needs the model)"
        ) from None
    if expected_sha256 and state_dict_sha256(model) != expected_sha256:
        logger.warning(
            "%s%s does not rebuild the captured model (its weights differ from the store's "
            "sha256 %s): skipping the analyses that need the model; run: %s",
            spec,
            f" with {weights}" if weights else " without a weights file",
            str(expected_sha256)[:12],
            rebuild_command(store_path, record),
        )
        return None
    return model


#: Keyword arguments of :func:`inspect_kit.data.load_mni_patches` a demo record may set.
_DEMO_OPTIONS = (
    "dim",
    "patch",
    "n_per_class",
    "random_state",
    "resolution",
    "purity",
    "intensity_jitter",
    "noise",
)


def load_recorded_inputs(record: Mapping[str, Any]) -> np.ndarray | None:
    """Read the recorded inputs again (the demo's patches, or the user's files), or None.

    Only data: the demo's patches with their recorded JSON options, or a recorded folder /
    ``.npz`` / HDF5 file that still exists and is of a format :func:`load_data` reads. Anything
    else gives None with a warning (pass ``--data``).
    """
    source = record.get("data")
    if not source or not isinstance(source, str):
        return None
    try:
        opts = check_json_args(record.get("data_options"), "recorded data options")
    except ValueError as err:
        logger.warning("%s; pass --data to read the inputs", err)
        return None
    if source == DEMO_DATA:
        from inspect_kit.data import load_mni_patches

        kwargs = {k: v for k, v in opts.items() if k in _DEMO_OPTIONS}
        if "seed" in opts:  # a store made before random_state
            kwargs.setdefault("random_state", opts["seed"])
        # kwargs are Any: no overload of load_mni_patches is chosen, so name the result
        images: np.ndarray = load_mni_patches(**kwargs)[0]
        return images
    from inspect_kit.data.formats import readable_source

    from .options import DataOptions

    why = readable_source(source)
    if why is not None:
        logger.warning("the recorded data %s; pass --data to read the inputs", why)
        return None
    # DataOptions.RECORDED names the options; labels do not change the arrays read back
    kept = {k: v for k, v in opts.items() if k != "labels"}
    return DataOptions.from_record(kept).load(source).to_array()
