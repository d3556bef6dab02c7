"""Image parameterisations for activation maximization, 2D ``(C, H, W)`` and 3D ``(C, D, H, W)``.

A parameterisation owns the tensors the optimiser updates and turns them into an
unconstrained image batch ``(B, C, *S)``; ``render`` then maps it into the user's value range
with a sigmoid. :func:`pixel` optimises voxels directly; :func:`fourier` optimises a spectrum
scaled by ``1 / f**decay``, which favours the low frequencies natural images (and scans) are
made of. Both accept a channel decorrelation matrix estimated from the user's own data with
:func:`channel_decorrelation` (identity when none is given, and always for one channel).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.capture.inputs import batch_input

__all__ = [
    "FourierParam",
    "ParamSpec",
    "PixelParam",
    "channel_decorrelation",
    "fourier",
    "pixel",
]


class _ImageParam(nn.Module):
    """Base: ``forward()`` returns the unconstrained image batch ``(B, C, *S)``."""

    decorrelate: torch.Tensor | None  # a buffer

    def __init__(self, decorrelate: torch.Tensor | None) -> None:
        super().__init__()
        if decorrelate is None:
            self.register_buffer("decorrelate", None)
        else:
            self.register_buffer("decorrelate", decorrelate)

    def _mix_channels(self, x: torch.Tensor) -> torch.Tensor:
        if self.decorrelate is None:
            return x
        # x: (B, C, *S); decorrelate: (C, C) maps decorrelated -> data channels. A batched
        # matmul over flattened space is several times faster than einsum on CPU.
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        return torch.matmul(self.decorrelate.to(x.dtype), flat).reshape(x.shape)


class PixelParam(_ImageParam):
    """Voxels optimised directly."""

    def __init__(self, pixels: torch.Tensor, decorrelate: torch.Tensor | None = None) -> None:
        super().__init__(decorrelate)
        self.pixels = nn.Parameter(pixels)

    def forward(self) -> torch.Tensor:
        return self._mix_channels(self.pixels)


class FourierParam(_ImageParam):
    """Real-FFT spectrum optimised, scaled by ``1 / max(f, 1/size) ** decay``."""

    def __init__(
        self,
        spectrum: torch.Tensor,
        scale: torch.Tensor,
        spatial: Sequence[int],
        decorrelate: torch.Tensor | None = None,
    ) -> None:
        super().__init__(decorrelate)
        self.spectrum = nn.Parameter(spectrum)  # (B, C, *F, 2): real and imaginary parts
        self.scale: torch.Tensor
        self.register_buffer("scale", scale)  # (*F,)
        self.spatial = tuple(int(s) for s in spatial)

    def forward(self) -> torch.Tensor:
        coeffs = torch.view_as_complex(self.spectrum.float()) * self.scale
        dims = tuple(range(-len(self.spatial), 0))
        image = torch.fft.irfftn(coeffs, s=self.spatial, dim=dims, norm="ortho")
        return self._mix_channels(image)


def _fourier_scale(spatial: Sequence[int], decay: float) -> torch.Tensor:
    axes = [np.fft.fftfreq(n) for n in spatial[:-1]] + [np.fft.rfftfreq(spatial[-1])]
    grids = np.meshgrid(*axes, indexing="ij")
    freqs = np.sqrt(sum(g**2 for g in grids))
    size = max(spatial)
    scale = 1.0 / np.maximum(freqs, 1.0 / size) ** decay
    # One unit of the DC coefficient moves every voxel by 1/4 whatever the dimension (the
    # factor 4 keeps the sigmoid away from saturation at the start, as in Lucid).
    scale = scale * math.sqrt(float(np.prod(spatial))) / size**decay / 4.0
    return torch.as_tensor(scale, dtype=torch.float32)


def _as_matrix(decorrelate: Any, channels: int) -> torch.Tensor | None:
    if decorrelate is None:
        return None
    m = torch.as_tensor(np.asarray(decorrelate, dtype=np.float32))
    if m.shape != (channels, channels):
        raise ValueError(
            f"decorrelate must be a ({channels}, {channels}) matrix for {channels} channels, "
            f"got shape {tuple(m.shape)}; estimate one with channel_decorrelation(data)"
        )
    return m


@dataclass(frozen=True)
class ParamSpec:
    """A parameterisation recipe; ``render`` builds it for a batch and an input shape.

    Use the factories :func:`pixel` and :func:`fourier` rather than this class.
    """

    kind: str
    sd: float = 0.01
    decay: float = 1.0
    decorrelate: Any = None

    def __repr__(self) -> str:
        extra = f", decay={self.decay:g}" if self.kind == "fourier" else ""
        dec = ", decorrelated" if self.decorrelate is not None else ""
        return f"{self.kind}(sd={self.sd:g}{extra}{dec})"

    def build(
        self,
        batch: int,
        shape: Sequence[int],
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> _ImageParam:
        """Create the parameter module for ``batch`` images of per-sample ``shape`` (C, *S).

        Initial values are drawn on the CPU from ``generator`` (so a seed gives the same
        start on every device) and then moved to ``device``.
        """
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (3, 4) or min(shape) < 1:
            raise ValueError(
                f"input_shape must be (C, H, W) or (C, D, H, W) with positive sizes, got {shape}"
            )
        c, spatial = shape[0], shape[1:]
        mat = _as_matrix(self.decorrelate, c)
        if self.kind == "pixel":
            init = torch.randn((batch, *shape), generator=generator) * self.sd
            return PixelParam(init, mat).to(device)
        scale = _fourier_scale(spatial, self.decay)
        init = torch.randn((batch, c, *scale.shape, 2), generator=generator) * self.sd
        return FourierParam(init, scale, spatial, mat).to(device)


def pixel(sd: float = 0.01, decorrelate: Any = None) -> ParamSpec:
    """Optimise voxel values directly.

    Parameters
    ----------
    sd : float
        Standard deviation of the random start (in the unconstrained space).
    decorrelate : array-like (C, C), optional
        Channel mixing matrix from :func:`channel_decorrelation`; identity when None.

    Examples
    --------
    >>> pixel(sd=0.1)
    pixel(sd=0.1)
    """
    return ParamSpec("pixel", sd=float(sd), decorrelate=decorrelate)


def fourier(decay: float = 1.0, sd: float = 0.01, decorrelate: Any = None) -> ParamSpec:
    """Optimise a Fourier spectrum scaled by ``1 / f**decay`` (2D or 3D; the default).

    Parameters
    ----------
    decay : float
        Exponent of the ``1/f`` scaling; larger favours smoother images.
    sd : float
        Standard deviation of the random start of the spectrum.
    decorrelate : array-like (C, C), optional
        Channel mixing matrix from :func:`channel_decorrelation`; identity when None.

    Examples
    --------
    >>> fourier(decay=1.5)
    fourier(sd=0.01, decay=1.5)
    """
    return ParamSpec("fourier", sd=float(sd), decay=float(decay), decorrelate=decorrelate)


def _batches(data: Any) -> Iterable[torch.Tensor]:
    if isinstance(data, (torch.Tensor, np.ndarray)):
        yield torch.as_tensor(data)
        return
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(
        data, torch.utils.data.IterableDataset
    ):
        data = torch.utils.data.DataLoader(data, batch_size=256)
    for batch in data:
        yield torch.as_tensor(batch_input(batch))


def channel_decorrelation(data: Any, max_samples: int | None = 2048) -> np.ndarray:
    """Channel decorrelation matrix estimated from the user's own inputs.

    Computes the channel covariance over all samples and positions, takes its square root
    ``U sqrt(S)`` and normalises it so that its largest column norm is 1 (as Lucid does for
    ImageNet's RGB). Pass the result as ``decorrelate=`` to :func:`pixel` or :func:`fourier`.

    Parameters
    ----------
    data : tensor, ndarray, Dataset, DataLoader or iterable of batches
        Inputs ``(N, C, *S)``; batches may be tensors, ``(x, y)`` tuples or dicts
        with the input under one of :data:`~inspect_kit.input_keys.X_KEYS`.
    max_samples : int, optional
        Stop after this many samples (None: all).

    Returns
    -------
    ndarray, shape (C, C)

    Examples
    --------
    >>> x = torch.rand(16, 3, 8, 8)
    >>> channel_decorrelation(x).shape
    (3, 3)
    """
    n_seen = 0
    total = None
    outer = None
    count = 0
    for batch in _batches(data):
        if batch.ndim < 3:
            raise ValueError(
                f"expected inputs (N, C, *S), got a batch of shape {tuple(batch.shape)}"
            )
        if max_samples is not None:
            batch = batch[: max(0, max_samples - n_seen)]
        if batch.shape[0] == 0:
            break
        x = batch.detach().double().transpose(0, 1).reshape(batch.shape[1], -1)  # (C, N*S)
        total = x.sum(dim=1) if total is None else total + x.sum(dim=1)
        xx = x @ x.T
        outer = xx if outer is None else outer + xx
        count += x.shape[1]
        n_seen += batch.shape[0]
        if max_samples is not None and n_seen >= max_samples:
            break
    if total is None or outer is None or count < 2:
        raise ValueError("channel_decorrelation needs at least one non-empty batch of inputs")
    mean = total / count
    cov = (outer / count - torch.outer(mean, mean)).numpy()
    u, s, _ = np.linalg.svd(cov)
    sqrt = u * np.sqrt(np.clip(s, 0.0, None))[None, :]
    # SVD signs are arbitrary: make each column's largest entry positive.
    signs = np.sign(sqrt[np.abs(sqrt).argmax(axis=0), np.arange(sqrt.shape[1])])
    sqrt = sqrt * np.where(signs == 0, 1.0, signs)[None, :]
    norm = np.linalg.norm(sqrt, axis=0).max()
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(
            "inputs have zero variance in every channel; cannot estimate decorrelation"
        )
    scaled: np.ndarray = (sqrt / norm).astype(np.float32)
    return scaled
