"""Rebuilding a model named in a store never reaches the network (issue 23, finding 1).

An audit hook of the test's own (independent of the package's guard) records every socket
connection and name lookup; every zoo factory the registry accepts is enumerated:

* torchvision: every builder of ``list_models()`` is built through the registry's resolved
  arguments, on the meta device (no memory, no time spent on weights), except the regnets,
  which cannot build on it: their only fetching argument, ``weights``, is checked to be None;
* MONAI: every accepted class and function has its resolved arguments checked, and the four
  that download by default (EfficientNetBN, ResNetFeatures, MILModel, TorchVisionFCModel with
  ``model_name="get_model"``) are built for real in tiny configurations;
* timm: every model name's resolved arguments are checked (``pretrained=False`` is the only
  way timm downloads; building 1,300 models would take minutes);
* inspect_kit.models: resolved arguments checked.
"""

from __future__ import annotations

import inspect
import socket
import sys

import pytest
import torch

from inspect_kit.models import registry
from inspect_kit.models.registry import (
    MODEL_ZOOS,
    UntrustedModelError,
    load_zoo_model,
    offline_kwargs,
    zoo_factory,
)
from inspect_kit.store.trust import NetworkRefusedError, offline
from inspect_kit.workflows.records import load_recorded_model

_EVENTS: list[tuple[str, object]] = []
_WATCHING = [False]


def _hook(event: str, args: tuple) -> None:
    if _WATCHING[0] and event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        _EVENTS.append((event, args[:2]))


sys.addaudithook(_hook)


@pytest.fixture
def no_sockets():
    _EVENTS.clear()
    _WATCHING[0] = True
    try:
        yield _EVENTS
    finally:
        _WATCHING[0] = False
    assert not _EVENTS, f"network reached: {_EVENTS[:5]}"


def _fetching_params(factory) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in params.items() if registry._fetching(n)}


def _assert_forced_off(spec: str) -> dict:
    factory = zoo_factory(spec)
    kwargs = offline_kwargs(factory, {})
    for name in _fetching_params(factory):
        assert name in kwargs and kwargs[name] in (None, False), (spec, name, kwargs)
    return kwargs


def _monai_names() -> list[str]:
    import monai.networks.nets as nets

    return sorted(
        n for n in dir(nets) if not n.startswith("_") and MODEL_ZOOS["monai.networks.nets"](n)
    )


def test_the_audit_hook_sees_a_lookup(no_sockets):
    """The oracle works: a name lookup is seen (and the package's guard refuses it)."""
    with pytest.raises(NetworkRefusedError):
        with offline("a test"):
            socket.getaddrinfo("download.pytorch.org", 443)
    assert no_sockets and no_sockets[0][0] == "socket.getaddrinfo"
    no_sockets.clear()


def test_every_torchvision_builder_rebuilds_without_the_network(no_sockets):
    import torchvision

    names = torchvision.models.list_models()
    assert len(names) > 100
    checked_only = []
    for name in names:
        spec = f"torchvision.models:{name}"
        kwargs = _assert_forced_off(spec)
        assert kwargs.get("weights", None) is None
        with torch.device("meta"), offline(spec):
            try:
                zoo_factory(spec)(**kwargs)
            except NotImplementedError:  # regnets compute their widths from tensor data
                assert set(_fetching_params(zoo_factory(spec))) == {"weights"}, name
                checked_only.append(name)
    # everything else was built (on the meta device)
    assert all(n.startswith("regnet_") for n in checked_only), checked_only


def test_detection_and_segmentation_builders_named_in_a_record_do_not_download(no_sockets):
    for name in ("fasterrcnn_resnet50_fpn", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"):
        net = load_recorded_model(
            {"model": f"torchvision.models:{name}", "model_args": {"num_classes": 3}}, "cpu"
        )
        assert net is not None and not net.training


def test_every_monai_factory_has_its_weights_forced_off(no_sockets):
    names = _monai_names()
    assert {"EfficientNetBN", "ResNetFeatures", "MILModel", "TorchVisionFCModel"} <= set(names)
    for name in names:
        kwargs = _assert_forced_off(f"monai.networks.nets:{name}")
        if "pretrained" in _fetching_params(zoo_factory(f"monai.networks.nets:{name}")):
            assert kwargs["pretrained"] is False


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("EfficientNetBN", {"model_name": "efficientnet-b0", "spatial_dims": 2, "num_classes": 2}),
        ("ResNetFeatures", {"model_name": "resnet10", "spatial_dims": 2, "in_channels": 1}),
        ("MILModel", {"num_classes": 2}),
        ("TorchVisionFCModel", {"model_name": "get_model", "name": "resnet18", "num_classes": 2}),
        ("TorchVisionFCModel", {"model_name": "resnet18", "num_classes": 2}),
    ],
)
def test_monai_models_that_download_by_default_rebuild_offline(no_sockets, name, args):
    net = load_zoo_model(f"monai.networks.nets:{name}", model_args=args)
    assert isinstance(net, torch.nn.Module)


def test_torchvision_fc_model_must_wrap_a_torchvision_builder():
    with pytest.raises(UntrustedModelError, match="not a torchvision model builder"):
        load_zoo_model(
            "monai.networks.nets:TorchVisionFCModel",
            model_args={"model_name": "get_model", "name": "os"},
        )


def test_every_timm_model_has_pretrained_forced_off():
    timm = pytest.importorskip("timm")
    names = timm.list_models()
    assert len(names) > 1000
    for name in names:
        assert _assert_forced_off(f"timm:{name}")["pretrained"] is False


def test_inspect_kit_models_have_nothing_to_fetch():
    import inspect_kit.models as zoo

    for name in zoo.__all__:
        if MODEL_ZOOS["inspect_kit.models"](name) is not None:
            _assert_forced_off(f"inspect_kit.models:{name}")


def test_a_record_asking_for_weights_is_refused_before_anything_is_built():
    with pytest.raises(UntrustedModelError, match="weights_backbone"):
        load_zoo_model(
            "torchvision.models:fasterrcnn_resnet50_fpn",
            model_args={"weights_backbone": "DEFAULT"},
        )
