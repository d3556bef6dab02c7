"""`pip install inspect-kit && inspect-kit demo`: the main job needs none of the extras."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: top-level modules that only the extras bring (scale, explore, zoo, dev)
EXTRAS_ONLY = (
    "dask",
    "distributed",
    "xarray",
    "hdf5plugin",
    "anywidget",
    "ipywidgets",
    "polars",
    "timm",
    "monai",
    "selenium",
    "nbclient",
    "jupyterlab",
    "hypothesis",
)


@pytest.mark.slow
@pytest.mark.xdist_group("cli_demo")
def test_demo_runs_without_the_extras(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    # The path finder is wrapped so that it finds none of those packages: `import x` raises
    # ModuleNotFoundError and importlib.util.find_spec("x") returns None, as without them.
    (blocker / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
        import sys
        from importlib.machinery import PathFinder

        BLOCKED = {EXTRAS_ONLY!r}

        class _WithoutExtras:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    return None
                return PathFinder.find_spec(name, path, target)

            @staticmethod
            def find_distributions(*args, **kwargs):
                for dist in PathFinder.find_distributions(*args, **kwargs):
                    name = (dist.metadata["Name"] or "").lower().replace("-", "_")
                    if name not in BLOCKED:
                        yield dist

            @staticmethod
            def invalidate_caches():
                PathFinder.invalidate_caches()

        sys.meta_path[:] = [_WithoutExtras if f is PathFinder else f for f in sys.meta_path]
    """)
    )
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), str(root)]),
        "OMP_NUM_THREADS": "1",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import dask"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr  # the blocker works
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspect_kit",
            "demo",
            "--quick",
            "-q",
            "--methods",
            "pca",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.html").stat().st_size > 100_000
    assert (out / "activations.h5").is_file()
