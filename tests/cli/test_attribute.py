"""`inspect-kit attribute MODEL DATA --method ... --target ...`: the capture's model and data
options, maps in the store equal to the library's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inspect_kit.analysis.attribution import attribute, read_attributions
from inspect_kit.cli import main
from inspect_kit.models import SmallCNN

TINY_ARGS = {"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}
TINY = ["inspect_kit.models:SmallCNN", "--model-args", json.dumps(TINY_ARGS)]


def test_attribute_command_writes_the_library_maps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 16, 16)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = tmp_path / "attr.h5"
    code = main(
        [
            "attribute",
            *TINY,
            f"{tmp_path / 'd.npz'}:x",
            "--labels",
            f"{tmp_path / 'd.npz'}:y",
            "--method",
            "gradcam",
            "integrated-gradients",
            "occlusion",
            "--target",
            "label",
            "--steps",
            "8",
            "--occlusion-window",
            "4",
            "4",
            "--out",
            str(out),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "attribution maps written to" in captured.out and "gradcam" in captured.out
    got = {a.method: a for a in read_attributions(out)}
    assert set(got) == {"gradcam", "integrated-gradients", "occlusion"}
    net = SmallCNN(**TINY_ARGS).eval()
    ref = attribute(
        net,
        torch.from_numpy(x),
        method="integrated-gradients",
        target="label",
        labels=y,
        steps=8,
        progress=False,
    )
    np.testing.assert_allclose(got["integrated-gradients"].maps, ref.maps, rtol=1e-4, atol=1e-7)
    assert got["occlusion"].params["window"] == [4, 4]
    assert got["gradcam"].target_classes.tolist() == y.tolist()


def test_attribute_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from inspect_kit.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["attribute", "--help"])
    out = capsys.readouterr().out
    assert "inspect-kit attribute" in out and "--method" in out and "--target" in out
