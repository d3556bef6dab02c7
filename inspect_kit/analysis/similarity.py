"""Representation similarity: CKA and RSA between the layers of one store or of two stores.

The maths (HSIC, linear/RBF CKA, debiased, RDMs) is in :mod:`inspect_kit.analysis.cka_rsa`; this
module streams stores through it. CKA is a minibatch estimator: the (unbiased) HSIC of each
minibatch of a seeded permutation, numerator and denominators averaged separately, so that
memory stays at a few ``batch x batch`` matrices per layer however many samples a store holds
or however wide its layers are. RSA compares the RDMs of a seeded subset of samples.

Stores are opened, their layers resolved, their samples matched by dataset index and their
results cached through the analysis base (:mod:`.base`, :mod:`.cache`). Everything is
computed in float64; nothing here plots (see :func:`inspect_kit.figures.plot_similarity`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from inspect_kit._names import unknown_name_error
from inspect_kit.store import schema

from . import cache as result_cache
from .base import match_samples, opened, resolve_layers
from .blocks import GramReader
from .cka_rsa import (
    RDM_METRICS,
    Prepared,
    check_kernel,
    check_n,
    cka,
    cross_hsic,
    hsic,
    prepare,
    ranked_upper,
    ratio,
    rbf_from_linear,
    rdm,
    rdm_from_gram,
    self_hsic,
)

logger = logging.getLogger(__name__)

__all__ = ["Similarity", "SimilarityOptions", "cka", "hsic", "rdm", "similarity"]

METHODS = ("cka", "rsa")
REDUCTIONS = ("flatten", "mean", "max")
#: group under which :func:`similarity` caches its results in a store
RESULT_GROUP = schema.SIMILARITY


@dataclass(frozen=True)
class SimilarityOptions:
    """Every parameter that changes a similarity matrix (see :func:`similarity`).

    Attributes
    ----------
    method : {'cka', 'rsa'}
    kernel : {'linear', 'rbf'}
        CKA kernel; the RBF bandwidth is ``sigma`` median distances of the first minibatch.
    sigma : float
    debiased : bool
        CKA from the unbiased HSIC estimator (Nguyen et al., 2021).
    reduction : {'flatten', 'mean', 'max'} or None
        How spatial maps become feature vectors (None: flatten).
    batch_size : int or None
        CKA minibatch size (None: the full-data value in one batch).
    n_epochs : int
        Passes over the samples, each with a new permutation.
    n_samples : int or None
        A seeded subset of this many samples (RSA: 1000 by default).
    rdm : {'correlation', 'euclidean'}
        RSA dissimilarity.
    random_state : int or None
        Seed of the minibatches and of the subset.

    Examples
    --------
    >>> SimilarityOptions(method="rsa", n_samples=200).validated().rdm
    'correlation'
    """

    method: Literal["cka", "rsa"] = "cka"
    kernel: Literal["linear", "rbf"] = "linear"
    sigma: float = 1.0
    debiased: bool = True
    reduction: Literal["flatten", "mean", "max"] | None = None
    batch_size: int | None = 512
    n_epochs: int = 1
    n_samples: int | None = None
    rdm: Literal["correlation", "euclidean"] = "correlation"
    random_state: int | None = 0

    def validated(self) -> SimilarityOptions:
        """These options checked, with the defaults that depend on others filled in."""
        if self.method not in METHODS:
            raise ValueError(
                f"method={self.method!r} is not one of {', '.join(map(repr, METHODS))}"
            )
        check_kernel(self.kernel, self.sigma)
        if self.rdm not in RDM_METRICS:
            raise ValueError(f"rdm={self.rdm!r} is not one of {', '.join(map(repr, RDM_METRICS))}")
        reduction = "flatten" if self.reduction is None else self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))} "
                "(or None)"
            )
        bs = self.batch_size
        if bs is not None and (not isinstance(bs, int | np.integer) or bs < 4):
            raise ValueError(f"batch_size must be an integer >= 4 or None, got {bs!r}")
        if not isinstance(self.n_epochs, int | np.integer) or self.n_epochs < 1:
            raise ValueError(f"n_epochs must be a positive integer, got {self.n_epochs!r}")
        ns = self.n_samples
        if ns is not None and (not isinstance(ns, int | np.integer) or ns < 4):
            raise ValueError(f"n_samples must be an integer >= 4 or None, got {ns!r}")
        if self.method == "rsa" and ns is None:
            ns = 1000
        return replace(self, reduction=reduction, n_samples=ns)

    @classmethod
    def from_params(
        cls, options: SimilarityOptions | None = None, **params: Any
    ) -> SimilarityOptions:
        """``options`` (default the defaults) with some fields replaced; unknown names raise."""
        names = [f.name for f in fields(cls)]
        for key in params:
            if key not in names:
                raise unknown_name_error(
                    key, names, kind="parameter", where="similarity", error=TypeError
                )
        return replace(options or cls(), **params)


# -- the result ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Similarity:
    """Similarity of every layer pair: ``matrix[i, j]`` compares ``layers[i]`` with ``other_layers[j]``.

    Attributes
    ----------
    matrix : ndarray of shape (len(layers), len(other_layers))
    layers : list of str
        Rows: layers of ``store``.
    other_layers : list of str
        Columns: layers of ``other`` (or of ``store`` itself when there is no other store).
    n_samples : int
        Samples compared (both stores hold them).
    method : {'cka', 'rsa'}
    params : dict
        Every parameter that changes the values (kernel, debiased, batch size, seed, ...).
    store, other : str or None
        The stores' files (``other`` is None for the layers of one store).
    bandwidths, other_bandwidths : ndarray or None
        RBF bandwidth used for each layer (CKA with ``kernel='rbf'``).
    from_cache : bool
        Read back from the store rather than computed.

    Examples
    --------
    >>> sim = similarity("acts.h5")                    # doctest: +SKIP
    >>> sim["conv1", "conv2"], sim.diagonal()          # doctest: +SKIP
    """

    matrix: np.ndarray
    layers: list[str]
    other_layers: list[str]
    n_samples: int
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    other: str | None = None
    bandwidths: np.ndarray | None = field(default=None, repr=False)
    other_bandwidths: np.ndarray | None = field(default=None, repr=False)
    from_cache: bool = False

    def __repr__(self) -> str:
        return (
            f"<Similarity {self.description}: {len(self.layers)} x {len(self.other_layers)} "
            f"layers, {self.n_samples} samples{' (cached)' if self.from_cache else ''}>"
        )

    @property
    def description(self) -> str:
        """What the values are, e.g. ``'linear CKA (debiased)'`` or ``'RSA (Spearman ρ)'``."""
        p = self.params
        if self.method == "cka":
            kernel = p.get("kernel", "linear")
            name = f"{kernel} CKA" if kernel == "linear" else f"RBF CKA (σ={p.get('sigma', 1.0):g})"
            return name + (" (debiased)" if p.get("debiased") else "")
        return f"RSA (Spearman ρ, {p.get('rdm', 'correlation')} RDMs)"

    def __getitem__(self, key: tuple[str, str]) -> float:
        a, b = key
        if a not in self.layers:
            raise KeyError(f"{a!r} is not a row layer; rows: {self.layers}")
        if b not in self.other_layers:
            raise KeyError(f"{b!r} is not a column layer; columns: {self.other_layers}")
        return float(self.matrix[self.layers.index(a), self.other_layers.index(b)])

    def diagonal(self) -> np.ndarray:
        """Values of each row layer against the column layer of the same name (NaN if none)."""
        return np.array(
            [
                self.matrix[i, self.other_layers.index(name)]
                if name in self.other_layers
                else np.nan
                for i, name in enumerate(self.layers)
            ],
            dtype=float,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, e.g. for JSON (NaN becomes None)."""
        return {
            "method": self.method,
            "description": self.description,
            "layers": list(self.layers),
            "other_layers": list(self.other_layers),
            "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in self.matrix],
            "n_samples": int(self.n_samples),
            "params": dict(self.params),
            "store": self.store,
            "other": self.other,
        }


# -- streaming from stores ---------------------------------------------------------------------
def _batches(
    n: int, batch_size: int | None, n_epochs: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Disjoint minibatches of a fresh seeded permutation per epoch.

    ``n // batch_size`` batches whose sizes differ by at most one: every sample is used, and no
    batch is smaller than ``batch_size``.
    """
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]  # the full-data value: every epoch would repeat it
    n_batches = max(1, n // batch_size)
    out: list[np.ndarray] = []
    for _ in range(n_epochs):
        out += np.array_split(rng.permutation(n), n_batches)
    return out


def _minibatch_cka(
    readers_a: list[GramReader],
    readers_b: list[GramReader] | None,
    pos_a: np.ndarray,
    pos_b: np.ndarray,
    *,
    kernel: str,
    sigma: float,
    debiased: bool,
    batches: list[np.ndarray],
    progress: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    la = len(readers_a)
    lb = la if readers_b is None else len(readers_b)
    cross = np.zeros((la, lb))
    self_a, self_b = np.zeros(la), np.zeros(lb)
    bw_a: list[float | None] = [None] * la
    bw_b: list[float | None] = [None] * lb

    def prepared(readers: list[GramReader], positions: np.ndarray, bws: list[Any]) -> Prepared:
        grams = []
        for i, reader in enumerate(readers):
            G, _ = reader.gram(positions, centre=True)
            if kernel == "rbf":
                # the first batch fixes each layer's bandwidth: one kernel for every batch
                G, bws[i] = rbf_from_linear(G, sigma, bws[i])
            grams.append(G)
        return prepare(grams, debiased)

    for batch in tqdm(
        batches, desc="CKA minibatches", unit="batch", disable=not progress, leave=False
    ):
        check_n(len(batch), debiased)
        pa = prepared(readers_a, pos_a[batch], bw_a)
        pb = pa if readers_b is None else prepared(readers_b, pos_b[batch], bw_b)
        cross += cross_hsic(pa, pb)
        self_a += self_hsic(pa)
        self_b += self_hsic(pb)
    k = len(batches)
    matrix = ratio(cross / k, (self_a / k)[:, None], (self_b / k)[None, :])
    if readers_b is None:
        np.fill_diagonal(matrix, np.where(self_a > 0, 1.0, np.nan))  # exactly 1, not 1 - 1e-16
    bands = (np.array(bw_a, float), np.array(bw_b if readers_b is not None else bw_a, float))
    return matrix, *(bands if kernel == "rbf" else (None, None))


def _rsa(
    readers_a: list[GramReader],
    readers_b: list[GramReader] | None,
    pos_a: np.ndarray,
    pos_b: np.ndarray,
    metric: str,
    progress: bool,
) -> np.ndarray:
    def ranked(readers: list[GramReader], positions: np.ndarray) -> np.ndarray:
        out = []
        for reader in tqdm(readers, desc="RDMs", unit="layer", disable=not progress, leave=False):
            G, sums = reader.gram(positions, centre=False)
            out.append(ranked_upper(rdm_from_gram(G, sums, reader.n_features, metric)))
        return np.stack(out)

    za = ranked(readers_a, pos_a)
    zb = za if readers_b is None else ranked(readers_b, pos_b)
    rho: np.ndarray = np.clip(za @ zb.T / za.shape[1], -1.0, 1.0)
    return rho


@dataclass(frozen=True, eq=False)
class _Plan:
    """What one call compares: layers, the matched rows of each store, effective parameters."""

    rows: list[str]
    cols: list[str]
    pos_a: np.ndarray
    pos_b: np.ndarray
    other: Any  # the other store, or None within one store
    params: dict[str, Any]
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return len(self.pos_a)


def _plan(store: Any, other: Any, layers: Any, other_layers: Any, opts: SimilarityOptions) -> _Plan:
    """Resolve the layers, match the samples (by dataset index) and draw the subset."""
    if other is not None and os.path.realpath(other.path) == os.path.realpath(store.path):
        other = None  # the same file: compare within it
    rows = resolve_layers(store, layers)
    if other is None:
        cols = rows if other_layers is None else resolve_layers(store, other_layers)
        pos_a = pos_b = np.arange(store.n_samples, dtype=np.int64)
    else:
        cols = resolve_layers(other, other_layers)
        match = match_samples(store, other)
        pos_a, pos_b = match.positions_a, match.positions_b
    rng = np.random.default_rng(opts.random_state)
    if opts.n_samples is not None and opts.n_samples < len(pos_a):
        chosen = np.sort(rng.choice(len(pos_a), size=opts.n_samples, replace=False))
        pos_a, pos_b = pos_a[chosen], pos_b[chosen]
    n = len(pos_a)
    params: dict[str, Any] = {"reduction": opts.reduction, "random_state": opts.random_state}
    if opts.method == "cka":
        batch = opts.batch_size
        minibatch = batch is not None and batch < n
        params.update(
            kernel=opts.kernel,
            debiased=bool(opts.debiased),
            batch_size=int(batch) if batch is not None and minibatch else None,
            n_epochs=int(opts.n_epochs) if minibatch else 1,
        )
        if opts.kernel == "rbf":
            params["sigma"] = float(opts.sigma)
    else:
        params["rdm"] = opts.rdm
    if opts.n_samples is not None:
        params["n_samples"] = int(opts.n_samples)
    return _Plan(rows, list(cols), pos_a, pos_b, other, params, rng)


def _compute(store: Any, plan: _Plan, opts: SimilarityOptions, progress: bool) -> Similarity:
    reduction = str(plan.params["reduction"])
    same = plan.other is None and plan.cols == plan.rows
    src_b = store if plan.other is None else plan.other
    readers_a = [GramReader(store[name], reduction) for name in plan.rows]
    readers_b = None if same else [GramReader(src_b[name], reduction) for name in plan.cols]
    bands: list[Any] = [None, None]
    if opts.method == "cka":
        batches = _batches(plan.n, plan.params["batch_size"], opts.n_epochs, plan.rng)
        matrix, *bands = _minibatch_cka(
            readers_a,
            readers_b,
            plan.pos_a,
            plan.pos_b,
            kernel=opts.kernel,
            sigma=opts.sigma,
            debiased=opts.debiased,
            batches=batches,
            progress=progress,
        )
    else:
        matrix = _rsa(readers_a, readers_b, plan.pos_a, plan.pos_b, opts.rdm, progress)
    if np.isnan(matrix).any():
        logger.warning(
            "some similarities are undefined (NaN): a layer's features are constant over "
            "the samples compared"
        )
    return Similarity(
        matrix=matrix,
        layers=plan.rows,
        other_layers=plan.cols,
        n_samples=plan.n,
        method=opts.method,
        params=plan.params,
        store=str(store.path),
        other=None if plan.other is None else str(plan.other.path),
        bandwidths=bands[0],
        other_bandwidths=bands[1],
    )


def similarity(
    store: Any,
    other: Any = None,
    *,
    layers: Sequence[str] | str | None = None,
    other_layers: Sequence[str] | str | None = None,
    options: SimilarityOptions | None = None,
    cache: bool = True,
    refresh: bool = False,
    progress: bool = True,
    **params: Any,
) -> Similarity:
    """Similarity of every layer pair of one store, or between the layers of two stores.

    Two stores are matched by their sample index (``/samples/index``: each sample's position
    in the user's dataset), so two captures of the same dataset compare sample by sample
    whatever order they were written in; samples only one store holds are left out. Features
    are streamed from the stores: memory stays at a few ``batch_size x batch_size`` matrices
    per layer (CKA) or ``n_samples x n_samples`` (RSA), plus one layer's rows of the minibatch
    (at most 256 MiB as stored: wider rows are read a slice of channels at a time) and a
    64 MiB float64 slice of them, however many samples there are and however wide the layers.

    Parameters
    ----------
    store : ActivationStore or path
    other : ActivationStore or path, optional
        A second store (another model, seed, or site's fine-tune) holding the same samples.
        Without it, the layers of ``store`` are compared with each other.
    layers : list of str, optional
        Rows of the matrix: layer specs of ``store`` (default all, in capture order; globs
        such as ``"conv*"`` allowed).
    other_layers : list of str, optional
        Columns: layers of ``other`` (default all), or of ``store`` when there is no other
        (default ``layers``).
    options : SimilarityOptions, optional
        The method and its parameters (defaults: debiased linear CKA over minibatches of 512,
        flattened maps, ``random_state=0``).
    cache : bool
        Save the result in ``store`` under ``similarity/<method>/<key>`` (keyed by every
        parameter, the package version and, with two stores, the other store's identity) and
        reuse a saved one.
    refresh : bool
        Recompute even if a cached result exists.
    progress : bool
        Progress bar over minibatches (RSA: over layers).
    **params
        :class:`SimilarityOptions` fields as keywords (``method='rsa'``, ``kernel='rbf'``,
        ``sigma``, ``debiased``, ``reduction``, ``batch_size``, ``n_epochs``, ``n_samples``,
        ``rdm``, ``random_state``); they replace those of ``options``.

    Returns
    -------
    Similarity

    Raises
    ------
    ValueError
        When the two stores share no sample, or for bad parameters.
    KeyError
        For a layer the store does not hold (with close matches).
    TypeError
        For a parameter that is not a :class:`SimilarityOptions` field.

    Examples
    --------
    >>> sim = similarity("run1.h5", "run2.h5", layers=["conv1", "conv2", "fc"])  # doctest: +SKIP
    >>> sim.matrix.shape                                                          # doctest: +SKIP
    (3, 3)
    >>> within = similarity("run1.h5", method="rsa", n_samples=500)              # doctest: +SKIP
    """
    opts = SimilarityOptions.from_params(options, **params).validated()
    with opened(store) as store_a:
        if other is None:
            return _similarity(store_a, None, layers, other_layers, opts, cache, refresh, progress)
        with opened(other) as store_b:
            return _similarity(
                store_a, store_b, layers, other_layers, opts, cache, refresh, progress
            )


def _similarity(
    store: Any,
    other: Any,
    layers: Any,
    other_layers: Any,
    opts: SimilarityOptions,
    cache: bool,
    refresh: bool,
    progress: bool,
) -> Similarity:
    plan = _plan(store, other, layers, other_layers, opts)
    key = _cache_key(store, plan, opts.method)
    group = result_cache.result_group(RESULT_GROUP, opts.method, key[:16])
    if cache and not refresh:
        found = _load_cached(store, group, key, plan, opts.method)
        if found is not None:
            return found
    result = _compute(store, plan, opts, progress)
    if cache:
        _save_cached(store, group, key, result)
    return result


# -- cache -----------------------------------------------------------------------------------
def _cache_key(store: Any, plan: _Plan, method: str) -> str:
    return result_cache.cache_key(
        "similarity",
        {
            "method": method,
            "layers": plan.rows,
            "other_layers": plan.cols,
            "params": plan.params,
            "n_samples": plan.n,
            "store_n_samples": int(store.n_samples),
            "other": None if plan.other is None else result_cache.store_identity(plan.other),
        },
    )


def _load_cached(store: Any, group: str, key: str, plan: _Plan, method: str) -> Similarity | None:
    found = result_cache.load_cached(store, group, key, ("matrix",))
    if found is None:
        return None
    data, attrs = found
    logger.info("reusing the cached %s similarity in %s", method, group)
    return Similarity(
        matrix=np.asarray(data["matrix"], dtype=float),
        layers=plan.rows,
        other_layers=plan.cols,
        n_samples=int(attrs["n_samples"]),
        method=method,
        params=plan.params,
        store=str(store.path),
        other=None if plan.other is None else str(plan.other.path),
        bandwidths=data.get("bandwidths"),
        other_bandwidths=data.get("other_bandwidths"),
        from_cache=True,
    )


def _save_cached(store: Any, group: str, key: str, result: Similarity) -> None:
    data: dict[str, np.ndarray] = {
        "matrix": result.matrix,
        "layers": np.asarray(result.layers, dtype=object),
        "other_layers": np.asarray(result.other_layers, dtype=object),
    }
    if result.bandwidths is not None and result.other_bandwidths is not None:
        data["bandwidths"] = result.bandwidths
        data["other_bandwidths"] = result.other_bandwidths
    attrs = {
        "method": result.method,
        "description": result.description,
        "params": result.params,
        "n_samples": result.n_samples,
        "other": result.other or "",
    }
    result_cache.save_cached(store, group, key, data, attrs)
