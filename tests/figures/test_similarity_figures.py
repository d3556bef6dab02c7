"""The similarity heatmap: values, readable long names, colorbar, publication template, export."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from inspect_kit.analysis.similarity import Similarity
from inspect_kit.figures import publication_layout
from inspect_kit.figures.export import FigureExporter
from inspect_kit.figures.similarity import plot_similarity, short_labels

LONG = [
    "encoder.layers.0.attention.output.dense",
    "encoder.layers.1.attention.output.dense",
    "encoder.layers.1.mlp.fc2",
    "pooler",
]


def _sim(other: str | None = None) -> Similarity:
    rng = np.random.default_rng(0)
    m = rng.uniform(0.2, 0.9, size=(4, 3))
    m[0, 0] = np.nan
    return Similarity(
        matrix=m,
        layers=LONG,
        other_layers=["conv1", "layer4.1.conv2", "fc"],
        n_samples=512,
        method="cka",
        params={"kernel": "linear", "debiased": True, "batch_size": 128},
        store="/data/run1.h5",
        other=other,
    )


def test_short_labels_keep_the_tail_and_stay_distinct():
    short = short_labels(LONG, max_length=16)
    assert short[3] == "pooler" and short[2] == "…1.mlp.fc2"
    # '…output.dense' would name two layers: those grow until they differ
    assert short[:2] == ["…0.attention.output.dense", "…1.attention.output.dense"]
    with pytest.raises(ValueError, match="max_length"):
        short_labels(LONG, max_length=2)


def test_heatmap_holds_the_matrix_with_full_names_on_hover():
    sim = _sim(other="/data/run2.h5")
    fig = plot_similarity(sim)
    (heat,) = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z, dtype=float), sim.matrix)
    assert list(heat.x) == [0, 1, 2] and list(heat.y) == [0, 1, 2, 3]  # first layer at the bottom
    assert heat.customdata[1][2][0] == LONG[1] and heat.customdata[1][2][1] == "fc"
    assert "customdata[0]" in heat.hovertemplate and "linear CKA (debiased)" in heat.hovertemplate
    assert heat.colorbar.title.text == "CKA"
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    assert heat.texttemplate == "%{z:.2f}"  # small matrices print their values
    ticks = list(fig.layout.yaxis.ticktext)
    assert ticks[3] == "pooler" and ticks[2] == "…layers.1.mlp.fc2" and len(set(ticks)) == 4
    assert (
        fig.layout.xaxis.title.text == "run2 layer" and fig.layout.yaxis.title.text == "run1 layer"
    )
    assert "run1 vs run2" in fig.layout.title.text and "512 samples" in fig.layout.title.text
    assert fig.layout.yaxis.automargin and fig.layout.yaxis.scaleanchor == "x"


def test_rsa_and_negative_values_widen_the_colour_range():
    sim = _sim()
    sim.matrix[1, 1] = -0.35
    rsa = Similarity(sim.matrix, sim.layers, sim.other_layers, 100, "rsa", {"rdm": "euclidean"})
    fig = plot_similarity(rsa, annotate=False)
    assert fig.data[0].zmin == pytest.approx(-0.4) and fig.data[0].colorbar.title.text == "RSA"
    assert fig.data[0].texttemplate is None
    assert "Spearman" in fig.data[0].hovertemplate
    with pytest.raises(ValueError, match="does not match"):
        plot_similarity(Similarity(np.zeros((2, 2)), ["a"], ["b"], 10, "cka"))


@pytest.mark.browser
def test_publication_layout_exports_a_readable_svg(tmp_path):
    sim = _sim(other="/data/run2.h5")
    fig = publication_layout(plot_similarity(sim), "single", aspect=1.0)
    assert fig.layout.width == 336
    with FigureExporter() as ex:
        path = ex.write(fig, tmp_path / "cka.svg")
    root = ET.fromstring(path.read_text())
    texts = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert "pooler" in texts and "CKA" in texts
    assert any(t.startswith("…") and t.endswith("dense") for t in texts)
    assert {f"{v:.2f}" for v in sim.matrix[1:].ravel()} <= texts  # every cell's value printed
