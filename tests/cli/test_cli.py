"""The ``inspect-kit`` command: demo end to end, each subcommand, each data format, bad input.

One quick demo run (module-scoped) is shared by the tests that need a trained model and a
store. Commands run in-process through ``main([...])`` except where the process boundary is
the point (exit status, no traceback on stderr, ``python -m inspect_kit``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from inspect_kit.cli import main
from inspect_kit.data.formats import load_data
from inspect_kit.models import SmallCNN
from inspect_kit.models.registry import load_model
from inspect_kit.store import open_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_ARGS = {"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}
TINY = ["inspect_kit.models:SmallCNN", "--model-args", json.dumps(TINY_ARGS)]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- the demo, end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(out), "--quick", "-q", "--methods", "pca", "tsne"])
    assert code == 0
    return out


pytestmark_demo = pytest.mark.xdist_group("cli_demo")  # one demo run per worker, shared


@pytestmark_demo
@pytest.mark.slow
def test_demo_writes_store_report_and_figures(demo):
    store_path = demo / "activations.h5"
    with open_store(store_path) as store:
        assert store.complete
        assert store.layers == ["relu1", "relu2", "relu3", "fc"]
        assert len(store) == 180 and sorted(np.unique(store.labels)) == [0, 1, 2]
        results = store.results()
        for group in ("embeddings/relu3/pca", "embeddings/fc/tsne", "probes/label", "latent"):
            assert any(r.startswith(group) for r in results), (group, results)
        logits = store.logits
        index = store.index
    # Oracle: the saved weights, loaded fresh, give the stored logits for the same patches.
    from inspect_kit.data import load_mni_patches

    X, y, _ = load_mni_patches(dim=2, patch=16, n_per_class=60, random_state=0)
    net = load_model(
        "inspect_kit.models:SmallCNN",
        weights=demo / "model.pt",
        model_args={"in_channels": 1, "n_classes": 3, "dim": 2, "pool_size": 3},
    )
    with torch.no_grad():
        expected = net(torch.from_numpy(X[index])).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)

    html = (demo / "report.html").read_text()
    from plotly.offline import get_plotlyjs

    assert html.count(get_plotlyjs()[:300]) == 1  # plotly.js embedded exactly once
    # works offline: no external script, stylesheet or image
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"<(link|img)[^>]*(href|src)=\"https?:", html)
    for title in (
        "Model and provenance",
        "Embeddings",
        "Feature visualization",
        "Latent probing",
        "Probe profile",
        "Sanity check",
    ):
        assert f">{title}" in html, title

    figures = demo / "figures"
    names = {p.stem for p in figures.glob("*.png")}
    assert {
        "embedding_pca",
        "embedding_tsne",
        "featurevis_relu3",
        "probe_profile",
        "sanity_featurevis",
        "sanity_probe_profile",
        "latent_traversal",
    } <= names
    for stem in names:
        png = (figures / f"{stem}.png").read_bytes()
        assert png[:8] == PNG_SIGNATURE
        svg = ET.parse(figures / f"{stem}.svg").getroot()
        assert svg.tag.endswith("svg")


@pytestmark_demo
@pytest.mark.slow
def test_demo_numbers_are_plausible(demo):
    from inspect_kit.workflows.records import read_inputs_record

    with open_store(demo / "activations.h5") as store:
        probes, attrs = store.load_result("probes/label")
        record = read_inputs_record(store)
        acc = float(np.mean(store.predictions == store.labels))
    assert record["class_names"] == ["csf", "grey matter", "white matter"]
    assert record["sample_shape"] == [1, 16, 16]
    # even 3 epochs on 135 patches beat the 1/3 chance of three balanced tissue classes
    assert acc > 0.5
    assert attrs["layers"] == ["relu1", "relu2", "relu3", "fc"]
    assert np.all(probes["chance"] < 0.4)
    assert probes["score"][-1] > probes["chance"][-1] + 0.15  # fc decodes the tissue class


@pytestmark_demo
@pytest.mark.slow
@pytest.mark.browser
def test_demo_report_in_a_real_browser(demo, browser):
    from tests.report.test_report import (
        hover_first_thumbnail_figure,
        severe,
        wait_plots,
    )

    report = demo / "report.html"
    n_figs = report.read_text().count("Plotly.newPlot")
    assert n_figs >= 10
    browser.get(report.as_uri())
    assert wait_plots(browser, n_figs) == n_figs
    assert severe(browser) == []
    _, box = hover_first_thumbnail_figure(browser)
    assert box is not None and box[0] == "block" and box[1] == "data:image/png;base64,"
    # a saved figure opens too, and draws its text
    browser.get((demo / "figures" / "probe_profile.svg").as_uri())
    assert browser.execute_script("return document.documentElement.tagName").lower() == "svg"
    assert browser.execute_script("return document.querySelectorAll('text').length") > 5
    assert severe(browser) == []


# -- each subcommand -----------------------------------------------------------------------------
def test_layers_lists_names_types_and_shapes(capsys):
    code, out, _ = run(["layers", *TINY, "--input-shape", "1", "16", "16", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    net = SmallCNN(**TINY_ARGS)
    assert list(rows) == [n for n, _ in net.named_modules() if n]
    assert rows["conv1"]["type"] == "Conv2d" and rows["conv1"]["params"] == 4 * 1 * 3 * 3
    assert rows["conv1"]["output"] == "(4, 16, 16)"
    assert rows["pool1"]["output"] == "(4, 8, 8)"
    assert rows["fc"]["output"] == "(3,)"
    code, out, _ = run(["layers", *TINY, "--types", "Conv2d"], capsys)
    assert code == 0 and "conv3" in out and "relu1" not in out


@pytestmark_demo
@pytest.mark.slow
def test_embed_probe_featurevis_report_on_demo_store(demo, tmp_path, capsys):
    store = str(demo / "activations.h5")
    code, out, err = run(
        [
            "embed",
            store,
            "--methods",
            "pca",
            "--layers",
            "relu3,fc",
            "--out",
            str(tmp_path / "emb"),
            "--formats",
            "html",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "trustworthiness" in out and "relu3" in out
    assert (tmp_path / "emb" / "embedding_pca.html").stat().st_size > 100_000

    code, out, err = run(
        [
            "probe",
            store,
            "--layers",
            "relu1",
            "fc",
            "--cv",
            "3",
            "--out",
            str(tmp_path / "probe"),
            "--formats",
            "html",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    lines = [line.split() for line in out.strip().splitlines()[1:]]
    fc = next(line for line in lines if line[0] == "fc")
    assert float(fc[1]) > float(fc[3]) + 0.1  # accuracy above chance

    code, out, err = run(
        [
            "featurevis",
            "inspect_kit.models:SmallCNN",
            "--weights",
            str(demo / "model.pt"),
            "--model-args",
            '{"in_channels": 1, "n_classes": 3, "dim": 2, "pool_size": 3}',
            "--layer",
            "relu2",
            "--store",
            store,
            "--top",
            "2",
            "--steps",
            "8",
            "--exemplars",
            "3",
            "--out",
            str(tmp_path / "fv"),
            "--formats",
            "html",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert (tmp_path / "fv" / "featurevis_relu2.html").exists()

    # `report` rebuilds the model and inputs from what the demo recorded in the store
    report = tmp_path / "r" / "report.html"
    code, out, err = run(
        [
            "report",
            store,
            "--out",
            str(report),
            "--methods",
            "pca",
            "--no-latent",
            "--steps",
            "8",
            "--threads",
            "1",
            "--formats",
            "svg",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    html = report.read_text()
    assert "Feature visualization" in html and "Sanity check" in html
    assert (report.parent / "figures" / "probe_profile.svg").exists()


# -- data formats through `capture` ---------------------------------------------------------------
def _capture(capsys, data: str, out: Path, *extra: str, model: list[str] | None = None) -> Path:
    code, _, err = run(
        [
            "capture",
            *(model or TINY),
            data,
            "--out",
            str(out),
            "--layers",
            "relu3,fc",
            "-q",
            *extra,
        ],
        capsys,
    )
    assert code == 0, err
    return out


def _logits(args: dict, x: np.ndarray) -> np.ndarray:
    net = SmallCNN(**args).eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def test_capture_png_folder_labels_from_subfolders(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = {}
    for cls in ("benign", "malignant"):
        (tmp_path / "png" / cls).mkdir(parents=True)
        for i in range(3):
            arr = rng.integers(0, 256, (12, 10), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / "png" / cls / f"{i}.png")
            images[f"{cls}/{i}.png"] = arr
    store_path = _capture(capsys, str(tmp_path / "png"), tmp_path / "a.h5")
    with open_store(store_path) as store:
        names = list(store.metadata["filename"])
        assert sorted(names) == sorted(images)
        assert store.labels.tolist() == [0 if n.startswith("benign") else 1 for n in names]
        x = np.stack([images[n][None] / 255.0 for n in names])
        np.testing.assert_allclose(store["fc"][:], _logits(TINY_ARGS, x), atol=1e-5)
        assert store.load_result("inputs")[1]["class_names"] == ["benign", "malignant"]


def test_capture_tiff16_with_csv_labels_and_resize(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(1)
    (tmp_path / "tif").mkdir()
    rows, arrays = ["filename,label"], {}
    for i in range(4):
        arr = rng.integers(0, 65536, (20, 20), dtype=np.uint16)
        Image.fromarray(arr).save(tmp_path / "tif" / f"s{i}.tif")
        rows.append(f"s{i}.tif,{i % 2}")
        arrays[f"s{i}.tif"] = arr
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    store_path = _capture(
        capsys,
        str(tmp_path / "tif"),
        tmp_path / "t.h5",
        "--labels",
        str(tmp_path / "labels.csv"),
        "--size",
        "10",
        "10",
    )
    with open_store(store_path) as store:
        assert store.labels.tolist() == [0, 1, 0, 1]
        # 10 x 10 after two 2x poolings (20 x 20 unresized would give 5 x 5)
        assert store["relu3"].attrs["source_shape"] == [8, 2, 2]
    # 16-bit values are scaled by 65535, not clipped to 8 bits
    data = load_data(tmp_path / "tif")
    np.testing.assert_allclose(data.dataset[0][0].numpy(), arrays["s0.tif"] / 65535.0, atol=1e-6)


def test_capture_nifti_volumes_with_3d_model(tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(2)
    (tmp_path / "nii").mkdir()
    vols = []
    for i in range(3):
        vol = rng.normal(size=(8, 9, 10)).astype(np.float32)  # (i, j, k) = (x, y, z), RAS
        nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "nii" / f"v{i}.nii.gz")
        vols.append(vol)
    args3d = {**TINY_ARGS, "dim": 3}
    store_path = _capture(
        capsys,
        str(tmp_path / "nii"),
        tmp_path / "n.h5",
        model=["inspect_kit.models:SmallCNN", "--model-args", json.dumps(args3d)],
    )
    # (D, H, W) = (inferior->superior, anterior->posterior, left->right)
    expected = np.stack([v.transpose(2, 1, 0)[:, ::-1, :][None] for v in vols])
    with open_store(store_path) as store:
        assert store.thumbnails.shape[0] == 3
        np.testing.assert_allclose(store["fc"][:], _logits(args3d, expected), atol=1e-4)


def test_capture_dicom_in_hounsfield_units(tmp_path, capsys):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    (tmp_path / "dcm").mkdir()
    ct = get_testdata_file("CT_small.dcm")
    shutil.copy(ct, tmp_path / "dcm" / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "dcm" / "mr")  # no suffix
    ds = pydicom.dcmread(ct)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    data = load_data(tmp_path / "dcm", size=(64, 64))
    assert data.metadata["Modality"].tolist() == ["CT", "MR"]
    full = load_data(tmp_path / "dcm", size=(128, 128))
    # one-slice series in RAS: columns (stored towards the patient's left) run left->right
    np.testing.assert_allclose(full.dataset[0][0].numpy(), hu[:, ::-1], atol=1e-3)
    # as 2D slices (for 2D networks) the pixels stay as stored
    slices = load_data(tmp_path / "dcm", size=(128, 128), as_slices=True)
    np.testing.assert_allclose(slices.dataset[0][0].numpy(), hu, atol=1e-3)
    store_path = _capture(
        capsys,
        str(tmp_path / "dcm"),
        tmp_path / "d.h5",
        "--size",
        "64",
        "64",
        "--window",
        "-1000",
        "400",
    )
    with open_store(store_path) as store:
        assert len(store) == 2
        # patient IDs are hashed (salted SHA-256 prefixes): distinct, and never the ID itself
        ids = list(store.metadata["PatientID"])
        assert all(i.startswith("sha256:") and len(i) == 23 for i in ids) and ids[0] != ids[1]
        assert str(ds.PatientID) not in ids


def test_capture_npz_and_hdf5_arrays(tmp_path, capsys):
    import h5py

    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 12, 12)).astype(np.float32)  # (N, H, W): a channel axis is added
    y = np.array(["a", "b", "a", "c", "b", "a", "c"])
    np.savez(tmp_path / "d.npz", images=x, labels=y)
    store_path = _capture(capsys, str(tmp_path / "d.npz"), tmp_path / "z.h5")
    with open_store(store_path) as store:
        assert store.labels.tolist() == [0, 1, 0, 2, 1, 0, 2]
        np.testing.assert_allclose(store["fc"][:], _logits(TINY_ARGS, x[:, None]), atol=1e-5)

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["scans/x"] = x[:, None]
        f["scans/y"] = np.arange(7) % 2
    store_path = _capture(
        capsys,
        f"{tmp_path / 'd.h5'}:scans/x",
        tmp_path / "h.h5",
        "--labels",
        f"{tmp_path / 'd.h5'}:scans/y",
    )
    with open_store(store_path) as store:
        assert store.labels.tolist() == [0, 1, 0, 1, 0, 1, 0]
        np.testing.assert_allclose(store["fc"][:], _logits(TINY_ARGS, x[:, None]), atol=1e-5)


def test_data_errors_name_what_is_wrong(tmp_path):
    from PIL import Image

    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(ValueError, match="2 different sizes.*--size"):
        load_data(tmp_path / "mixed")
    assert load_data(tmp_path / "mixed", size=(8, 8)).sample_shape == (1, 8, 8)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "mixed" / "c.png")
    with pytest.raises(ValueError, match="channels"):
        load_data(tmp_path / "mixed", size=(8, 8))
    assert load_data(tmp_path / "mixed", size=(8, 8), channels=3).sample_shape == (3, 8, 8)
    (tmp_path / "labels.csv").write_text("file,label\na.png,x\nb.png,y\n")
    with pytest.raises(ValueError, match="no label for 1 of 3 files.*c.png"):
        load_data(tmp_path / "mixed", size=(8, 8), channels=3, labels=tmp_path / "labels.csv")
    (tmp_path / "mixed" / "v.nii").write_bytes(b"")
    with pytest.raises(ValueError, match="mixes file types"):
        load_data(tmp_path / "mixed")
    np.savez(tmp_path / "d.npz", a=np.zeros((2, 4, 4)), b=np.zeros(2))
    with pytest.raises(KeyError, match="holds a, b"):
        load_data(tmp_path / "d.npz")
    assert load_data(f"{tmp_path / 'd.npz'}:a").sample_shape == (1, 4, 4)


def test_report_refuses_a_model_that_does_not_rebuild(tmp_path, capsys):
    """The recorded model and weights file no longer give the captured model's weights."""
    x = np.random.default_rng(4).normal(size=(12, 1, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(12) % 2)
    weights = tmp_path / "w.pt"
    torch.save(SmallCNN(**{**TINY_ARGS, "random_state": 1}).state_dict(), weights)
    _capture(capsys, str(tmp_path / "d.npz"), tmp_path / "s.h5", "--weights", str(weights))
    # the file is overwritten after the capture (a later checkpoint under the same name)
    torch.save(SmallCNN(**{**TINY_ARGS, "random_state": 2}).state_dict(), weights)
    report = tmp_path / "report.html"
    code, _, err = run(
        [
            "report",
            str(tmp_path / "s.h5"),
            "--out",
            str(report),
            "--methods",
            "pca",
            "--no-latent",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "does not rebuild the captured model" in err
    html = report.read_text()
    assert ">Probe profile" in html and ">Feature visualization" not in html
    # with the same seed the factory rebuilds it, and the model-based sections come back
    _capture(capsys, str(tmp_path / "d.npz"), tmp_path / "t.h5")
    code, _, err = run(
        [
            "report",
            str(tmp_path / "t.h5"),
            "--out",
            str(report),
            "--methods",
            "pca",
            "--no-latent",
            "--steps",
            "4",
            "-q",
            "--threads",
            "1",
        ],
        capsys,
    )
    assert code == 0 and "does not rebuild" not in err
    assert ">Feature visualization" in report.read_text()


# -- bad arguments: one line, non-zero, no traceback ----------------------------------------------
@pytest.mark.parametrize(
    "args, status, fragment",
    [
        (["nonsense"], 2, "invalid choice"),
        (["capture", "torchvision.models:resnet18"], 2, "required"),
        (["layers", "inspect_kit.models:SmallCNN", "--model-args", "{bad"], 2, "JSON object"),
        (["layers", "inspect_kit.models:SmalCNN"], 1, "did you mean 'SmallCNN'"),
        (["layers", "no_such_pkg.mod:f"], 1, "cannot import module"),
        (["layers", "resnet18"], 1, "package.module:factory"),
        (["embed", "missing.h5"], 1, "missing.h5"),
        (["demo", "--formats", "png,bmp"], 2, "unknown figure format(s) bmp"),
        (["embed", "x.h5", "--methods", "pca", "tnse"], 2, "unknown embedding method(s) tnse"),
    ],
)
def test_bad_arguments_give_one_line(args, status, fragment, capsys):
    code, out, err = run(args, capsys)
    assert code == status
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("inspect-kit") and "error:" in lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_bad_data_and_layer_through_a_real_process(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 8, 8), np.float32))
    base = [sys.executable, "-m", "inspect_kit", "capture", *TINY]
    # quiet: the error is the whole of stderr
    proc = subprocess.run(
        [*base, str(tmp_path / "nope"), "--out", str(tmp_path / "a.h5"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    assert proc.stderr.startswith("inspect-kit capture: error: ")
    # with step messages: the error is the one last line
    proc = subprocess.run(
        [*base, str(tmp_path / "x.npz"), "--out", str(tmp_path / "b.h5"), "--layers", "conv9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "conv9" in lines[-1] and "error:" in lines[-1]
    assert [line for line in lines if "error:" in line] == [lines[-1]]
    assert "Traceback" not in proc.stderr and not (tmp_path / "b.h5").exists()
    # in-process: a --size that does not fit the data
    code, _, err = run(
        [
            "capture",
            *TINY,
            str(tmp_path / "x.npz"),
            "--out",
            str(tmp_path / "c.h5"),
            "--size",
            "4",
            "4",
            "4",
            "-q",
        ],
        capsys,
    )
    assert code == 1 and err.count("\n") == 1 and "size=" in err


def test_help_of_every_command_has_an_example(capsys):
    for cmd in ("layers", "capture", "embed", "featurevis", "probe", "report", "demo"):
        with pytest.raises(SystemExit) as exc:
            from inspect_kit.cli import build_parser

            build_parser().parse_args([cmd, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"inspect-kit {cmd}" in out, cmd


# -- global options, JSON results, shell completion (issue: behave like the tools users know) ----
@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "-v", "-v", "--debug", "--json", "demo"],
        ["demo", "-q", "-vv", "--debug", "--json"],
        ["-q", "-vv", "demo", "--json", "--debug"],
    ],
)
def test_global_options_before_or_after_the_command(argv):
    from inspect_kit.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose, args.debug, args.json) == (True, 2, True, True)
    plain = build_parser().parse_args(["demo"])
    assert (plain.quiet, plain.verbose, plain.debug, plain.json) == (False, 0, False, False)


def test_global_quiet_before_the_command_silences_it(tmp_path, capsys):
    code, out, err = run(["-q", "--json", "layers", *TINY, "--types", "Conv2d"], capsys)
    assert code == 0 and err == ""
    assert [r["name"] for r in json.loads(out)] == ["conv1", "conv2", "conv3"]


@pytestmark_demo
@pytest.mark.slow
def test_every_result_command_prints_json(demo, tmp_path, capsys):
    store = str(demo / "activations.h5")
    code, out, err = run(
        [
            "--json",
            "-q",
            "embed",
            store,
            "--methods",
            "pca",
            "--layers",
            "fc",
            "--out",
            str(tmp_path / "e"),
            "--formats",
            "html",
        ],
        capsys,
    )
    assert code == 0, err
    rows = json.loads(out)
    assert rows[0]["layer"] == "fc" and 0.5 < rows[0]["trustworthiness"] <= 1.0
    code, out, err = run(
        [
            "probe",
            store,
            "--layers",
            "fc",
            "--cv",
            "3",
            "--out",
            str(tmp_path / "p"),
            "--formats",
            "html",
            "-q",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["layer"] == "fc" and row["balanced_accuracy"] > row["chance"]
    code, out, err = run(
        [
            "featurevis",
            "inspect_kit.models:SmallCNN",
            "--weights",
            str(demo / "model.pt"),
            "--model-args",
            '{"in_channels": 1, "n_classes": 3, "dim": 2, "pool_size": 3}',
            "--layer",
            "relu2",
            "--units",
            "0",
            "--steps",
            "4",
            "--exemplars",
            "0",
            "--input-shape",
            "1",
            "16",
            "16",
            "--out",
            str(tmp_path / "f"),
            "--formats",
            "html",
            "-q",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    figures = json.loads(out)["figures"]
    assert figures and all(Path(p).is_file() for p in figures)
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((10, 1, 16, 16), dtype=np.float32), y=rng.integers(0, 3, 10))
    code, out, err = run(
        [
            "capture",
            *TINY,
            str(data),
            "--out",
            str(tmp_path / "c.h5"),
            "--layers",
            "conv1,fc",
            "-q",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    desc = json.loads(out)
    assert desc["n_samples"] == 10 and desc["complete"] is True
    assert desc["layers"]["fc"] == [10, 3] and desc["labels"] is True


def test_shell_completion_scripts(tmp_path):
    for shell in ("bash", "zsh"):
        proc = subprocess.run(
            [sys.executable, "-m", "inspect_kit", "--print-completion", shell],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        script = proc.stdout
        for word in ("capture", "embed", "compare", "--weights", "--perplexity"):
            assert word in script, (shell, word)
        checker = shutil.which(shell)
        if checker:  # the script parses in the shell it is for
            path = tmp_path / f"complete.{shell}"
            path.write_text(script)
            subprocess.run([checker, "-n", str(path)], check=True, timeout=60)
    assert "torch" not in proc.stderr
