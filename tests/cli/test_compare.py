"""``inspect-kit compare``: the matrix printed and as JSON, the heatmap written, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import inspect_kit as ik
from inspect_kit.cli import main

LAYERS = ["relu1", "relu2", "relu3", "fc"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.slow  # the stores come from the trained digits CNN


def _store(model, X, path, index):
    batches = [
        {"x": torch.from_numpy(X[i : i + 64]), "index": torch.from_numpy(index[i : i + 64])}
        for i in range(0, len(X), 64)
    ]
    ik.capture(model, batches, LAYERS, path, thumbnails=None, progress=False).close()
    return path


@pytest.fixture(scope="module")
def stores(digits, digits_cnn, tmp_path_factory):
    """The trained digits CNN on the test digits, stored in order and in reverse order."""
    d = tmp_path_factory.mktemp("compare")
    X = digits.X_test[:300]
    idx = np.arange(300, dtype=np.int64)
    a = _store(digits_cnn, X, d / "forward.h5", idx)
    b = _store(digits_cnn, X[::-1].copy(), d / "reverse.h5", idx[::-1].copy())
    far = _store(digits_cnn, X[:40], d / "elsewhere.h5", idx[:40] + 10_000)
    return a, b, far


def test_compare_one_store_prints_json_and_writes_html(stores, tmp_path, capsys):
    a, _, _ = stores
    code = main(["compare", str(a), "--json", "--batch-size", "100", "-o", str(tmp_path), "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    assert got["layers"] == LAYERS and got["other_layers"] == LAYERS and got["method"] == "cka"
    want = ik.similarity(a, batch_size=100, progress=False)
    assert want.from_cache  # the command cached it in the store
    np.testing.assert_allclose(np.array(got["matrix"], dtype=float), want.matrix, rtol=1e-12)
    np.testing.assert_allclose(np.diag(want.matrix), 1.0)
    (html,) = got["figures"]
    text = open(html).read()
    assert html.endswith("similarity_cka.html") and "Plotly.newPlot" in text and "relu3" in text


@pytest.mark.browser
def test_compare_two_stores_prints_the_table_and_a_png(stores, tmp_path, capsys):
    a, b, _ = stores
    code = main(
        [
            "compare",
            str(a),
            str(b),
            "--method",
            "rsa",
            "--samples",
            "120",
            "--layers",
            "relu2,fc",
            "--formats",
            "html",
            "png",
            "-o",
            str(tmp_path),
            "-q",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("RSA (Spearman") and "120 samples" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:4]}
    assert set(rows) == {"relu2", "fc"}
    # the same samples in another order: each layer matches itself exactly
    assert rows["relu2"][LAYERS.index("relu2")] == "1.000" and rows["fc"][3] == "1.000"
    png = tmp_path / "similarity_rsa_forward_vs_reverse.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_compare_errors(stores, capsys):
    a, _, far = stores
    code = main(["compare", str(a), str(far), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "forward.h5" in err and "elsewhere.h5" in err and "no sample in common" in err
    assert main(["compare", str(a), "--method", "cca"]) == 2
    assert main(["compare", str(a), "--layers", "relu9", "-q"]) == 1
    assert "did you mean" in capsys.readouterr().err
