"""Random robustness transforms, 2D and 3D, as small composable factories.

Each factory returns a callable ``t(x, generator) -> x`` for batches ``(B, C, H, W)`` or
``(B, C, D, H, W)``; every random draw comes from the ``torch.Generator`` passed in, on that
generator's device (``render`` gives one on the render device, so that a GPU never waits for
the host), and a seed reproduces a run. Each batch element gets its own draw.

The geometric transforms (:func:`jitter`, :func:`scale`, :func:`rotate`) are affine maps;
:func:`compose` multiplies consecutive affine maps into one matrix and resamples once with
``grid_sample``, which is both faster and sharper than resampling after every step. Sizes are
in voxels and angles in degrees, and rotations respect non-cubic shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F

__all__ = [
    "AffineTransform",
    "Compose",
    "Transform",
    "compose",
    "default_transforms",
    "jitter",
    "pad",
    "rotate",
    "scale",
]


class Transform:
    """Base class: ``t(x, generator) -> x``."""

    description = "transform"

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.description


def _check_input(x: torch.Tensor) -> int:
    if x.ndim not in (4, 5):
        raise ValueError(
            f"transforms take (B, C, H, W) or (B, C, D, H, W) batches, got shape {tuple(x.shape)}"
        )
    return x.ndim - 2


def _dtype(device: torch.device) -> torch.dtype:
    """Affine maps in double precision (exact 90-degree turns), except where unsupported."""
    return torch.float32 if device.type == "mps" else torch.float64


def _uniform(generator: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    u = torch.rand(n, generator=generator, dtype=_dtype(generator.device), device=generator.device)
    return lo + (hi - lo) * u


def _eye(nd: int, batch: int, device: torch.device) -> torch.Tensor:
    return torch.eye(nd + 1, dtype=_dtype(device), device=device).repeat(batch, 1, 1)


class AffineTransform(Transform):
    """A random affine map per batch element, applied with ``affine_grid``/``grid_sample``.

    Subclasses implement :meth:`matrices`, returning ``(B, nd + 1, nd + 1)`` homogeneous maps
    in *voxel units centred on the volume* with axes in tensor order (``z, y, x``), mapping an
    output position to the input position it samples.
    """

    def __init__(self, padding_mode: str = "border", mode: str = "bilinear") -> None:
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(
                f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self.mode = mode

    def matrices(
        self, batch: int, spatial: Sequence[int], generator: torch.Generator
    ) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_input(x)
        return _resample(x, self.matrices(x.shape[0], x.shape[2:], generator), self)


def _resample(x: torch.Tensor, mats: torch.Tensor, how: AffineTransform) -> torch.Tensor:
    """Resample ``x`` with voxel-unit homogeneous maps ``mats`` (B, nd+1, nd+1)."""
    spatial = x.shape[2:]
    nd = len(spatial)
    # Voxel units (tensor axis order) -> normalised grid coordinates (x, y[, z] order) for
    # align_corners=False: u = 2 * v / n, where v is measured from the volume's centre.
    # Built by scalar writes, not from a host tensor: no host-to-device copy (and sync).
    to_norm = torch.zeros(nd + 1, nd + 1, dtype=mats.dtype, device=mats.device)
    from_norm = torch.zeros_like(to_norm)
    to_norm[nd, nd] = from_norm[nd, nd] = 1.0
    for axis, n in enumerate(spatial):
        # tensor axis ``axis`` is grid coordinate ``nd - 1 - axis`` (the order is reversed)
        to_norm[nd - 1 - axis, axis] = 2.0 / n
        from_norm[axis, nd - 1 - axis] = n / 2.0
    theta = to_norm @ mats @ from_norm
    theta = theta[:, :nd, :].to(
        device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(
        x, grid.to(x.dtype), mode=how.mode, padding_mode=how.padding_mode, align_corners=False
    )


class _Jitter(AffineTransform):
    def __init__(self, d: int, padding_mode: str) -> None:
        super().__init__(padding_mode)
        if int(d) < 0:
            raise ValueError(f"jitter distance must be >= 0 voxels, got {d}")
        self.d = int(d)
        self.description = f"jitter({self.d})"

    def matrices(
        self, batch: int, spatial: Sequence[int], generator: torch.Generator
    ) -> torch.Tensor:
        nd = len(spatial)
        shift = torch.randint(
            -self.d, self.d + 1, (batch, nd), generator=generator, device=generator.device
        )
        m = _eye(nd, batch, generator.device)
        m[:, :nd, nd] = shift.to(m.dtype)
        return m


class _Scale(AffineTransform):
    def __init__(self, factors: tuple[float, float], padding_mode: str) -> None:
        super().__init__(padding_mode)
        lo, hi = (float(f) for f in factors)
        if not 0 < lo <= hi:
            raise ValueError(f"scale factors must satisfy 0 < low <= high, got {factors}")
        self.lo, self.hi = lo, hi
        self.description = f"scale({lo:g}, {hi:g})"

    def matrices(
        self, batch: int, spatial: Sequence[int], generator: torch.Generator
    ) -> torch.Tensor:
        nd = len(spatial)
        z = _uniform(generator, batch, self.lo, self.hi)
        m = _eye(nd, batch, generator.device)
        for i in range(nd):
            m[:, i, i] = 1.0 / z  # content enlarged by z: sample closer to the centre
        return m


def _rot(axis_a: int, axis_b: int, angle: torch.Tensor, nd: int) -> torch.Tensor:
    m = _eye(nd, angle.shape[0], angle.device)
    c, s = torch.cos(angle), torch.sin(angle)
    m[:, axis_a, axis_a] = c
    m[:, axis_a, axis_b] = -s
    m[:, axis_b, axis_a] = s
    m[:, axis_b, axis_b] = c
    return m


class _Rotate(AffineTransform):
    def __init__(self, degrees: tuple[float, float], padding_mode: str) -> None:
        super().__init__(padding_mode)
        lo, hi = (float(a) for a in degrees)
        if lo > hi:
            raise ValueError(f"rotation range must be (low, high) with low <= high, got {degrees}")
        self.lo, self.hi = lo, hi
        self.description = f"rotate({lo:g}, {hi:g})"

    def matrices(
        self, batch: int, spatial: Sequence[int], generator: torch.Generator
    ) -> torch.Tensor:
        nd = len(spatial)
        if nd == 2:
            a = _uniform(generator, batch, self.lo, self.hi) * math.pi / 180
            return _rot(0, 1, a, nd)
        # 3D: independent rotations in the three axis planes.
        m = _eye(nd, batch, generator.device)
        for a_ax, b_ax in ((1, 2), (0, 2), (0, 1)):
            a = _uniform(generator, batch, self.lo, self.hi) * math.pi / 180
            m = m @ _rot(a_ax, b_ax, a, nd)
        return m


class _Pad(Transform):
    def __init__(self, width: int, mode: str, value: float) -> None:
        if int(width) < 0:
            raise ValueError(f"pad width must be >= 0, got {width}")
        if mode not in ("constant", "reflect", "replicate"):
            raise ValueError(f"pad mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
        self.width, self.mode, self.value = int(width), mode, float(value)
        self.description = f"pad({self.width}, {mode!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        nd = _check_input(x)
        if self.width == 0:
            return x
        w = [self.width] * (2 * nd)
        if self.mode == "constant":
            return F.pad(x, w, mode="constant", value=self.value)
        return F.pad(x, w, mode=self.mode)


class Compose(Transform):
    """Apply transforms in order, fusing runs of affine transforms into one resampling."""

    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"transforms must be callables t(x, generator), got {t!r}")
        self.description = "compose(" + ", ".join(repr(t) for t in self.transforms) + ")"

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_input(x)
        pending: list[AffineTransform] = []

        def flush(x: torch.Tensor) -> torch.Tensor:
            if not pending:
                return x
            mats = None
            for t in pending:
                m = t.matrices(x.shape[0], x.shape[2:], generator)
                # Output -> input maps chain as M1 @ M2 @ ... (the first transform is applied
                # to the image first, so it is the outermost sampling map).
                mats = m if mats is None else mats @ m
            assert mats is not None  # pending is not empty
            out = _resample(x, mats, pending[-1])
            pending.clear()
            return out

        for t in self.transforms:
            if isinstance(t, AffineTransform) and (
                not pending
                or (t.padding_mode, t.mode) == (pending[-1].padding_mode, pending[-1].mode)
            ):
                pending.append(t)
                continue
            x = flush(x)
            if isinstance(t, AffineTransform):
                pending.append(t)
            else:
                x = t(x, generator)
        return flush(x)


def jitter(d: int, padding_mode: str = "border") -> AffineTransform:
    """Random integer shift of up to ``d`` voxels along every spatial axis.

    Examples
    --------
    >>> t = jitter(2)
    >>> t(torch.zeros(1, 1, 8, 8), torch.Generator().manual_seed(0)).shape
    torch.Size([1, 1, 8, 8])
    """
    return _Jitter(d, padding_mode)


def scale(
    factors: tuple[float, float] = (0.95, 1.05), padding_mode: str = "border"
) -> AffineTransform:
    """Random zoom by a factor drawn uniformly from ``factors`` (same factor on every axis).

    Examples
    --------
    >>> scale((0.9, 1.1))
    scale(0.9, 1.1)
    """
    lo, hi = factors
    return _Scale((lo, hi), padding_mode)


def rotate(
    degrees: tuple[float, float] = (-5.0, 5.0), padding_mode: str = "border"
) -> AffineTransform:
    """Random rotation by an angle drawn uniformly from ``degrees``; in 3D, one per axis plane.

    Examples
    --------
    >>> rotate((-10, 10))
    rotate(-10, 10)
    """
    lo, hi = degrees
    return _Rotate((lo, hi), padding_mode)


def pad(width: int, mode: str = "reflect", value: float = 0.0) -> Transform:
    """Pad every spatial side by ``width`` voxels (changes the shape; models need to accept it).

    Examples
    --------
    >>> pad(2)(torch.zeros(1, 1, 4, 4, 4), torch.Generator()).shape
    torch.Size([1, 1, 8, 8, 8])
    """
    return _Pad(width, mode, value)


def compose(*transforms: Callable[..., Any] | Sequence[Callable[..., Any]]) -> Compose:
    """Chain transforms (given as arguments or one list); affine runs are fused.

    Examples
    --------
    >>> compose(jitter(2), rotate((-5, 5)), scale((0.9, 1.1)))
    compose(jitter(2), rotate(-5, 5), scale(0.9, 1.1))
    """
    if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
        return Compose(tuple(transforms[0]))
    # several arguments are transforms themselves (a list is only ever the one argument)
    return Compose(cast(tuple[Callable[..., Any], ...], transforms))


def default_transforms(spatial: Sequence[int]) -> Compose:
    """The transforms ``render`` uses when none are given, sized to the input.

    From 32 voxels per side: jitter by 1/16 of the smallest side, zoom by 0.95..1.05, rotate
    by -5..5 degrees, then jitter by 1/32 of the side, all fused into one resampling. Below
    32 voxels (a patch, a digit) a zoom is less than a voxel, and the interpolation of a
    small rotation acts as a blur that the optimised image learns to rely on (it then scores
    lower untransformed), so only a 1-voxel jitter remains.

    Examples
    --------
    >>> default_transforms((224, 224))
    compose(jitter(14), scale(0.95, 1.05), rotate(-5, 5), jitter(7))
    >>> default_transforms((12, 12, 12))
    compose(jitter(1))
    """
    side = min(int(s) for s in spatial)
    if side < 32:
        return compose(jitter(1))
    return compose(
        jitter(side // 16),
        scale((0.95, 1.05)),
        rotate((-5.0, 5.0)),
        jitter(side // 32),
    )
