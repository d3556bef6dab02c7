"""Benchmark the notebook explorer against the text/html figures it replaces.

For N = 2k, 20k and 50k points with a 16x16 thumbnail each (distinct MRI patches of nilearn's
MNI152 template, labelled by tissue, mapped by the PCA of their pixels):

1. Notebook output size: what one figure adds to a saved ``.ipynb``. Before: a
   ``ThumbnailFigure`` displayed as ``text/html`` (plotly.js inlined). Now: ``plot_embedding``'s
   light widget (``FigureView``) and ``inspect_kit.explore``'s widget, measured as the widget
   state nbclient/JupyterLab save (JSON, binary buffers base64; plotly.js never in it).
2. Time to interactive in headless chromium (``performance.now()`` from navigation start until
   the hover handlers are installed / the explorer's maps report ready). Before: a page holding
   the text/html output. Now: the explorer's saved page, which runs the widget's own
   JavaScript (in a notebook plotly.js comes from the kernel instead of the page; loading it is
   the same work once per page).

Usage::

    python benchmarks/explorer.py                   # 2k, 20k, 50k
    python benchmarks/explorer.py --sizes 2000 --repeats 1 --out table.md
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspect_kit.analysis.embedding import Embedding  # noqa: E402
from inspect_kit.data import load_mni_patches  # noqa: E402
from inspect_kit.figures.embedding import plot_embedding  # noqa: E402
from inspect_kit.figures.explorer import FigureView  # noqa: E402
from inspect_kit.imaging import make_thumbnails  # noqa: E402
from inspect_kit.workflows.explore import explore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@functools.cache
def mni_patches(n: int):
    """n distinct 16x16 patches of nilearn's MNI152 T1 template, labelled by tissue."""
    X, y, _names = load_mni_patches(dim=2, patch=16, n_per_class=-(-n // 3), random_state=0)
    return X, y


def make_embedding(n: int, n_max: int) -> Embedding:
    """The first n of n_max MRI patches, on their first two principal components."""
    X, y = mni_patches(n_max)
    X, y = X[:n], y[:n]
    flat = X.reshape(n, -1)
    flat = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat[: min(n, 5000)], full_matrices=False)
    coords = flat @ vt[:2].T
    return Embedding(
        coords=coords.astype(np.float32),
        method="pca",
        layer="pixels",
        labels=y,
        thumbnails=make_thumbnails(X, size=16),
    )


def widget_bytes(widget) -> int:
    from ipywidgets.embed import dependency_state, embed_data

    state = embed_data(views=[widget], state=dependency_state([widget]))["manager_state"]
    view = json.dumps(widget._repr_mimebundle_()[0])
    return len(json.dumps(state)) + len(view)


def html_output_bytes(fig) -> int:
    bundle = fig._repr_mimebundle_()  # what the text/html display put in the notebook
    return len(json.dumps({"output_type": "display_data", "data": bundle, "metadata": {}}))


def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--enable-unsafe-swiftshader",
        "--window-size=1300,1000",
    ):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(300)
    return drv


def time_to_interactive(drv, page: Path, ready_js: str, timeout: float = 300) -> float:
    drv.get("about:blank")
    drv.get(page.resolve().as_uri())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = drv.execute_script(
            f"if ({ready_js}) {{ window.__ikReady = window.__ikReady || performance.now(); }}"
            " return window.__ikReady || null;"
        )
        if t:
            return float(t) / 1000
        time.sleep(0.02)
    raise TimeoutError(f"{page} never became interactive")


OLD_READY = (
    "Array.prototype.every.call(document.querySelectorAll('.plotly-graph-div'),"
    " function (d) { return d.__inspectKitThumbs; }) && document.querySelector('.plotly-graph-div')"
)
NEW_READY = "document.querySelector('.ik-plot[data-ready]')"


def run(sizes: list[int], repeats: int) -> str:
    browser = Path(CHROMEDRIVER).exists() and (Path(CHROMIUM).exists() or shutil.which("chromium"))
    drv = driver() if browser else None
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                emb = make_embedding(n, max(sizes))
                fig = plot_embedding(emb, color="label")
                old = html_output_bytes(fig)
                fig_view = widget_bytes(FigureView(fig))
                ex = explore(emb)
                ex_bytes = widget_bytes(ex)
                tti_old = tti_new = float("nan")
                if drv is not None:
                    old_page = Path(tmp) / f"old_{n}.html"
                    old_page.write_text(
                        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                        + fig._repr_mimebundle_()["text/html"]
                        + "</body></html>"
                    )
                    new_page = ex.save_html(Path(tmp) / f"new_{n}.html")
                    tti_old = min(
                        time_to_interactive(drv, old_page, OLD_READY) for _ in range(repeats)
                    )
                    tti_new = min(
                        time_to_interactive(drv, new_page, NEW_READY) for _ in range(repeats)
                    )
                rows.append((n, old, fig_view, ex_bytes, tti_old, tti_new))
                print(f"N={n}: done", file=sys.stderr)
    finally:
        if drv is not None:
            drv.quit()
    mb = 1e6
    lines = [
        f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; best of {repeats}.",
        "",
        "| points | text/html output (MB) | `plot_embedding` widget (MB) | `explore` widget (MB)"
        " | x smaller (explore) | TTI text/html (s) | TTI explorer (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, old, fv, exb, t_old, t_new in rows:
        lines.append(
            f"| {n:,} | {old / mb:.2f} | {fv / mb:.2f} | {exb / mb:.2f} | {old / exb:.1f} "
            f"| {t_old:.2f} | {t_new:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,50000")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    table = run([int(s) for s in args.sizes.split(",")], args.repeats)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
