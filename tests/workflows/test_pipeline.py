"""The profile report as a list of steps, called from Python (not through the CLI)."""

from __future__ import annotations

import numpy as np
import pytest

import inspect_kit
from inspect_kit.analysis.selection import class_selectivity
from inspect_kit.workflows import (
    EmbeddingOptions,
    FeatureVisOptions,
    ReportOptions,
    RunOptions,
    build_report,
)
from inspect_kit.workflows.report_steps import ReportContext, report_steps, run_steps

LAYERS = ["relu2", "relu3", "fc"]
QUICK = ReportOptions(
    embedding=EmbeddingOptions(methods=("pca",)),
    featurevis=FeatureVisOptions(
        n_units=3, steps=16, sanity=True, sanity_units=2, sanity_steps=8, sanity_stages=2
    ),
    latent=None,
    formats=(),
    run=RunOptions(threads=None, progress=False),
)


@pytest.fixture(scope="module")
def digits_store(digits, digits_cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("wf") / "acts.h5"
    inspect_kit.capture(
        digits_cnn, digits.X_test, LAYERS, path, labels=digits.y_test, progress=False
    ).close()
    return path


def test_report_of_a_trained_model_shows_what_its_steps_computed(
    digits, digits_cnn, digits_store, tmp_path
):
    res = build_report(
        digits_store,
        tmp_path / "report.html",
        model=digits_cnn,
        inputs=digits.X_test,
        class_names=list(digits.class_names),
        options=QUICK,
    )
    assert set(res.summary) == {"embeddings", "featurevis", "probes", "similarity", "attribute"}
    # the probes: the trained digits CNN's logits decode the digit, far above chance
    fc = next(r for r in res.summary["probes"] if r["layer"] == "fc")
    assert fc["score"] > 0.85 and fc["chance"] == pytest.approx(0.1, abs=0.02)
    # the PCA map's kNN accuracy in the fc feature space
    pca_fc = next(r for r in res.summary["embeddings"] if r["layer"] == "fc")
    assert pca_fc["knn_accuracy_features"] > 0.85
    # the units shown are the most class-selective ones of the layer, found independently
    with inspect_kit.open_store(digits_store) as store:
        maps = store["relu3"][:]
        labels = store.labels
    csi = class_selectivity(maps.reshape(len(maps), maps.shape[1], -1).mean(axis=2), labels)
    shown = [r["unit"] for r in res.summary["featurevis"]]
    assert shown == [int(u) for u in np.argsort(-csi, kind="stable")[:3]]
    np.testing.assert_allclose(
        [r["selectivity"] for r in res.summary["featurevis"]], csi[shown], rtol=1e-4
    )
    # sections in the order of report_steps(), and the run-time table covers every computation
    html = res.report.read_text()
    titles = [
        "Model and provenance",
        "Embeddings",
        "Feature visualization",
        "Probe profile",
        "Sanity check: randomised weights",
        "Representation similarity",
        "Where the model looks",
    ]
    positions = [html.index(f">{t}</h2>") for t in titles]
    assert positions == sorted(positions)
    # where the model looks: the default methods, each with its CAM layer (Grad-CAM) and the
    # per-class grids of correct and wrong samples (at most 2 + 2 of each of the 10 digits)
    attr = {r["method"]: r for r in res.summary["attribute"]}
    assert set(attr) == {"gradcam", "integrated-gradients", "occlusion"}
    assert attr["gradcam"]["layer"] and "CAM layer " + attr["gradcam"]["layer"] in html
    assert all(r["flat"] == 0 for r in attr.values())  # a trained model's maps are not flat
    assert 10 <= attr["gradcam"]["samples"] <= 24
    assert html.count("Where the model looks: class ") >= 10
    for step in (
        "embeddings",
        "feature visualization",
        "probe profile",
        "random-weights baseline",
        "layer similarity",
    ):
        assert step in res.timings and f">{step}</td>" in html
    assert res.figures == []  # formats=(): no static export


def test_steps_that_need_a_model_or_inputs_stay_out_without_them(digits_store, tmp_path):
    res = build_report(digits_store, tmp_path / "r.html", options=QUICK)
    assert set(res.summary) == {"embeddings", "probes", "similarity"}
    html = res.report.read_text()
    assert ">Embeddings</h2>" in html and ">Probe profile</h2>" in html
    assert ">Feature visualization</h2>" not in html and "Sanity check" not in html
    assert "feature visualization" not in res.timings


class Recording:
    """A step that records the calls it gets."""

    def __init__(self, key, calls, enabled=True, label=None):
        self.key, self.label, self.calls, self.on = key, label, calls, enabled

    def enabled(self, ctx):
        return self.on

    def compute(self, ctx):
        self.calls.append(("compute", self.key))
        return {"value": self.key, "seen": sorted(ctx.results)}

    def render(self, ctx, result):
        # every step has computed (and been timed) before the first one renders
        self.calls.append(("render", self.key, sorted(ctx.timings)))
        return result["seen"] if self.key != "quiet" else None


def test_run_steps_computes_every_enabled_step_then_renders_them_in_order():
    calls: list = []
    steps = [
        Recording("a", calls, label="step a"),
        Recording("off", calls, enabled=False),
        Recording("quiet", calls),
        Recording("b", calls, label="step b"),
    ]
    ctx = ReportContext(
        store=None,
        store_path=None,
        report=None,
        options=ReportOptions(),
        layers=[],
        record={},
        provenance={},
    )
    run_steps(ctx, steps)
    timed = ["step a", "step b"]
    assert calls == [
        ("compute", "a"),
        ("compute", "quiet"),
        ("compute", "b"),
        ("render", "a", timed),
        ("render", "quiet", timed),
        ("render", "b", timed),
    ]
    assert set(ctx.timings) == {"step a", "step b", "report"}  # rendering is timed as "report"
    assert ctx.results["b"]["seen"] == ["a", "quiet"]  # a step reads the earlier results
    assert ctx.summary == {"a": [], "b": ["a", "quiet"]}  # None summaries are left out


def test_the_report_is_the_list_of_steps():
    keys = [s.key for s in report_steps()]
    assert keys == [
        "model",
        "caveats",
        "embeddings",
        "featurevis",
        "latent",
        "probes",
        "sanity",
        "similarity",
        "attribute",
    ]
    for step in report_steps():
        assert callable(step.enabled) and callable(step.compute) and callable(step.render)
