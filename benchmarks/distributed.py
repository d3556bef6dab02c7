"""Capture with 1 vs N processes under torchrun, and store size / write rate by compression.

    python benchmarks/distributed.py                 # CPU: 1 and 2 processes (gloo)
    python benchmarks/distributed.py --gpus          # GPU machine: 1..all GPUs (nccl), one per rank
    python benchmarks/distributed.py --gpus --samples 65536 --batch 512   # enough work for GPUs

Each run is a real ``torchrun`` job; the time is the capture call alone (the slowest rank's,
from a barrier before to the joined store after), without interpreter start and rendezvous.
The second table captures the same data in one process with each ``compression=``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

N, SIZE, BATCH = 2048, 64, 64


def build(n: int = N) -> tuple[nn.Module, np.ndarray]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10),
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((n, 1, SIZE, SIZE)).astype(np.float32)
    return model, x


def worker(out: str, device: str, n: int = N, batch: int = BATCH) -> None:
    import torch.distributed as dist

    import inspect_kit

    model, x = build(n)
    if device == "cuda":
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)  # NCCL's barrier and gathers run on this rank's GPU
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    dist.barrier()
    t0 = time.perf_counter()
    inspect_kit.capture(
        model, x, ["1", "4", "7", "10"], out, reduce="mean", batch_size=batch, device=device,
        overwrite=True, progress=False,
    ).close()  # fmt: skip
    elapsed = time.perf_counter() - t0
    times = [None] * dist.get_world_size()
    dist.all_gather_object(times, elapsed)
    if dist.get_rank() == 0:
        print("RESULT", json.dumps({"seconds": max(times)}))
    dist.destroy_process_group()


def run_job(nproc: int, device: str, out: Path, n: int = N, batch: int = BATCH) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--nnodes", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
        __file__, "--worker", str(out), "--device", device, "--samples", str(n), "--batch", str(batch),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT"))
    return float(json.loads(line.split(" ", 1)[1])["seconds"])


def compression_rows(tmp: Path) -> list[tuple[str, float, float]]:
    import inspect_kit
    from inspect_kit.capture import WriteOptions

    model, x = build()
    rows = []
    for comp in (None, "gzip", "lzf", "blosc"):
        path = tmp / f"c-{comp}.h5"
        t0 = time.perf_counter()
        inspect_kit.capture(
            model, x[:512], ["1"], path, reduce=None, batch_size=BATCH,
            write=WriteOptions(compression=comp),
            thumbnails=None, progress=False,
        ).close()  # fmt: skip
        secs = time.perf_counter() - t0
        rows.append((str(comp), path.stat().st_size / 2**20, secs))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gpus", action="store_true")
    ap.add_argument("--samples", type=int, default=N, help="samples captured by each job")
    ap.add_argument("--batch", type=int, default=BATCH, help="batch size of each rank")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.device, args.samples, args.batch)
        return
    counts = list(range(1, torch.cuda.device_count() + 1)) if args.gpus else [1, 2]
    device = "cuda" if args.gpus else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        times = {
            k: run_job(k, device, Path(tmp) / f"p{k}.h5", args.samples, args.batch) for k in counts
        }
        print(f"capture of {args.samples} {SIZE}x{SIZE} images, 4 layers pooled, {device}")
        print("| processes | seconds | samples/s | speed-up vs 1 |")
        print("|---|---|---|---|")
        for k, t in times.items():
            print(f"| {k} | {t:.2f} | {args.samples / t:.0f} | {times[counts[0]] / t:.2f}x |")
        print("\ncompression: 512 samples of full (32, 64, 64) float32 ReLU maps (256 MiB raw)")
        print("| compression | file MiB | capture s |")
        print("|---|---|---|")
        for comp, mib, secs in compression_rows(Path(tmp)):
            print(f"| {comp} | {mib:.1f} | {secs:.2f} |")


if __name__ == "__main__":
    main()
