"""Autoencoder latent probing: encode a dataset, walk the latent space, decode, relate codes to labels.

:class:`LatentProbe` accepts any autoencoder, an ``nn.Module`` with ``encode``/``decode`` or an
``(encoder, decoder)`` pair, 2D or 3D, any channel count. A VAE's ``encode`` may return
``(mu, logvar)`` or a ``torch.distributions.Distribution``; the mean is the code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn
from tqdm.auto import tqdm

from inspect_kit._names import unknown_name_error
from inspect_kit.analysis.probes import ProbeResult, linear_probe
from inspect_kit.capture.inputs import make_stream
from inspect_kit.imaging import thumbnails_from_tensor
from inspect_kit.store import schema

from . import cache as result_cache
from .base import opened
from .embedding import PCAEmbedding
from .latent_parts import (
    Codec,
    Interpolation,
    Traversal,
    correlation_ratio,
    pearson,
    slerp,
)

logger = logging.getLogger(__name__)

__all__ = ["LatentProbe", "Traversal", "Interpolation", "slerp", "correlation_ratio"]


class LatentProbe(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """Probe what an autoencoder's latent space encodes.

    ``fit`` encodes a dataset (codes, per-sample reconstruction error, labels and metadata
    carried along); then walk the latent space (:meth:`traverse`), interpolate between samples
    (:meth:`interpolate`), relate latent dimensions to labels and metadata
    (``correlations_``, :meth:`probe`), find the worst reconstructed samples (:meth:`worst`),
    embed the codes (:meth:`embed`) and save everything to a store (:meth:`to_store`).

    Parameters
    ----------
    autoencoder : nn.Module or (encoder, decoder)
        A module with ``encode(x)`` and ``decode(z)``, or a pair of callables. ``encode`` may
        return codes, ``(mu, logvar)`` or a Distribution (VAE: the mean is used, never a sample).
        Codes may have any shape per sample (e.g. spatial latents); they are flattened in
        ``codes_`` and reshaped for decoding.
    batch_size : int
        Samples per forward pass when ``data`` is an array or Dataset.
    device : str or torch.device, optional
        Where to run the model; default the device of its first parameter (else cpu). The
        model is moved there for each call and back afterwards.
    n_worst : int
        How many worst-reconstructed samples to keep (inputs and reconstructions).
    thumbnails : bool
        Keep a small uint8 preview of each input beside its reconstruction (``thumbnails_``)
        for hover images in figures.
    thumbnail_size : int
        Longest side of those previews in pixels.
    progress : bool
        Show a progress bar while encoding.

    Attributes
    ----------
    codes_ : ndarray (N, latent_size)
        Codes (the posterior mean for a VAE).
    logvar_ : ndarray (N, latent_size) or None
        Posterior log-variance of a VAE.
    reconstruction_error_ : ndarray (N,)
        Mean squared error between each input and the decoding of its code.
    labels_ : ndarray (N,) or None
    metadata_ : dict of str -> ndarray (N,)
    index_ : ndarray (N,)
        Position of each sample in the data.
    input_shape_ : tuple
        ``(C, H, W)`` or ``(C, D, H, W)``.
    latent_shape_ : tuple
        Shape of one code as the encoder returns it.
    variational_ : bool
    code_mean_, code_std_ : ndarray (latent_size,)
    components_ : ndarray (min(N, latent_size), latent_size)
        Principal directions of the codes (rows), by decreasing variance, each with its
        largest loading positive (:class:`~inspect_kit.analysis.embedding.PCAEmbedding`).
    explained_variance_ratio_ : ndarray (min(N, latent_size),)
    correlations_ : dict of str -> ndarray (latent_size,)
        Per dimension: Pearson r with each continuous target, correlation ratio eta (0-1)
        with each categorical one (labels, string or integer metadata).
    correlation_kinds_ : dict of str -> {'pearson', 'eta'}
    worst_indices_ : ndarray (n_worst,)
        Samples by decreasing reconstruction error.
    worst_inputs_, worst_reconstructions_ : ndarray (n_worst, *input_shape)
    thumbnails_ : ndarray of uint8 (N, h, 2w[, 3]) or None
        Each input (left) beside its reconstruction (right), on one intensity window.

    Examples
    --------
    >>> from inspect_kit.data import load_digits_images
    >>> from inspect_kit.models import ConvAutoencoder, fit_autoencoder
    >>> X, y = load_digits_images(16)
    >>> ae = ConvAutoencoder((1, 16, 16), latent_dim=8)
    >>> _ = fit_autoencoder(ae, X[:200], epochs=1, progress=False)  # a real run trains longer
    >>> probe = LatentProbe(ae, progress=False).fit(X[:200], labels=y[:200])
    >>> probe.codes_.shape, probe.components_.shape
    ((200, 8), (8, 8))
    >>> probe.traverse([0, 1], steps=9).images.shape
    (2, 9, 1, 16, 16)
    """

    def __init__(
        self,
        autoencoder: nn.Module | tuple[Callable[..., Any], Callable[..., Any]],
        *,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        n_worst: int = 16,
        thumbnails: bool = True,
        thumbnail_size: int = 64,
        progress: bool = True,
    ):
        self.autoencoder = autoencoder
        self.batch_size = batch_size
        self.device = device
        self.n_worst = n_worst
        self.thumbnails = thumbnails
        self.thumbnail_size = thumbnail_size
        self.progress = progress

    @property
    def _codec(self) -> Codec:
        return Codec(self.autoencoder)

    # -- model access ----------------------------------------------------------------------
    def _device(self) -> torch.device:
        return (
            torch.device(self.device) if self.device is not None else self._codec.default_device()
        )

    def _input_tensor(self, x: Any, device: torch.device) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"inputs must be a numpy array or tensor, got {type(x).__name__}")
        t: torch.Tensor = x.to(device)
        if t.is_floating_point() or t.dtype == torch.uint8:
            t = t.to(self._codec.dtype())
        return t

    def _check_fitted(self) -> None:
        if not hasattr(self, "codes_"):
            raise RuntimeError("this LatentProbe is not fitted yet; call probe.fit(data) first")

    def _latent_shape(self) -> tuple[int, ...] | None:
        return getattr(self, "latent_shape_", None) or getattr(self, "_seen_latent_shape", None)

    def _decode_codes(self, codes: np.ndarray, device: torch.device) -> np.ndarray:
        """Decode flat codes (M, k) in batches; call inside ``inference``."""
        shape = self._latent_shape()
        out = []
        for s in range(0, len(codes), self.batch_size):
            z = torch.as_tensor(codes[s : s + self.batch_size], dtype=self._codec.dtype())
            z = z.to(device)
            if shape is not None:
                z = z.reshape(len(z), *shape)
            out.append(self._codec.decode(z).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def encode(self, x: Any) -> np.ndarray:
        """Codes (N, latent_size) of inputs ``x``; the mean for a VAE.

        ``x`` is anything :meth:`fit` takes (array, tensor, Dataset, DataLoader, batches).

        Examples
        --------
        >>> from inspect_kit.models import ConvAutoencoder
        >>> probe = LatentProbe(ConvAutoencoder((1, 16, 16), latent_dim=8), progress=False)
        >>> probe.encode(np.zeros((4, 1, 16, 16), np.float32)).shape
        (4, 8)
        """
        stream = make_stream(x, batch_size=self.batch_size)
        with self._codec.inference(self._device()) as device:
            out = []
            for batch in stream.batches:
                mu, _ = self._codec.encode(self._input_tensor(batch.x, device))
                self._seen_latent_shape = tuple(mu.shape[1:])
                out.append(mu.reshape(len(mu), -1).float().cpu().numpy())
        if not out:
            raise ValueError("x holds no samples")
        return np.concatenate(out, axis=0)

    def decode(self, codes: Any) -> np.ndarray:
        """Decode codes (N, latent_size) (or one code) into inputs (N, *input_shape)."""
        codes = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes)
        codes = np.atleast_2d(codes).reshape(len(np.atleast_2d(codes)), -1)
        with self._codec.inference(self._device()) as device:
            return self._decode_codes(codes, device)

    def reconstruct(self, x: Any) -> np.ndarray:
        """Decode the codes of inputs ``x``: reconstructions of the same shape."""
        return self.decode(self.encode(x))

    # -- fit -------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        labels: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> LatentProbe:
        """Encode ``data``, measure per-sample reconstruction error, relate codes to targets.

        Parameters
        ----------
        data : array, tensor, Dataset, DataLoader or iterable of batches
            Inputs (N, C, H, W) or (N, C, D, H, W); batches may be ``x``, ``(x, y, ...)`` or
            dicts (as for :func:`inspect_kit.capture.capture`), whose labels are carried.
        labels : array-like (N,), optional
            Labels aligned with the samples (override those in the batches).
        metadata : dict of str -> array-like (N,), optional
            Per-sample metadata (patient id, site, age ...), correlated with the codes.

        Returns
        -------
        self
        """
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not isinstance(self.n_worst, int) or self.n_worst < 0:
            raise ValueError(f"n_worst must be a non-negative int, got {self.n_worst!r}")
        stream = make_stream(data, batch_size=self.batch_size, labels=labels, metadata=metadata)
        codes: list[np.ndarray] = []
        logvars: list[np.ndarray] = []
        errors: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        index: list[np.ndarray] = []
        thumbs: list[np.ndarray] = []
        metas: dict[str, list[np.ndarray]] = {}
        worst_x: list[np.ndarray] = []
        worst_r: list[np.ndarray] = []
        worst_e: list[np.ndarray] = []
        input_shape: tuple[int, ...] | None = None
        latent_shape: tuple[int, ...] | None = None
        with self._codec.inference(self._device()) as device:
            bar = tqdm(total=stream.n_samples, desc="encoding", disable=not self.progress)
            try:
                for batch in stream.batches:
                    x = self._input_tensor(batch.x, device)
                    if x.ndim not in (4, 5):
                        raise ValueError(
                            "inputs must be images (N, C, H, W) or volumes (N, C, D, H, W), "
                            f"got a batch of shape {tuple(x.shape)}"
                        )
                    mu, logvar = self._codec.encode(x)
                    recon = self._codec.decode(mu)
                    if recon.shape != x.shape:
                        raise ValueError(
                            f"decode(encode(x)) has shape {tuple(recon.shape)} but x has "
                            f"{tuple(x.shape)}; the decoder must reconstruct the input's shape"
                        )
                    input_shape = tuple(x.shape[1:])
                    latent_shape = tuple(mu.shape[1:])
                    err = (recon.float() - x.float()).pow(2).reshape(len(x), -1).mean(dim=1)
                    codes.append(mu.reshape(len(mu), -1).float().cpu().numpy())
                    if logvar is not None:
                        logvars.append(logvar.reshape(len(mu), -1).float().cpu().numpy())
                    errors.append(err.cpu().numpy())
                    if self.thumbnails:
                        pair = torch.cat([x.float(), recon.float()], dim=-1)
                        thumb = thumbnails_from_tensor(pair, size=2 * self.thumbnail_size)
                        if thumb is not None:  # always: the inputs are images or volumes
                            thumbs.append(thumb)
                    if self.n_worst:
                        self._keep_worst(
                            worst_x, worst_r, worst_e, x, recon, err, sum(map(len, codes)) - len(x)
                        )
                    if batch.y is not None:
                        ys.append(np.asarray(batch.y))
                    for k, v in batch.meta.items():
                        metas.setdefault(k, []).append(np.asarray(v))
                    assert batch.index is not None  # make_stream numbers every batch
                    index.append(batch.index)
                    bar.update(len(x))
            finally:
                bar.close()
        if not codes or input_shape is None or latent_shape is None:
            raise ValueError("data yielded no samples")

        self.codes_ = np.concatenate(codes)
        self.logvar_ = np.concatenate(logvars) if logvars else None
        self.reconstruction_error_ = np.concatenate(errors).astype(np.float64)
        n = len(self.codes_)
        self.labels_ = np.concatenate(ys) if len(ys) == len(codes) else None
        self.metadata_ = {k: np.concatenate(v) for k, v in metas.items() if sum(map(len, v)) == n}
        self.index_ = np.concatenate(index).astype(np.int64)
        self.input_shape_ = input_shape
        self.latent_shape_ = latent_shape
        self.variational_ = self.logvar_ is not None
        self.n_samples_ = n
        self.thumbnails_ = np.concatenate(thumbs) if thumbs else None

        self.code_mean_: np.ndarray = self.codes_.mean(axis=0)
        self.code_std_ = self.codes_.std(axis=0)
        # Principal directions: PCAEmbedding's exact covariance solver, cheap for any N.
        k = self.codes_.shape[1]
        pca = PCAEmbedding(
            n_components=min(k, n), solver="covariance", metrics=False, progress=False
        ).fit(self.codes_)
        self.components_ = pca.components_
        self.explained_variance_ratio_ = pca.explained_variance_ratio_

        if self.n_worst:
            e = np.concatenate(worst_e)
            order = np.argsort(-e[:, 1], kind="stable")[: self.n_worst]
            self.worst_indices_ = e[order, 0].astype(np.int64)
            self.worst_inputs_: np.ndarray | None = np.concatenate(worst_x)[order]
            self.worst_reconstructions_: np.ndarray | None = np.concatenate(worst_r)[order]
        else:
            self.worst_indices_ = np.zeros(0, dtype=np.int64)
            self.worst_inputs_ = self.worst_reconstructions_ = None
        self._compute_correlations()
        logger.info(
            "encoded %d samples into %d latent dims (median reconstruction MSE %.4g)",
            n,
            k,
            float(np.median(self.reconstruction_error_)),
        )
        return self

    def _keep_worst(
        self,
        xs: list[np.ndarray],
        rs: list[np.ndarray],
        es: list[np.ndarray],
        x: torch.Tensor,
        recon: torch.Tensor,
        err: torch.Tensor,
        offset: int,
    ) -> None:
        """Keep the running top-n_worst (input, reconstruction) without holding all data."""
        take = torch.argsort(err, descending=True)[: self.n_worst].cpu().numpy()
        xs.append(x[take].float().cpu().numpy())
        rs.append(recon[take].float().cpu().numpy())
        es.append(np.stack([take + offset, err.cpu().numpy()[take]], axis=1))
        if sum(map(len, es)) > 4 * self.n_worst:  # compact now and then
            e = np.concatenate(es)
            keep = np.argsort(-e[:, 1], kind="stable")[: self.n_worst]
            xs[:] = [np.concatenate(xs)[keep]]
            rs[:] = [np.concatenate(rs)[keep]]
            es[:] = [e[keep]]

    def _targets(self) -> dict[str, np.ndarray]:
        targets = {}
        if self.labels_ is not None:
            targets["label"] = self.labels_
        for k, v in self.metadata_.items():
            if k not in targets:
                targets[k] = v
        return targets

    def _compute_correlations(self) -> None:
        self.correlations_: dict[str, np.ndarray] = {}
        self.correlation_kinds_: dict[str, str] = {}
        for name, y in self._targets().items():
            y = np.asarray(y)
            if y.ndim != 1:
                continue
            if y.dtype.kind == "f":
                if not np.all(np.isfinite(y)):
                    logger.info("skipping correlations with %r: it has NaN values", name)
                    continue
                self.correlations_[name] = pearson(self.codes_.astype(np.float64), y)
                self.correlation_kinds_[name] = "pearson"
            elif y.dtype.kind in "biuUSO":
                if len(np.unique(y)) < 2:
                    continue
                self.correlations_[name] = correlation_ratio(self.codes_, y)
                self.correlation_kinds_[name] = "eta"

    # -- analyses on the fitted codes ------------------------------------------------------
    def worst(self, n: int = 10) -> np.ndarray:
        """Indices (into the fitted data) of the ``n`` worst reconstructed samples, worst first."""
        self._check_fitted()
        return np.argsort(-self.reconstruction_error_, kind="stable")[:n]

    def _base_code(self, base: Any) -> np.ndarray:
        if base is None:
            return self.code_mean_.astype(np.float64)
        if isinstance(base, int | np.integer):
            if not -self.n_samples_ <= base < self.n_samples_:
                raise IndexError(f"base={base} is out of range for {self.n_samples_} samples")
            row: np.ndarray = self.codes_[int(base)].astype(np.float64)
            return row
        code = np.asarray(base, dtype=np.float64).ravel()
        if code.shape != self.code_mean_.shape:
            raise ValueError(
                f"base must be None, a sample index, or a code of size {len(self.code_mean_)}; "
                f"got shape {code.shape}"
            )
        return code

    def _range(self, coords: np.ndarray, span: Any, steps: int) -> np.ndarray:
        if isinstance(span, int | float | np.number):
            if span <= 0:
                raise ValueError(f"span as a number is std either side and must be > 0, got {span}")
            m, s = coords.mean(), coords.std()
            return np.linspace(m - span * s, m + span * s, steps)
        try:
            lo, hi = (float(v) for v in span)
        except (TypeError, ValueError):
            raise ValueError(
                f"span must be quantiles (low, high) in [0, 1] or a number of std, got {span!r}"
            ) from None
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"span quantiles must satisfy 0 <= low < high <= 1, got {span!r}")
        q_lo, q_hi = np.quantile(coords, [lo, hi])
        return np.linspace(q_lo, q_hi, steps)

    def traverse(
        self,
        dim: int | Sequence[int] | None = None,
        steps: int = 9,
        span: tuple[float, float] | float = (0.05, 0.95),
        *,
        direction: Literal["axis", "pca"] = "axis",
        base: Any = None,
    ) -> Traversal:
        """Vary one latent dimension at a time across its observed range and decode.

        Parameters
        ----------
        dim : int, sequence of int, or None
            Latent dimension(s) to walk (``direction='axis'``) or principal direction(s) of
            the codes, 0 = most variance (``direction='pca'``); None walks all of them.
        steps : int
            Points per walk.
        span : (low, high) or float
            Quantiles of the observed codes along the walked direction (default 5 % to 95 %),
            or a number k for mean ± k std.
        direction : {'axis', 'pca'}
        base : None, int or array (latent_size,)
            Start point whose other coordinates are kept: the mean code (default), the code
            of fitted sample ``base``, or a given code.

        Returns
        -------
        Traversal
            ``images`` of shape (n_dims, steps, *input_shape).

        Examples
        --------
        >>> from inspect_kit.models import ConvAutoencoder
        >>> X = np.random.default_rng(0).random((32, 1, 16, 16), dtype=np.float32)
        >>> probe = LatentProbe(ConvAutoencoder((1, 16, 16), latent_dim=8), progress=False)
        >>> t = probe.fit(X).traverse([0, 1], steps=7)
        >>> t.images.shape
        (2, 7, 1, 16, 16)
        """
        self._check_fitted()
        k = self.codes_.shape[1]
        if direction not in ("axis", "pca"):
            raise ValueError(f"direction must be 'axis' or 'pca', got {direction!r}")
        if not isinstance(steps, int | np.integer) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        dims = (
            list(range(k))
            if dim is None
            else ([int(dim)] if isinstance(dim, int | np.integer) else [int(d) for d in dim])
        )
        if not dims:
            raise ValueError("dim is empty; give at least one dimension")
        for d in dims:
            if not 0 <= d < k:
                raise ValueError(
                    f"dim {d} is out of range: the codes have {k} dimensions (0-{k - 1})"
                )
        base_code = self._base_code(base)
        codes = np.empty((len(dims), steps, k))
        values = np.empty((len(dims), steps))
        for i, d in enumerate(dims):
            if direction == "axis":
                vals = self._range(self.codes_[:, d].astype(np.float64), span, steps)
                codes[i] = base_code
                codes[i, :, d] = vals
            else:
                comp = self.components_[d]
                proj = (self.codes_ - self.code_mean_) @ comp
                vals = self._range(proj.astype(np.float64), span, steps)
                here = (base_code - self.code_mean_) @ comp
                codes[i] = base_code + (vals - here)[:, None] * comp
            values[i] = vals
        with self._codec.inference(self._device()) as device:
            images = self._decode_codes(codes.reshape(-1, k), device)
        images = images.reshape(len(dims), steps, *images.shape[1:])
        return Traversal(images, codes, values, dims, direction, base_code, span)

    def _code_of(self, x: Any, what: str) -> np.ndarray:
        if isinstance(x, int | np.integer):
            self._check_fitted()
            if not -self.n_samples_ <= x < self.n_samples_:
                raise IndexError(f"{what}={x} is out of range for {self.n_samples_} samples")
            row: np.ndarray = self.codes_[int(x)].astype(np.float64)
            return row
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if arr.ndim in (3, 4):
            arr = arr[None]
        if arr.ndim not in (4, 5) or len(arr) != 1:
            raise ValueError(
                f"{what} must be one sample (C, H, W) / (C, D, H, W), a batch of one, or an "
                f"index into the fitted data; got shape {arr.shape}"
            )
        first: np.ndarray = self.encode(arr)[0].astype(np.float64)
        return first

    def interpolate(
        self,
        x_a: Any,
        x_b: Any,
        steps: int = 9,
        mode: Literal["linear", "slerp"] = "linear",
    ) -> Interpolation:
        """Decode the path between the codes of two samples.

        Parameters
        ----------
        x_a, x_b : array, tensor or int
            One input each, (C, H, W) / (C, D, H, W), or indices into the fitted data.
        steps : int
            Points on the path, endpoints included.
        mode : {'linear', 'slerp'}
            Straight line, or spherical interpolation about the origin (see :func:`slerp`).

        Returns
        -------
        Interpolation
            ``images`` (steps, *input_shape); ``codes[0]``/``codes[-1]`` are the inputs' codes.

        Examples
        --------
        >>> from inspect_kit.models import ConvAutoencoder
        >>> X = np.random.default_rng(0).random((32, 1, 16, 16), dtype=np.float32)
        >>> probe = LatentProbe(ConvAutoencoder((1, 16, 16), latent_dim=8), progress=False)
        >>> path = probe.fit(X).interpolate(X[0], X[1], steps=7, mode="slerp")
        >>> path.images.shape
        (7, 1, 16, 16)
        """
        if mode not in ("linear", "slerp"):
            raise ValueError(f"mode must be 'linear' or 'slerp', got {mode!r}")
        if not isinstance(steps, int | np.integer) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        za, zb = self._code_of(x_a, "x_a"), self._code_of(x_b, "x_b")
        t = np.linspace(0.0, 1.0, steps)
        codes = slerp(za, zb, t) if mode == "slerp" else (1 - t)[:, None] * za + t[:, None] * zb
        codes[0], codes[-1] = za, zb
        with self._codec.inference(self._device()) as device:
            images = self._decode_codes(codes, device)
        return Interpolation(images, codes, t, mode)

    def probe(self, target: Any = "label", **kwargs: Any) -> ProbeResult:
        """Cross-validated linear probe of a target from the codes (see :func:`linear_probe`).

        ``target`` is ``'label'``, a metadata key, or an (N,) array.
        """
        self._check_fitted()
        if isinstance(target, str):
            targets = self._targets()
            if target in ("label", "labels") and self.labels_ is None:
                raise KeyError("no labels were fitted; pass labels= to fit or an array")
            key = "label" if target == "labels" else target
            if key not in targets:
                raise unknown_name_error(target, sorted(targets), kind="target", where="the fit")
            target = targets[key]
        return linear_probe(self.codes_, target, **kwargs)

    def embed(self, method: str = "pca", n_components: int = 2, **kwargs: Any) -> Any:
        """Embed the codes with :func:`inspect_kit.embed` (PCA, t-SNE or UMAP).

        Labels, metadata (plus ``reconstruction_error``) and the input|reconstruction
        thumbnails travel with the result, so :func:`inspect_kit.figures.plot_embedding` can
        colour by them and show both images on hover.

        Returns
        -------
        inspect_kit.analysis.embedding.Embedding
        """
        self._check_fitted()
        from inspect_kit.analysis.embedding import embed

        metadata = {**self.metadata_, "reconstruction_error": self.reconstruction_error_}
        kwargs.setdefault("progress", self.progress)
        return embed(
            self.codes_,
            method=method,
            n_components=n_components,
            labels=self.labels_,
            columns={"metadata": metadata, "thumbnails": self.thumbnails_},
            **kwargs,
        )

    # -- persistence -----------------------------------------------------------------------
    def to_store(self, store: Any, group: str = schema.LATENT) -> LatentProbe:
        """Write codes, reconstruction errors, correlations and worst cases under ``/<group>``.

        Parameters
        ----------
        store : ActivationStore or path
            A store of the same samples (same N, same order), e.g. a capture of the same data.
        group : str
            Where in the file.

        Returns
        -------
        self
        """
        self._check_fitted()
        with opened(store) as st:
            if len(st) != self.n_samples_:
                raise ValueError(
                    f"the store has {len(st)} samples but the probe was fitted on "
                    f"{self.n_samples_}; fit on the data the store was captured from"
                )
            data: dict[str, np.ndarray] = {
                "codes": self.codes_,
                "reconstruction_error": self.reconstruction_error_,
                "index": self.index_,
                "components": self.components_,
                "explained_variance_ratio": self.explained_variance_ratio_,
                "worst_indices": self.worst_indices_,
            }
            if self.logvar_ is not None:
                data["logvar"] = self.logvar_
            if self.thumbnails_ is not None:
                data["thumbnails"] = self.thumbnails_
            attrs = {
                "autoencoder": self._codec.name,
                "input_shape": list(self.input_shape_),
                "latent_shape": list(self.latent_shape_),
                "variational": self.variational_,
                "n_samples": self.n_samples_,
                "error": "mse",
                "code": "posterior mean" if self.variational_ else "encoder output",
            }
            result_cache.write_result(st, group, data, attrs)
            if self.correlations_:
                names = list(self.correlations_)
                result_cache.write_result(
                    st,
                    schema.latent_correlations_group(group),
                    {"values": np.stack([self.correlations_[k] for k in names])},
                    {"targets": names, "kinds": [self.correlation_kinds_[k] for k in names]},
                )
        return self
