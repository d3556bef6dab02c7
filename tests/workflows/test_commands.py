"""The single-step commands called from Python with option objects (the CLI calls them too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspect_kit.store import open_store
from inspect_kit.workflows.commands import (
    capture_user_data,
    embed_layers,
    featurevis_units,
    layer_table,
    probe_layers,
)
from inspect_kit.workflows.options import (
    CaptureOptions,
    DataOptions,
    EmbeddingOptions,
    FeatureVisOptions,
    ModelSource,
    ProbeOptions,
    RunOptions,
)
from inspect_kit.workflows.records import read_inputs_record

DIGITS_ARGS = {"in_channels": 1, "n_classes": 10, "dim": 2}
QUIET = RunOptions(progress=False)


@pytest.fixture(scope="module")
def captured(digits, digits_cnn, tmp_path_factory):
    """The trained digits CNN and its test set, captured through the workflow."""
    root = tmp_path_factory.mktemp("cmd")
    torch.save(digits_cnn.state_dict(), root / "w.pt")
    np.savez(root / "digits.npz", x=digits.X_test, y=digits.y_test)
    model = ModelSource(
        "inspect_kit.models:SmallCNN", weights=root / "w.pt", model_args=DIGITS_ARGS
    )
    path = capture_user_data(
        model,
        root / "digits.npz",
        root / "acts.h5",
        data_options=DataOptions(),
        capture_options=CaptureOptions(layers=("relu3", "fc"), batch_size=100),
        run=QUIET,
    )
    return root, path, model


def test_capture_stores_what_the_model_computes_and_records_how(captured, digits, digits_cnn):
    root, path, model = captured
    with open_store(path) as store:
        assert store.layers == ["relu3", "fc"]
        np.testing.assert_array_equal(store.labels, digits.y_test)
        with torch.no_grad():
            logits = digits_cnn(torch.from_numpy(digits.X_test)).numpy()
        np.testing.assert_allclose(store["fc"][:], logits, rtol=1e-4, atol=1e-4)
        assert store["relu3"].attrs["reduction"] == "mean"  # the CaptureOptions default
        record = read_inputs_record(store)
    assert record["model"] == model.spec and record["weights"] == str((root / "w.pt").resolve())
    assert record["data"] == str((root / "digits.npz").resolve())
    assert list(record["sample_shape"]) == [1, 16, 16]
    assert DataOptions.from_record(record["data_options"]) == DataOptions()
    lo, hi = record["value_range"]
    assert 0.0 <= lo < hi <= 1.0


def test_embed_and_probe_return_the_measured_quality(captured, tmp_path):
    _, path, _ = captured
    rows = embed_layers(
        path, EmbeddingOptions(methods=("pca",)), out=tmp_path, formats=("html",), run=QUIET
    )
    assert [(r["method"], r["layer"]) for r in rows] == [("pca", "relu3"), ("pca", "fc")]
    assert all(0.5 < r["trustworthiness"] <= 1.0 for r in rows)
    assert rows[1]["knn_features"] > 0.85  # the logits of a trained digits CNN
    assert (tmp_path / "embedding_pca.html").is_file()
    table = probe_layers(path, ProbeOptions(cv=3), out=tmp_path, formats=("html",), run=QUIET)
    fc = next(r for r in table if r["layer"] == "fc")
    assert fc["balanced_accuracy"] > 0.85 and fc["chance"] == pytest.approx(0.1, abs=0.02)
    assert (tmp_path / "probe_profile_label.html").is_file()


def test_featurevis_takes_shape_and_range_from_the_store(captured, tmp_path):
    _, path, model = captured
    paths = featurevis_units(
        model,
        FeatureVisOptions(layer="relu3", n_units=2, steps=8, exemplars=2),
        tmp_path,
        store=path,
        formats=("html",),
        run=QUIET,
    )
    assert [p.name for p in paths] == ["featurevis_relu3.html"]
    with pytest.raises(ValueError, match="input shape is unknown"):
        featurevis_units(model, FeatureVisOptions(layer="relu3", steps=1), tmp_path, run=QUIET)


def test_layer_table_shapes_match_a_forward_pass():
    rows, net = layer_table(
        ModelSource("inspect_kit.models:SmallCNN", model_args={"n_classes": 3}),
        types=["Conv2d", "Linear"],
        input_shape=(1, 16, 16),
    )
    seen: dict[str, tuple] = {}

    def record(name):
        def hook(module, inputs, output):
            seen.setdefault(name, tuple(output.shape[1:]))

        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 1, 16, 16))
    finally:
        for h in hooks:
            h.remove()
    assert [r["name"] for r in rows] == ["conv1", "conv2", "conv3", "fc"]
    for r in rows:
        assert r["output"] == str(seen[r["name"]])
        module = dict(net.named_modules())[r["name"]]
        assert r["params"] == sum(p.numel() for p in module.parameters())
