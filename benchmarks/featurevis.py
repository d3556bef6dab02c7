"""Feature-visualization speed: inspect_kit vs Lucent vs the bare forward+backward bound.

For each model, image size and batch (one channel of ``layer4`` per batch element, Fourier
parameterisation with 3-channel decorrelation, each tool's default robustness transforms),
measures optimisation iterations per second of

- ``bound``: a bare forward + backward of the model to its input at that batch (weights frozen,
  no parameterisation, no transforms): what an activation-maximisation step cannot beat;
- ``bound+wgrad``: the same, also computing weight gradients (what a tool that leaves
  ``requires_grad`` on the weights pays);
- ``inspect_kit``: ``inspect_kit.featurevis.render``;
- ``lucent``: ``lucent.optvis.render.render_vis`` (torch-lucent, when importable).

Usage::

    python benchmarks/featurevis.py                 # --quick: resnet18 at 112 px, ~1-2 min on CPU
    python benchmarks/featurevis.py --full          # resnet18 + resnet50 at 224 px, batch 1 and 16
    python benchmarks/featurevis.py --models resnet50 --size 224 --batch 16 --device cuda --amp
    python benchmarks/featurevis.py --results benchmarks/RESULTS.md   # append table

Weights are random (torchvision ``weights=None``): speed does not depend on them, and nothing
is downloaded. Lucent picks its device itself (CUDA when available), so its rows run on the
GPU whenever one is present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torchvision

from inspect_kit.analysis import featurevis as fv


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# The clock: wall time, or this process's CPU time (robust on a shared CPU when torch runs
# one thread: other processes then do not count). Set in main().
CLOCK: Callable[[], float] = time.perf_counter


def _rate(run: Callable[[int], None], steps: int, device: torch.device, repeat: int) -> float:
    """Iterations per second of ``run(n)`` (which runs ``n`` iterations), best of ``repeat``.

    Timed as the difference between ``run(1 + steps)`` and ``run(1)``, so that what a call
    does once (set-up, a final evaluation) is not counted as iteration cost. The best run,
    not the median: on a shared machine other processes only ever slow a run down.
    """
    run(2)  # warm-up: allocator, cudnn autotuning, lazy imports
    rates = []
    for _ in range(repeat):
        times = []
        for n in (1, 1 + steps):
            _sync(device)
            t0 = CLOCK()
            run(n)
            _sync(device)
            times.append(CLOCK() - t0)
        rates.append(steps / max(times[1] - times[0], 1e-9))
    return max(rates)


def bench_bound(model, batch, size, steps, device, repeat, amp, weight_grads):
    x = torch.rand(batch, 3, size, size, device=device, requires_grad=True)
    grads = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(weight_grads)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def run(n):
        for _ in range(n):
            x.grad = None
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                out = model(x)
            out.float().mean().backward()

    try:
        return _rate(run, steps, device, repeat)
    finally:
        for p, flag in grads.items():
            p.requires_grad_(flag)
            p.grad = None


def bench_inspect_kit(model, batch, size, steps, device, repeat, amp):
    # any 3x3 matrix costs the same; real users estimate it from their data
    decor = fv.channel_decorrelation(torch.rand(64, 3, 16, 16))
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    kw = dict(
        param=fv.fourier(decorrelate=decor),
        value_range=(0.0, 1.0),
        preprocess=lambda x: (x - mean) / std,  # ImageNet normalisation, as Lucent applies
        device=device,
        mixed_precision=amp,
        progress=False,
    )
    obj = fv.channel("layer4", list(range(batch)))
    return _rate(
        lambda n: fv.render(model, obj, (3, size, size), steps=n, **kw), steps, device, repeat
    )


def lucent_available() -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lucent.optvis import render  # noqa: F401
    except Exception as exc:  # ImportError, or kornia incompatible with this torch
        return f"{type(exc).__name__}: {exc}"
    return None


def bench_lucent(model, batch, size, steps, repeat):
    from lucent.optvis import objectives, param, render, transform

    obj = sum(objectives.channel("layer4", i, batch=i) for i in range(batch))

    def run(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            render.render_vis(
                model,
                obj,
                param_f=lambda: param.image(size, batch=batch),
                transforms=transform.standard_transforms,
                thresholds=(n,),
                show_image=False,
                progress=False,
                preprocess=True,
                fixed_image_size=size,
            )

    device = next(model.parameters()).device
    return _rate(run, steps, device, repeat)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}"
    text += f", {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    try:
        text += f", load average {os.getloadavg()[0]:.1f} at start"
    except OSError:
        pass
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="resnet18, 112 px, batch 1 and 8 (default)"
    )
    mode.add_argument(
        "--full", action="store_true", help="resnet18 and resnet50, 224 px, batch 1 and 16"
    )
    ap.add_argument("--models", help="comma-separated torchvision models (resnet18,resnet50)")
    ap.add_argument("--size", type=int, help="image side in pixels")
    ap.add_argument("--batch", help="comma-separated batch sizes (units optimised at once)")
    ap.add_argument("--steps", type=int, help="iterations per timed run")
    ap.add_argument("--repeat", type=int, help="timed runs per row (median reported)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or this process's CPU time (with --threads 1, robust on a shared CPU)",
    )
    ap.add_argument("--amp", action="store_true", help="also measure mixed precision rows")
    ap.add_argument("--no-lucent", action="store_true", help="skip Lucent even if installed")
    ap.add_argument("--results", help="append the table, date and machine to this markdown file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    host = machine()  # before the runs: the load average says how busy the machine was
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    global CLOCK
    if args.clock == "cpu":
        if torch.cuda.is_available() and (args.device or "cuda").startswith("cuda"):
            ap.error("--clock cpu measures CPU runs only")
        CLOCK = time.process_time

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type == "cuda"
    if args.full:
        models, size, batches = ["resnet18", "resnet50"], 224, [1, 16]
        steps, repeat = (20 if gpu else 3), (3 if gpu else 2)
    else:
        models, size, batches = ["resnet18"], 112, [1, 8]
        steps, repeat = (20 if gpu else 3), (3 if gpu else 2)
    models = args.models.split(",") if args.models else models
    size = args.size or size
    batches = [int(b) for b in args.batch.split(",")] if args.batch else batches
    steps = args.steps or steps
    if args.clock == "cpu":
        repeat = 1  # CPU time hardly depends on other processes
    repeat = args.repeat or repeat

    lucent_error = None if not args.no_lucent else "skipped (--no-lucent)"
    if lucent_error is None:
        lucent_error = lucent_available()
    if lucent_error is None and gpu != torch.cuda.is_available():
        lucent_error = "skipped: Lucent always uses CUDA when present, not --device"

    header = (
        "| model | px | batch | device | precision | bound it/s | bound+wgrad it/s "
        "| inspect_kit it/s | vs bound | lucent it/s | vs lucent |"
    )
    lines = [header, "|" + "---|" * 11]
    print(header, flush=True)
    print(lines[1], flush=True)
    for name in models:
        model = getattr(torchvision.models, name)(weights=None).to(device).eval()
        for batch in batches:
            for amp in [False, True] if args.amp else [False]:
                bound = bench_bound(model, batch, size, steps, device, repeat, amp, False)
                wgrad = bench_bound(model, batch, size, steps, device, repeat, amp, True)
                ik = bench_inspect_kit(model, batch, size, steps, device, repeat, amp)
                luc = None
                if lucent_error is None and not amp:
                    luc = bench_lucent(model, batch, size, steps, repeat)
                row = (
                    f"| {name} | {size} | {batch} | {device.type} | "
                    f"{'amp' if amp else 'fp32'} | {bound:.3g} | {wgrad:.3g} | {ik:.3g} | "
                    f"{ik / bound:.2f}x | {'-' if luc is None else f'{luc:.3g}'} | "
                    f"{'-' if luc is None else f'{ik / luc:.2f}x'} |"
                )
                print(row, flush=True)
                lines.append(row)
    notes = [
        f"clock: {args.clock}; it/s = {steps} / (time of {steps + 1} steps - time of 1 step), "
        f"best of {repeat} (set-up and final evaluation not counted)",
        f"lucent: {lucent_error or 'torch-lucent ' + _lucent_version()}",
    ]
    for n in notes:
        print(n)
    if args.results:
        cmd = "python benchmarks/featurevis.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        with open(args.results, "a") as f:
            f.write(f"\n### {stamp} — `{cmd.strip()}`\n\nMachine: {host}\n\n")
            f.write("\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    return 0


def _lucent_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch-lucent")
    except Exception:
        return "(version unknown)"


if __name__ == "__main__":
    sys.exit(main())
