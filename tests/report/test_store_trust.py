"""A store is data: nothing in its ``/inputs`` record chooses code to import or call.

A tampered record names a callable that would leave a marker file; the report refuses with the
command to run instead and the marker never appears. Well-known model zoos still rebuild.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from inspect_kit.cli import main
from inspect_kit.models import SmallCNN
from inspect_kit.models.registry import (
    UntrustedModelError,
    check_json_args,
    load_model,
    load_zoo_model,
    zoo_factory,
)
from inspect_kit.store import schema
from inspect_kit.store.results import results_path
from inspect_kit.workflows.records import load_recorded_inputs, load_recorded_model

TINY_ARGS = {"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}


@pytest.fixture
def store(tmp_path, capsys) -> Path:
    """A small store captured through the CLI, so it has a real ``/inputs`` record."""
    x = np.random.default_rng(0).normal(size=(12, 1, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(12) % 2)
    out = tmp_path / "s.h5"
    code = main(
        [
            "capture",
            "inspect_kit.models:SmallCNN",
            "--model-args",
            json.dumps(TINY_ARGS),
            str(tmp_path / "d.npz"),
            "--out",
            str(out),
            "--layers",
            "relu3,fc",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


def _tamper(path: Path, **attrs) -> None:
    with h5py.File(results_path(path), "r+") as f:  # the record lives beside the store
        grp = f[schema.INPUTS]
        for key, value in attrs.items():
            grp.attrs[key] = schema.encode_attr(value)


def _evil_cases(marker: Path, tmp_path: Path) -> list[tuple[str, dict]]:
    evil = tmp_path / "evil.py"
    evil.write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Linear(1, 1)\n"
    )
    return [
        ("subprocess:run", {"args": f"touch {marker}", "shell": True}),
        ("os:system", {"command": f"touch {marker}"}),
        ("builtins:exec", {"source": f"open({str(marker)!r}, 'w')"}),
        (f"{evil}:build", {}),
        ("inspect_kit.models:fit", {}),  # a zoo module, but not a model constructor
        ("torchvision.models:resnet.os.system", {"command": f"touch {marker}"}),
        ("torchvision.models:__builtins__", {}),
        ("timm:resnet18", {"pretrained": True}),  # would fetch weights
        ("torchvision.models:resnet18", {"weights": "DEFAULT"}),
    ]


def test_a_tampered_record_runs_nothing_and_says_what_to_pass(store, tmp_path, capsys):
    marker = tmp_path / "marker"
    for spec, args in _evil_cases(marker, tmp_path):
        _tamper(store, model=spec, model_args=args)
        code = main(["report", str(store), "--out", str(tmp_path / "r.html"), "-q"])
        err = capsys.readouterr().err
        assert code == 1, (spec, err)
        assert not marker.exists(), spec
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        line = lines[0]
        assert line.startswith("inspect-kit report: error: "), line
        assert str(store) in line and "never chooses code to run" in line
        assert f"inspect-kit report {store} --model " in line and "--weights" in line
        assert "\x1b" not in err
        # a standard-library module is never offered as the model to pass
        if spec.split(":")[0] in ("subprocess", "os", "builtins"):
            assert "--model PACKAGE.MODULE:FACTORY" in line and "touch" not in line
    assert not (tmp_path / "r.html").exists()


def test_without_featurevis_the_report_stands_without_the_model(store, tmp_path, capsys):
    marker = tmp_path / "marker"
    _tamper(store, model="os:system", model_args={"command": f"touch {marker}"})
    out = tmp_path / "r.html"
    code = main(
        [
            "report",
            str(store),
            "--out",
            str(out),
            "--methods",
            "pca",
            "--no-featurevis",
            "--no-latent",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert out.exists() and not marker.exists()
    assert "never chooses code to run" in err


def test_recorded_inputs_are_reread_only_from_supported_existing_data(tmp_path, caplog):
    marker = tmp_path / "marker"
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(marker)!r}, 'w')\n")
    assert load_recorded_inputs({"data": str(script)}) is None
    assert load_recorded_inputs({"data": str(tmp_path / "gone")}) is None
    assert load_recorded_inputs({"data": "os:system"}) is None
    assert "pass --data" in caplog.text
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    np.savez(tmp_path / "ok.npz", x=x)
    got = load_recorded_inputs({"data": str(tmp_path / "ok.npz"), "data_options": {"size": None}})
    np.testing.assert_array_equal(got, x)
    # options that are not plain JSON never reach the reader
    assert load_recorded_inputs({"data": str(tmp_path / "ok.npz"), "data_options": [1]}) is None
    assert not marker.exists()


def test_zoo_models_still_rebuild_from_a_record(tmp_path):
    net = load_recorded_model(
        {"model": "torchvision.models:resnet18", "model_args": {"num_classes": 3}}, "cpu"
    )
    assert isinstance(net, torch.nn.Module) and net.fc.out_features == 3 and not net.training
    from inspect_kit.capture import state_dict_sha256

    src = SmallCNN(**{**TINY_ARGS, "random_state": 7})
    torch.save(src.state_dict(), tmp_path / "w.pt")
    record = {
        "model": "inspect_kit.models:SmallCNN",
        "weights": str(tmp_path / "w.pt"),
        "model_args": TINY_ARGS,
    }
    net = load_recorded_model(record, "cpu", expected_sha256=state_dict_sha256(src))
    assert net is not None
    for k, v in net.state_dict().items():
        assert torch.equal(v, src.state_dict()[k]), k
    assert zoo_factory("timm:resnet18")().num_classes == 1000
    assert zoo_factory("monai.networks.nets:DenseNet121").__name__ == "DenseNet121"
    assert zoo_factory("monai.networks.nets:resnet18").__name__ == "resnet18"


@pytest.mark.parametrize(
    "spec",
    [
        "subprocess:run",
        "torchvision:models",
        "torchvision.models:_api",
        "torchvision.models:resnet18.__globals__",
        "inspect_kit.models:fit_classifier",
        "inspect_kit.models.registry:load_model",
        "monai.networks.nets:drop_connect",
        "timm:create_model",
        "timm:no_such_net",
        "evil.py:build",
    ],
)
def test_zoo_factory_refuses_what_is_not_a_zoo_model(spec):
    with pytest.raises(UntrustedModelError):
        zoo_factory(spec)


@pytest.mark.parametrize(
    "args",
    [
        {"x": object()},
        {"x": np.zeros(2)},
        {"x": [1, {"y": float("nan")}]},
        {"x": {1: 2}},
        {"not a name": 1},
        ["num_classes", 3],
    ],
)
def test_model_arguments_must_be_plain_json(args):
    with pytest.raises(ValueError):
        check_json_args(args)
    with pytest.raises(UntrustedModelError):
        load_zoo_model("inspect_kit.models:SmallCNN", model_args=args)


def test_a_user_may_still_name_their_own_code(tmp_path):
    """The user chose that code: ``--model pkg.mod:factory`` or a file keeps working."""
    (tmp_path / "net.py").write_text(
        "import torch\ndef build(width=3):\n    return torch.nn.Conv2d(1, width, 3)\n"
    )
    assert load_model(f"{tmp_path / 'net.py'}:build", model_args={"width": 5}).out_channels == 5
    assert load_model("timm:resnet18", model_args={"num_classes": 4}).num_classes == 4
