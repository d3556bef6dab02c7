"""``embed()``: the one-call entry point, its result type, and caching in the store."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspect_kit.store import schema

from ..._names import unknown_name_error
from ..._version import __version__
from ..metrics import knn_transfer_accuracy
from ._base import BaseEmbedding
from ._features import Features
from ._pca import PCAEmbedding
from .registry import display_name, get_method

logger = logging.getLogger(__name__)

#: parameters that change speed or display but not the coordinates (left out of cache keys)
_NOT_IN_KEY = ("progress", "n_jobs", "memory_limit")
CACHE_VERSION = 1


@dataclass(eq=False, repr=False)
class Embedding:
    """Coordinates of samples in a 2D/3D map, with everything needed to show and trust them.

    Attributes
    ----------
    coords : ndarray (N, n_components), float32
        Also available as ``embedding_``.
    method : str
        A registered method ('pca', 'tsne', 'umap', ...; see
        :func:`~inspect_kit.analysis.embedding.register_method`).
    layer : str or None
        Layer of the store the features came from.
    params : dict
        Effective parameters, seed, feature reduction, PCA pre-reduction, library versions.
    metrics : dict
        Trustworthiness, kNN accuracy in the map and in feature space (also ``metrics_``);
        for placed samples, ``knn_transfer_accuracy``.
    index : ndarray (N,) int64
        Position of each sample in the user's dataset.
    labels, predictions : ndarray (N,) or None
    metadata : dict of str to ndarray (N,)
    thumbnails : ndarray (N, h, w[, 3]) uint8 or None
    estimator : fitted estimator or None
        What ``transform`` uses; None when only coordinates were reloaded from the cache.
    from_cache : bool
        Whether the coordinates were reused from the store.
    source : str or None
        Path of the store.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 8, 4, 4)).astype(np.float32)
    >>> emb = embed(X[:150], method="pca", progress=False)   # pooled to (150, 8)
    >>> emb.embedding_.shape, emb.title
    ((150, 2), 'PCA of features')
    >>> emb.transform(X[150:]).coords.shape                   # place new samples
    (50, 2)
    """

    coords: np.ndarray
    method: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    index: np.ndarray | None = None
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    thumbnails: np.ndarray | None = None
    estimator: BaseEmbedding | None = None
    from_cache: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float32)
        if self.coords.ndim != 2:
            raise ValueError(f"coords must be (N, n_components), got shape {self.coords.shape}")
        n = len(self.coords)
        if self.index is None:
            self.index = np.arange(n, dtype=np.int64)
        for name in ("index", "labels", "predictions", "thumbnails"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} points")
        for key, value in self.metadata.items():
            if len(value) != n:
                raise ValueError(f"metadata[{key!r}] has {len(value)} entries for {n} points")
        if "label_mismatch" not in self.metrics:
            from inspect_kit.labels import label_class_mismatch

            reason = label_class_mismatch(self.labels, self.predictions)
            if reason:
                self.metrics["label_mismatch"] = reason

    # -- views ---------------------------------------------------------------------------------
    @property
    def embedding_(self) -> np.ndarray:
        return self.coords

    @property
    def metrics_(self) -> dict[str, Any]:
        return self.metrics

    @property
    def n_components(self) -> int:
        return int(self.coords.shape[1])

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def labels_are_classes(self) -> bool:
        """False when the labels are not the model's classes (``metrics['label_mismatch']``
        says why): then there is no accuracy and no "misclassified" sample."""
        return not self.metrics.get("label_mismatch")

    @property
    def correct(self) -> np.ndarray | None:
        """Whether each prediction equals its label (None without both, or when the labels
        are not the model's classes: see :attr:`labels_are_classes`)."""
        if self.labels is None or self.predictions is None or not self.labels_are_classes:
            return None
        same: np.ndarray = np.asarray(self.labels) == np.asarray(self.predictions)
        return same

    @property
    def title(self) -> str:
        """Short description, e.g. ``"t-SNE of fc"``."""
        return f"{display_name(self.method)} of {self.layer or 'features'}"

    def __repr__(self) -> str:
        m = self.metrics
        quality = ""
        if m.get("trustworthiness") is not None:
            quality += f" trustworthiness={m['trustworthiness']:.3f}"
        if m.get("knn_accuracy") is not None:
            quality += f" knn_accuracy={m['knn_accuracy']:.3f}"
        cached = " (cached)" if self.from_cache else ""
        return f"<Embedding {self.title}: {len(self)} x {self.n_components}{quality}{cached}>"

    # -- placing new samples -------------------------------------------------------------------
    def transform(
        self,
        data: Any,
        layer: str | None = None,
        *,
        samples: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        predictions: np.ndarray | None = None,
        metadata: dict[str, np.ndarray] | None = None,
        thumbnails: np.ndarray | None = None,
    ) -> Embedding:
        """Place other samples (another site, a test split) on this map.

        Parameters
        ----------
        data : store, path, or array-like
            As for :func:`embed`; a store is read at ``layer`` (default: this map's layer).
        layer, samples, labels, predictions, metadata, thumbnails
            As for :func:`embed`.

        Returns
        -------
        Embedding
            The new samples' coordinates; ``metrics["knn_transfer_accuracy"]`` says how often
            a new sample's nearest reference points share its label (when both have labels).

        Examples
        --------
        >>> test_map = train_map.transform(test_store)      # doctest: +SKIP
        """
        if self.estimator is None:
            raise ValueError(
                f"this {self.title} was reloaded from the store's cache, which keeps coordinates "
                "only; recompute it with embed(..., cache='refresh') to place new samples"
            )
        if isinstance(data, str | Path):
            from inspect_kit.store import open_store

            with open_store(data) as store:
                return self.transform(
                    store,
                    layer,
                    samples=samples,
                    labels=labels,
                    predictions=predictions,
                    metadata=metadata,
                    thumbnails=thumbnails,
                )
        reduce = getattr(self.estimator, "reduce", "mean")
        feats, ctx = _resolve_input(
            data,
            layer or self.layer,
            samples,
            reduce,
            labels,
            predictions,
            metadata,
            thumbnails,
            progress=self.estimator.progress,
        )
        coords = self.estimator.transform(feats)
        metrics: dict[str, Any] = {}
        if ctx.get("label_mismatch"):
            metrics["label_mismatch"] = ctx["label_mismatch"]
        if ctx["labels"] is not None and self.labels is not None:
            k = int(self.metrics.get("n_neighbors") or 10)
            metrics["knn_transfer_accuracy"] = knn_transfer_accuracy(
                self.coords, self.labels, coords, ctx["labels"], n_neighbors=k
            )
            metrics["n_neighbors"] = k
        params = dict(self.params)
        params["placed_on"] = {
            "method": self.method,
            "layer": self.layer,
            "source": self.source,
            "n_reference": len(self),
        }
        return Embedding(
            coords=coords,
            method=self.method,
            layer=ctx["layer"],
            params=params,
            metrics=metrics,
            index=ctx["index"],
            labels=ctx["labels"],
            predictions=ctx["predictions"],
            metadata=ctx["metadata"],
            thumbnails=ctx["thumbnails"],
            estimator=None,
            source=ctx["source"],
        )


# -- input resolution --------------------------------------------------------------------------
def store_label_mismatch(store: Any) -> str | None:
    """Why a store's labels are not its model's classes, or None."""
    check = getattr(store, "label_mismatch", None)
    return check if isinstance(check, str) else None


def _is_store(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("layers", "iter_chunks", "save_result", "load_result"))


def _subset(arr: Any, samples: np.ndarray | None) -> Any:
    if arr is None:
        return None
    arr = np.asarray(arr)
    return arr if samples is None else arr[samples]


def _positions(samples: Any, n: int) -> np.ndarray | None:
    if samples is None:
        return None
    samples = np.asarray(samples)
    if samples.dtype == bool:
        return np.flatnonzero(samples)
    positions: np.ndarray = np.where(samples < 0, samples + n, samples).astype(np.int64)
    return positions


def _check_layer(store: Any, layer: str | None) -> str:
    layers = list(store.layers)
    if layer is None:
        if len(layers) == 1:
            return str(layers[0])
        raise ValueError(
            f"the store has {len(layers)} layers; pick one with layer=... "
            f"(stored layers: {', '.join(layers) or 'none'})"
        )
    if layer not in layers:
        raise unknown_name_error(layer, layers, where="the store", see="store.layers")
    return layer


def _resolve_input(
    data: Any,
    layer: str | None,
    samples: Any,
    reduce: str | Callable[..., Any] | None,
    labels: Any,
    predictions: Any,
    metadata: dict[str, Any] | None,
    thumbnails: Any,
    progress: bool,
    batch_size: int | None = None,
) -> tuple[Features, dict[str, Any]]:
    """Features plus the per-sample context (index, labels, ... thumbnails) of ``data``."""
    if _is_store(data):
        store = data
        layer = _check_layer(store, layer)
        view = store[layer]
        pos = _positions(samples, len(view))
        feats = Features(
            view, reduce=reduce, samples=pos, name=layer, progress=progress, block_rows=batch_size
        )
        ctx = {
            "store": store,
            "source": str(store.path),
            "layer": layer,
            "index": _subset(store.index, pos),
            "labels": _subset(labels if labels is not None else store.labels, pos),
            "predictions": _subset(
                predictions if predictions is not None else store.predictions, pos
            ),
            "metadata": {k: _subset(v, pos) for k, v in (metadata or store.metadata).items()},
            "thumbnails": _subset(thumbnails if thumbnails is not None else store.thumbnails, pos),
            "positions": pos,
        }
        if labels is None and predictions is None:
            ctx["label_mismatch"] = store_label_mismatch(store)
        return feats, ctx
    if isinstance(data, Embedding):
        raise TypeError("embed() takes features (a store or an array), not an Embedding")
    name = layer or getattr(data, "name", None)
    n = len(data)
    pos = _positions(samples, n)
    feats = Features(
        data, reduce=reduce, samples=pos, name=name, progress=progress, block_rows=batch_size
    )
    ctx = {
        "store": None,
        "source": None,
        "layer": name,
        "index": pos if pos is not None else np.arange(n, dtype=np.int64),
        "labels": _subset(labels, pos),
        "predictions": _subset(predictions, pos),
        "metadata": {k: _subset(v, pos) for k, v in (metadata or {}).items()},
        "thumbnails": _subset(thumbnails, pos),
        "positions": pos,
    }
    return feats, ctx


# -- estimators --------------------------------------------------------------------------------
def make_estimator(
    method: str,
    n_components: int = 2,
    *,
    random_state: int | None = 0,
    reduce: str | Callable[..., Any] | None = "mean",
    pca_components: int | None = 50,
    progress: bool = True,
    **method_params: Any,
) -> BaseEmbedding:
    """The estimator :func:`embed` uses for ``method``, with unknown parameters rejected.

    ``method`` is any name in the registry
    (:func:`~inspect_kit.analysis.embedding.method_names`).

    Examples
    --------
    >>> make_estimator("tsne", perplexity=20).perplexity
    20
    """
    cls = get_method(method).load()
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in method_params:
        if key not in valid:
            raise unknown_name_error(
                key, valid, kind="parameter", where=f"method={cls.method!r}", error=TypeError
            )
    common: dict[str, Any] = dict(
        n_components=n_components,
        random_state=random_state,
        reduce=reduce,
        progress=progress,
        pca_components=pca_components,
    )
    kwargs = {k: v for k, v in common.items() if k in valid}
    kwargs.update(method_params)
    return cls(**kwargs)


# -- cache -------------------------------------------------------------------------------------
def _cache_group(layer: str, method: str) -> str:
    """The latest map of (layer, method): what reports and ``store.results()`` show."""
    return schema.embedding_group(layer, method)


def _variant_group(layer: str, method: str, key: str) -> str:
    """Every map computed, one per cache key (method, dimensions, reduction, perplexity or
    neighbours, seed, samples ...): asking for 3D, then 2D, then 3D again reuses both."""
    return schema.embedding_variant_group(layer, method, key)


def _cache_key(est: BaseEmbedding, feats: Features, ctx: dict[str, Any]) -> str:
    params = {k: v for k, v in est.get_params().items() if k not in _NOT_IN_KEY}
    if params.get("pca_solver") == "auto":
        del params["pca_solver"]  # keys of maps cached before the parameter existed
    if callable(params.get("reduce")):
        params["reduce"] = feats.reduction
    pos = ctx["positions"]
    key = {
        "cache_version": CACHE_VERSION,
        "method": est.method,
        "layer": ctx["layer"],
        "params": params,
        "n_samples_store": int(len(ctx["store"])),
        "source_shape": list(feats.source_shape),
        "samples": None if pos is None else hashlib.sha256(pos.tobytes()).hexdigest(),
    }
    # a digest: the store's attribute codec would parse a JSON string back into a dict
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _load_cached(est: BaseEmbedding, feats: Features, ctx: dict[str, Any]) -> Embedding | None:
    store = ctx["store"]
    key = _cache_key(est, feats, ctx)
    found = store.load_result(_cache_group(ctx["layer"], est.method))
    if found is None or found[1].get("key") != key:
        found = store.load_result(_variant_group(ctx["layer"], est.method, key))
    if found is None:
        return None
    data, attrs = found
    if attrs.get("key") != key or "coords" not in data:
        logger.info("cached %s of %s has other parameters; recomputing", est.method, ctx["layer"])
        return None
    if len(data["coords"]) != feats.n_samples:
        return None
    estimator = None
    if est.method == "pca" and "components" in data:
        estimator = PCAEmbedding.from_arrays(
            data["components"],
            data["mean"],
            data["explained_variance"],
            data["explained_variance_ratio"],
            **{k: v for k, v in est.get_params().items() if k != "n_components"},
        )
    logger.info("reusing cached %s of %s", est.method, ctx["layer"])
    return _result(
        data["coords"],
        est.method,
        attrs.get("params", {}),
        attrs.get("metrics", {}),
        ctx,
        estimator,
        from_cache=True,
    )


def _save_cached(est: BaseEmbedding, feats: Features, ctx: dict[str, Any]) -> None:
    data: dict[str, np.ndarray] = {"coords": est.embedding_}
    if ctx["positions"] is not None:
        data["samples"] = ctx["positions"]
    if isinstance(est, PCAEmbedding):
        data.update(
            components=est.components_,
            mean=est.mean_,
            explained_variance=est.explained_variance_,
            explained_variance_ratio=est.explained_variance_ratio_,
        )
    attrs: dict[str, Any] = {
        "key": _cache_key(est, feats, ctx),
        "method": est.method,
        "params": est.params_,
        "metrics": est.metrics_,
        "seed": -1 if est.random_state is None else int(est.random_state),
        "inspect_kit_version": __version__,
    }
    try:
        ctx["store"].save_result(_cache_group(ctx["layer"], est.method), data, attrs)
        ctx["store"].save_result(
            _variant_group(ctx["layer"], est.method, attrs["key"]), data, attrs
        )
    except OSError as err:  # e.g. a capture still writing, or a read-only file system
        logger.warning(
            "could not cache the %s of %s in the store: %s", est.method, ctx["layer"], err
        )


def _result(
    coords: np.ndarray,
    method: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    ctx: dict[str, Any],
    estimator: BaseEmbedding | None,
    from_cache: bool = False,
) -> Embedding:
    if ctx.get("label_mismatch"):
        metrics = {**metrics, "label_mismatch": ctx["label_mismatch"]}
    return Embedding(
        coords=coords,
        method=method,
        layer=ctx["layer"],
        params=params,
        metrics=metrics,
        index=ctx["index"],
        labels=ctx["labels"],
        predictions=ctx["predictions"],
        metadata=ctx["metadata"],
        thumbnails=ctx["thumbnails"],
        estimator=estimator,
        from_cache=from_cache,
        source=ctx["source"],
    )


# -- the entry point ---------------------------------------------------------------------------
def embed(
    data: Any,
    layer: str | None = None,
    method: str = "pca",
    n_components: int = 2,
    *,
    random_state: int | None = 0,
    reduce: str | Callable[..., Any] | None = "mean",
    pca_components: int | None = 50,
    samples: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    metadata: dict[str, np.ndarray] | None = None,
    thumbnails: np.ndarray | None = None,
    cache: bool | str = True,
    batch_size: int | None = None,
    progress: bool = True,
    **method_params: Any,
) -> Embedding:
    """Embed a layer's features in 2 or 3 dimensions with PCA, t-SNE, UMAP or a registered method.

    Parameters
    ----------
    data : ActivationStore, path of a store, or array-like (N, ...)
        A store (read block by block; labels, predictions, metadata and thumbnails come
        with it) or activations as an array.
    layer : str, optional
        Layer of the store (optional when it holds one layer).
    method : str
        'pca', 'tsne', 'umap' or any method added with
        :func:`~inspect_kit.analysis.embedding.register_method`.
    n_components : int
        2 or 3 for a map.
    random_state : int or None
        Seed, recorded with the result.
    reduce : {'mean', 'max', 'flatten', 'none'} or callable
        Reduction of spatial maps (N, C, H, W) before embedding; global average pooling
        by default. Recorded.
    pca_components : int or None
        PCA pre-reduction for t-SNE and UMAP (default 50; None skips it). Recorded.
    samples : array of int or bool mask, optional
        Only these samples (positions in the store).
    labels, predictions, metadata, thumbnails : optional
        Per-sample values for the figures; taken from the store when not given.
    cache : bool or 'refresh'
        With a store: reuse ``/embeddings/<layer>/<method>`` when it was computed with the same
        parameters, and save new results there. 'refresh' recomputes and overwrites.
    batch_size : int, optional
        Rows of the store read at once (default: about 64 MiB of activations); memory of
        PCA streamed from a store follows it.
    progress : bool
        Progress bars.
    **method_params
        Parameters of the method's estimator, e.g. ``perplexity=50``, ``backend='sklearn'``
        (t-SNE), ``n_neighbors=30``, ``min_dist=0.3`` (UMAP), ``solver='covariance'`` or
        ``'dask'`` (PCA), ``pca_solver='dask'`` (t-SNE's and UMAP's PCA pre-reduction, with
        the reading and pooling, on the active ``dask.distributed`` cluster),
        ``metric_samples=5000``. See :class:`PCAEmbedding`, :class:`TSNEEmbedding`,
        :class:`UMAPEmbedding`.

    Returns
    -------
    Embedding

    Raises
    ------
    KeyError
        Unknown layer (close matches are listed).
    ValueError
        Too few samples for the perplexity or n_neighbors, non-finite features (with counts),
        unknown method.
    ImportError
        The method's package is missing.

    Examples
    --------
    With a store (``inspect_kit.embed(store, "fc", method="umap")``) labels, thumbnails and
    the cache come along; an array works the same way:

    >>> X = np.random.default_rng(0).normal(size=(100, 16)).astype(np.float32)
    >>> emb = embed(X, method="pca", n_components=3, progress=False)
    >>> emb.coords.shape, 0.5 < emb.metrics["trustworthiness"] <= 1.0
    ((100, 3), True)
    """
    if isinstance(data, str | Path):
        from inspect_kit.store import open_store

        with open_store(data) as store:
            return embed(
                store,
                layer,
                method,
                n_components,
                random_state=random_state,
                reduce=reduce,
                pca_components=pca_components,
                samples=samples,
                labels=labels,
                predictions=predictions,
                metadata=metadata,
                thumbnails=thumbnails,
                cache=cache,
                batch_size=batch_size,
                progress=progress,
                **method_params,
            )
    if cache not in (True, False, "refresh"):
        raise ValueError(f"cache must be True, False or 'refresh', got {cache!r}")
    est = make_estimator(
        method,
        n_components,
        random_state=random_state,
        reduce=reduce,
        pca_components=pca_components,
        progress=progress,
        **method_params,
    )
    feats, ctx = _resolve_input(
        data,
        layer,
        samples,
        reduce,
        labels,
        predictions,
        metadata,
        thumbnails,
        progress,
        batch_size,
    )
    use_cache = bool(cache) and ctx["store"] is not None
    if use_cache and cache != "refresh":
        cached = _load_cached(est, feats, ctx)
        if cached is not None:
            return cached
    est.fit(feats, ctx["labels"])
    if use_cache:
        _save_cached(est, feats, ctx)
    return _result(est.embedding_, est.method, est.params_, est.metrics_, ctx, est)
