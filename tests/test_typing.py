"""Types as users see them: mypy on the package, and a user's script under --strict.

One mypy run (about 40 s, its cache in a temporary folder so that runs are independent)
checks the package with the project's configuration together with two small scripts
written against the public API: one that must pass every ``--strict`` flag with the key
results typed (not ``Any``), and one whose mistakes the figure builders' Protocols must
catch. Two quick checks read the sources: the configuration is strict for the whole
package, and every ``# type: ignore`` says why.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("mypy")  # one run, shared by the tests of this module

# Every flag of --strict that a file may set for itself (mypy refuses `strict` inline);
# warn-unused-ignores and warn-redundant-casts are on for every file in pyproject.toml.
STRICT = (
    "# mypy: disallow-any-generics, disallow-subclassing-any, disallow-untyped-calls, "
    "disallow-untyped-defs, disallow-incomplete-defs, check-untyped-defs, "
    "disallow-untyped-decorators, warn-return-any, no-implicit-reexport, strict-equality, "
    "extra-checks\n"
)

USER_SCRIPT = STRICT + textwrap.dedent(
    """
    from __future__ import annotations

    import numpy as np
    import torch

    import inspect_kit as ik
    from inspect_kit.figures import EmbeddingLike, plot_embedding, plot_similarity
    from inspect_kit.figures.probes import plot_probe_profile


    def caption(result: EmbeddingLike) -> str:
        return f"{result.title} ({len(result)} samples)"


    def analyse(path: str) -> float:
        model = ik.models.SmallCNN(in_channels=1, n_classes=10)
        images = torch.zeros(16, 1, 8, 8)
        store = ik.capture(model, images, ["conv1", "fc"], path, progress=False)
        reveal_type(store)
        emb = ik.embed(store, "fc", method="pca")
        reveal_type(emb)
        reveal_type(emb.coords)
        reopened = ik.open_store(path)
        reveal_type(reopened)
        reveal_type(reopened.layers)
        profile = ik.probe_profile(reopened, target="label")
        reveal_type(profile)
        sim = ik.similarity(reopened)
        reveal_type(sim)
        kernels = ik.conv_kernels(model)
        reveal_type(kernels)
        reveal_type(ik.cka(np.zeros((8, 3)), np.ones((8, 3))))
        probe = ik.LatentProbe(ik.models.ConvAutoencoder((1, 8, 8)))
        reveal_type(probe)
        plot_embedding(emb)
        reveal_type(caption(emb))
        plot_probe_profile([profile, profile])
        plot_similarity(sim)
        return float(emb.coords.mean()) + sim.n_samples
    """
)

# Each line marked `# E: <code>` must be reported with that code, and nothing else.
MISTAKES = STRICT + textwrap.dedent(
    """
    from __future__ import annotations

    import inspect_kit as ik
    from inspect_kit.figures import EmbeddingLike, plot_embedding, plot_similarity
    from inspect_kit.figures.probes import plot_probe_profile


    def caption(result: EmbeddingLike) -> str:
        return result.title


    def confused(path: str) -> None:
        store = ik.open_store(path)
        emb = ik.embed(store, "fc")
        sim = ik.similarity(store)
        plot_similarity(emb)  # E: arg-type
        plot_embedding(sim)  # E: arg-type
        plot_probe_profile(emb)  # E: arg-type
        caption(sim)  # E: arg-type
        store.no_such_attribute  # E: attr-defined
    """
)


def test_config_is_strict_for_the_whole_package() -> None:
    """strict = true globally; the overrides only mark untyped third-party imports."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert config["files"] == ["inspect_kit"]
    for override in config.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        assert not any(m.startswith("inspect_kit") for m in modules), modules
        assert set(override) == {"module", "ignore_missing_imports"}, override


def test_every_type_ignore_says_why() -> None:
    """A `# type: ignore[code]` names its code and has a reason: a comment after it on the
    same line or on one of the two lines before it."""
    unexplained = []
    for path in sorted((ROOT / "inspect_kit").rglob("*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "# type: ignore" not in line:
                continue
            m = re.search(r"# type: ignore(\[[\w, -]+\])?(.*)$", line)
            assert m and m.group(1), f"{path}:{i + 1}: an ignore without an error code"
            before = [t.strip() for t in lines[max(0, i - 2) : i]]
            if not m.group(2).strip().startswith("#") and not any(
                t.startswith("#") for t in before
            ):
                unexplained.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert unexplained == [], "\n".join(unexplained)


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Path]]:
    """One mypy run over the package and the two scripts: (output, script paths)."""
    folder = tmp_path_factory.mktemp("mypy")
    scripts = {"user": folder / "user_script.py", "mistakes": folder / "user_mistakes.py"}
    scripts["user"].write_text(USER_SCRIPT)
    scripts["mistakes"].write_text(MISTAKES)
    stdout, stderr, _status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(folder / "cache"),
            "--show-error-codes",
            "--no-error-summary",
            "--hide-error-context",
            str(ROOT / "inspect_kit"),
            *(str(p) for p in scripts.values()),
        ]
    )
    assert not stderr, stderr
    return stdout, scripts


def _lines_about(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(str(path) + ":")]


def test_package_is_clean_under_the_project_config(mypy_run: tuple[str, dict[str, Path]]) -> None:
    output, scripts = mypy_run
    package = [
        line
        for line in output.splitlines()
        if not any(line.startswith(str(p)) for p in scripts.values())
    ]
    assert package == [], "\n".join(package)


def test_user_script_passes_strict_with_typed_results(
    mypy_run: tuple[str, dict[str, Path]],
) -> None:
    output, scripts = mypy_run
    lines = _lines_about(output, scripts["user"])
    errors = [line for line in lines if ": error:" in line]
    assert errors == [], "\n".join(errors)
    revealed = [
        m.group(1).replace("builtins.", "")
        for line in lines
        if (m := re.search(r'Revealed type is "(.*)"$', line))
    ]
    # in the order of the script's reveal_type calls; an untyped result would read "Any"
    # (numpy versions spell an array's shape and dtype parameters differently)
    revealed = [re.sub(r"^numpy\.ndarray\[.*\]$", "numpy.ndarray", r) for r in revealed]
    assert revealed == [
        "inspect_kit.store.reader.ActivationStore",
        "inspect_kit.analysis.embedding._api.Embedding",
        "numpy.ndarray",
        "inspect_kit.store.reader.ActivationStore",
        "list[str]",
        "inspect_kit.analysis.probe_results.ProbeProfile",
        "inspect_kit.analysis.similarity.Similarity",
        "inspect_kit.analysis.weights.Kernels",
        "float",
        "inspect_kit.analysis.latent.LatentProbe",
        "str",
    ]


def test_figure_protocols_catch_the_wrong_result(mypy_run: tuple[str, dict[str, Path]]) -> None:
    output, scripts = mypy_run
    path = scripts["mistakes"]
    source = path.read_text().splitlines()
    wanted = {
        (i, m.group(1))
        for i, text in enumerate(source, start=1)
        if (m := re.search(r"# E: ([\w-]+)", text))
    }
    got = set()
    for line in _lines_about(output, path):
        m = re.match(rf"{re.escape(str(path))}:(\d+): error: .*\[([\w-]+)\]$", line)
        assert m, line  # only the planted errors, nothing else
        got.add((int(m.group(1)), m.group(2)))
    assert got == wanted
