"""The parts of latent probing that need no fitted probe: results, latent-space maths, the codec.

:class:`Traversal` and :class:`Interpolation` are what :class:`~inspect_kit.analysis.latent.LatentProbe`
decodes; :func:`slerp` and :func:`correlation_ratio` are its maths; ``Codec`` runs any
autoencoder's ``encode``/``decode`` (an ``nn.Module`` or an ``(encoder, decoder)`` pair).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.hooks import flatten_output, model_device, model_state_preserved, on_device

logger = logging.getLogger(__name__)

__all__ = ["Interpolation", "Traversal", "correlation_ratio", "slerp"]


@dataclass(frozen=True, eq=False)
class Traversal:
    """Decoded walk along latent dimensions (or principal directions of the codes).

    Attributes
    ----------
    images : ndarray (n_dims, steps, *input_shape)
        ``images[i, j]`` decodes step ``j`` along ``dims[i]``.
    codes : ndarray (n_dims, steps, latent_size)
    values : ndarray (n_dims, steps)
        Coordinate along each dimension (or principal direction, centred on the codes' mean).
    dims : list of int
    direction : {'axis', 'pca'}
    base : ndarray (latent_size,)
        The code that every walk starts from (its other coordinates are kept).
    span : tuple or float
        Range walked: quantiles ``(low, high)`` of the observed codes, or ``k`` std either side.
    """

    images: np.ndarray
    codes: np.ndarray
    values: np.ndarray
    dims: list[int]
    direction: str
    base: np.ndarray
    span: Any


@dataclass(frozen=True, eq=False)
class Interpolation:
    """Decoded path between the codes of two samples.

    Attributes
    ----------
    images : ndarray (steps, *input_shape)
    codes : ndarray (steps, latent_size)
        ``codes[0]`` and ``codes[-1]`` are the endpoints' codes.
    t : ndarray (steps,)
        Position along the path, 0 to 1.
    mode : {'linear', 'slerp'}
    """

    images: np.ndarray
    codes: np.ndarray
    t: np.ndarray
    mode: str


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation between vectors ``a`` and ``b`` about the origin.

    Moves along the great-circle arc while the norm changes linearly in angle, so for codes
    of a Gaussian prior the path stays where the codes live (White, 2016). Falls back to
    linear interpolation for (anti)parallel or zero vectors. Endpoints are returned exactly.

    Parameters
    ----------
    a, b : ndarray (k,)
    t : ndarray (steps,)

    Returns
    -------
    ndarray (steps, k)

    Examples
    --------
    >>> slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5])).round(4)
    array([[0.7071, 0.7071]])
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    linear = (1.0 - t) * a + t * b
    if na == 0 or nb == 0:
        return linear
    omega = np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))
    so = np.sin(omega)
    if so < 1e-6:
        return linear
    slerp: np.ndarray = np.sin((1.0 - t) * omega) / so * a + np.sin(t * omega) / so * b
    return slerp


def correlation_ratio(values: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Correlation ratio eta of each column of ``values`` with a categorical variable.

    eta² is the share of a column's variance explained by the category means (the R² of a
    one-way ANOVA); eta lies in [0, 1].

    Parameters
    ----------
    values : ndarray (N, k)
    categories : ndarray (N,)

    Returns
    -------
    ndarray (k,)

    Examples
    --------
    >>> correlation_ratio(np.array([[0.0], [0.0], [1.0], [1.0]]), np.array([0, 0, 1, 1]))
    array([1.])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    _, inverse = np.unique(np.asarray(categories), return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    sums = np.zeros((len(counts), values.shape[1]))
    np.add.at(sums, inverse, values)
    means = sums / counts[:, None]
    grand = values.mean(axis=0)
    between = (counts[:, None] * (means - grand) ** 2).sum(axis=0)
    total = ((values - grand) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta2 = np.where(total > 0, between / total, 0.0)
    eta: np.ndarray = np.sqrt(np.clip(eta2, 0.0, 1.0))
    return eta


def pearson(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    v = values - values.mean(axis=0)
    y = target.astype(np.float64) - target.mean()
    denom = np.sqrt((v**2).sum(axis=0) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (v * y[:, None]).sum(axis=0) / denom, 0.0)


class Codec:
    """Uniform encode/decode over a module with encode/decode or an (encoder, decoder) pair."""

    def __init__(self, autoencoder: Any):
        if isinstance(autoencoder, tuple | list):
            if len(autoencoder) != 2 or not all(callable(m) for m in autoencoder):
                raise TypeError(
                    "an autoencoder given as a sequence must be an (encoder, decoder) pair of "
                    f"callables, got {len(autoencoder)} items"
                )
            self.encode_fn, self.decode_fn = autoencoder
            # bound methods (ae.encode) bring their module along, so it too is put in eval mode
            owners = [getattr(m, "__self__", m) for m in autoencoder]
            modules = list({id(m): m for m in owners if isinstance(m, nn.Module)}.values())
        elif callable(getattr(autoencoder, "encode", None)) and callable(
            getattr(autoencoder, "decode", None)
        ):
            self.encode_fn, self.decode_fn = autoencoder.encode, autoencoder.decode
            modules = [autoencoder] if isinstance(autoencoder, nn.Module) else []
        else:
            raise TypeError(
                f"{type(autoencoder).__name__} is not an autoencoder LatentProbe can use: pass a "
                "module with encode() and decode() methods, or an (encoder, decoder) pair"
            )
        # A ModuleList only references the user's modules; it lets one context manage both.
        self.modules = nn.ModuleList(modules)
        self.name = (
            "(" + ", ".join(type(m).__name__ for m in autoencoder) + ")"
            if isinstance(autoencoder, tuple | list)
            else type(autoencoder).__name__
        )

    def default_device(self) -> torch.device:
        return model_device(self.modules)

    def dtype(self) -> torch.dtype:
        for p in self.modules.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    @contextmanager
    def inference(self, device: str | torch.device | None) -> Iterator[torch.device]:
        """Eval mode, no grad, on ``device``; the modules come back exactly as they were."""
        with ExitStack() as stack:
            stack.enter_context(model_state_preserved(self.modules))
            target = stack.enter_context(on_device(self.modules, device))
            stack.enter_context(torch.no_grad())
            yield target

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.encode_fn(x)
        if isinstance(out, torch.Tensor):
            return out, None
        if isinstance(out, torch.distributions.Distribution):
            return out.mean, out.variance.log()
        if (
            isinstance(out, tuple | list)
            and len(out) == 2
            and all(isinstance(o, torch.Tensor) for o in out)
        ):
            return out[0], out[1]
        raise TypeError(
            f"encode returned {type(out).__name__}; expected a tensor of codes, a (mu, logvar) "
            "pair of tensors, or a torch.distributions.Distribution"
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decode_fn(z)
        if isinstance(out, torch.distributions.Distribution):
            out = out.mean
        if isinstance(out, torch.Tensor):
            return out
        # the package's one rule for several outputs: never pick one silently
        leaves = list(flatten_output(out))
        if len(leaves) == 1 and isinstance(out, tuple | list):
            return leaves[0][1]
        listed = ", ".join(f"decode(z){s} {tuple(t.shape)}" for s, t in leaves) or "no tensor"
        raise TypeError(
            f"decode returned a {type(out).__name__} holding {listed}; LatentProbe needs the "
            "reconstruction alone: pass an (encoder, decoder) pair whose decoder returns it, "
            "e.g. (ae.encode, lambda z: ae.decode(z)[0])"
        )
