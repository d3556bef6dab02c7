"""The curated public surface: pinned, documented, importable without the heavy extras."""

import inspect
import subprocess
import sys

import inspect_kit

EXPECTED = {
    "ActivationStore", "Embedding", "LatentProbe", "StoreError", "__version__", "build_report",
    "capture", "conv_kernels", "embed", "explore", "export_figure", "featurevis", "linear_probe",
    "list_layers", "open_store", "plot_embedding", "plot_embedding_grid", "probe_profile",
    "publication_layout", "save_html", "Similarity", "cka", "similarity", "plot_similarity",
}


def test_all_is_pinned():
    assert set(inspect_kit.__all__) == EXPECTED
    for name in inspect_kit.__all__:
        assert hasattr(inspect_kit, name), name


def test_public_callables_have_numpydoc_with_examples():
    missing = []
    for name in inspect_kit.__all__:
        obj = getattr(inspect_kit, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj) or ""
            if "Examples" not in doc or "Parameters" not in doc and inspect.isfunction(obj):
                missing.append(name)
    assert not missing, f"public API without numpydoc Parameters/Examples: {missing}"


def test_featurevis_alias_is_one_module():
    import inspect_kit.featurevis as fv

    assert fv is inspect_kit.featurevis is inspect_kit.analysis.featurevis
    assert callable(fv.render) and callable(fv.channel)


def test_import_does_not_load_umap_or_kaleido():
    code = "import sys, inspect_kit; print(sorted(m for m in ('umap', 'kaleido', 'openTSNE', 'nilearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
