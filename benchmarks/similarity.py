"""Benchmark of representation similarity: minibatch CKA streamed from a store vs plain numpy.

Two layers of N samples x D features (float32, defaults N = 10,000 and D = 50,000: 2 GB
per layer) are written to an activation store through ``inspect_kit.capture`` of a model with
a shared low-rank cause, so that the layers are related (CKA well above 0) but not identical.
Then, each in a fresh child process that reports its own peak resident memory (VmHWM, reset
at exec, so the parent's memory does not leak in):

* ``inspect_kit.similarity(store, layers=[a, b], batch_size=B)``: debiased linear CKA, the
  minibatch estimator of Nguyen et al. (2021), streamed from the store;
* plain numpy on the full matrices, as users write it from Kornblith et al.'s reference code:
  read both layers into memory, centre in float64, Gram matrices N x N, debiased CKA of the
  Grams (``--baseline-dtype float32`` for the cheaper single-precision variant).

Both compute the same quantity (debiased linear CKA of a to b); the table gives wall time, peak
RSS growth above the imports, and the difference of the values.

Run:  .venv/bin/python benchmarks/similarity.py [--n 10000] [--dim 50000] [--batch-size 512]
      [--dir /tmp] [--keep]
The store needs 2 x N x D x 4 bytes of disk, the numpy baseline about 2 x N x D x 8 + 3 x N^2 x 8
bytes of memory: at the defaults 4 GB of disk and 10 GB of RAM. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the store ---------------------------------------------------------------------------------
def make_store(path: Path, n: int, dim: int, rank: int = 32, seed: int = 0) -> None:
    import numpy as np
    import torch
    from torch import nn

    import inspect_kit as ik

    class TwoViews(nn.Module):
        """Two wide, related representations of one low-rank cause (plus independent noise)."""

        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(rank, dim)
            self.b = nn.Sequential(nn.Linear(rank, dim), nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z, noise = x[:, :rank], x[:, rank:]
            a = self.a(z)
            b = self.b[1](self.b[0](z) + noise)  # the hook on b.1 sees the noisy ReLU
            return torch.stack([a.mean(1), b.mean(1)], 1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TwoViews().eval()
    rng = np.random.default_rng(seed)

    def batches():
        for start in range(0, n, 250):
            m = min(250, n - start)
            z = rng.normal(size=(m, rank))
            noise = 0.5 * rng.standard_normal(size=(m, dim), dtype=np.float32)
            yield torch.from_numpy(np.concatenate([z, noise], 1).astype(np.float32))

    ik.capture(model, batches(), ["a", "b.1"], path, thumbnails=None, progress=False).close()


# -- the two workers (child processes) ----------------------------------------------------------
def worker_minibatch(path: str, batch_size: int) -> dict:
    import inspect_kit as ik

    base = _hwm_mb()
    t = time.perf_counter()
    sim = ik.similarity(
        path, layers=["a"], other_layers=["b.1"], batch_size=batch_size, cache=False, progress=False
    )
    took = time.perf_counter() - t
    return {"seconds": took, "value": float(sim.matrix[0, 0]), "rss_mb": _hwm_mb() - base}


def worker_numpy(path: str, dtype: str) -> dict:
    import h5py
    import numpy as np

    import inspect_kit  # noqa: F401  (the same imports as the other worker)

    base = _hwm_mb()
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        X = f["layers/a"][:].astype(dtype)
        Y = f["layers/b.1"][:].astype(dtype)
    X -= X.mean(0)
    Y -= Y.mean(0)

    def unbiased_centre(gram: np.ndarray) -> np.ndarray:  # Kornblith et al.'s reference code
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0, dtype=np.float64) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None].astype(gram.dtype)
        gram -= means[None, :].astype(gram.dtype)
        np.fill_diagonal(gram, 0)
        return gram

    K = unbiased_centre(X @ X.T)
    del X
    L = unbiased_centre(Y @ Y.T)
    del Y
    value = float(
        np.sum(K * L, dtype=np.float64)
        / (np.linalg.norm(K.astype(np.float64)) * np.linalg.norm(L.astype(np.float64)))
    )
    took = time.perf_counter() - t
    return {"seconds": took, "value": value, "rss_mb": _hwm_mb() - base}


def run_child(args: list[str]) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {
            "error": (out.stderr.strip().splitlines() or ["killed"])[-1],
            "returncode": out.returncode,
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="samples")
    p.add_argument("--dim", type=int, default=50_000, help="features per layer")
    p.add_argument("--batch-size", type=int, default=512, help="CKA minibatch size")
    p.add_argument("--baseline-dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--skip-baseline", action="store_true", help="only the streamed estimate")
    p.add_argument("--dir", type=Path, default=None, help="where the temporary store goes")
    p.add_argument("--keep", type=Path, default=None, help="reuse/keep the store at this path")
    p.add_argument("--worker", choices=("minibatch", "numpy"), help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker == "minibatch":
        print(json.dumps(worker_minibatch(args.store, args.batch_size)))
        return
    if args.worker == "numpy":
        print(json.dumps(worker_numpy(args.store, args.baseline_dtype)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="ik_sim_bench_", dir=args.dir))
    path = args.keep or tmp / "two_layers.h5"
    try:
        if not path.exists():
            t = time.perf_counter()
            make_store(path, args.n, args.dim)
            print(
                f"store {path}: {path.stat().st_size / 2**30:.2f} GiB written in "
                f"{time.perf_counter() - t:.0f} s",
                file=sys.stderr,
            )
        rows = [
            (
                "inspect_kit.similarity, minibatch " + str(args.batch_size),
                run_child(
                    [
                        "--worker",
                        "minibatch",
                        "--store",
                        str(path),
                        "--batch-size",
                        str(args.batch_size),
                    ]
                ),
            )
        ]
        if not args.skip_baseline:
            rows.append(
                (
                    f"numpy, full N x N Grams ({args.baseline_dtype})",
                    run_child(
                        [
                            "--worker",
                            "numpy",
                            "--store",
                            str(path),
                            "--baseline-dtype",
                            args.baseline_dtype,
                        ]
                    ),
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the store stays when it is --keep's

    ref = rows[-1][1].get("value")
    print(
        f"\n### similarity: N = {args.n:,}, D = {args.dim:,} (two layers, float32 store "
        f"{2 * args.n * args.dim * 4 / 2**30:.2f} GiB), {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}\n"
    )
    print("| method | seconds | peak RSS growth (MB) | debiased linear CKA | vs numpy |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        if "error" in r:
            print(f"| {name} | failed: {r['error']} (exit {r['returncode']}) | | | |")
            continue
        diff = "" if ref is None or r is rows[-1][1] else f"{abs(r['value'] - ref):.1e}"
        print(f"| {name} | {r['seconds']:.1f} | {r['rss_mb']:.0f} | {r['value']:.4f} | {diff} |")
    if len(rows) == 2 and all("error" not in r for _, r in rows):
        a, b = rows[0][1], rows[1][1]
        print(
            f"\n- time: streamed {a['seconds'] / b['seconds']:.2f}x numpy; "
            f"peak memory: {a['rss_mb']:.0f} MB vs {b['rss_mb']:.0f} MB "
            f"({b['rss_mb'] / max(a['rss_mb'], 1):.1f}x less)"
        )


if __name__ == "__main__":
    main()
