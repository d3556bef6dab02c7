"""Models and weights as users have them: timm and MONAI by name, safetensors weights.

Each zoo model is checked against independent forward hooks written here, on real data
(sklearn digits for timm, MNI152 cubes for MONAI's 3D DenseNet121 with one input channel).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import inspect_kit
from inspect_kit.models import SmallCNN
from inspect_kit.models.registry import load_model, load_weights

from ..numeric import assert_close


def _hooked(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, np.ndarray]:
    """Activations through plain forward hooks (the oracle), model in eval mode."""
    got: dict[str, np.ndarray] = {}
    modules = dict(model.named_modules())

    def keep(name: str):
        def hook(_module, _inputs, out):
            got.setdefault(name, out.detach().numpy().copy())  # returns None: output unchanged

        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return got


def test_timm_model_by_name_captured_like_independent_hooks(tmp_path, digits):
    pytest.importorskip("timm")
    model = load_model("timm:resnet10t", model_args={"num_classes": 10, "in_chans": 1})
    assert type(model).__module__.startswith("timm.")
    x = torch.from_numpy(digits.X_test[:12])
    x = torch.nn.functional.interpolate(x, size=32, mode="bilinear")  # timm's stem wants >16 px
    layers = ["layer1", "layer4", "fc"]
    store = inspect_kit.capture(
        model, x, layers, tmp_path / "timm.h5", batch_size=12, progress=False
    )
    ref = _hooked(model, x, layers)
    with store:
        for name in layers:
            assert_close(store[name][:], ref[name])
    # the CLI names the same model the same way
    from inspect_kit.cli import main

    assert main(["-q", "layers", "timm:resnet10t", "--types", "Conv2d", "--json"]) == 0


def test_monai_densenet121_3d_one_channel(tmp_path, mni3d):
    pytest.importorskip("monai")
    spec = "monai.networks.nets:DenseNet121"
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3}
    model = load_model(spec, model_args=args)
    x = torch.from_numpy(mni3d.X_test[:4])  # (4, 1, 12, 12, 12) real MNI152 cubes
    x = torch.nn.functional.interpolate(x, size=32, mode="trilinear")
    store = inspect_kit.capture(
        model, x, "features.denseblock*", tmp_path / "monai.h5", reduce="mean", progress=False
    )
    blocks = [f"features.denseblock{i}" for i in range(1, 5)]
    with store:
        assert store.layers == blocks  # the glob stays within one dotted name
        ref = _hooked(model, x, blocks)
        for name in blocks:
            assert_close(store[name][:], ref[name].mean(axis=(2, 3, 4)))


def test_safetensors_weights_round_trip(tmp_path, digits_cnn, digits):
    from safetensors.torch import save_file, save_model

    path = tmp_path / "net.safetensors"
    save_file({k: v.contiguous() for k, v in digits_cnn.state_dict().items()}, str(path))
    fresh = SmallCNN(n_classes=10, random_state=123)
    load_weights(fresh, path)
    x = torch.from_numpy(digits.X_test[:32])
    with torch.no_grad():
        np.testing.assert_array_equal(fresh.eval()(x).numpy(), digits_cnn(x).numpy())
    # a file without the suffix is recognised by its header
    renamed = tmp_path / "net.bin"
    renamed.write_bytes(path.read_bytes())
    load_weights(SmallCNN(n_classes=10, random_state=5), renamed)

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(4, 4, bias=False)
            self.head = nn.Linear(4, 4, bias=False)
            self.head.weight = self.embed.weight  # tied: safetensors stores it once

    src = Tied()
    save_model(src, str(tmp_path / "tied.safetensors"))
    dst = load_weights(Tied(), tmp_path / "tied.safetensors")
    assert torch.equal(dst.head.weight, src.embed.weight)

    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="broken.safetensors"):
        load_weights(SmallCNN(n_classes=10), bad)


def test_cli_capture_with_safetensors_weights(tmp_path, digits_cnn, digits, capsys):
    from safetensors.torch import save_file

    from inspect_kit.cli import main

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in digits_cnn.state_dict().items()}, str(weights))
    data = tmp_path / "d.npz"
    np.savez(data, x=digits.X_test[:20], y=digits.y_test[:20])
    code = main(
        [
            "capture",
            "inspect_kit.models:SmallCNN",
            str(data),
            "--weights",
            str(weights),
            "--model-args",
            json.dumps({"n_classes": 10}),
            "--layers",
            "fc",
            "--out",
            str(tmp_path / "s.h5"),
            "-q",
            "--json",
        ]
    )
    assert code == 0
    with inspect_kit.open_store(tmp_path / "s.h5") as store:
        with torch.no_grad():
            expected = digits_cnn(torch.from_numpy(digits.X_test[:20])).numpy()
        assert_close(store["fc"][:], expected)
