"""`inspect-kit embed`: a layer/method that cannot run is reported and skipped; the rest is
written; t-SNE/UMAP parameters come from the command line."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture
from inspect_kit.cli import main
from inspect_kit.store import open_store


def test_embed_skips_a_layer_that_cannot_run_and_writes_the_rest(tmp_path, capsys):
    d = load_digits()
    X = torch.tensor(d.images[:40, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(216, 2)).eval()
    capture(
        model,
        X,
        ["1", "3"],
        tmp_path / "s.h5",
        labels=d.target[:40],
        overwrite=True,
        progress=False,
    ).close()
    capsys.readouterr()
    # 3 dimensions of the 2-logit layer "3" cannot be computed; layer "1" (6 channels) can
    code = main(
        [
            "embed",
            str(tmp_path / "s.h5"),
            "--methods",
            "pca",
            "--dims",
            "3",
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "html",
            "-q",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "out" / "embedding_pca.html").exists()
    assert "skipping the pca of 3" in err
    lines = out.strip().splitlines()
    assert "error" in lines[0].split()
    assert any(line.split()[:2] == ["pca", "1"] for line in lines[1:])
    assert any(line.split()[:2] == ["pca", "3"] and len(line.split()) > 2 for line in lines[1:])
    with open_store(tmp_path / "s.h5") as store:
        assert "embeddings/1/pca" in store.results()

    # t-SNE's perplexity from the command line, recorded in the map's parameters
    code = main(
        [
            "embed",
            str(tmp_path / "s.h5"),
            "--methods",
            "tsne",
            "--layers",
            "1",
            "--perplexity",
            "7",
            "--out",
            str(tmp_path / "out2"),
            "--formats",
            "html",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with open_store(tmp_path / "s.h5") as store:
        _, attrs = store.load_result("embeddings/1/tsne")
    assert float(attrs["params"]["perplexity"]) == 7.0


def test_tsne_default_perplexity_is_lowered_for_few_samples(tmp_path, capsys):
    """As --perplexity's help says: 40 samples cannot take perplexity 30 (needs 91), so the
    command uses floor(39 / 3) = 13, says so, and records it with the map."""
    d = load_digits()
    X = torch.tensor(d.images[:40, None] / 16.0, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU()).eval()
    path = tmp_path / "s.h5"
    capture(model, X, ["1"], path, labels=d.target[:40], progress=False).close()
    capsys.readouterr()
    args = ["embed", str(path), "--methods", "tsne", "--out", str(tmp_path / "o")]
    assert main([*args, "--formats", "html", "-q"]) == 0
    err = capsys.readouterr().err
    assert "too few for the default perplexity 30; using 13" in err
    assert (tmp_path / "o" / "embedding_tsne.html").exists()
    with open_store(path) as store:
        _, attrs = store.load_result("embeddings/1/tsne")
    assert float(attrs["params"]["perplexity"]) == 13.0
