"""Benchmark inspect_kit's embeddings against the raw library calls, and the HTML at 50k points.

Tables (markdown on stdout, and in ``--out`` if given):

1. Wall time of PCA / t-SNE / UMAP through ``inspect_kit.embed`` vs the raw scikit-learn,
   openTSNE and umap-learn calls with the same parameters (PCA to 50 dimensions first, as
   inspect_kit does), for N samples of 512-d features; scikit-learn's TSNE beside openTSNE.
   inspect_kit's quality metrics are timed separately (they are extra work the raw calls
   don't do).
2. Peak RSS of PCA streamed from an HDF5 store 8x larger than the read-block budget, against
   reading the layer into memory.
3. Size and load time of a saved plot_embedding HTML with 50,000 points and thumbnails, in
   headless chromium (skipped when selenium/chromium are missing).

Usage::

    python benchmarks/embedding.py                # --quick: a few minutes on 2 cores
    python benchmarks/embedding.py --full         # N = 1k .. 70k (long: tens of minutes)
    python benchmarks/embedding.py --sizes 1000,10000 --methods tsne --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)


# -- data --------------------------------------------------------------------------------------
def make_features(n: int, dim: int = 512, n_classes: int = 10, seed: int = 0):
    """Clustered 512-d features (like a penultimate layer): 10 classes on a 64-d subspace."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, 64)))[0].T  # (64, dim) orthonormal
    centres = rng.normal(scale=3.0, size=(n_classes, 64))
    y = rng.integers(0, n_classes, n)
    latent = centres[y] + rng.normal(size=(n, 64))
    X = latent @ basis + 0.3 * rng.normal(size=(n, dim))
    return np.maximum(X, 0).astype(np.float32), y  # ReLU-like, non-negative


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# -- 1. timing ---------------------------------------------------------------------------------
def raw_pca50(X):
    from sklearn.decomposition import PCA

    return PCA(50, random_state=0).fit_transform(X)


def timing_table(sizes, methods, repeats, threads, sklearn_max) -> list[str]:
    import openTSNE
    import umap
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from inspect_kit.analysis.embedding import embed
    from inspect_kit.analysis.metrics import embedding_quality

    # pay numba's JIT before timing anything
    Xw, _ = make_features(300)
    umap.UMAP(random_state=0, n_jobs=1).fit_transform(Xw[:, :20])
    embed(Xw, method="umap", progress=False, metrics=False)

    def raw(method, X):
        if method == "pca":
            return PCA(2, random_state=0).fit_transform(X)
        if method == "tsne":
            return np.asarray(
                openTSNE.TSNE(
                    n_components=2,
                    perplexity=30,
                    learning_rate="auto",
                    early_exaggeration_iter=250,
                    n_iter=500,
                    initialization="pca",
                    n_jobs=threads,
                    random_state=0,
                    # openTSNE's own rule, as inspect_kit uses: Barnes-Hut below 10k samples
                    negative_gradient_method="bh" if len(X) < 10_000 else "fft",
                    verbose=False,
                ).fit(raw_pca50(X).astype(np.float64))
            )
        if method == "umap":
            return umap.UMAP(
                n_components=2, n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1
            ).fit_transform(raw_pca50(X))
        if method == "sklearn-tsne":
            return TSNE(
                2,
                perplexity=30,
                learning_rate="auto",
                max_iter=750,
                init="pca",
                random_state=0,
                n_jobs=threads,
            ).fit_transform(raw_pca50(X))
        raise ValueError(method)

    clock = LibraryClock(
        [(PCA, "fit_transform"), (openTSNE.TSNE, "fit"), (umap.UMAP, "fit_transform")]
    )

    def ours(method, X):
        kw = {"n_jobs": threads} if method == "tsne" else {}
        clock.seconds = 0.0
        with clock:
            t = time.perf_counter()
            emb = embed(X, method=method, progress=False, metrics=False, cache=False, **kw)
            total = time.perf_counter() - t
        return emb, total, clock.seconds

    rows = [
        "| N | method | raw library (s) | inspect_kit (s) | library calls inside inspect_kit (s) "
        "| inspect_kit's own work | + quality metrics (s) | trustworthiness "
        "| kNN acc (map / features) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n in sizes:
        X, y = make_features(n)
        for method in methods:
            if method == "sklearn-tsne":
                if n > sklearn_max:
                    continue
                t_raw = best_of(lambda m=method, X=X: raw(m, X), repeats)
                rows.append(
                    f"| {n:,} | scikit-learn TSNE (Barnes-Hut) | {t_raw:.2f} | - | - | - | - "
                    "| - | - |"
                )
                print(rows[-1], flush=True)
                continue
            t_raw = t_ours = t_lib = float("inf")
            for _ in range(repeats):  # interleaved, so load changes hit both alike
                t = time.perf_counter()
                raw(method, X)
                t_raw = min(t_raw, time.perf_counter() - t)
                emb, total, lib = ours(method, X)
                if total < t_ours:
                    t_ours, t_lib = total, lib
            t = time.perf_counter()
            q = embedding_quality(X[:2000], emb.coords[:2000], y[:2000])
            t_q = time.perf_counter() - t
            tsne = "t-SNE (openTSNE " + ("BH)" if n < 10_000 else "FFT)")
            name = {"pca": "PCA", "tsne": tsne, "umap": "UMAP"}[method]
            rows.append(
                f"| {n:,} | {name} | {t_raw:.2f} | {t_ours:.2f} | {t_lib:.2f} | "
                f"{100 * (t_ours - t_lib) / t_lib:.1f}% | {t_q:.2f} | "
                f"{q['trustworthiness']:.3f} | "
                f"{q['knn_accuracy']:.3f} / {q['knn_accuracy_original']:.3f} |"
            )
            print(rows[-1], flush=True)
    return rows


class LibraryClock:
    """Adds up the time spent in given library methods while active (patched, then restored).

    Timing inspect_kit's own work as (total - library time) in the same run is robust to the
    load changes of a shared machine, which swamp a comparison of two separate runs.
    """

    def __init__(self, targets):
        self.targets = targets
        self.seconds = 0.0
        self._saved = []

    def __enter__(self):
        for cls, name in self.targets:
            original = getattr(cls, name)
            self._saved.append((cls, name, original))
            setattr(cls, name, self._timed(original))
        return self

    def __exit__(self, *exc):
        for cls, name, original in reversed(self._saved):
            setattr(cls, name, original)
        self._saved.clear()

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            # only the outermost library call counts (openTSNE calls scikit-learn's PCA)
            self._depth = getattr(self, "_depth", 0) + 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - t

        return wrapper


# -- 2. streamed PCA memory ----------------------------------------------------------------------
_RSS_CHILD = r"""
import json, sys, time
import numpy as np
from inspect_kit.analysis.embedding import embed
from inspect_kit.store import open_store
import sklearn.decomposition  # imported before measuring: the peak is the PCA's, not imports'

def status(key):  # kB -> MiB; VmHWM is this process's peak (ru_maxrss survives exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

path, mode, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(path)
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current RSS
except OSError:
    pass
base = status("VmRSS")
t = time.perf_counter()
if mode == "memory":
    from sklearn.decomposition import PCA
    X = store.to_numpy("0")
    PCA(2, random_state=0).fit_transform(X)
else:
    embed(store, "0", "pca", solver=mode, batch_size=batch, metrics=False, cache=False,
          progress=False)
took = time.perf_counter() - t
print(json.dumps({"base_mb": base, "peak_mb": status("VmHWM"), "seconds": took}))
"""


def make_store(path: Path, n: int, dim: int, batch: int) -> None:
    import torch

    from inspect_kit.capture import capture

    def batches():
        for start in range(0, n, batch):
            X, _ = make_features(min(batch, n - start), dim, seed=start)
            yield torch.from_numpy(X)

    model = torch.nn.Sequential(torch.nn.Identity())
    capture(model, batches(), ["0"], path, thumbnails=None, progress=False).close()


def rss_table(store_mb: int, dim: int = 512) -> list[str]:
    """The same read block on a store 8x and 16x its size: streamed memory should not grow."""
    row_bytes = dim * 4
    block_rows = store_mb * 2**20 // row_bytes // 8
    rows = [
        f"Read block: {block_rows:,} rows x {dim} float32 = "
        f"{block_rows * row_bytes / 2**20:.0f} MiB (``batch_size``). RSS is the process's "
        "peak (VmHWM) after imports and opening the store, minus its RSS then.",
        "",
        "| store | PCA | peak RSS above baseline (MiB) | time (s) |",
        "|---|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (8, 16):
            n = block_rows * factor
            path = Path(tmp) / f"store{factor}.h5"
            make_store(path, n, dim, batch=8192)
            size = f"{n:,} x {dim} = {n * row_bytes / 2**20:.0f} MiB ({factor}x the block)"
            for mode, label in [
                ("memory", "in memory (store.to_numpy + sklearn PCA)"),
                ("covariance", "streamed, exact (solver='covariance')"),
                ("incremental", "streamed, IncrementalPCA (solver='incremental')"),
            ]:
                out = subprocess.run(
                    [sys.executable, "-c", _RSS_CHILD, str(path), mode, str(block_rows)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(
                    f"| {size} | {label} | {r['peak_mb'] - r['base_mb']:.0f} | {r['seconds']:.1f} |"
                )
                print(rows[-1], flush=True)
            path.unlink()
    return rows


# -- 3. HTML at 50k points -------------------------------------------------------------------
def digit_thumbnails(n: int, size: int = 16, seed: int = 0):
    """``n`` distinct digit images: sklearn digits shifted by up to 2 px, plus noise."""
    from inspect_kit.data import load_digits_images

    X, y = load_digits_images(size=size)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(y), n)
    imgs = X[pick, 0].copy()
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy, dx in {tuple(s) for s in shifts.tolist()}:
        sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        imgs[sel] = np.roll(imgs[sel], (dy, dx), axis=(1, 2))
    imgs = np.clip(imgs + rng.normal(0, 0.02, imgs.shape), 0, 1)
    return imgs, y[pick]


def html_table(n: int, sizes=(16, 28)) -> list[str]:
    from inspect_kit.analysis.embedding import embed
    from inspect_kit.figures.embedding import plot_embedding
    from inspect_kit.figures.html import save_html

    drv = _chromium()
    rows = [
        "| points | thumbnails | HTML (MB) | build + save (s) | load in chromium (s) "
        "| hover -> thumbnail shown (ms, incl. WebDriver round trip) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for px in (None, *sizes):
            imgs, y = digit_thumbnails(n, px or 16)
            emb = embed(
                imgs.reshape(n, -1),
                method="pca",
                labels=y,
                metric_samples=1000,
                thumbnails=np.round(imgs * 255).astype(np.uint8),
                progress=False,
            )
            t = time.perf_counter()
            fig = plot_embedding(emb, thumbnails=px is not None, thumbnail_size=px)
            path = save_html(fig, Path(tmp) / f"emb{px}.html")
            t_build = time.perf_counter() - t
            size = path.stat().st_size / 2**20
            load = hover = float("nan")
            if drv is not None:
                load, hover = _load_and_hover(drv, path, thumbs=px is not None)
            what = "none (plain Plotly)" if px is None else f"{px}x{px} px grey, all distinct"
            rows.append(
                f"| {n:,} | {what} | {size:.1f} | {t_build:.1f} | {load:.1f} | "
                f"{'-' if px is None else f'{hover:.0f}'} |"
            )
            print(rows[-1], flush=True)
    if drv is not None:
        drv.quit()
    return rows


def _chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not Path("/usr/bin/chromedriver").exists():
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--enable-unsafe-swiftshader",
        "--window-size=1300,1000",
    ):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _load_and_hover(drv, path: Path, thumbs: bool = True) -> tuple[float, float]:
    from selenium.webdriver.common.action_chains import ActionChains

    t = time.perf_counter()
    drv.get(path.resolve().as_uri())
    while not drv.execute_script(
        "var g = document.querySelector('.plotly-graph-div');"
        "return !!(g && g._fullLayout && (g.__inspectKitThumbs || !arguments[0]));",
        thumbs,
    ):
        time.sleep(0.02)
    load = time.perf_counter() - t
    if not thumbs:
        return load, float("nan")
    x, y = drv.execute_script("""
        var gd = document.querySelector('.plotly-graph-div'), tr = gd._fullData[0];
        var fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl.xaxis._offset + fl.xaxis.l2p(tr.x[0]),
                r.top + fl.yaxis._offset + fl.yaxis.l2p(tr.y[0])];""")
    t = time.perf_counter()
    chain = ActionChains(drv)
    chain.w3c_actions.pointer_action.move_to_location(int(x), int(y))
    chain.perform()
    while not drv.execute_script(
        "var b = document.querySelector('.inspect-kit-thumb');"
        "return b && b.style.display === 'block' && !!b.querySelector('img').src;"
    ):
        time.sleep(0.005)
    return load, 1000 * (time.perf_counter() - t)


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes (default)")
    mode.add_argument("--full", action="store_true", help="N = 1k, 5k, 10k, 20k, 70k")
    p.add_argument("--sizes", help="comma-separated N, overriding --quick/--full")
    p.add_argument("--methods", default="pca,tsne,umap,sklearn-tsne")
    p.add_argument(
        "--sklearn-max", type=int, default=None, help="largest N for scikit-learn's TSNE (slow)"
    )
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--store-mb", type=int, default=None, help="size of the streamed-PCA store")
    p.add_argument("--html-points", type=int, default=50_000)
    p.add_argument("--skip", default="", help="comma-separated: timing,rss,html")
    p.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = p.parse_args(argv)

    full = args.full
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [1000, 5000, 10000, 20000, 70000]
        if full
        else [1000, 5000]
    )
    sklearn_max = args.sklearn_max or (20000 if full else 1000)
    repeats = args.repeats or (1 if full else 3)
    store_mb = args.store_mb or (512 if full else 128)
    skip = set(filter(None, args.skip.split(",")))

    header = [
        "# inspect_kit embedding benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, threads={args.threads}, "
        f"repeats={repeats} (best of)",
        "",
    ]
    out = list(header)
    print("\n".join(header), flush=True)
    if "timing" not in skip:
        out += ["## Time: inspect_kit vs raw library calls (512-d features)", ""]
        out += timing_table(sizes, args.methods.split(","), repeats, args.threads, sklearn_max)
        out.append("")
    if "rss" not in skip:
        out += ["## Peak memory of PCA streamed from a store", ""]
        out += rss_table(store_mb)
        out.append("")
    if "html" not in skip:
        out += [f"## Saved HTML with {args.html_points:,} points and hover thumbnails", ""]
        out += html_table(args.html_points)
        out.append("")
    if args.out:
        args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
