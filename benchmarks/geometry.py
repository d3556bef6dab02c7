"""Which library should reorient and resample medical volumes? Time and accuracy on MNI152.

Real data: nilearn's MNI152 T1 template (1 mm, 197 x 233 x 189), shipped inside nilearn.

1. Reorientation: the template stored with flipped and permuted axes (an 'SPL' affine) back to
   RAS. nibabel (`as_closest_canonical`, what inspect_kit uses through nibabel.orientations)
   against MONAI's `Orientation`. Both must be exact (no interpolation); we time them.
2. Upsampling 2 mm -> 1 mm: the template averaged over 2x2x2 blocks (a 2 mm acquisition of the
   same anatomy), resampled back to 1 mm. The 1 mm template is the truth: every method's
   output grid keeps the field of view, so its voxels sit exactly on the template's.
3. Downsampling 1 mm -> 3 mm: the truth is the mean over each 3x3x3 block (what a 3 mm voxel
   integrates). Methods without antialiasing sample every third voxel and alias.

Methods: inspect_kit (nibabel.processing.resample_from_to, trilinear, Gaussian pre-filter
sigma=(factor-1)/2 when downsampling), nibabel cubic (order 3), MONAI `Spacing` (bilinear),
torch `F.interpolate` (trilinear, align_corners=False; 'area' for the box mean).

Run: ``python benchmarks/geometry.py`` (about a minute on 2 cores). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np


def _timed(fn: Callable[[], np.ndarray], rounds: int) -> tuple[np.ndarray, float]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))  # type: ignore[return-value]


def _errors(out: np.ndarray, truth: np.ndarray, margin: int = 3) -> tuple[float, float]:
    """Relative RMSE and max error inside a margin (edges depend on padding rules)."""
    inner = (slice(margin, -margin),) * 3
    common = tuple(slice(0, min(a, b)) for a, b in zip(out.shape, truth.shape, strict=True))
    out, truth = out[common], truth[common]
    diff = (out - truth)[inner]
    scale = float(np.abs(truth[inner]).max())
    return float(np.sqrt(np.mean(diff**2)) / scale), float(np.abs(diff).max() / scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import nibabel as nib
    import torch
    import torch.nn.functional as F
    from nilearn.datasets import load_mni152_template

    from inspect_kit.data.geometry import Volume, reorient, resample_to_spacing

    torch.set_num_threads(1)
    img = load_mni152_template(resolution=1)
    t1 = np.asarray(img.get_fdata(), dtype=np.float32)
    aff1 = np.asarray(img.affine, dtype=np.float64)
    rows: list[tuple[str, str, float, float, float]] = []

    # -- 1. reorientation ----------------------------------------------------------------------
    stored = np.ascontiguousarray(t1.transpose(2, 1, 0)[:, ::-1, ::-1])  # (S, P, L)
    perm = np.zeros((4, 4))
    perm[2, 0] = perm[3, 3] = 1
    perm[1, 1] = perm[0, 2] = -1
    perm[:3, 3] = [t1.shape[0] - 1, t1.shape[1] - 1, 0]
    aff_spl = aff1 @ perm
    vol = Volume(stored[None], aff_spl)
    out, t = _timed(lambda: reorient(vol).array[0], args.rounds)
    rows.append(("reorient SPL->RAS", "inspect_kit (nibabel.orientations)", t, *_errors(out, t1)))
    try:
        from monai.data import MetaTensor
        from monai.transforms import Orientation, Spacing

        orient = Orientation(axcodes="RAS")
        mt = MetaTensor(torch.from_numpy(stored[None]), affine=torch.from_numpy(aff_spl))
        out, t = _timed(lambda: orient(mt).numpy()[0], args.rounds)
        rows.append(("reorient SPL->RAS", "MONAI Orientation", t, *_errors(out, t1)))
    except ImportError:
        Spacing = None  # noqa: N806

    # -- 2. upsampling 2 mm -> 1 mm -------------------------------------------------------------
    even = t1[: t1.shape[0] // 2 * 2, : t1.shape[1] // 2 * 2, : t1.shape[2] // 2 * 2]
    n2 = tuple(s // 2 for s in even.shape)
    t2 = even.reshape(n2[0], 2, n2[1], 2, n2[2], 2).mean(axis=(1, 3, 5))
    aff2 = aff1 @ np.array([[2, 0, 0, 0.5], [0, 2, 0, 0.5], [0, 0, 2, 0.5], [0, 0, 0, 1.0]])
    v2 = Volume(t2[None], aff2)
    methods: dict[str, Callable[[], np.ndarray]] = {
        "inspect_kit (nibabel, trilinear)": lambda: resample_to_spacing(v2, (1, 1, 1)).array[0],
        "nibabel cubic (order 3)": lambda: resample_to_spacing(v2, (1, 1, 1), order=3).array[0],
        "torch F.interpolate trilinear": lambda: F.interpolate(
            torch.from_numpy(t2)[None, None], size=even.shape, mode="trilinear"
        )[0, 0].numpy(),
    }
    if Spacing is not None:
        sp1 = Spacing(pixdim=(1, 1, 1), mode="bilinear")
        mt2 = MetaTensor(torch.from_numpy(t2[None]), affine=torch.from_numpy(aff2))
        methods["MONAI Spacing bilinear"] = lambda: sp1(mt2).numpy()[0]
    # MONAI keeps the first voxel centre and (n - 1) * old / new + 1 voxels: its grid sits
    # half a 1 mm voxel off the template's, where the truth is the mean of 2x2x2 neighbours
    shifted = even
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        shifted = 0.5 * (shifted[tuple(lo)] + shifted[tuple(hi)])
    for name, fn in methods.items():
        out, t = _timed(fn, args.rounds)
        monai = name.startswith("MONAI")
        label = name + (f" (its own grid {out.shape})" if monai else "")
        rows.append(("upsample 2 mm -> 1 mm", label, t, *_errors(out, shifted if monai else even)))

    # -- 3. downsampling 1 mm -> 3 mm ------------------------------------------------------------
    three = t1[: t1.shape[0] // 3 * 3, : t1.shape[1] // 3 * 3, : t1.shape[2] // 3 * 3]
    n3 = tuple(s // 3 for s in three.shape)
    box = three.reshape(n3[0], 3, n3[1], 3, n3[2], 3).mean(axis=(1, 3, 5))
    v1 = Volume(three[None], aff1)
    methods = {
        "inspect_kit (Gaussian + nibabel trilinear)": lambda: resample_to_spacing(
            v1, (3, 3, 3)
        ).array[0],
        "nibabel trilinear, no antialiasing": lambda: resample_to_spacing(
            v1, (3, 3, 3), antialias=False
        ).array[0],
        "torch F.interpolate trilinear": lambda: F.interpolate(
            torch.from_numpy(three)[None, None], size=n3, mode="trilinear"
        )[0, 0].numpy(),
        "torch F.interpolate area (= the box mean here)": lambda: F.interpolate(
            torch.from_numpy(three)[None, None], size=n3, mode="area"
        )[0, 0].numpy(),
    }
    if Spacing is not None:
        sp3 = Spacing(pixdim=(3, 3, 3), mode="bilinear")
        mt1 = MetaTensor(torch.from_numpy(three[None]), affine=torch.from_numpy(aff1))
        methods["MONAI Spacing bilinear"] = lambda: sp3(mt1).numpy()[0]
    from scipy import ndimage

    # MONAI's 3 mm voxel j is centred on 1 mm voxel 3j: the box mean around it
    box_monai = ndimage.uniform_filter(three, size=3, mode="nearest")[::3, ::3, ::3]
    for name, fn in methods.items():
        out, t = _timed(fn, args.rounds)
        truth = box_monai if name.startswith("MONAI") else box
        rows.append(("downsample 1 mm -> 3 mm", name, t, *_errors(out, truth, 1)))

    print(
        f"geometry on MNI152 1 mm {t1.shape}, {platform.machine()}, torch threads 1, "
        f"nibabel {nib.__version__}, median of {args.rounds}\n"
    )
    print("| task | method | seconds | rel. RMSE | rel. max error |")
    print("|---|---|---:|---:|---:|")
    for task, name, t, rmse, mx in rows:
        print(f"| {task} | {name} | {t:.2f} | {rmse:.4f} | {mx:.4f} |")


if __name__ == "__main__":
    main()
