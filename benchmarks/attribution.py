"""Attribution maps: time and peak memory of inspect_kit vs captum, pytorch-grad-cam and MONAI.

Same model, same inputs, same maths, side by side in one process:

* 2D: torchvision resnet50 at 224 px, batches of 16 (``--quick``: resnet18, 112 px, batch 4);
* 3D: MONAI DenseNet121 (spatial_dims=3) at 96 voxels per side, batch 1 (``--quick``: 48).

Methods: saliency, integrated gradients, guided backprop, Grad-CAM, Grad-CAM++, occlusion.
Peak memory is the growth of the process's resident set during a call, sampled every 5 ms
(CPU), or ``torch.cuda.max_memory_allocated`` (``--device cuda``). Models have random
weights (no downloads). A tool that fails (out of memory, 5-D activations) is reported with
its error, not hidden.

    python benchmarks/attribution.py --quick            # what benchmarks/RESULTS.md shows
    python benchmarks/attribution.py --device cuda      # GPU rows
"""

from __future__ import annotations

import argparse
import gc
import platform
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import psutil
import torch

from inspect_kit.analysis.attribution import attribute


class _Peak:
    def __init__(self, device: str):
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self) -> _Peak:
        gc.collect()
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        self.thread.join()

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _measure(fn: Callable[[], Any], device: str) -> tuple[float, float, str]:
    try:
        with _Peak(device) as p:
            t = time.perf_counter()
            out = fn()
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
        del out
        return dt, p.mb, ""
    except Exception as err:  # noqa: BLE001 - a tool's failure is a result
        return float("nan"), float("nan"), f"{type(err).__name__}: {str(err)[:60]}"


def _tools(model: torch.nn.Module, x: torch.Tensor, layer: str, cfg: dict[str, Any], device: str):
    """(method, tool, callable) for every pairing that exists."""
    import captum.attr as ca

    module = dict(model.named_modules())[layer]
    t = cfg["target"]
    w, steps = cfg["window"], cfg["steps"]
    ours = dict(target=t, layer=layer, progress=False, device=device, memory_budget=cfg["budget"])
    rows: list[tuple[str, str, Callable[[], Any]]] = [
        ("saliency", "inspect_kit", lambda: attribute(model, x, method="saliency", **ours)),
        ("saliency", "captum", lambda: ca.Saliency(model).attribute(x, target=t)),
        (
            "integrated-gradients",
            "inspect_kit",
            lambda: attribute(model, x, method="ig", steps=steps, **ours),
        ),
        (
            "integrated-gradients",
            "captum",
            lambda: ca.IntegratedGradients(model).attribute(x, target=t, n_steps=steps),
        ),
        (
            "guided-backprop",
            "inspect_kit",
            lambda: attribute(model, x, method="guided-backprop", **ours),
        ),
        ("guided-backprop", "captum", lambda: ca.GuidedBackprop(model).attribute(x, target=t)),
        ("gradcam", "inspect_kit", lambda: attribute(model, x, method="gradcam", **ours)),
        (
            "gradcam",
            "captum",
            lambda: ca.LayerGradCam(model, module).attribute(x, target=t, relu_attributions=True),
        ),
        ("gradcam++", "inspect_kit", lambda: attribute(model, x, method="gradcam++", **ours)),
        (
            "occlusion",
            "inspect_kit",
            lambda: attribute(model, x, method="occlusion", window=w, **ours),
        ),
        (
            "occlusion",
            "captum",
            lambda: ca.Occlusion(model).attribute(
                x,
                sliding_window_shapes=(x.shape[1], *[w] * (x.ndim - 2)),
                strides=w,
                target=t,
                perturbations_per_eval=16,
            ),
        ),
    ]
    try:
        from monai.visualize import GradCAM, GradCAMpp

        rows.append(("gradcam", "MONAI", lambda: GradCAM(model, layer).compute_map(x, class_idx=t)))
        rows.append(
            ("gradcam++", "MONAI", lambda: GradCAMpp(model, layer).compute_map(x, class_idx=t))
        )
    except ImportError:
        pass
    try:
        from pytorch_grad_cam import GradCAM as PGC
        from pytorch_grad_cam import GradCAMPlusPlus as PGCpp
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        tg = [ClassifierOutputTarget(t)] * len(x)

        def pgc(cls: Any) -> Any:
            with cls(model=model, target_layers=[module]) as cam:
                return cam(input_tensor=x, targets=tg)

        rows.append(("gradcam", "pytorch-grad-cam", lambda: pgc(PGC)))
        rows.append(("gradcam++", "pytorch-grad-cam", lambda: pgc(PGCpp)))
    except ImportError:
        pass
    return rows


def _cases(
    quick: bool,
) -> list[tuple[str, Callable[[], torch.nn.Module], tuple[int, ...], str, dict[str, Any]]]:
    import torchvision
    from monai.networks.nets import DenseNet121

    size2, bs, size3 = (112, 4, 48) if quick else (224, 16, 96)
    r = "resnet18" if quick else "resnet50"
    return [
        (
            f"{r} {size2} px batch {bs}",
            lambda: getattr(torchvision.models, r)(num_classes=10),
            (bs, 3, size2, size2),
            "layer4",
            dict(
                target=3,
                steps=8 if quick else 32,
                window=size2 // 4 if quick else size2 // 8,
                budget="2GiB",
            ),
        ),
        (
            f"DenseNet121-3D {size3}^3 batch 1",
            lambda: DenseNet121(spatial_dims=3, in_channels=1, out_channels=2),
            (1, 1, size3, size3, size3),
            "class_layers.relu",
            dict(target=1, steps=4 if quick else 32, window=size3 // 4, budget="4GiB"),
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="reduced sizes (CPU, minutes)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", default=None, help="methods to run")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    print(
        f"# {platform.machine()}, {psutil.cpu_count()} CPU, torch {torch.__version__}, device {args.device}"
    )
    for name, make, shape, layer, cfg in _cases(args.quick):
        model = make().eval().to(args.device)
        x = torch.randn(shape, device=args.device)
        print(
            f"\n### {name}, layer {layer}, IG steps {cfg['steps']}, occlusion window {cfg['window']}\n"
        )
        print(
            "| method | tool | seconds | peak MB | time / inspect_kit | note |\n|---|---|---:|---:|---:|---|"
        )
        ours_t: dict[str, float] = {}
        for method, tool, fn in _tools(model, x, layer, cfg, args.device):
            if args.only and method not in args.only:
                continue
            dt, mb, err = _measure(fn, args.device)
            if tool == "inspect_kit":
                ours_t[method] = dt
            ratio = (
                dt / ours_t[method]
                if method in ours_t and ours_t[method] == ours_t[method]
                else float("nan")
            )
            print(f"| {method} | {tool} | {dt:.2f} | {mb:.0f} | {ratio:.2f} | {err} |", flush=True)


if __name__ == "__main__":
    main()
