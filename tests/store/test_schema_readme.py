"""One owner of the schema: the README lists every group a demo store holds, and only
``store/schema.py`` spells the store's group and attribute names."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspect_kit.store import schema
from inspect_kit.store.results import results_path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "inspect_kit"


def readme_schema_paths() -> list[str]:
    """The paths listed in the README's schema block (``/samples/index``, ``/layers/<name>`` ...)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The store (schema version 1)", 1)[1]
    block = section.split("```", 2)[1]
    return [
        line.split()[0]
        for line in block.splitlines()
        if line.startswith("/") and line[1:2].isalpha()
    ]


def _pattern(path: str) -> re.Pattern:
    parts = []
    for part in path.strip("/").split("/"):
        if part == "...":
            parts.append(".+")
        elif part.startswith("<") and part.endswith(">"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(part))
    return re.compile("/".join(parts))


def _objects(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names


@pytest.fixture(scope="module")
def demo_like_store(mni2d, tmp_path_factory) -> Path:
    """A store made as ``inspect-kit demo`` makes one: capture, record, embed, probe, latent."""
    from inspect_kit.capture import capture
    from inspect_kit.models import SmallCNN
    from inspect_kit.workflows import (
        EmbeddingOptions,
        LatentOptions,
        ProbeOptions,
        ReportOptions,
        RunOptions,
        build_report,
    )
    from inspect_kit.workflows.demo import DEMO_LAYERS
    from inspect_kit.workflows.records import DEMO_DATA, DEMO_MODEL, record_inputs

    out = tmp_path_factory.mktemp("schema")
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(mni2d.y_train), 60, replace=False))
    X, y = mni2d.X_train[rows], mni2d.y_train[rows]
    args = {"in_channels": 1, "n_classes": 3, "dim": 2, "pool_size": 3, "random_state": 0}
    net = SmallCNN(**args).eval()
    meta = {"split": np.array(["train", "test"] * 30, dtype=object), "x_mm": X[:, 0, 0, 0]}
    path = out / "activations.h5"
    store = capture(net, X, list(DEMO_LAYERS), path, labels=y, metadata=meta, progress=False)
    try:
        record_inputs(
            store,
            {
                "model": DEMO_MODEL,
                "weights": None,
                "model_args": args,
                "data": DEMO_DATA,
                "data_options": {"n_per_class": 20},
                "kind": "mni",
                "sample_shape": list(X.shape[1:]),
                "class_names": list(mni2d.class_names),
                "value_range": [0.0, 1.0],
            },
        )
    finally:
        store.close()
    opts = ReportOptions(
        embedding=EmbeddingOptions(methods=("pca",)),
        formats=(),
        featurevis=None,
        random_baseline=False,
        latent=LatentOptions(latent_dim=2, epochs=1, cv=3),
        probe=ProbeOptions(cv=3),
        run=RunOptions(threads=1, progress=False),
    )
    build_report(path, out / "report.html", model=net, inputs=X, options=opts)
    return path


def test_readme_lists_every_group_a_demo_store_holds(demo_like_store):
    listed = readme_schema_paths()
    full = [_pattern(p) for p in listed]
    # groups above a listed path: /embeddings/relu3 above /embeddings/<layer>/<method>
    above = [
        _pattern("/".join(p.strip("/").split("/")[:j]))
        for p in listed
        for j in range(1, len(p.strip("/").split("/")))
    ]
    sidecar = results_path(demo_like_store)
    with h5py.File(demo_like_store, "r") as store, h5py.File(sidecar, "r") as results:
        # captured data in the store, never written again; everything after it in the sidecar
        assert set(store.keys()) == {schema.SAMPLES, schema.LAYERS}
        assert not {schema.SAMPLES, schema.LAYERS} & set(results.keys())
        top = set(store.keys()) | set(results.keys())
        unlisted = []
        for f in (store, results):
            for name in _objects(f):
                parts = name.split("/")
                selves = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                if any(p.fullmatch(q) for p in full for q in selves):
                    continue  # it, or a group it lives in, is listed
                if isinstance(f[name], h5py.Group) and any(p.fullmatch(name) for p in above):
                    continue
                unlisted.append(name)
    assert not unlisted, f"the README's schema section does not describe {unlisted}"
    # the demo-like store holds every group the demo writes, and all are schema groups
    assert {
        schema.SAMPLES,
        schema.LAYERS,
        schema.EMBEDDINGS,
        schema.PROBES,
        schema.LATENT,
        schema.INPUTS,
    } <= top
    assert top <= set(schema.GROUPS)
    readme_top = {p.strip("/").split("/")[0] for p in listed}
    assert readme_top == set(schema.GROUPS)
    with h5py.File(demo_like_store, "r") as f:
        assert set(schema.ROOT_ATTRS) <= set(f.attrs)
        for name in f[schema.LAYERS]:
            assert set(schema.LAYER_ATTRS) <= set(f[schema.LAYERS][name].attrs)
    with h5py.File(results_path(demo_like_store), "r") as f:
        assert schema.embedding_group("fc", "pca") in f
        assert schema.probe_group("label") in f
        assert schema.latent_correlations_group() in f


# The store's names as other modules would spell them: group paths anywhere, attribute names
# where an attribute or the provenance is read.
_NAMES = "|".join(re.escape(a) for a in (*schema.ROOT_ATTRS, *schema.LAYER_ATTRS))
_SPELLED = re.compile(
    "|".join(
        [
            *(rf"[\"']/?{g}/" for g in schema.GROUPS),
            *(rf"[\"']/{g}[\"']" for g in schema.GROUPS),
            rf"(attrs|provenance|prov)(\.get\(|\[)\s*[\"']({_NAMES})[\"']",
            rf"results\(\s*[\"']({'|'.join(schema.GROUPS)})",
        ]
    )
)


def test_only_the_schema_module_spells_store_names():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "store":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            hit = _SPELLED.search(code)
            if hit:
                found.append(f"{rel}:{lineno}: {hit.group(0)}")
    assert not found, "spell these with inspect_kit.store.schema:\n" + "\n".join(found)


def test_the_scan_would_see_a_literal():
    for line in (
        'f["samples/label"]',
        "store.provenance.get('model_sha256')",
        'view.attrs["source_shape"]',
        'save_result(f"probes/{t}", d, a)',
        'store.results("embeddings")',
    ):
        assert _SPELLED.search(line), line
