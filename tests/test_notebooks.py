"""Every notebook runs top to bottom on the shipped data, in a fresh kernel, and shows what it
says: the numbers and shapes its cells print are checked after the run."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the notebook's output:\n{text[-2000:]}"
    return float(found.group(1))


def check_01(out: str) -> None:
    assert _number(r"held-out accuracy ([\d.]+)", out) > 0.85  # digits, 8 epochs
    assert "['conv1', 'conv2', 'conv3']" in out  # list_layers(types="Conv2d")
    assert _number(r"accuracy recorded in the store: ([\d.]+)", out) > 0.9
    assert re.search(r"thumbnails: \(90, \d+, \d+\) uint8", out), out[-800:]  # MIPs of 90 cubes


def check_02(out: str) -> None:
    assert _number(r"held-out accuracy ([\d.]+)", out) > 0.8  # MNI152 tissue, chance 0.33
    assert re.search(r"\nTrue ", "\n" + out), "a cached embedding differs from the computed one"


def check_03(out: str) -> None:
    assert "channel(" in out  # the objective's description
    assert _number(r"best dataset sample for (\d+) of 6 units", out) >= 4
    assert "['trained', 'conv3', 'bn2', 'conv2', 'bn1', 'conv1']" in out
    lo, hi, vmin, vmax = (
        float(v) for v in re.search(r"\n(-1000(?:\.0)?) (400(?:\.0)?) (\S+) (\S+)", out).groups()
    )
    assert lo <= vmin <= vmax <= hi  # the CT render stays inside its HU window


def check_04(out: str) -> None:
    assert re.search(r"\n\(900, 8\) ", "\n" + out), out  # 8-number codes of the 900 patches
    assert _number(r"mean-image baseline: ([\d.]+)x", out) < 0.3  # README: about 0.1x in 2D
    score = _number(r"<ProbeResult \w+ ([\d.]+)", out)
    chance = _number(r"<ProbeResult \w+ [\d.]+ .*?chance ([\d.]+)", out)
    assert chance == pytest.approx(1 / 3, abs=0.02) and score > chance + 0.3  # three tissues


def check_05(out: str) -> None:
    assert _number(r"report\.html (\d+) figures", out) >= 8
    assert "True False" in out  # Viridis is greyscale-safe, Jet is not


def check_06(out: str) -> None:
    assert _number(r"held-out accuracy ([\d.]+)", out) > 0.8  # three tissues, trained CNN
    assert _number(r"IG completeness gap \(relative\) ([\d.]+)", out) < 0.05
    assert "Grad-CAM layer" in out and "flat maps: 0" in out
    assert out.count("stored ") == 2


CHECKS = {
    "01_capture_and_store": check_01,
    "02_embeddings": check_02,
    "03_feature_visualization": check_03,
    "04_latent_probing": check_04,
    "05_report_and_paper_figures": check_05,
    "06_attribution": check_06,
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_what_it_says(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} is committed with outputs; clear them"
    )
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    CHECKS[path.stem](printed)


def test_there_are_notebooks_and_each_has_its_checks():
    names = {p.stem for p in NOTEBOOKS}
    assert len(names) >= 4, names
    assert names == set(CHECKS)
