"""The curated public surface: pinned, documented, importable without the heavy extras."""

import inspect
import subprocess
import sys

import pytest

import inspect_kit

EXPECTED = {
    "ActivationStore",
    "Embedding",
    "LatentProbe",
    "LinearProbe",
    "SimilarityOptions",
    "StoreError",
    "__version__",
    "build_report",
    "capture",
    "conv_kernels",
    "embed",
    "explore",
    "export_figure",
    "featurevis",
    "linear_probe",
    "list_layers",
    "open_store",
    "plot_embedding",
    "plot_embedding_grid",
    "probe_profile",
    "publication_layout",
    "save_html",
    "Similarity",
    "cka",
    "similarity",
    "plot_similarity",
    "Attribution",
    "Region",
    "attribute",
    # trust metrics of attribution maps and the lesion task (issue 22)
    "data_randomization",
    "deletion_insertion",
    "localization_scores",
    "max_sensitivity",
    "model_randomization",
    "road",
    "make_lesion_task",
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


HEAVY = ("torch", "sklearn", "scipy", "umap", "kaleido", "openTSNE", "nilearn", "plotly", "h5py")


def _loaded_after(code: str) -> list[str]:
    """Heavy modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_import_is_light():
    assert _loaded_after("import inspect_kit") == []
    # dir() and the version need nothing heavy either
    assert _loaded_after("import inspect_kit as ik; dir(ik); ik.__version__") == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["capture", "--help"]])
def test_cli_help_and_version_are_light(argv):
    code = (
        "import contextlib, io\nfrom inspect_kit.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()) as out:\n    status = main({argv!r})\n"
        "assert status == 0 and 'inspect-kit' in out.getvalue(), (status, out.getvalue())"
    )
    assert _loaded_after(code) == []


def test_the_installed_metadata_reads_the_one_version_source():
    from importlib.metadata import version

    assert inspect_kit.__version__ == version("inspect-kit")


def test_names_resolve_lazily_to_the_objects_they_name():
    from inspect_kit.analysis.embedding import embed
    from inspect_kit.capture.loop import capture
    from inspect_kit.models import ConvAutoencoder
    from inspect_kit.workflows.pipeline import build_report

    ik = inspect_kit
    assert ik.models.ConvAutoencoder is ConvAutoencoder
    assert callable(ik.data.load_mni_patches) and ik.figures.plot_embedding is ik.plot_embedding
    assert ik.embed is embed and ik.build_report is build_report
    # the function, even after the subpackage of the same name was imported
    assert ik.capture is capture
    assert {"models", "data", "featurevis", "capture", "build_report"} <= set(dir(ik))
    with pytest.raises(AttributeError, match="no_such_name"):
        ik.no_such_name  # noqa: B018
