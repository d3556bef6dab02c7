"""Stores larger than memory: a million-sample capture, and PCA of a store 8x the memory budget.

    python benchmarks/scale.py capture              # 10k / 100k / 1M samples, no compression and blosc
    python benchmarks/scale.py capture --sizes 10000,100000 --compression none,lzf
    python benchmarks/scale.py pca                  # ~2 GiB store, 256 MiB budget: Dask vs covariance
    python benchmarks/scale.py pca --rows 262144     # a smaller store (512 MiB), same comparison

Every measured run is a fresh child process that samples its own resident set size (RSS)
every 20 ms (psutil, in a thread), so one run's peak never leaks into another's number; the
child reports its RSS once everything is imported and the peak during the timed work.

capture: pooled features of a deliberately fast model (two 3x3 convolutions on random 8x8
single-channel inputs, 16 + 32 channels global-average pooled: 48 float32 values a sample)
into one store, inputs generated batch by batch so only the capture's own memory can grow.
The model is tiny on purpose: what is measured is the store's writer, not a forward pass.

pca: a store of N x 512 float32 rows (a linear read-out of 64-d latent inputs with 16 strong
directions, plus noise), written by ``inspect_kit.capture``; then ``PCAEmbedding`` with
``solver="covariance"`` (streamed blocks, float64 scatter matrix) and ``solver="dask"``
(``store.to_dask`` chunks, tall-skinny QR SVD on Dask's threaded scheduler), both with
blocks sized to the budget. The store is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# -- measuring ---------------------------------------------------------------------------------
class PeakRSS:
    """Samples this process's RSS in a thread; ``peak`` in bytes since ``start()``."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def rss(self) -> int:
        return int(self._proc.memory_info().rss)

    def start(self) -> PeakRSS:
        self.peak = self.rss()
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        return self.peak


def child(args: list[str]) -> dict[str, Any]:
    """Run this script with ``args`` in a fresh process; its last line is a JSON result."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    res = subprocess.run(
        [sys.executable, str(HERE), *args], env=env, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- capture of a million samples --------------------------------------------------------------
def capture_child(n: int, compression: str, out: str, batch: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch import nn

    import inspect_kit
    from inspect_kit.capture import WriteOptions

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()
    ).eval()

    rss_at: dict[int, int] = {}
    time_at: dict[int, float] = {}
    meter = PeakRSS()

    def batches():
        rng = np.random.default_rng(0)
        for start in range(0, n, batch):
            if start and start % (n // 10 or 1) < batch:
                rss_at[start] = meter.rss()  # RSS as the capture goes: flat or growing?
                time_at[start] = time.perf_counter() - t0
            yield torch.from_numpy(
                rng.standard_normal((min(batch, n - start), 1, 8, 8), dtype=np.float32)
            )

    rss_ready = meter.rss()
    meter.start()
    t0 = time.perf_counter()  # read by batches(), which runs inside capture
    store = inspect_kit.capture(
        model, batches(), ["1", "3"], out, reduce="mean", batch_size=batch,
        thumbnails=None, progress=False, overwrite=True,
        write=WriteOptions(compression=None if compression == "none" else compression),
    )  # fmt: skip
    store.close()
    secs = time.perf_counter() - t0
    peak = meter.stop()
    size = Path(out).stat().st_size
    with inspect_kit.open_store(out) as s:
        assert len(s) == n and s["3"].shape == (n, 32)
    Path(out).unlink()
    return {
        "n": n,
        "compression": compression,
        "seconds": secs,
        "rss_ready": rss_ready,
        "peak": peak,
        "rss_during": [rss_at[k] for k in sorted(rss_at)],
        "seconds_at": [time_at[k] for k in sorted(time_at)],
        "file_bytes": size,
    }


def bench_capture(sizes: list[int], compressions: list[str], batch: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ik-scale-"))
    rows = []
    try:
        for comp in compressions:
            for n in sizes:
                out = str(tmp / f"c-{n}-{comp}.h5")
                r = child(["--child-capture", str(n), comp, out, str(batch)])
                rows.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    finally:
        for p in tmp.glob("*"):
            p.unlink()
        tmp.rmdir()
    mib = 2**20
    print(
        f"capture: random 8x8 inputs, conv 16 + conv 32, mean-pooled (48 float32 a sample), "
        f"batch {batch}, thumbnails off"
    )
    print(
        "| samples | compression | seconds | samples/s | file MiB | write MB/s (raw 192 B a sample)"
        " | RSS ready (MiB) | peak RSS (MiB) | RSS at 10%..90% (MiB) | samples/s per tenth |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        during = r["rss_during"]
        spread = f"{min(during) / mib:.0f}..{max(during) / mib:.0f}" if during else "-"
        marks = [0.0, *r["seconds_at"], r["seconds"]]
        tenth = r["n"] / max(1, len(marks) - 1)
        rates = "/".join(
            f"{tenth / max(b - a, 1e-9) / 1000:.0f}k"
            for a, b in zip(marks, marks[1:], strict=False)
        )
        print(
            f"| {r['n']:,} | {r['compression']} | {r['seconds']:.1f} | "
            f"{r['n'] / r['seconds']:,.0f} | {r['file_bytes'] / mib:.1f} | "
            f"{r['n'] * 192 / r['seconds'] / 1e6:.1f} | {r['rss_ready'] / mib:.0f} | "
            f"{r['peak'] / mib:.0f} | {spread} | {rates} |"
        )


# -- PCA of a store larger than the memory budget ---------------------------------------------
D_OUT, D_IN = 512, 64


def make_pca_store(path: str, rows: int, batch: int = 8192) -> None:
    import numpy as np
    import torch
    from torch import nn

    import inspect_kit

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D_IN, D_OUT))

    def batches():
        rng = np.random.default_rng(0)
        scale = np.ones(D_IN, dtype=np.float32)
        scale[:16] = np.linspace(8, 2, 16)  # 16 strong directions, the rest at unit variance
        for start in range(0, rows, batch):
            z = rng.standard_normal((min(batch, rows - start), D_IN), dtype=np.float32)
            yield torch.from_numpy(z * scale)

    inspect_kit.capture(
        model, batches(), ["0"], path, batch_size=batch, thumbnails=None, progress=False,
        overwrite=True,
    ).close()  # fmt: skip


def pca_child(path: str, solver: str, budget: int) -> dict[str, Any]:
    import dask
    import numpy as np

    import inspect_kit
    from inspect_kit.analysis.embedding import Features, PCAEmbedding

    # blocks sized to the budget: the covariance solver holds a float32 block and its float64
    # copy (12 bytes a value); Dask's two threads each hold a chunk and its float64 copies
    row_bytes = D_OUT * 4
    meter = PeakRSS()
    with inspect_kit.open_store(path) as store:
        view = store["0"]
        rss_ready = meter.rss()
        meter.start()
        t0 = time.perf_counter()
        if solver == "covariance":
            rows = budget // (3 * row_bytes)
            feats = Features(view, reduce="none", block_rows=rows, progress=False)
            est = PCAEmbedding(10, solver="covariance", metrics=False, progress=False).fit(feats)
        else:
            rows = budget // (16 * row_bytes)  # 2 threads x (float32 + 3 float64 copies)
            feats = Features(view, reduce="none", block_rows=rows, progress=False)
            with dask.config.set(scheduler="threads", num_workers=2):
                est = PCAEmbedding(10, solver="dask", metrics=False, progress=False).fit(feats)
        secs = time.perf_counter() - t0
        peak = meter.stop()
        again: dict[str, float] = {}
        if solver == "dask":  # the same fit again in this process: what is a one-time cost?
            meter2 = PeakRSS()
            ready2 = meter2.rss()
            meter2.start()
            t1 = time.perf_counter()
            with dask.config.set(scheduler="threads", num_workers=2):
                PCAEmbedding(10, solver="dask", metrics=False, progress=False).fit(feats)
            again = {"seconds": time.perf_counter() - t1, "ready": ready2, "peak": meter2.stop()}
    return {
        "again": again,
        "solver": solver,
        "seconds": secs,
        "rss_ready": rss_ready,
        "peak": peak,
        "ratio": np.asarray(est.explained_variance_ratio_).tolist(),
        "coords_bytes": int(est.embedding_.nbytes),
    }


def bench_pca(rows: int, budget: int, where: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ik-pca-", dir=where))
    path = str(tmp / "big.h5")
    try:
        t0 = time.perf_counter()
        child(["--child-make", path, str(rows)])
        make_secs = time.perf_counter() - t0
        size = Path(path).stat().st_size
        results = [child(["--child-pca", path, s, str(budget)]) for s in ("covariance", "dask")]
    finally:
        for p in tmp.glob("*"):
            p.unlink()
        tmp.rmdir()
    mib = 2**20
    print(
        f"PCA to 10 components of {rows:,} x {D_OUT} float32 rows: store {size / mib:,.0f} MiB "
        f"({size / budget:.1f}x the {budget / mib:.0f} MiB budget; written in {make_secs:.0f} s)"
    )
    print(
        "| solver | seconds | RSS ready (MiB) | peak RSS (MiB) | peak - ready (MiB) | top-3 ratio |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        top = ", ".join(f"{v:.4f}" for v in r["ratio"][:3])
        print(
            f"| {r['solver']} | {r['seconds']:.1f} | {r['rss_ready'] / mib:.0f} | "
            f"{r['peak'] / mib:.0f} | {(r['peak'] - r['rss_ready']) / mib:.0f} | {top} |"
        )
        again = r.get("again")
        if again:
            print(
                f"| {r['solver']}, the same fit again in that process | {again['seconds']:.1f} | "
                f"{again['ready'] / mib:.0f} | {again['peak'] / mib:.0f} | "
                f"{(again['peak'] - again['ready']) / mib:.0f} | |"
            )
    a, b = (results[0]["ratio"], results[1]["ratio"])
    print(f"\nlargest relative difference of the explained-variance ratios: "
          f"{max(abs(x - y) / abs(x) for x, y in zip(a, b, strict=True)):.1e}; the coordinates "
          f"({results[0]['coords_bytes'] / mib:.0f} MiB) are part of both peaks")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child"):
        kind, *rest = sys.argv[1:]
        if kind == "--child-capture":
            out = capture_child(int(rest[0]), rest[1], rest[2], int(rest[3]))
        elif kind == "--child-make":
            make_pca_store(rest[0], int(rest[1]))
            out = {}
        else:
            out = pca_child(rest[0], rest[1], int(rest[2]))
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--sizes", default="10000,100000,1000000")
    c.add_argument("--compression", default="none,blosc")
    c.add_argument("--batch", type=int, default=4096)
    p = sub.add_parser("pca")
    p.add_argument("--rows", type=int, default=2**20)  # x 512 float32: 2 GiB
    p.add_argument("--budget-mib", type=int, default=256)
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    if args.what == "capture":
        bench_capture(
            [int(s) for s in args.sizes.split(",")], args.compression.split(","), args.batch
        )
    else:
        bench_pca(args.rows, args.budget_mib * 2**20, args.dir)


if __name__ == "__main__":
    main()
