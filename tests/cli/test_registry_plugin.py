"""A third-party analysis, defined here (outside the package), registered once: it gets its
``inspect-kit`` command (flags from its options dataclass, examples under --help), writes its
store group, draws its figure, and has its section in the report.

Two of them: one that reads a store (mean Lp norm of each layer's features per sample) and one
that needs the live model and its data, as feature visualization and attribution do (the
per-sample maximum logit)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

import inspect_kit
from inspect_kit.cli import build_parser, main
from inspect_kit.store import open_store
from inspect_kit.workflows import ReportOptions, RunOptions, build_report
from inspect_kit.workflows.options import DataOptions, option
from inspect_kit.workflows.registry import (
    AnalysisInputs,
    AnalysisSpec,
    analyses,
    register_analysis,
    unregister_analysis,
)


# -- the plugin: its own options, computation, figure and section ------------------------------
@dataclass(frozen=True)
class NormOptions:
    order: int = option(2, "order of the norm (1, 2, ...)", type="positive_int")
    center: bool = option(False, "subtract each feature's mean over the samples first")


def compute_norms(inputs: AnalysisInputs, options: NormOptions) -> list[dict[str, Any]]:
    rows = []
    for layer in inputs.layers:
        x = np.asarray(inputs.store[layer][:], dtype=np.float64).reshape(len(inputs.store), -1)
        if options.center:
            x = x - x.mean(axis=0)
        norms = np.linalg.norm(x, ord=options.order, axis=1)
        inputs.save(layer, {"norm": norms}, options)
        rows.append({"layer": layer, "mean_norm": float(norms.mean())})
    return rows


def norm_figure(result: list[dict[str, Any]], options: NormOptions) -> dict[str, go.Figure]:
    fig = go.Figure(go.Bar(x=[r["layer"] for r in result], y=[r["mean_norm"] for r in result]))
    return {f"norms_l{options.order}": fig}


def norm_section(section: Any, result: list[dict[str, Any]], options: NormOptions) -> Any:
    section.add_table(["layer", f"mean L{options.order} norm"], [list(r.values()) for r in result])
    section.add_figure(norm_figure(result, options)[f"norms_l{options.order}"])
    return result


NORMS = AnalysisSpec(
    name="norms",
    summary="Mean Lp norm of each layer's features per sample.",
    options=NormOptions,
    compute=compute_norms,
    store_group="norms",
    figure=norm_figure,
    section="tests.cli.test_registry_plugin:norm_section",  # by dotted path, as a package would
    title="Layer norms",
    examples=("inspect-kit norms acts.h5 --order 1 --out figures/",),
)


@dataclass(frozen=True)
class LogitOptions:
    scale: float = option(1.0, "multiply the logits first", type="positive_float")


def compute_max_logit(inputs: AnalysisInputs, options: LogitOptions) -> list[dict[str, Any]]:
    with torch.no_grad():
        logits = inputs.model(torch.as_tensor(inputs.data, dtype=torch.float32)) * options.scale
    best = logits.max(dim=1).values.numpy()
    if inputs.store is not None:
        inputs.save("max", {"value": best}, options)
    return [{"sample": i, "max_logit": float(v)} for i, v in enumerate(best)]


def logit_section(section: Any, result: list[dict[str, Any]], options: LogitOptions) -> Any:
    section.add_text(
        f"largest logit, mean over samples: {np.mean([r['max_logit'] for r in result]):.4f}"
    )
    return None


LOGITS = AnalysisSpec(
    name="maxlogit",
    summary="The largest logit of each sample (needs the live model and its data).",
    options=LogitOptions,
    compute=compute_max_logit,
    needs="model",
    store_group="maxlogit",
    section=logit_section,
    title="Largest logits",
    examples=("inspect-kit maxlogit mynet.py:Net --data x.npz --size 8 8 --scale 2",),
)


@pytest.fixture
def plugins():
    register_analysis(NORMS)
    register_analysis(LOGITS)
    try:
        yield
    finally:
        unregister_analysis(NORMS.name)
        unregister_analysis(LOGITS.name)
    assert "norms" not in {s.name for s in analyses()}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 2)).eval()


@pytest.fixture
def store(tmp_path):
    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = np.arange(24) % 2
    path = tmp_path / "acts.h5"
    inspect_kit.capture(_model(), x, ["1", "3"], path, labels=y, progress=False).close()
    return path, x.numpy()


def test_a_registered_analysis_gets_its_command_and_store_group(plugins, store, tmp_path, capsys):
    path, _ = store
    out = tmp_path / "figs"
    argv = ["--json", "-q", "norms", str(path), "--order", "1", "--out", str(out)]
    code = main(argv)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    rows = json.loads(printed.out)["rows"]
    with open_store(path) as s:
        # oracle: the L1 norm of every stored row, from the raw arrays
        for row in rows:
            want = np.abs(np.asarray(s[row["layer"]][:], dtype=np.float64)).reshape(24, -1).sum(1)
            data, attrs = s.load_result(f"norms/{row['layer']}")
            np.testing.assert_allclose(data["norm"], want, rtol=1e-6)
            assert row["mean_norm"] == pytest.approx(want.mean(), rel=1e-6)
            assert attrs["options"] == {"order": 1, "center": False}
            assert attrs["analysis"] == "norms" and attrs["random_state"] == 0
        assert sorted(s.results("norms")) == ["norms/1", "norms/3"]
    assert [r["layer"] for r in rows] == ["1", "3"]
    assert (out / "norms_l1.html").is_file()
    # centering changes the numbers (the flag reaches the computation)
    assert main(["--json", "-q", "norms", str(path), "--center", "--out", str(out)]) == 0
    centred = json.loads(capsys.readouterr().out)["rows"]
    assert centred[0]["mean_norm"] < rows[0]["mean_norm"]


def test_its_help_shows_its_flags_and_examples_and_they_parse(plugins, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["norms", "--help"])
    text = capsys.readouterr().out
    assert "--order ORDER" in text and "order of the norm" in text and "--center" in text
    assert "examples:\n  inspect-kit norms acts.h5 --order 1" in text
    for spec in (NORMS, LOGITS):
        for line in spec.examples:
            args = build_parser().parse_args(shlex.split(line)[1:])
            assert args.command == spec.name
    # a bad value is refused by the generated flag's type, as for the built-in commands
    assert main(["norms", "acts.h5", "--order", "0"]) == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_an_analysis_that_needs_the_model_reads_data_with_the_data_flags(
    plugins, store, tmp_path, capsys
):
    path, x = store
    np.savez(tmp_path / "x.npz", x=np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))  # 16 x 16
    weights = tmp_path / "w.pt"
    torch.save(_model().state_dict(), weights)
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "def Net():\n"
        "    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 2))\n"
    )
    argv = [
        "--json",
        "-q",
        "maxlogit",
        f"{tmp_path / 'net.py'}:Net",
        "--weights",
        str(weights),
        "--data",
        str(tmp_path / "x.npz"),
        "--size",  # a data flag of DataOptions: 16 x 16 back to the model's 8 x 8
        "8",
        "8",
        "--scale",
        "2",
        "--store",
        str(path),
    ]
    code = main(argv)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    rows = json.loads(printed.out)["rows"]
    # oracle: the inputs read with --size as DataOptions reads them, through the model
    read = DataOptions(size=(8, 8)).load(tmp_path / "x.npz").to_array()
    assert read.shape == (24, 1, 8, 8)
    with torch.no_grad():
        want = (_model()(torch.as_tensor(read)) * 2).max(dim=1).values.numpy()
    np.testing.assert_allclose([r["max_logit"] for r in rows], want, rtol=1e-4, atol=1e-5)
    with open_store(path) as s:
        data, _ = s.load_result("maxlogit/max")
    np.testing.assert_allclose(data["value"], want, rtol=1e-4, atol=1e-5)


def test_the_report_has_its_section_with_the_options_given(plugins, store, tmp_path):
    path, x = store
    quiet = dict(
        embedding=None,
        featurevis=None,
        latent=None,
        probe=None,
        similarity=None,
        random_baseline=False,
        formats=(),
        run=RunOptions(threads=1, progress=False),
    )
    res = build_report(
        path,
        tmp_path / "r.html",
        model=_model(),
        inputs=x,
        options=ReportOptions(**quiet, analyses={"norms": NormOptions(order=1)}),
    )
    html = res.report.read_text()
    assert 'id="layer-norms"' in html and "mean L1 norm" in html
    assert "Mean Lp norm of each layer" in html  # the summary is the section's intro
    with torch.no_grad():
        mean_max = _model()(torch.as_tensor(x)).max(dim=1).values.mean().item()
    assert "Largest logits" in html and f"{mean_max:.4f}" in html
    assert [r["layer"] for r in res.summary["norms"]] == ["1", "3"]
    # None leaves a registered section out; without the model, the model analysis is left out
    res = build_report(
        path, tmp_path / "r2.html", options=ReportOptions(**quiet, analyses={"norms": None})
    )
    html = res.report.read_text()
    assert "Layer norms" not in html and "Largest logits" not in html


def test_an_installed_package_registers_its_analysis_through_an_entry_point(
    tmp_path, monkeypatch, capsys
):
    """A package that declares ``[project.entry-points."inspect_kit.analyses"]`` gets its
    command without anyone importing it: the entry point is read when the parser is built."""
    from inspect_kit.workflows import registry

    site = tmp_path / "site"
    (site / "normsplugin-0.1.dist-info").mkdir(parents=True)
    (site / "normsplugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: normsplugin\nVersion: 0.1\n"
    )
    (site / "normsplugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[inspect_kit.analyses]\nnorms = normsplugin:SPEC\n"
    )
    (site / "normsplugin.py").write_text(
        "from tests.cli.test_registry_plugin import NORMS as SPEC\n"
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        assert "normsplugin:SPEC" in registry.load_plugins(reload=True)
        assert registry.get_analysis("norms") is NORMS
        with pytest.raises(SystemExit):
            build_parser().parse_args(["norms", "--help"])
        assert "--order ORDER" in capsys.readouterr().out
    finally:
        unregister_analysis("norms")
        monkeypatch.undo()
        registry.load_plugins(reload=True)  # the installed packages' entry points only
    assert "norms" not in {s.name for s in analyses()}
