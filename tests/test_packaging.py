"""The distribution as users get it: a wheel with only the package, an sdist whose tests run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".git", "build", "dist", "demo_out", "__pycache__", ".pytest_cache"}


def _copy_project(dst: Path) -> Path:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith((".egg-info", ".h5"))}

    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("build")
    work = tmp_path_factory.mktemp("dist")
    src = _copy_project(work / "src")
    out = work / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "work": work}


def test_wheel_holds_only_the_package_and_its_data(dists):
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"inspect_kit", meta_name.split("/")[0]}, tops
    # the one version source: setuptools read the wheel's version from inspect_kit/_version.py
    version_py = (ROOT / "inspect_kit" / "_version.py").read_text()
    assert f'__version__ = "{meta["Version"]}"' in version_py
    assert "inspect_kit/py.typed" in names
    # the explorer widget's assets, read at import by inspect_kit.figures.explorer
    assert {"inspect_kit/figures/explorer.js", "inspect_kit/figures/explorer.css"} <= set(names)
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # every module of the source tree is in the wheel
    src_modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "inspect_kit").rglob("*.py")}
    assert src_modules <= set(names), sorted(src_modules - set(names))[:5]
    assert meta["License-Expression"] == "BSD-3-Clause"
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls)


def test_sdist_tests_run(dists, tmp_path):
    with tarfile.open(dists["sdist"]) as tf:
        names = tf.getnames()
        tf.extractall(tmp_path, filter="data")
    (top,) = {n.split("/")[0] for n in names}
    root = tmp_path / top
    tracked = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")}
    shipped = {p.relative_to(root).as_posix() for p in (root / "tests").rglob("*.py")}
    assert tracked <= shipped, sorted(tracked - shipped)[:5]
    for needed in ("LICENSE", "README.md", "tests/conftest.py", "tests/fixtures_models.py"):
        assert (root / needed).is_file(), needed
    env = {**os.environ, "PYTHONPATH": str(root)}
    # The package's own public-API test runs from the unpacked sdist, against its sources.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/test_public_api.py",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    collect = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stdout[-3000:] + collect.stderr[-2000:]
    assert "error" not in collect.stdout.splitlines()[-1].lower()
