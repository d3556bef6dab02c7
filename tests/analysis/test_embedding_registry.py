"""The registry of embedding methods: one module and one registration add a method to
``embed``, the command line and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspect_kit.analysis.embedding import (
    BaseEmbedding,
    embed,
    get_method,
    method_names,
    register_method,
    unregister_method,
)
from inspect_kit.capture import capture
from inspect_kit.cli import main
from inspect_kit.figures import plot_embedding


class ToyProjection(BaseEmbedding):
    """A random linear projection: the smallest estimator a user could add."""

    method = "toyproj"
    _needs_pre_pca = False

    def __init__(
        self,
        n_components: int = 2,
        *,
        reduce="mean",
        random_state: int | None = 0,
        metrics: bool = True,
        metric_samples: int = 500,
        metric_neighbors: int = 5,
        progress: bool = True,
    ):
        self.n_components = n_components
        self.reduce = reduce
        self.random_state = random_state
        self.metrics = metrics
        self.metric_samples = metric_samples
        self.metric_neighbors = metric_neighbors
        self.progress = progress

    def _fit(self, feats):
        X = feats.to_numpy()
        rng = np.random.default_rng(self.random_state)
        self.projection_ = rng.normal(size=(X.shape[1], self.n_components))
        return X @ self.projection_

    def _transform(self, feats):
        return feats.to_numpy() @ self.projection_


@pytest.fixture
def toy():
    spec = register_method(
        "toy-proj", ToyProjection, display_name="Toy projection", axis_label="TP"
    )
    try:
        yield spec
    finally:
        unregister_method("toyproj")


def test_registered_method_reaches_embed_and_figure_titles(toy):
    assert toy.name == "toyproj" and "toyproj" in method_names()
    X = np.random.default_rng(0).normal(size=(60, 5, 3, 3)).astype(np.float32)
    emb = embed(X, method="Toy-Proj", random_state=3, progress=False)
    pooled = X.mean(axis=(2, 3), dtype=np.float64)
    want = pooled @ np.random.default_rng(3).normal(size=(5, 2))
    np.testing.assert_allclose(emb.coords, want, rtol=1e-5, atol=1e-5)
    assert emb.method == "toyproj" and emb.params["method"] == "toyproj"
    assert emb.title == "Toy projection of features"
    fig = plot_embedding(emb, thumbnails=False)
    assert fig.layout.title.text == "Toy projection of features"
    assert fig.layout.xaxis.title.text == "TP1" and fig.layout.yaxis.scaleanchor == "x"
    unregister_method("toyproj")
    with pytest.raises(ValueError, match="unknown method='toyproj'.*'pca', 'tsne', 'umap'"):
        embed(X, method="toyproj", progress=False)


def test_registered_method_is_a_choice_of_the_command_line(toy, tmp_path, capsys):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    x = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    capture(model, x, ["1"], tmp_path / "s.h5", reduce="mean", progress=False).close()
    assert main(["embed", "--help"]) == 0
    assert "toyproj" in " ".join(capsys.readouterr().out.split())
    out_dir = tmp_path / "emb"
    args = ["embed", str(tmp_path / "s.h5"), "--out", str(out_dir), "--formats", "html", "-q"]
    assert main([*args, "--methods", "toyproj"]) == 0
    html = (out_dir / "embedding_toyproj.html").read_text()
    assert "Toy projection of each layer" in html
    capsys.readouterr()
    assert main([*args, "--methods", "toyprojection"]) == 2
    assert "toyproj" in capsys.readouterr().err


def test_registration_checks_and_builtin_names():
    assert [get_method(m).display_name for m in ("pca", "t-SNE", "umap")] == [
        "PCA",
        "t-SNE",
        "UMAP",
    ]
    with pytest.raises(ValueError, match="already registered"):
        register_method("pca", ToyProjection)
    with pytest.raises(ValueError, match="set it to 'other'"):
        register_method("other", ToyProjection)
    with pytest.raises(ValueError, match="did you mean 'umap'"):
        get_method("uamp")


def test_registered_method_reaches_the_report_and_the_explorer(toy, tmp_path):
    """The same one registration puts the method in the report (its section, by display
    name, with the coordinates embed computes) and in the explorer's method menu."""
    from inspect_kit.analysis.embedding.maps import MapSource
    from inspect_kit.store import open_store
    from inspect_kit.workflows import EmbeddingOptions, ReportOptions, RunOptions, build_report

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    x = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = np.arange(40) % 2
    capture(model, x, ["1"], tmp_path / "s.h5", labels=y, reduce="mean", progress=False).close()
    opts = ReportOptions(
        embedding=EmbeddingOptions(methods=("toyproj",)),
        featurevis=None,
        random_baseline=False,
        latent=None,
        run=RunOptions(threads=1, progress=False),
        formats=(),
    )
    res = build_report(tmp_path / "s.h5", tmp_path / "report.html", options=opts)
    html = res.report.read_text()
    assert '<h3 id="embeddings-toy-projection">Toy projection</h3>' in html
    assert "Toy projection of each layer" in html  # the figure's title
    [row] = res.summary["embeddings"]
    assert row["method"] == "Toy projection" and row["layer"] == "1"
    with open_store(tmp_path / "s.h5") as store:
        # the report's embedding is in the store's cache, as embed computes it
        emb = embed(store, "1", "toyproj", progress=False)
        assert emb.from_cache
        pooled = store.to_numpy("1").astype(np.float64)
        want = pooled @ np.random.default_rng(emb.params["random_state"]).normal(size=(4, 2))
        np.testing.assert_allclose(emb.coords, want, rtol=1e-4, atol=1e-4)
        assert "toyproj" in MapSource([emb], store=store).method_options
