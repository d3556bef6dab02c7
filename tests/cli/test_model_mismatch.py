"""`inspect-kit featurevis` checks that the store was captured from the model it is given."""

from __future__ import annotations

import re

import torch
from sklearn.datasets import load_digits

from inspect_kit import capture
from inspect_kit.cli import main
from inspect_kit.models import SmallCNN
from inspect_kit.workflows.records import model_mismatch, record_inputs

ARGS = {"n_classes": 4, "widths": [4, 8, 8], "random_state": 0}


def _setup(tmp_path):
    d = load_digits()
    keep = d.target < 4
    X = torch.tensor(d.images[keep][:60, None] / 16.0, dtype=torch.float32)
    captured = SmallCNN(**ARGS).eval()
    other = SmallCNN(**{**ARGS, "random_state": 1}).eval()
    torch.save(captured.state_dict(), tmp_path / "captured.pt")
    torch.save(other.state_dict(), tmp_path / "other.pt")
    store = capture(
        captured,
        X,
        ["relu2"],
        tmp_path / "s.h5",
        labels=d.target[keep][:60],
        overwrite=True,
        progress=False,
    )
    record_inputs(store, {"sample_shape": [1, 8, 8], "value_range": [0.0, 1.0]})
    assert model_mismatch(captured, store) is None
    assert "sha256" in model_mismatch(other, store)
    store.close()
    return tmp_path / "s.h5"


def _featurevis(tmp_path, weights, out, *extra):
    import json

    return main(
        [
            "featurevis",
            "inspect_kit.models:SmallCNN",
            "--model-args",
            json.dumps(ARGS),
            "--weights",
            str(tmp_path / weights),
            "--layer",
            "relu2",
            "--store",
            str(tmp_path / "s.h5"),
            "--top",
            "2",
            "--steps",
            "4",
            "--exemplars",
            "2",
            "--out",
            str(tmp_path / out),
            "--formats",
            "html",
            "-q",
            *extra,
        ]
    )


def _exemplar_captions(html_path):
    return re.findall(r'"#\d+ \(', html_path.read_text())


def test_featurevis_with_other_weights_warns_and_drops_exemplars(tmp_path, capsys):
    _setup(tmp_path)
    # the CLI logs to stderr, "[inspect-kit] ..."
    capsys.readouterr()
    assert _featurevis(tmp_path, "captured.pt", "same") == 0
    assert "sha256" not in capsys.readouterr().err
    assert len(_exemplar_captions(tmp_path / "same" / "featurevis_relu2.html")) == 4

    assert _featurevis(tmp_path, "other.pt", "other") == 0
    err = capsys.readouterr().err
    assert "the store was captured from weights with sha256" in err
    assert "--ignore-model-mismatch" in err
    assert _exemplar_captions(tmp_path / "other" / "featurevis_relu2.html") == []

    assert _featurevis(tmp_path, "other.pt", "forced", "--ignore-model-mismatch") == 0
    assert "using its exemplars anyway" in capsys.readouterr().err
    assert len(_exemplar_captions(tmp_path / "forced" / "featurevis_relu2.html")) == 4
