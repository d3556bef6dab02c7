"""Load a model named on the command line: ``package.module:factory`` plus a weights file.

A model is named by the callable that builds it: ``torchvision.models:resnet18``,
``inspect_kit.models:SmallCNN``, ``mypackage.nets:build_unet`` or a file of your own,
``path/to/net.py:Net``. Keyword arguments for the factory come as a dict (``--model-args``
on the command line, JSON there), weights from a file saved with ``torch.save`` (a
``state_dict``, or a checkpoint dict holding one under ``state_dict``/``model_state_dict``/
``model``), read with ``torch.load(weights_only=True)`` so that no pickled code runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inspect_kit._names import unknown_name_error

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


def _import_module(name: str) -> Any:
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        mod_name = "_inspect_kit_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise ImportError(
            f"cannot import module {name!r} ({err}); name an installed module "
            "(e.g. torchvision.models) or a file (path/to/net.py)"
        ) from err


def resolve_factory(spec: str) -> Any:
    """The callable named by ``'package.module:factory'`` (or ``'file.py:factory'``).

    Examples
    --------
    >>> resolve_factory("torchvision.models:resnet18").__name__
    'resnet18'
    """
    module_name, sep, attr = str(spec).rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"model {spec!r} is not of the form 'package.module:factory' "
            "(e.g. torchvision.models:resnet18, or path/to/net.py:Net)"
        )
    obj = _import_module(module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise unknown_name_error(
                part, names, kind="attribute", where=module_name, error=AttributeError
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is a {type(obj).__name__}, not a callable that builds a model")
    return obj


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in CHECKPOINT_KEYS:
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return dict(inner)
        keys = ", ".join(map(str, list(obj)[:10]))
        raise ValueError(
            f"{path} holds a dict without a state_dict (keys: {keys}); expected a state_dict or a "
            f"checkpoint with one under {', '.join(CHECKPOINT_KEYS)}"
        )
    raise ValueError(
        f"{path} holds a {type(obj).__name__}, not a state_dict; save weights with "
        "torch.save(model.state_dict(), path)"
    )


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> nn.Module:
    """Load a ``state_dict`` (or a checkpoint holding one) into ``model`` safely.

    ``torch.load(weights_only=True)``: tensors and plain containers only, no pickled code.
    A ``module.`` prefix left by ``DataParallel`` is removed. Mismatched keys are listed.

    Examples
    --------
    >>> load_weights(model, "best.pt")       # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling error names the class it refused
        raise ValueError(
            f"cannot read {path} with torch.load(weights_only=True): {str(err).splitlines()[0]}; "
            "save a state_dict (torch.save(model.state_dict(), path)), not a whole model"
        ) from err
    state = _extract_state_dict(obj, path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape_mismatch = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if shape_mismatch or (strict and (missing or unexpected)):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        if shape_mismatch:
            parts.append(f"shapes differ for {'; '.join(shape_mismatch[:3])}")
        raise ValueError(
            f"weights in {path} do not fit {type(model).__name__}: {'; '.join(parts)}; "
            "check the model name and --model-args"
        )
    model.load_state_dict(state, strict=strict)
    return model


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    strict: bool = True,
) -> nn.Module:
    """Build the model named ``'package.module:factory'``, load its weights, put it in eval mode.

    Parameters
    ----------
    spec : str
        ``'package.module:factory'`` or ``'path/to/file.py:factory'``; the factory is any
        callable returning an ``nn.Module`` (a class or a function).
    weights : str or Path, optional
        A ``state_dict`` file (see :func:`load_weights`). Without it the factory's own
        initialisation stands (torchvision factories default to random weights).
    model_args : dict, optional
        Keyword arguments for the factory.
    device : str or torch.device, optional
        Where to put the model (default: where the factory left it).
    strict : bool
        Require the weights to match every parameter and buffer.

    Returns
    -------
    nn.Module
        In eval mode.

    Examples
    --------
    >>> net = load_model("torchvision.models:resnet18", model_args={"num_classes": 3})
    >>> net.fc.out_features
    3
    """
    factory = resolve_factory(spec)
    kwargs = dict(model_args or {})
    try:
        model = factory(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"{spec}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: {err}"
        ) from err
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_weights(model, weights, strict=strict)
    if device is not None:
        model.to(device)
    model.eval()
    logger.info("loaded %s (%s)", spec, type(model).__name__)
    return model
