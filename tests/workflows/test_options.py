"""The option objects workflows take."""

import dataclasses

import pytest

from inspect_kit.workflows.options import (
    CaptureOptions,
    DataOptions,
    EmbeddingOptions,
    FeatureVisOptions,
    LatentOptions,
    ModelSource,
    ProbeOptions,
    ReportOptions,
    RunOptions,
)


def test_options_are_frozen_and_normalise_sequences():
    d = DataOptions(size=[64, 64], window=[-1000, 400])
    assert d.size == (64, 64) and d.window == (-1000, 400)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.size = (1, 1)  # type: ignore[misc]
    assert CaptureOptions(layers=["a", "b"]).layers == ("a", "b")
    assert CaptureOptions(layers=[]).layers is None  # empty means the default layers
    fv = FeatureVisOptions(units=["3", 1], input_shape=[1, 16, 16], sanity_layers=[])
    assert fv.units == (3, 1) and fv.input_shape == (1, 16, 16)
    assert fv.sanity_layers == ()  # an empty cascade stays empty, unlike None (the default)
    assert EmbeddingOptions(methods=["pca"]).methods == ("pca",)


def test_data_options_round_trip_through_a_store_record():
    d = DataOptions(labels="l.csv", size=(32, 32), channels=1, window=(0, 1), normalize="zscore")
    record = d.as_record()
    assert {k: record[k] for k in ("labels", "size", "channels", "window", "normalize")} == {
        "labels": "l.csv",
        "size": [32, 32],
        "channels": 1,
        "window": [0, 1],
        "normalize": "zscore",
    }
    assert record["orientation"] == "RAS" and record["spacing"] is None
    assert DataOptions.from_record({**record, "unrelated": 3}) == d
    # the salt of hashed patient IDs is a secret: never recorded, so not restored either
    salted = DataOptions(spacing=[1, 1, 2], id_salt="s3cret", keep_identifiers=False)
    assert "id_salt" not in salted.as_record() and salted.as_record()["spacing"] == [1, 1, 2]
    assert DataOptions.from_record(salted.as_record()).id_salt is None


def test_model_source_records_the_weights_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = ModelSource("inspect_kit.models:SmallCNN", weights="w.pt", model_args={"n_classes": 3})
    assert src.as_record() == {
        "model": "inspect_kit.models:SmallCNN",
        "weights": str(tmp_path / "w.pt"),
        "model_args": {"n_classes": 3},
    }
    net = ModelSource("inspect_kit.models:SmallCNN", model_args={"n_classes": 4}).load()
    assert net.fc.out_features == 4 and not net.training


def test_report_options_nest_each_sections_options():
    """ReportOptions holds one option object per section (None leaves it out) and the run's."""
    fv = FeatureVisOptions(
        layer="relu2", n_units=2, steps=40, sanity=True, sanity_steps=20, sanity_layers=["conv2"]
    )
    opts = ReportOptions(
        embedding=EmbeddingOptions(methods=("pca", "umap"), n_jobs=2),
        featurevis=fv,
        latent=LatentOptions(latent_dim=3, epochs=4, cv=3),
        similarity=None,
        run=RunOptions(random_state=9, device="cpu", threads=None, progress=False),
    )
    assert opts.embedding == EmbeddingOptions(methods=("pca", "umap"), n_jobs=2)
    assert opts.featurevis is not None and opts.featurevis.sanity_layers == ("conv2",)
    assert opts.similarity is None and opts.probe == ProbeOptions()
    run = opts.run_options()
    assert (run.random_state, run.device, run.threads, run.progress) == (9, "cpu", None, False)
    # the report's defaults: feature visualization with its sanity check, one thread
    plain = ReportOptions()
    assert plain.featurevis is not None
    assert (plain.featurevis.steps, plain.featurevis.sanity, plain.featurevis.sanity_steps) == (
        192,
        True,
        96,
    )
    assert plain.run.threads == 1 and plain.latent == LatentOptions()
    # no embedding methods: no embedding section
    assert ReportOptions(embedding=EmbeddingOptions(methods=())).embedding is None


def test_recorded_data_options_read_the_inputs_back_as_captured(tmp_path):
    """One list of recorded options (DataOptions.RECORDED) serves the record and the re-read:
    the recorded size applies, the labels file (gone since) does not matter to the arrays."""
    import numpy as np

    from inspect_kit.workflows.records import load_recorded_inputs

    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    record = DataOptions(labels=str(tmp_path / "gone.csv"), size=(4, 4)).as_record()
    got = load_recorded_inputs({"data": str(tmp_path / "x.npz"), "data_options": record})
    want = DataOptions(size=(4, 4)).load(tmp_path / "x.npz").to_array()
    assert got is not None and got.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(got, want)
    assert not np.allclose(got, x[:, :, ::2, ::2])  # resized, not read as stored


def test_every_command_that_draws_takes_random_state(capsys):
    """The command line says random_state, as the library does (the old --seed is gone)."""
    from inspect_kit.cli import build_parser

    parser = build_parser()
    commands = {
        "report": ["acts.h5"],
        "demo": [],
        "embed": ["acts.h5"],
        "probe": ["acts.h5"],
        "compare": ["acts.h5"],
        "featurevis": ["m:M", "--layer", "relu1", "--out", "fv"],
    }
    for name, args in commands.items():
        assert parser.parse_args([name, *args, "--random-state", "7"]).random_state == 7, name
        with pytest.raises(SystemExit):
            parser.parse_args([name, *args, "--seed", "7"])
        assert parser.parse_args([name, *args]).random_state == 0, name
    assert "unrecognized arguments: --seed" in capsys.readouterr().err
