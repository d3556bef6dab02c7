"""Activation maximization: optimise inputs so that units of a trained network fire.

:func:`render` is the entry point. It works for images ``(C, H, W)`` and volumes
``(C, D, H, W)`` of any channel count, keeps the optimised input inside the user's value
range (an intensity window in Hounsfield units, say) mapped through the model's own
preprocessing, optimises one image per unit in a single batch, and gives the model back
exactly as it came (training flags, ``requires_grad``, no hooks), also on error or Ctrl-C.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from inspect_kit.hooks import (
    LayerRecorder,
    model_state_preserved,
    on_device,
    parse_layer_spec,
    resolve_layers,
    select_outputs,
)
from inspect_kit.seeding import RandomState, resolve_seed

from .objectives import INPUT, OUTPUT, Objective, as_objective
from .param import ParamSpec, fourier
from .redirect import redirected_relu
from .transforms import compose, default_transforms

__all__ = ["FeatureVisResult", "intensity_window", "render"]

logger = logging.getLogger(__name__)

Preprocess = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FeatureVisResult:
    """What :func:`render` optimised.

    Attributes
    ----------
    images : ndarray, shape (B, C, H, W) or (B, C, D, H, W)
        The optimised inputs in the user's units (inside ``value_range``).
    inputs : ndarray, same shape
        ``preprocess(images)``: exactly what the model was given.
    trajectory : ndarray, shape (steps, B)
        The objective's score per batch element at each step (on the transformed input).
    final_activations : ndarray, shape (B,)
        The objective's score per batch element on the final, untransformed input.
    labels : list of str
        One label per batch element (``"conv2#3"``).
    units : list of int or None
        The unit (channel, class) of each batch element when the objective names units; used
        to pair images with :func:`~inspect_kit.analysis.featurevis.exemplars.top_exemplars`.
    layer : str or None
        The layer those units belong to.
    objective : str
        Description of the objective.
    value_range : tuple of float or None
    random_state : int
        The seed the run used (drawn when ``render`` got a Generator or None): passing it
        back as ``random_state`` repeats the run.
    params : dict
        The other settings of the call (steps, lr, parameterisation, transforms, device ...).
    flat : ndarray of bool, shape (B,)
        Units whose render says nothing: the objective stayed constant across the steps (e.g.
        exactly 0 for a unit behind a ReLU that never fires, whose gradient is 0), or the
        image has (almost) no contrast. Their images are the starting noise or a uniform
        grey, not what the unit responds to; a warning is logged and figures mark them.
    """

    images: np.ndarray
    inputs: np.ndarray
    trajectory: np.ndarray
    final_activations: np.ndarray
    labels: list[str]
    units: list[int] | None
    layer: str | None
    objective: str
    value_range: tuple[float, float] | None
    random_state: int
    params: dict[str, Any] = field(default_factory=dict)
    flat: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.flat is None:
            self.flat = flat_units(self.trajectory, self.images, self.value_range)

    @property
    def flat_labels(self) -> list[str]:
        """Labels of the :attr:`flat` units."""
        assert self.flat is not None  # set by __post_init__
        return [lab for lab, f in zip(self.labels, self.flat, strict=True) if f]

    @property
    def dim(self) -> int:
        """2 for images, 3 for volumes."""
        return self.images.ndim - 2

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"FeatureVisResult({self.objective}, images={tuple(self.images.shape)}, "
            f"steps={self.trajectory.shape[0]}, random_state={self.random_state})"
        )


def flat_units(
    trajectory: np.ndarray, images: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Which rendered units stayed flat, shape (B,) of bool.

    A unit is flat when its objective did not change over the steps (peak-to-peak at most
    1e-6 of its magnitude, and at least 2 steps), or when its image has no contrast
    (standard deviation below 1e-3 of ``value_range``'s width, or of 1 without a range).

    Examples
    --------
    >>> import numpy as np
    >>> traj = np.array([[0.0, 0.1], [0.0, 0.5], [0.0, 0.9]])
    >>> flat_units(traj, np.random.default_rng(0).random((2, 1, 8, 8)), (0, 1)).tolist()
    [True, False]
    """
    traj = np.asarray(trajectory, dtype=np.float64)
    imgs = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    flat = np.zeros(imgs.shape[0], dtype=bool)
    if traj.ndim == 2 and traj.shape[0] >= 2 and traj.shape[1] == imgs.shape[0]:
        with np.errstate(invalid="ignore"):
            span = np.ptp(traj, axis=0)
            scale = np.maximum(1.0, np.abs(traj).max(axis=0))
            flat |= np.isfinite(span) & (span <= 1e-6 * scale)
    width = (value_range[1] - value_range[0]) if value_range is not None else 1.0
    flat |= imgs.std(axis=1) < 1e-3 * width
    return flat


def intensity_window(level: float, width: float) -> tuple[float, float]:
    """Value range of a display window given by its level (centre) and width.

    Examples
    --------
    >>> intensity_window(-300, 1400)   # CT: -1000 .. 400 HU
    (-1000.0, 400.0)
    """
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}")
    return (float(level) - float(width) / 2, float(level) + float(width) / 2)


class _Activations:
    """What an objective reads in one forward pass, through the package's one hook engine.

    Outputs stay on the autograd graph; the forward stops after the last needed layer unless
    the objective reads the model's output; a module with several outputs must be named with
    ``[i]`` (the rule capture stores them by), and so must the model's output.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        self.output_specs = [
            parse_layer_spec(name) for name in layers if parse_layer_spec(name).module == OUTPUT
        ]
        specs = [
            name for name in layers if name != INPUT and parse_layer_spec(name).module != OUTPUT
        ]
        self.recorder = LayerRecorder(
            resolve_layers(model, specs) if specs else {},
            keep_grad=True,
            every_call=False,
            flatten=False,
            stop_early=not self.output_specs,
        )

    def __enter__(self) -> _Activations:
        self.recorder.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.__exit__(*exc)

    def run(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.recorder.run(model, x)
        acts = self.recorder.tensors()
        for spec in self.output_specs:
            ((_, t),) = select_outputs(out, spec, single=True)
            acts[spec.key] = t
        return acts


def _adam(params: Any, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch supports it for the device."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        logger.debug("fused Adam unavailable on %s; using the default implementation", device)
        return torch.optim.Adam(params, lr=lr)


def _check_range(value_range: Sequence[float] | None) -> tuple[float, float] | None:
    if value_range is None:
        return None
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    return lo, hi


def _redirect_steps(redirect_relu: bool | int, steps: int) -> int:
    """Number of initial steps with redirected ReLU gradients."""
    if isinstance(redirect_relu, bool):
        return min(steps, max(16, steps // 2)) if redirect_relu else 0
    if not isinstance(redirect_relu, int) or redirect_relu < 0:
        raise ValueError(
            f"redirect_relu must be True, False or a number of steps >= 0, got {redirect_relu!r}"
        )
    return min(steps, redirect_relu)


def _batch_size(objective: Objective, batch_size: int | None) -> int:
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if objective.batch_size is not None and objective.batch_size != batch_size:
            raise ValueError(
                f"objective {objective.description!r} defines {objective.batch_size} units "
                f"(one per batch element) but batch_size={batch_size}; leave batch_size out"
            )
        return int(batch_size)
    return objective.batch_size or 1


def render(
    model: nn.Module,
    objective: Objective | str,
    input_shape: Sequence[int],
    *,
    steps: int = 256,
    param: ParamSpec | None = None,
    transforms: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
    value_range: Sequence[float] | None = None,
    preprocess: Preprocess | None = None,
    batch_size: int | None = None,
    lr: float = 0.05,
    device: str | torch.device | None = None,
    random_state: RandomState = 0,
    mixed_precision: bool = False,
    redirect_relu: bool | int = True,
    progress: bool = True,
) -> FeatureVisResult:
    """Optimise inputs that maximise ``objective`` (activation maximization).

    Parameters
    ----------
    model : nn.Module
        A trained network; used in eval mode and given back as it came.
    objective : Objective or str
        What to maximise: ``channel("conv2", [0, 1, 2])``, ``"layer4#12"`` ... The batch
        holds one image per unit when the objective lists units.
    input_shape : sequence of int
        One sample's shape, ``(C, H, W)`` or ``(C, D, H, W)``, without the batch axis.
    steps : int
        Optimisation steps (Adam).
    param : ParamSpec, optional
        :func:`fourier` (default) or :func:`pixel`, optionally with channel decorrelation.
    transforms : callable or list of callables, optional
        Random transforms applied at each step; None uses :func:`default_transforms` sized to
        the input, ``[]`` none.
    value_range : (low, high), optional
        Range of the input in the user's units (e.g. ``(-1000, 400)`` HU, or
        ``intensity_window(level, width)``); a sigmoid keeps the image inside it. None leaves
        the input unbounded (then add an :func:`l2` penalty).
    preprocess : callable, optional
        The model's own preprocessing, ``tensor -> tensor`` (differentiable), mapping the
        user's units to the model's input (e.g. ``lambda hu: (hu + 1000) / 1400``).
    batch_size : int, optional
        Number of images when the objective does not fix it (default 1).
    lr : float
        Adam learning rate.
    device : str or torch.device, optional
        Where to run (default: the model's device). The model is moved back afterwards.
    random_state : int, numpy.random.Generator or None
        Seeds the initialisation and the transforms (a local ``torch.Generator``; the global
        RNG is not touched): an int, a Generator to draw the seed from, or None for a fresh
        one. The seed used is recorded as ``result.random_state``. Runs are bitwise
        reproducible on the CPU; on CUDA, atomic adds in ``grid_sample``'s backward leave
        floating-point-level differences.
    mixed_precision : bool
        Run the model under autocast (float16 with loss scaling on CUDA, bfloat16 on CPU).
    redirect_relu : bool or int
        Redirected ReLU gradients (Lucid) for the first steps of the optimisation, so that
        units that are zero on the starting image still get a gradient and move. During those
        steps, for each image whose gradient a ReLU would block entirely, every ReLU and
        ReLU6 of the model (modules, also those called twice inside a block, and functional
        ``F.relu`` / ``torch.relu`` calls) passes the gradient that would raise its input.
        The forward pass is exact and the model is not modified. True (default) applies it
        for the first half of the steps (at least 16, at most all); an int gives the number
        of steps; False or 0 turns it off.
    progress : bool
        Show a progress bar.

    Returns
    -------
    FeatureVisResult

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> from inspect_kit import featurevis as fv
    >>> net = SmallCNN(in_channels=1, dim=2)
    >>> res = fv.render(net, fv.channel("conv2", [0, 1]), (1, 16, 16), steps=4,
    ...                 value_range=(0, 1), progress=False)
    >>> res.images.shape
    (2, 1, 16, 16)
    """
    seed = resolve_seed(random_state)
    obj = as_objective(objective)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4):
        raise ValueError(
            f"input_shape must be one sample's shape (C, H, W) or (C, D, H, W) without the "
            f"batch axis, got {tuple(input_shape)}"
        )
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    steps = int(steps)
    redirect_steps = _redirect_steps(redirect_relu, steps)
    vrange = _check_range(value_range)
    batch = _batch_size(obj, batch_size)
    spec = fourier() if param is None else param
    if not isinstance(spec, ParamSpec):
        raise TypeError(f"param must come from pixel(...) or fourier(...), got {spec!r}")
    tf: Callable[..., Any] | None
    if transforms is None:
        tf = default_transforms(shape[1:])
    elif callable(transforms):
        tf = transforms
    else:
        tf = compose(list(transforms)) if len(transforms) else None
    pre = preprocess if preprocess is not None else (lambda x: x)

    needs_input = INPUT in obj.layers

    with on_device(model, device) as dev, model_state_preserved(model, eval_mode=True):
        for p in model.parameters():
            p.requires_grad_(False)
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
        # The start is drawn on the CPU (the same images on every device); the transforms
        # draw on the render device, so that a GPU never waits for a host-to-device copy.
        image_param = spec.build(batch, shape, torch.Generator().manual_seed(int(seed)), dev)
        generator = torch.Generator(device=dev).manual_seed(int(seed))
        opt = _adam(image_param.parameters(), lr, dev)
        amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
        scaler = torch.amp.GradScaler(dev.type) if mixed_precision and dev.type == "cuda" else None

        def to_image() -> torch.Tensor:
            z: torch.Tensor = image_param()
            if vrange is None:
                return z
            lo, hi = vrange
            return lo + (hi - lo) * torch.sigmoid(z)

        def score(x_user: torch.Tensor, hooks: _Activations, transform: bool) -> torch.Tensor:
            x = tf(x_user, generator) if (transform and tf is not None) else x_user
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=mixed_precision):
                acts = hooks.run(model, pre(x).to(dtype))
                if needs_input:
                    acts[INPUT] = pre(x_user)
                return obj(acts).float()

        trajectory = torch.empty((steps, batch), device=dev)
        bar = tqdm(total=steps, desc=f"render {obj.description}", disable=not progress)
        with _Activations(model, obj.layers) as hooks, bar:
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                with redirected_relu(step < redirect_steps):
                    values = score(to_image(), hooks, transform=True)
                if values.shape[0] != batch:
                    raise ValueError(
                        f"objective returned {values.shape[0]} scores for a batch of {batch}"
                    )
                loss = -values.sum()
                if scaler is not None:
                    scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # unannotated in torch
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
                    opt.step()
                trajectory[step] = values.detach()
                bar.update()
                if progress and (step % 10 == 0 or step == steps - 1):
                    bar.set_postfix(score=float(values.detach().mean()))  # syncs a GPU
            with torch.no_grad():
                images = to_image()
                final = score(images, hooks, transform=False)
                inputs = pre(images)

    if not torch.isfinite(trajectory).all():
        logger.warning("the objective became non-finite during render; try a smaller lr")
    result = FeatureVisResult(
        images=images.detach().float().cpu().numpy(),
        inputs=inputs.detach().float().cpu().numpy(),
        trajectory=trajectory.cpu().numpy(),
        final_activations=final.detach().cpu().numpy(),
        labels=obj.unit_labels(batch),
        units=obj.unit_indices(batch),
        layer=obj.units[0] if obj.units is not None else None,
        objective=obj.description,
        value_range=vrange,
        random_state=seed,
        params={
            "steps": steps,
            "lr": float(lr),
            "param": repr(spec),
            "transforms": repr(tf) if tf is not None else None,
            "preprocess": getattr(preprocess, "__name__", repr(preprocess)) if preprocess else None,
            "batch_size": batch,
            "input_shape": shape,
            "device": str(dev),
            "mixed_precision": bool(mixed_precision),
            "redirect_relu_steps": redirect_steps,
        },
    )
    assert result.flat is not None  # set by __post_init__
    if result.flat.any():
        logger.warning(
            "render: the objective stayed flat for %d of %d units (%s): their images show no "
            "feature (e.g. a unit behind a ReLU that never fires has zero gradient); pick other "
            "units, a layer before the activation, or a higher lr",
            int(result.flat.sum()),
            len(result.flat),
            ", ".join(result.flat_labels[:8]),
        )
    return result
