"""Load a model named on the command line: ``package.module:factory`` plus a weights file.

A model is named by the callable that builds it: ``torchvision.models:resnet18``,
``inspect_kit.models:SmallCNN``, ``mypackage.nets:build_unet`` or a file of your own,
``path/to/net.py:Net``. Keyword arguments for the factory come as a dict (``--model-args``
on the command line, JSON there), weights from a file saved with ``torch.save`` (a
``state_dict``, or a checkpoint dict holding one under ``state_dict``/``model_state_dict``/
``model``), read with ``torch.load(weights_only=True)`` so that no pickled code runs.

Two ways in, with different trust:

* :func:`load_model` is for a model **the user names** (the command line, a notebook): any
  importable ``module:callable`` or ``file.py:callable`` -- the user chose that code.
* :func:`load_zoo_model` is for a model **named in a file** (a store's ``/inputs`` record,
  written by someone else): only a constructor of a well-known model zoo listed in
  :data:`MODEL_ZOOS`, looked up by name inside that zoo, with keyword arguments that are plain
  JSON. Nothing else is imported or called; :class:`UntrustedModelError` says so.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inspect_kit._names import unknown_name_error

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


# -- the model zoos a file may name --------------------------------------------------------------
# This is the one place that decides which code a store's record can lead to. A zoo maps a bare
# name to one of its model constructors, or to None when the name is not one of them; no name is
# ever traversed as a dotted path, and nothing outside these four namespaces is imported.


def _torchvision_factory(name: str) -> Callable[..., Any] | None:
    import torchvision.models as zoo

    if name not in zoo.list_models():  # the builders torchvision registers, nothing else
        return None
    builder: Callable[..., Any] = zoo.get_model_builder(name)
    return builder


def _timm_factory(name: str) -> Callable[..., Any] | None:
    import timm

    if not timm.is_model(name):
        return None

    def build(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        # named, so that a recorded model's pretrained is forced off (offline_kwargs)
        return timm.create_model(name, pretrained=pretrained, **kwargs)

    build.__name__ = name
    return build


def _is_module_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, nn.Module)


def _monai_factory(name: str) -> Callable[..., Any] | None:
    import monai.networks.nets as zoo

    obj = zoo.__dict__.get(name)
    if _is_module_class(obj):
        return obj
    # functions such as resnet18 that declare they return a network
    if inspect.isfunction(obj) and str(obj.__module__).startswith("monai.networks.nets"):
        try:
            returns = typing.get_type_hints(obj).get("return")
        except Exception:  # unresolvable annotations: not a declared model constructor
            return None
        return obj if _is_module_class(returns) else None
    return None


def _inspect_kit_factory(name: str) -> Callable[..., Any] | None:
    import inspect_kit.models as zoo

    obj = zoo.__dict__.get(name) if name in getattr(zoo, "__all__", ()) else None
    return obj if _is_module_class(obj) else None


#: The model zoos a store's record may name, and how a bare name is looked up in each.
MODEL_ZOOS: dict[str, Callable[[str], Callable[..., Any] | None]] = {
    "torchvision.models": _torchvision_factory,
    "timm": _timm_factory,
    "monai.networks.nets": _monai_factory,
    "inspect_kit.models": _inspect_kit_factory,
}

#: Factory arguments that fetch weights from the network or read files: never from a record.
FETCHING_ARGS = frozenset(
    {
        "weights",
        "weights_backbone",
        "pretrained",
        "pretrained_backbone",
        "pretrained_cfg",
        "pretrained_cfg_overlay",
        "checkpoint_path",
        "cache_dir",
        "pretrained_url",
        "path_or_repo_id",
        "filename",
    }
)


def _fetching(name: str) -> bool:
    low = name.lower()
    return name in FETCHING_ARGS or any(w in low for w in ("pretrained", "checkpoint", "url"))


def _off(name: str) -> Any:
    """The value that turns the fetching argument ``name`` off."""
    low = name.lower()
    return False if "pretrained" in low and "cfg" not in low else None


def offline_kwargs(factory: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every parameter of ``factory`` that fetches weights forced off.

    Weights-fetching defaults (torchvision's detection builders' ``weights_backbone``, MONAI's
    ``pretrained=True``) become ``None``/``False``; MONAI's ``TorchVisionFCModel`` gets the
    same for the torchvision builder it wraps (``model_name``, or ``name`` with
    ``model_name="get_model"``), which must be one.

    Examples
    --------
    >>> from torchvision.models.detection import fasterrcnn_resnet50_fpn
    >>> offline_kwargs(fasterrcnn_resnet50_fpn, {"num_classes": 3})
    {'num_classes': 3, 'weights': None, 'weights_backbone': None}
    """
    out = dict(kwargs)
    for name in _fetching_params(factory):
        out[name] = _off(name)
    if getattr(factory, "__name__", "") == "TorchVisionFCModel" and str(
        getattr(factory, "__module__", "")
    ).startswith("monai."):
        inner_name = str(out.get("model_name", "resnet18"))
        if inner_name == "get_model":
            inner_name = str(out.get("name", ""))
        inner = _torchvision_factory(inner_name) if inner_name.isidentifier() else None
        if inner is None:
            raise UntrustedModelError(
                f"TorchVisionFCModel wraps {inner_name!r}, which is not a torchvision model builder"
            )
        for name in _fetching_params(inner):
            if name != "weights":  # TorchVisionFCModel passes its own (forced off above)
                out[name] = _off(name)
    return out


def _fetching_params(factory: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return []
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in params.items() if p.kind in plain and _fetching(n)]


class UntrustedModelError(ValueError):
    """A model named in a file that is not a constructor of a well-known model zoo.

    Examples
    --------
    >>> load_zoo_model("subprocess:run")                      # doctest: +SKIP
    Traceback (most recent call last):
    UntrustedModelError: 'subprocess:run' is not a model of torchvision.models, timm, ...
    """


def _split_spec(spec: str) -> tuple[str, str]:
    module_name, sep, attr = str(spec).rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"model {spec!r} is not of the form 'package.module:factory' "
            "(e.g. torchvision.models:resnet18, or path/to/net.py:Net)"
        )
    return module_name, attr


def zoo_factory(spec: str) -> Callable[..., Any]:
    """The model constructor ``'zoo:name'`` names, for a zoo of :data:`MODEL_ZOOS`.

    Nothing outside those zoos is imported: any other module, a file, a dotted or private name,
    or a name that is not one of the zoo's models raises :class:`UntrustedModelError`.

    Examples
    --------
    >>> zoo_factory("torchvision.models:resnet18").__name__
    'resnet18'
    """
    zoos = ", ".join(MODEL_ZOOS)
    module_name, _, name = str(spec).rpartition(":")
    lookup = MODEL_ZOOS.get(module_name)
    if lookup is None:
        raise UntrustedModelError(f"{spec!r} is not a model of a known model zoo ({zoos})")
    if not name.isidentifier() or name.startswith("_"):
        raise UntrustedModelError(
            f"{spec!r}: {name!r} is not the plain name of a model in {module_name}"
        )
    factory = lookup(name)
    if factory is None:
        raise UntrustedModelError(f"{spec!r}: {module_name} has no model named {name!r}")
    return factory


def check_json_args(args: Any, what: str = "model arguments") -> dict[str, Any]:
    """``args`` as a dict of plain JSON values (str, number, bool, None, lists and dicts of them).

    Anything else -- objects, arrays, non-finite floats, non-string keys -- raises ValueError,
    so arguments read from a file can only ever be data.

    Examples
    --------
    >>> check_json_args({"num_classes": 3, "channels": [16, 32]})
    {'num_classes': 3, 'channels': [16, 32]}
    """
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(args).__name__}")

    def check(value: Any, where: str) -> None:
        if value is None or isinstance(value, bool | int | str):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{what}: {where} is {value}, not a finite number")
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"{what}: {where} has a key {key!r} that is not a string")
                check(item, f"{where}.{key}")
            return
        raise ValueError(
            f"{what}: {where} is a {type(value).__name__}; only plain JSON values are allowed"
        )

    for key, value in args.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{what}: {key!r} is not a keyword argument name")
        check(value, key)
    return dict(args)


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
    module_name, attr = _split_spec(spec)
    if module_name in MODEL_ZOOS:
        try:  # a zoo's own lookup first: timm:resnet18 names timm.create_model("resnet18")
            return zoo_factory(spec)
        except UntrustedModelError:
            pass
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

    ``.safetensors`` files (the format model hubs publish) are read with ``safetensors``;
    anything else with ``torch.load(weights_only=True)``: tensors and plain containers only,
    no pickled code. A ``module.`` prefix left by ``DataParallel`` is removed. Weights that
    ``safetensors`` stored once for tied parameters (shared storage) fill every alias.
    Mismatched keys are listed.

    Examples
    --------
    >>> load_weights(model, "best.pt")                 # doctest: +SKIP
    >>> load_weights(model, "model.safetensors")       # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: dict[str, torch.Tensor] = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # an unpickling error names the class it refused
            raise ValueError(
                f"cannot read {path} with torch.load(weights_only=True): "
                f"{str(err).splitlines()[0]}; save a state_dict "
                "(torch.save(model.state_dict(), path) or safetensors), not a whole model"
            ) from err
        state = _extract_state_dict(obj, path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    own = model.state_dict()
    state = _fill_tied(state, own)
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


def _is_safetensors(path: Path) -> bool:
    """By suffix, or by the format's header (8-byte length, then a JSON object)."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**27


def _fill_tied(state: dict[str, Any], own: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Give tied parameters that a file stored once (safetensors drops aliases) their value."""
    groups: dict[tuple[int, int], list[str]] = {}
    for key, tensor in own.items():
        if tensor.numel():
            groups.setdefault(
                (tensor.untyped_storage().data_ptr(), int(tensor.storage_offset())), []
            ).append(key)
    filled = dict(state)
    for keys in groups.values():
        present = [k for k in keys if k in state]
        if present and len(keys) > 1:
            for k in keys:
                filled.setdefault(k, state[present[0]])
    return filled


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
        initialisation stands (torchvision factories default to random weights), drawn with
        torch seed 0: every call builds the same model.
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
    return _build(resolve_factory(spec), spec, weights, dict(model_args or {}), device, strict)


def load_zoo_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    model_args: Any = None,
    device: str | torch.device | None = None,
    strict: bool = True,
) -> nn.Module:
    """Rebuild a model named in a file (a store's record): zoo constructors and JSON only.

    Like :func:`load_model`, but ``spec`` must name a model of a zoo in :data:`MODEL_ZOOS`
    (``torchvision.models:resnet18``, ``timm:resnet18``, ``monai.networks.nets:DenseNet121``,
    ``inspect_kit.models:SmallCNN``) and ``model_args`` must be plain JSON without arguments
    that fetch or read weights (:data:`FETCHING_ARGS`); weights come only from ``weights``,
    read with ``torch.load(weights_only=True)``. Anything else raises
    :class:`UntrustedModelError` before any code is imported.

    Examples
    --------
    >>> net = load_zoo_model("torchvision.models:resnet18", model_args={"num_classes": 3})
    >>> net.fc.out_features
    3
    """
    factory = zoo_factory(spec)
    try:
        kwargs = check_json_args(model_args)
    except ValueError as err:
        raise UntrustedModelError(str(err)) from None
    fetching = sorted(k for k in kwargs if _fetching(k))
    if fetching:
        raise UntrustedModelError(
            f"model arguments {', '.join(fetching)} would fetch or read weights; a recorded "
            "model takes its weights only from its weights file"
        )
    from inspect_kit.store.trust import NetworkRefusedError, offline

    kwargs = offline_kwargs(factory, kwargs)
    try:
        with offline(f"rebuilding the recorded model {spec}"):
            return _build(factory, spec, weights, kwargs, device, strict)
    except NetworkRefusedError as err:
        raise UntrustedModelError(str(err)) from None


def _build(
    factory: Callable[..., Any],
    spec: str,
    weights: str | Path | None,
    kwargs: dict[str, Any],
    device: str | torch.device | None,
    strict: bool,
) -> nn.Module:
    try:
        if weights is None:
            # No weights: the factory's random initialisation stands. It is drawn from a fixed
            # seed, so capture, featurevis and report build the same model (same model_sha256)
            # and a store's exemplars describe it; the global RNG is left as it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = factory(**kwargs)
        else:
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
