"""Reference convolutional autoencoder and VAE (2D or 3D, any channel count) and their trainer.

They exist so that users without an autoencoder of their own can start latent probing; any
module with ``encode``/``decode`` (or an encoder/decoder pair) works with
:class:`inspect_kit.analysis.latent.LatentProbe`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inspect_kit.capture.inputs import batch_input

logger = logging.getLogger(__name__)

__all__ = ["ConvAutoencoder", "fit_autoencoder", "autoencoder_loss"]


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(
            f"input_shape must be (C, H, W) or (C, D, H, W), got {input_shape!r}"
        ) from None
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(
            f"input_shape must be (C, H, W) for images or (C, D, H, W) for volumes with "
            f"positive sizes, got {input_shape!r}"
        )
    return shape


class ConvAutoencoder(nn.Module):
    """Small convolutional autoencoder (or VAE) for images (C, H, W) or volumes (C, D, H, W).

    The encoder halves the spatial size with each stride-2 convolution in ``widths`` and maps
    the result to ``latent_dim`` numbers; the decoder mirrors it with upsampling to the exact
    input size, so any spatial size works.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` or ``(C, D, H, W)`` of one sample, any C.
    latent_dim : int
        Size of the code.
    variational : bool
        Make it a VAE: :meth:`encode` returns ``(mu, logvar)``, and :meth:`forward` decodes a
        sample of the posterior in training mode and its mean in eval mode.
    widths : sequence of int
        Channels of the encoder stages (the decoder uses them in reverse).
    output_activation : {None, 'sigmoid'}
        ``'sigmoid'`` bounds reconstructions to (0, 1), for inputs scaled to [0, 1].
    random_state : int or None
        Seed of the weight initialisation, drawn inside ``torch.random.fork_rng`` so the
        global RNG is untouched; None draws from the global RNG.

    Attributes
    ----------
    input_shape, latent_dim, variational, widths, output_activation
        The parameters as given.
    spatial_dims : int
        2 or 3.

    Examples
    --------
    >>> ae = ConvAutoencoder((1, 16, 16), latent_dim=8)
    >>> x = torch.rand(4, 1, 16, 16)
    >>> ae.encode(x).shape, ae(x).shape
    (torch.Size([4, 8]), torch.Size([4, 1, 16, 16]))
    >>> vae = ConvAutoencoder((1, 16, 16, 16), latent_dim=4, variational=True)
    >>> mu, logvar = vae.encode(torch.rand(2, 1, 16, 16, 16))
    >>> mu.shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 16,
        variational: bool = False,
        widths: Sequence[int] = (16, 32),
        output_activation: str | None = None,
        random_state: int | None = 0,
    ):
        super().__init__()
        rng_state = torch.random.get_rng_state()
        shape = _check_input_shape(input_shape)
        if (
            isinstance(latent_dim, bool)
            or not isinstance(latent_dim, int | np.integer)
            or (latent_dim < 1)
        ):
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got {widths}")
        if output_activation not in (None, "sigmoid"):
            raise ValueError(
                f"output_activation must be None or 'sigmoid', got {output_activation!r}"
            )
        self.input_shape = shape
        self.latent_dim = int(latent_dim)
        self.variational = bool(variational)
        self.widths = widths
        self.output_activation = output_activation
        self.spatial_dims = len(shape) - 1

        conv = nn.Conv2d if self.spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if self.spatial_dims == 2 else nn.BatchNorm3d
        channels = shape[0]
        sizes = [shape[1:]]
        for _ in widths:
            sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))  # stride 2, kernel 3, pad 1
        self._bottleneck_shape = (widths[-1], *sizes[-1])
        flat = math.prod(self._bottleneck_shape)

        enc: list[nn.Module] = []
        c_in = channels
        for w in widths:
            enc += [conv(c_in, w, 3, stride=2, padding=1), norm(w), nn.ReLU(inplace=True)]
            c_in = w
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_latent = nn.Linear(flat, 2 * self.latent_dim if variational else self.latent_dim)

        self.from_latent = nn.Linear(self.latent_dim, flat)
        dec: list[nn.Module] = []
        out_widths = list(reversed(widths))
        targets = list(reversed(sizes[:-1]))
        for i, size in enumerate(targets):
            w_out = out_widths[min(i + 1, len(out_widths) - 1)]
            dec += [
                nn.Upsample(size=size, mode="nearest"),
                conv(out_widths[i], w_out, 3, padding=1),
                norm(w_out),
                nn.ReLU(inplace=True),
            ]
        self.decoder = nn.Sequential(*dec)
        self.head = conv(out_widths[-1], channels, 3, padding=1)
        if random_state is not None:
            # Same initialisers as at construction, drawn from the seeded CPU generator; the
            # global state (also what construction above consumed) is put back afterwards.
            try:
                torch.default_generator.manual_seed(random_state)
                for module in self.modules():
                    reset = getattr(module, "reset_parameters", None)
                    if module is not self and callable(reset):
                        reset()
            finally:
                torch.random.set_rng_state(rng_state)

    def encode(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Code of ``x``: a (N, latent_dim) tensor, or ``(mu, logvar)`` for a VAE."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected input of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        h: torch.Tensor = self.to_latent(self.encoder(x))
        if self.variational:
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar
        return h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction (N, *input_shape) from codes (N, latent_dim)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"expected codes of shape (N, {self.latent_dim}), got {tuple(z.shape)}"
            )
        h = F.relu(self.from_latent(z)).view(z.shape[0], *self._bottleneck_shape)
        out = self.head(self.decoder(h))
        return torch.sigmoid(out) if self.output_activation == "sigmoid" else out

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """A sample ``mu + sigma * eps`` of the posterior."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` (a VAE decodes a posterior sample only in training mode)."""
        if not self.variational:
            return self.decode(cast(torch.Tensor, self.encode(x)))  # one code, not (mu, logvar)
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar) if self.training else mu)

    def extra_repr(self) -> str:
        return (
            f"input_shape={self.input_shape}, latent_dim={self.latent_dim}, "
            f"variational={self.variational}"
        )


def autoencoder_loss(output: Any, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Mean squared error, plus ``beta`` times the KL term when ``output`` is (x_hat, mu, logvar).

    Both terms are divided by the number of values per sample, so the loss reads like an MSE
    (it is the negative ELBO of a Gaussian decoder with fixed variance 1/2, scaled).

    Examples
    --------
    >>> x = torch.zeros(2, 1, 4, 4)
    >>> float(autoencoder_loss(torch.ones(2, 1, 4, 4), x))
    1.0
    """
    if isinstance(output, tuple):
        recon, mu, logvar = output
        per_sample = target[0].numel()
        rec = F.mse_loss(recon, target, reduction="sum") / target.shape[0]
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / target.shape[0]
        return (rec + beta * kl) / per_sample
    return F.mse_loss(output, target)


class _Variational(Protocol):
    """What the VAE loss needs of a model: a posterior and a decoder."""

    training: bool

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def _input_of(batch: Any) -> torch.Tensor:
    """The inputs of a batch given as x, (x, y, ...) or a dict (capture's one input-key rule)."""
    return torch.as_tensor(batch_input(batch))


def fit_autoencoder(
    model: nn.Module,
    data: Any,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    val_data: Any = None,
    patience: int | None = None,
    beta: float = 1.0,
    device: str | torch.device | None = None,
    random_state: int | None = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train an autoencoder (or VAE) to reconstruct ``data``, with :func:`inspect_kit.models.fit`.

    Parameters
    ----------
    model : nn.Module
        A :class:`ConvAutoencoder` or any module whose ``forward`` returns the reconstruction;
        a module with ``variational=True`` and ``encode``/``decode`` is trained as a VAE.
    data : array, tensor, Dataset or DataLoader
        Inputs (N, C, H, W) or (N, C, D, H, W) (float arrays become float32); batches may be
        ``x``, ``(x, y, ...)`` or dicts with an ``'x'``/``'image'`` key; labels are ignored.
    epochs, lr, batch_size, patience, random_state, progress
        As in :func:`inspect_kit.models.fit` (``patience`` needs ``val_data``).
    val_data : same kinds as ``data``, optional
        Held-out inputs for the validation loss and early stopping.
    beta : float
        Weight of the KL term of a VAE.
    device : str or torch.device, optional
        Default: the device of the model's first parameter, else cpu.

    Returns
    -------
    dict
        The history of :func:`inspect_kit.models.fit` (``train_loss``, ``val_loss`` per epoch,
        ``best_epoch``, ``stopped_early`` ...). With ``val_data`` the model ends with the
        weights of its best validation epoch.

    Examples
    --------
    >>> from inspect_kit.data import load_digits_images
    >>> X, _ = load_digits_images(16)
    >>> ae = ConvAutoencoder((1, 16, 16), latent_dim=8)
    >>> history = fit_autoencoder(ae, X, epochs=2, progress=False)  # doctest: +SKIP
    """
    from .training import fit  # the one training loop of the package

    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    variational = bool(getattr(model, "variational", False))
    if variational and not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise TypeError("a variational model needs encode() returning (mu, logvar) and decode()")

    def loss_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        x = _input_of(batch)
        if not variational:
            return autoencoder_loss(net(x), x)
        vae = cast(_Variational, net)  # it has encode and decode: checked above
        mu, logvar = vae.encode(x)
        z = ConvAutoencoder.reparameterize(mu, logvar) if vae.training else mu
        return autoencoder_loss((vae.decode(z), mu, logvar), x, beta=beta)

    return fit(
        model,
        data,
        loss_fn,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        val_data=val_data,
        patience=patience,
        device=device,
        random_state=random_state,
        progress=progress,
    )
