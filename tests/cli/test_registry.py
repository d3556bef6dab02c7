"""Every command follows from one declaration: the registered analyses' commands and their
examples, and the flags generated from the option dataclasses (the data flags are
DataOptions' fields, spelled once)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import shlex

import pytest

from inspect_kit.cli import build_parser, examples
from inspect_kit.cli._options import cli_fields, flags_of
from inspect_kit.workflows.options import (
    CaptureOptions,
    DataOptions,
    EmbeddingOptions,
    FeatureVisOptions,
    ProbeOptions,
    SimilarityOptions,
)
from inspect_kit.workflows.registry import AnalysisSpec, analyses, get_analysis, resolve


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _dests(p: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    return {a.dest: tuple(a.option_strings) for a in p._actions if a.option_strings}


@pytest.mark.parametrize("spec", analyses(commands_only=True), ids=lambda s: s.name)
def test_every_registered_analysis_has_a_command_whose_examples_parse(spec: AnalysisSpec):
    assert spec.examples, spec.name
    text = examples()[spec.name]
    assert text.startswith("examples:\n")
    for line in spec.examples:
        assert f"  {line}" in text
        args = build_parser().parse_args(shlex.split(line)[1:])
        assert args.command == spec.name and args.spec is spec, line


@pytest.mark.parametrize("spec", analyses(), ids=lambda s: s.name)
def test_every_name_a_registration_gives_resolves(spec: AnalysisSpec):
    """The dotted paths are imported only when they run: each must name something real."""
    for target in (spec.compute, spec.figure, spec.section, spec.rows):
        if target is not None:
            assert callable(resolve(target)), (spec.name, target)


def test_the_builtin_analyses_are_registered_in_the_reports_order():
    assert [s.name for s in analyses()][:6] == [
        "embed",
        "featurevis",
        "latent",
        "probe",
        "sanity",
        "compare",
    ]
    assert [s.name for s in analyses(commands_only=True)][:4] == [
        "embed",
        "featurevis",
        "probe",
        "compare",
    ]
    assert get_analysis("probe").store_group == "probes"
    with pytest.raises(KeyError, match="registered: embed, featurevis"):
        get_analysis("nope")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("embed", EmbeddingOptions),
        ("featurevis", FeatureVisOptions),
        ("probe", ProbeOptions),
        ("compare", SimilarityOptions),
        ("capture", CaptureOptions),
        ("capture", DataOptions),
    ],
)
def test_each_commands_flags_are_its_options_fields(command, options):
    dests = _dests(_subparser(command))
    for f in cli_fields(options):
        assert dests.get(f.name) == flags_of(f), (command, f.name)


def test_the_data_flags_are_dataoptions_fields_and_load_datas_keywords():
    """The 13 data options are spelled once: DataOptions' fields give the flags (their help,
    type and group) and load_data's keywords."""
    fields = [f.name for f in dataclasses.fields(DataOptions)]
    assert len(fields) == 13
    assert [f.name for f in cli_fields(DataOptions)] == fields  # every field is a flag
    p = _subparser("capture")
    groups = {g.title: {a.dest for a in g._group_actions} for g in p._action_groups if g.title}
    assert groups["data"] | groups["medical volumes (NIfTI, DICOM)"] == set(fields)
    assert list(DataOptions().load_kwargs()) == [*DataOptions.RECORDED, "id_salt"]
    assert set(DataOptions().load_kwargs()) == set(fields)
    from inspect_kit.data.formats import load_data

    params = inspect.signature(load_data).parameters
    assert set(fields) <= set(params), set(fields) - set(params)
    # parsed flags come back as the dataclass, with the words that mean None
    from inspect_kit.cli._options import options_from_args

    args = build_parser().parse_args(
        ["capture", "m:M", "d/", "-o", "s.h5", "--size", "8", "8", "--orientation", "none"]
        + ["--slices", "--window", "-1000", "400", "--reduce", "none"]
    )
    got = options_from_args(DataOptions, args)
    assert got == DataOptions(size=(8, 8), orientation=None, as_slices=True, window=(-1000, 400))
    assert options_from_args(CaptureOptions, args).reduce is None


def test_a_registration_refuses_what_would_not_work():
    @dataclasses.dataclass(frozen=True)
    class Opts:
        k: int = 1

    with pytest.raises(ValueError, match="at least one --help example"):
        AnalysisSpec(name="x", summary="x", options=Opts, compute=print)
    with pytest.raises(ValueError, match="needs must be"):
        AnalysisSpec(
            name="x", summary="x", options=Opts, compute=print, examples=("a",), needs="gpu"
        )  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a dataclass"):
        AnalysisSpec(name="x", summary="x", options=int, compute=print, examples=("a",))
    from inspect_kit.workflows.registry import register_analysis

    with pytest.raises(ValueError, match="already registered"):
        register_analysis(get_analysis("probe"))
    with pytest.raises(ValueError, match="built-in command"):
        register_analysis(
            AnalysisSpec(name="report", summary="x", options=Opts, compute=print, examples=("a",))
        )


def test_the_builtin_titles_are_the_headings_their_report_sections_draw():
    """A built-in's report step draws its section with report.sections: the registration's
    title is that heading (not a second name for it)."""
    from pathlib import Path

    from inspect_kit.report import sections

    source = Path(sections.__file__).read_text()
    builtin = [s for s in analyses() if isinstance(s.section, str) and "report_steps" in s.section]
    assert len(builtin) == 6
    for spec in builtin:
        assert f'"{spec.heading}"' in source, spec.name
