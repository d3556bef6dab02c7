"""Capture throughput and memory, side by side in one process.

Compares, on the same model, inputs and layers:

* a plain forward pass (the bound);
* a hand-written hooks loop that copies full maps to the host and keeps them in RAM
  (what users write today);
* torchvision's ``create_feature_extractor`` (full maps, kept in RAM);
* ``inspect_kit.capture`` with spatial-mean pooling, to HDF5;
* ``inspect_kit.capture`` with full maps, to HDF5;
* a raw h5py write of the same bytes (the disk bound);
* TorchLens, when installed (run last: it wraps torch functions for the rest of the process).

It prints images/s, ratios to the plain forward, MB/s written and the peak RSS growth of each
method, then checks that peak RSS of a full-map capture stays flat when the data grows 8x
(two child processes). ``--record`` appends a dated table to benchmarks/RESULTS.md.

Run: ``python benchmarks/capture.py`` (resnet50 at 224 px; ``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import inspect_kit
from inspect_kit.store import writer

HERE = Path(__file__).resolve().parent


class PeakRSS:
    """Sample this process's RSS in a thread; report the peak growth over the start."""

    def __init__(self, interval: float = 0.01):
        self.proc = psutil.Process()
        self.interval = interval

    def __enter__(self):
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(x: torch.Tensor, bs: int):
    for s in range(0, len(x), bs):
        yield x[s : s + bs]


def run_plain(model, x, bs, device):
    with torch.no_grad():
        for b in batches(x, bs):
            model(b.to(device, non_blocking=True))
    sync(device)


def run_hooks_ram(model, x, bs, device, layers):
    kept = {n: [] for n in layers}
    mods = dict(model.named_modules())
    handles = [
        mods[n].register_forward_hook(lambda m, i, o, n=n: kept[n].append(o.detach().cpu().clone()))
        for n in layers
    ]
    try:
        with torch.no_grad():
            for b in batches(x, bs):
                model(b.to(device, non_blocking=True))
        sync(device)
    finally:
        for h in handles:
            h.remove()
    return sum(t.numel() * t.element_size() for v in kept.values() for t in v)


def run_feature_extractor(model, x, bs, device, layers):
    fe = create_feature_extractor(model, {n: n for n in layers})
    kept = []
    with torch.no_grad():
        for b in batches(x, bs):
            out = fe(b.to(device, non_blocking=True))
            kept.append({k: v.cpu() for k, v in out.items()})
    sync(device)
    return kept


def run_inspect(model, x, bs, device, layers, reduce, path):
    store = inspect_kit.capture(
        model,
        x,
        layers,
        path,
        reduce=reduce,
        device=device,
        batch_size=bs,
        overwrite=True,
        progress=False,
        thumbnails=None,
    )
    nbytes = sum(store[n][:1].nbytes for n in store.layers) * len(store)
    store.close()
    return nbytes


def run_inspect_unchecked(model, x, bs, device, layers, reduce, path):
    """The same capture without per-chunk Fletcher32 checksums: their cost, side by side."""
    writer.FLETCHER32 = False
    try:
        return run_inspect(model, x, bs, device, layers, reduce, path)
    finally:
        writer.FLETCHER32 = True


def run_raw_h5py(nbytes_per_image: int, n: int, bs: int, path: Path) -> float:
    """Write n rows of nbytes_per_image in batches, return seconds."""
    row = nbytes_per_image // 4
    data = np.random.default_rng(0).standard_normal((bs, row), dtype=np.float32)
    t0 = time.perf_counter()
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset(
            "x",
            shape=(0, row),
            maxshape=(None, row),
            chunks=(max(1, (1 << 20) // (row * 4)) or 1, row),
            dtype="f4",
        )
        for s in range(0, n, bs):
            k = min(bs, n - s)
            ds.resize(s + k, axis=0)
            ds[s : s + k] = data[:k]
            f.flush()
    return time.perf_counter() - t0


def run_torchlens(model, x, bs, device, layers):
    import torchlens as tl

    kept = []
    for b in batches(x, bs):
        out = tl.extract(model, b.to(device), layers)
        kept.append({k: v.detach().cpu() for k, v in out.items()})
    sync(device)
    return kept


def rss_child(args) -> None:
    """Child process: capture full maps of n images, print peak RSS (MB) and MB written.

    RSS is sampled, not read from ru_maxrss: Linux carries the parent's peak across fork+exec.
    """
    model = getattr(torchvision.models, args.rss_model)().eval()
    g = torch.Generator().manual_seed(0)
    # batches made on the fly, so that the inputs themselves do not grow with n
    x = (
        torch.randn(16, 3, args.rss_size, args.rss_size, generator=g)
        for _ in range(args.rss_n // 16)
    )
    with tempfile.TemporaryDirectory() as d, PeakRSS() as rss:
        inspect_kit.capture(
            model,
            x,
            ["layer1", "layer2"],
            Path(d) / "s.h5",
            batch_size=16,
            progress=False,
            thumbnails=None,
        ).close()
        written = os.path.getsize(Path(d) / "s.h5")
    print(f"{rss.peak / 2**20:.1f} {written / 2**20:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--n", type=int, default=64, help="images per method")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--layers", nargs="+", default=["layer1", "layer2", "layer3", "layer4"])
    p.add_argument("--quick", action="store_true", help="resnet18 at 112 px, 32 images")
    p.add_argument(
        "--target",
        action="store_true",
        help="the issue's target setting: resnet18 at 96 px, 256 images, batches of 32",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the median is reported"
    )
    p.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    p.add_argument("--no-rss-check", action="store_true")
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rss-model", default="resnet18")
    p.add_argument("--rss-size", type=int, default=112)
    p.add_argument("--rss-n", type=int, default=64)
    args = p.parse_args()
    if args.rss_child:
        rss_child(args)
        return
    if args.quick:
        args.model, args.size, args.n = "resnet18", 112, 32
    if args.target:
        args.model, args.size, args.n, args.batch = "resnet18", 96, 256, 32
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)().eval().to(device)
    x = torch.randn(args.n, 3, args.size, args.size)
    if device.type == "cuda":
        x = x.pin_memory()
    tmp = Path(tempfile.mkdtemp())

    # warm-up (allocator, cudnn autotune)
    run_plain(model, x[: args.batch], args.batch, device)

    methods = [
        ("plain forward", run_plain, (model, x, args.batch, device)),
        (
            "hand-written hooks, full maps to RAM",
            run_hooks_ram,
            (model, x, args.batch, device, args.layers),
        ),
        (
            "torchvision feature extractor, full maps to RAM",
            run_feature_extractor,
            (model, x, args.batch, device, args.layers),
        ),
        (
            "inspect_kit.capture reduce='mean' -> HDF5",
            run_inspect,
            (model, x, args.batch, device, args.layers, "mean", tmp / "pooled.h5"),
        ),
        (
            "inspect_kit.capture full maps -> HDF5",
            run_inspect,
            (model, x, args.batch, device, args.layers, None, tmp / "full.h5"),
        ),
        (
            "inspect_kit.capture full maps -> HDF5, no Fletcher32",
            run_inspect_unchecked,
            (model, x, args.batch, device, args.layers, None, tmp / "unchecked.h5"),
        ),
    ]
    # Interleaved rounds, median per method: machine noise hits every method alike.
    samples: dict[str, list[tuple[float, float, int | None]]] = {m[0]: [] for m in methods}
    for rnd in range(args.rounds):
        for name, fn, a in methods:
            gc.collect()  # free the previous method's results outside the timed region
            with PeakRSS() as rss:
                t0 = time.perf_counter()
                out = fn(*a)
                sec = time.perf_counter() - t0
            samples[name].append((sec, rss.growth_mb, out if isinstance(out, int) else None))
            del out
            print(
                f"round {rnd + 1}: {name:<48} {args.n / sec:9.1f} img/s  rss +{rss.growth_mb:8.1f} MB",
                flush=True,
            )
    rows = []
    for name, _, _ in methods:
        secs = sorted(v[0] for v in samples[name])
        sec = secs[len(secs) // 2]
        nbytes = samples[name][0][2]
        rows.append(
            {
                "method": name,
                "sec": sec,
                "ips": args.n / sec,
                "mbps": (nbytes / 2**20 / sec) if nbytes else None,
                "rss": max(v[1] for v in samples[name]),
            }
        )
    full_bytes = samples["inspect_kit.capture full maps -> HDF5"][0][2]
    sec = sorted(
        run_raw_h5py(full_bytes // args.n, args.n, args.batch, tmp / "raw.h5") for _ in range(3)
    )[1]
    rows.append(
        {
            "method": "raw h5py write of the same bytes",
            "sec": sec,
            "ips": args.n / sec,
            "mbps": full_bytes / 2**20 / sec,
            "rss": None,
        }
    )
    try:
        import torchlens  # noqa: F401

        with PeakRSS() as rss:
            t0 = time.perf_counter()
            run_torchlens(model, x, args.batch, device, args.layers)
            sec = time.perf_counter() - t0
        rows.append(
            {
                "method": "TorchLens extract, full maps to RAM (run once, last)",
                "sec": sec,
                "ips": args.n / sec,
                "mbps": None,
                "rss": rss.growth_mb,
            }
        )
    except ImportError:
        print("TorchLens not installed: skipped")

    # reading back: open (size and extent checks) and a full verify (every chunk's checksum)
    t0 = time.perf_counter()
    with inspect_kit.open_store(tmp / "full.h5") as store:
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.verify()
        t_verify = time.perf_counter() - t0
    size_mb = os.path.getsize(tmp / "full.h5") / 2**20
    integrity_line = (
        f"integrity: open_store {t_open * 1e3:.1f} ms; verify() of the {size_mb:.0f} MB full-map "
        f"store {t_verify:.2f} s ({size_mb / t_verify:.0f} MB/s)"
    )
    print(integrity_line)

    plain = rows[0]["ips"]
    by = {r["method"]: r for r in rows}
    pooled = by["inspect_kit.capture reduce='mean' -> HDF5"]["ips"]
    full = by["inspect_kit.capture full maps -> HDF5"]["ips"]
    unchecked = by["inspect_kit.capture full maps -> HDF5, no Fletcher32"]["ips"]
    raw = by["raw h5py write of the same bytes"]["ips"]
    bound = min(plain, raw)

    rss_line = ""
    if not args.no_rss_check:
        res = []
        for n in (args.rss_n, 8 * args.rss_n):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--rss-child",
                    "--rss-n",
                    str(n),
                    "--rss-model",
                    args.rss_model,
                    "--rss-size",
                    str(args.rss_size),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            res.append(tuple(float(v) for v in out.stdout.split()[-2:]))
        (r1, w1), (r8, w8) = res
        rss_line = (
            f"peak RSS of a full-map capture ({args.rss_model}, {args.rss_size} px, layer1+layer2): "
            f"{r1:.0f} MB writing {w1:.0f} MB, {r8:.0f} MB writing {w8:.0f} MB (8x data): "
            f"{(r8 / r1 - 1) * 100:+.1f}% (target within 20%)"
        )
        print(rss_line)

    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    )
    lines = [
        f"### capture — {args.model} at {args.size} px, batch {args.batch}, {args.n} images, "
        f"{device.type} ({machine}), {torch.get_num_threads()} torch threads, "
        f"{dt.date.today().isoformat()}",
        "",
        "| method | images/s | x plain forward | MB/s to HDF5 / RAM | peak RSS growth (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mbps = "" if r["mbps"] is None else f"{r['mbps']:.0f}"
        rss = "" if r["rss"] is None else f"{r['rss']:.0f}"
        lines.append(
            f"| {r['method']} | {r['ips']:.1f} | {r['ips'] / plain:.2f} | {mbps} | {rss} |"
        )
    lines += [
        "",
        f"- pooled capture: {pooled / plain:.2f}x the plain forward (target >= 0.95x)",
        f"- full maps to HDF5: {full / bound:.2f}x the slower bound min(plain forward, raw h5py) "
        f"= {bound:.1f} images/s (target >= 0.9x)",
        f"- Fletcher32 checksums: full maps at {full / unchecked:.2f}x the same capture without "
        f"them; {integrity_line}",
    ]
    if rss_line:
        lines.append(f"- {rss_line}")
    table = "\n".join(lines)
    print()
    print(table)
    if args.record:
        with open(HERE / "RESULTS.md", "a") as f:
            f.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
