"""``attribute``: one call shape for every attribution method, on samples, batches and datasets."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.capture import state_dict_sha256
from inspect_kit.capture.inputs import make_stream
from inspect_kit.hooks import on_device

from ._budget import forward_measured, parse_bytes, rows_per_batch
from ._cam import cam_maps, upsample
from ._gradients import Runner, integrated_gradients, make_baseline, smoothgrad
from ._guard import model_guard
from ._guided import guided_relus
from ._layers import choose_cam_layer, find_token_grid
from ._lrp import default_composite, lrp
from ._occlusion import occlusion, to_voxels
from ._options import METHODS, AttributionOptions, canonical_method, method_params
from ._result import Attribution
from ._targets import TargetLike, resolve_target, select_model_output

__all__ = ["attribute", "iter_attributions", "spatial_dims"]

logger = logging.getLogger(__name__)

_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}


def spatial_dims(model: nn.Module, default: int = 2) -> int:
    """Spatial axes the model's first convolution expects (``default`` when it has none).

    Examples
    --------
    >>> spatial_dims(nn.Sequential(nn.Conv3d(1, 2, 3))), spatial_dims(nn.Linear(2, 2))
    (3, 2)
    """
    for m in model.modules():
        for t, n in _CONVS.items():
            if isinstance(m, t):
                return n
    return default


class _Progress:
    def __init__(self, enabled: bool, desc: str):
        self.bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=desc, unit="row", leave=False)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _one_batch(
    model: nn.Module,
    x: torch.Tensor,
    labels: np.ndarray | None,
    method: str,
    target: TargetLike,
    layer: str | None,
    output: str | None,
    opts: AttributionOptions,
    rows: int | None,
    budget: int,
    spacing: Sequence[float] | None,
    generator: torch.Generator,
    progress: Callable[[int], None],
) -> dict[str, Any]:
    """Maps of one batch (model already guarded, on its device, in the chosen mode)."""
    notes: list[str] = []
    out, row_bytes = forward_measured(model, x)  # one forward: the target and the memory cost
    resolved = resolve_target(target, out, labels=labels, output=output)
    with torch.no_grad():
        base_scores = resolved.scores(out)  # f(x): no second forward needed
    y = select_model_output(out, output)
    predictions = y.argmax(1).cpu().numpy() if y.ndim == 2 else None
    n_rows = rows_per_batch(row_bytes, budget, rows)
    run = Runner(model, resolved, n_rows)
    owner = torch.arange(len(x), device=x.device)
    res: dict[str, Any] = {
        "notes": notes,
        "rows": n_rows,
        "target": resolved,
        "predictions": predictions,
    }
    fam = METHODS[method][1]
    if method in ("saliency", "gradient", "input-x-gradient"):
        g, scores = run.grad(x, owner)
        maps = g.abs() if method == "saliency" else g * x if method == "input-x-gradient" else g
        progress(len(x))
    elif fam == "noise":
        rng = x.flatten(1).max(1).values - x.flatten(1).min(1).values
        stds = (
            torch.full((len(x),), float(opts.noise_std))
            if opts.noise_std is not None
            else (opts.noise_level * rng).cpu()
        )
        res["noise_std"] = stds.numpy()
        maps = smoothgrad(run, x, opts.samples, stds, method, generator, progress)
        scores = base_scores
    elif fam == "path":
        base, _ = make_baseline(x, opts.baseline, sigma=opts.blur_sigma, generator=generator)
        maps, fx, fb = integrated_gradients(run, x, base, opts.steps, opts.rule, progress)
        scores = fx
        res["completeness_gap"] = (maps.flatten(1).sum(1) - (fx - fb)).cpu().numpy()
        res["baseline_scores"] = fb.cpu().numpy()
    elif fam == "guided" or method == "guided-gradcam":
        with guided_relus(model) as mode:
            g, scores = run.grad(x, owner)
        if mode.redirected == 0:
            notes.append(
                "guided backpropagation saw no ReLU in this model: the map is the plain gradient"
            )
        for fn, where in sorted(mode.unseen.items()):
            notes.append(
                f"guided backpropagation cannot see {fn} (called in {', '.join(sorted(where))}): "
                "only ReLUs are guided, other nonlinearities pass plain gradients"
            )
        maps = g
        progress(len(x))
    elif fam == "perturbation":
        n_sp = x.ndim - 2
        window = (
            to_voxels(opts.window, opts.window_mm, spacing, n_sp, "window")
            if (opts.window is not None or opts.window_mm is not None)
            else tuple(max(1, s // 8) for s in x.shape[2:])
        )
        stride = (
            to_voxels(opts.stride, opts.stride_mm, spacing, n_sp, "stride")
            if (opts.stride is not None or opts.stride_mm is not None)
            else window
        )
        res["window"], res["stride"] = window, stride
        maps, scores = occlusion(
            run, x, window, stride, opts.occlusion_value, progress, base=base_scores
        )
    elif fam == "lrp":
        composite, note = (
            default_composite(model, opts.epsilon)
            if opts.composite is None
            else (opts.composite, None)
        )
        maps, lrp_notes = lrp(run, x, composite)
        scores = base_scores
        notes.extend(([note] if note else []) + lrp_notes)
        progress(len(x))
    if fam == "cam":
        layer_maps = _cam(run, model, x, layer, opts, method, res)
        up = upsample(layer_maps, tuple(x.shape[2:]), opts.interpolation)
        if method == "guided-gradcam":
            maps = maps * up  # guided gradients (per channel) x the upsampled Grad-CAM
        else:
            maps = up
            scores = base_scores
            progress(len(x))
        res["layer_maps"] = layer_maps.detach().cpu().numpy()
    res["maps"] = maps.detach().cpu().numpy().astype(np.float32, copy=False)
    res["scores"] = scores.detach().cpu().numpy()
    return res


def _cam(
    run: Runner,
    model: nn.Module,
    x: torch.Tensor,
    layer: str | None,
    opts: AttributionOptions,
    method: str,
    res: dict[str, Any],
) -> torch.Tensor:
    tokens = find_token_grid(model, opts.token_grid, opts.prefix_tokens)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = choose_cam_layer(
            model, x, layer, min_resolution=opts.min_resolution, tokens=tokens
        )
    for w in caught:
        res["notes"].append(str(w.message))
    res["layer"], res["layer_resolution"] = chosen.spec, chosen.resolution
    if min(chosen.resolution) < opts.min_resolution:
        res["notes"].append(
            f"the CAM layer {chosen.spec!r} has a {'x'.join(map(str, chosen.resolution))} grid, "
            f"coarser than {opts.min_resolution} positions per axis: the map can only show where "
            "in a few large blocks the model looks; pick an earlier layer with layer="
        )
    variant = "gradcam++" if method == "gradcam++" else "gradcam"
    return cam_maps(run, chosen, x, variant, relu=opts.relu or method == "guided-gradcam")


def iter_attributions(
    model: nn.Module,
    inputs: Any,
    *,
    method: str,
    target: TargetLike = "predicted",
    layer: str | None = None,
    output: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    memory_budget: int | float | str | None = None,
    labels: Any = None,
    spacing: Sequence[float] | None = None,
    options: AttributionOptions | None = None,
    random_state: int = 0,
    progress: bool = True,
    data_batch_size: int | None = None,
) -> Iterator[Attribution]:
    """Like :func:`attribute`, one :class:`Attribution` per data batch (for large datasets:
    the store writer consumes these as they come). Same parameters as :func:`attribute`."""
    method = canonical_method(method)
    opts = options or AttributionOptions()
    if data_batch_size is None and isinstance(inputs, torch.Tensor | np.ndarray):
        t = torch.as_tensor(inputs)
        if t.ndim == spatial_dims(model) + 1:
            inputs = t.unsqueeze(0)  # one sample (C, *spatial)
    stream = make_stream(inputs, batch_size=data_batch_size, labels=labels)
    budget = parse_bytes(memory_budget)
    sha = state_dict_sha256(model)
    signed = METHODS[method][0] or (method in ("gradcam", "gradcam++") and not opts.relu)
    generator = torch.Generator().manual_seed(int(random_state))
    bar = _Progress(progress, method)
    try:
        with on_device(model, device) as dev, model_guard(model, batchnorm=opts.batchnorm) as guard:
            for batch in stream.batches:
                x = batch.x.to(dev)
                if not x.is_floating_point():
                    x = x.float()
                if x.ndim < 3:
                    raise ValueError(
                        f"inputs of shape {tuple(x.shape)} have no spatial axes; attribution maps "
                        "need images (N, C, H, W) or volumes (N, C, D, H, W)"
                    )
                r = _one_batch(
                    model,
                    x,
                    batch.y,
                    method,
                    target,
                    layer,
                    output,
                    opts,
                    batch_size,
                    budget,
                    spacing,
                    generator,
                    bar,
                )
                params = method_params(method, opts)
                params.update(target=_target_key(target), output=output, random_state=random_state)
                logger.debug("%s: %d row(s) per model call", method, r["rows"])
                for k in ("window", "stride"):
                    if k in r:
                        params[k] = list(r[k])
                if "layer" in r:
                    params["layer"] = r["layer"]
                resolved = r["target"]
                classes = (
                    resolved.classes.cpu().numpy()
                    if resolved.classes is not None
                    else np.full(len(x), -1, dtype=np.int64)
                )
                notes = list(guard.warnings) + list(dict.fromkeys(r["notes"]))
                for note in r["notes"]:
                    warnings.warn(note, stacklevel=3)
                yield Attribution(
                    maps=r["maps"],
                    method=method,
                    params=params,
                    targets=resolved.descriptions,
                    target_classes=classes,
                    scores=r["scores"],
                    model_sha256=sha,
                    signed=signed,
                    layer=r.get("layer"),
                    layer_resolution=r.get("layer_resolution"),
                    layer_maps=r.get("layer_maps"),
                    index=batch.index,
                    labels=None if batch.y is None else np.asarray(batch.y),
                    predictions=r["predictions"],
                    completeness_gap=r.get("completeness_gap"),
                    spacing=None if spacing is None else tuple(float(s) for s in spacing),
                    warnings=notes,
                )
    finally:
        bar.close()


def _target_key(target: Any) -> Any:
    if isinstance(target, str | int):
        return target
    if callable(target) and not isinstance(target, torch.Tensor | np.ndarray):
        describe = getattr(target, "describe", None)
        return (
            describe() if callable(describe) else getattr(target, "__name__", type(target).__name__)
        )
    return np.asarray(target).tolist()


def _concat(parts: list[Attribution]) -> Attribution:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def cat(name: str) -> Any:
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else np.concatenate(vals)

    return Attribution(
        maps=cat("maps"),
        method=first.method,
        params=first.params,
        targets=[t for p in parts for t in p.targets],
        target_classes=cat("target_classes"),
        scores=cat("scores"),
        model_sha256=first.model_sha256,
        signed=first.signed,
        layer=first.layer,
        layer_resolution=first.layer_resolution,
        layer_maps=cat("layer_maps"),
        index=cat("index"),
        labels=cat("labels"),
        predictions=cat("predictions"),
        completeness_gap=cat("completeness_gap"),
        spacing=first.spacing,
        warnings=list(dict.fromkeys(w for p in parts for w in p.warnings)),
    )


def attribute(
    model: nn.Module,
    inputs: Any,
    *,
    method: str,
    target: TargetLike = "predicted",
    layer: str | None = None,
    output: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    memory_budget: int | float | str | None = None,
    labels: Any = None,
    spacing: Sequence[float] | None = None,
    options: AttributionOptions | None = None,
    random_state: int = 0,
    progress: bool = True,
    **overrides: Any,
) -> Attribution:
    """Attribution maps: which parts of each input drove the model's output.

    Parameters
    ----------
    model : nn.Module
        The network; it comes back exactly as it went in (see :func:`model_guard`).
    inputs : tensor, array, Dataset, DataLoader or iterable of batches
        One sample ``(C, *spatial)``, a batch ``(N, C, H, W)`` / ``(N, C, D, H, W)`` (any C),
        or a dataset, read like :func:`inspect_kit.capture` reads it (``(x, y)`` tuples or
        dicts with an ``x``/``image``/``input`` key; the labels feed ``target="label"``).
    method : str
        ``"saliency"`` (|gradient|), ``"gradient"``, ``"input-x-gradient"``, ``"smoothgrad"``,
        ``"smoothgrad-squared"``, ``"vargrad"``, ``"integrated-gradients"``,
        ``"guided-backprop"``, ``"gradcam"``, ``"gradcam++"``, ``"guided-gradcam"``,
        ``"occlusion"`` or ``"lrp"`` (needs zennit).
    target : int, sequence of int, "predicted", "label", Region or callable
        What is explained (see :func:`resolve_target`); fixed on the unperturbed input.
    layer : str, optional
        The CAM layer in the capture grammar (``"layer4"``, ``"block.relu:1"``,
        ``"enc[0]"``); by default the deepest layer with at least ``min_resolution``
        positions per axis. Recorded with its resolution.
    output : str, optional
        Which output of a tuple/dict model is explained (``"[logits]"``, ``"[0]"``).
    device : str or torch.device, optional
        Where to compute; the model is moved there and back. None: where the model is.
    batch_size : int, optional
        Rows (IG path points, SmoothGrad copies, occluded inputs) per model call; by default
        as many as ``memory_budget`` holds.
    memory_budget : int, float or str, optional
        Memory for one model call (``"2GiB"``, the default).
    labels : array, optional
        True labels, one per sample (for ``target="label"``).
    spacing : sequence of float, optional
        Voxel size in mm per spatial axis (occlusion ``window_mm``; kept with the maps).
    options : AttributionOptions, optional
        Method options; ``**overrides`` change single ones (``steps=32``, ``baseline="blurred"``).
    random_state : int
        Seeds SmoothGrad's noise and uniform baselines; recorded.
    progress : bool
        Show a progress bar (tqdm.auto).

    Returns
    -------
    Attribution
        Maps ``(N, C or 1, *spatial)`` as computed, the targets in words, every parameter,
        the model's sha256, the CAM layer and resolution, IG's completeness gap, warnings.

    Examples
    --------
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(4, 3))
    >>> x = torch.randn(2, 1, 16, 16)
    >>> a = attribute(net, x, method="integrated-gradients", steps=16, progress=False)
    >>> a.maps.shape, a.targets[0].endswith("(predicted)")
    ((2, 1, 16, 16), True)
    >>> bool(abs(a.completeness_gap).max() < 1e-2)
    True
    """
    opts = (options or AttributionOptions()).updated(**overrides)
    parts = list(
        iter_attributions(
            model,
            inputs,
            method=method,
            target=target,
            layer=layer,
            output=output,
            device=device,
            batch_size=batch_size,
            memory_budget=memory_budget,
            labels=labels,
            spacing=spacing,
            options=opts,
            random_state=random_state,
            progress=progress,
        )
    )
    if not parts:
        raise ValueError("inputs hold no samples")
    return _concat(parts)
