"""``embed()``: the one-call entry point, its result type, and caching in the store."""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspect_kit.store import schema

from ..._names import unknown_name_error
from .. import cache as result_cache
from ..base import SampleColumns, is_store, opened, resolve_layer, sample_positions
from ..blocks import Features
from ..metrics import knn_transfer_accuracy
from ._base import BaseEmbedding
from ._pca import PCAEmbedding
from .registry import display_name, get_method

logger = logging.getLogger(__name__)

#: parameters that change speed or display but not the coordinates (left out of cache keys)
_NOT_IN_KEY = ("progress", "n_jobs", "memory_limit")


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
            with opened(data) as store:
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
        src = _resolve_input(
            data,
            layer or self.layer,
            samples,
            reduce,
            _Given(labels, predictions, metadata, thumbnails),
            progress=self.estimator.progress,
        )
        cols = src.columns
        coords = self.estimator.transform(src.features)
        metrics: dict[str, Any] = {}
        if cols.label_mismatch:
            metrics["label_mismatch"] = cols.label_mismatch
        if cols.labels is not None and self.labels is not None:
            k = int(self.metrics.get("n_neighbors") or 10)
            metrics["knn_transfer_accuracy"] = knn_transfer_accuracy(
                self.coords, self.labels, coords, cols.labels, n_neighbors=k
            )
            metrics["n_neighbors"] = k
        params = dict(self.params)
        params["placed_on"] = {
            "method": self.method,
            "layer": self.layer,
            "source": self.source,
            "n_reference": len(self),
        }
        return _result(coords, self.method, params, metrics, src, None)


# -- input resolution --------------------------------------------------------------------------
def store_label_mismatch(store: Any) -> str | None:
    """Why a store's labels are not its model's classes, or None."""
    check = getattr(store, "label_mismatch", None)
    return check if isinstance(check, str) else None


@dataclass(frozen=True)
class _Given:
    """Per-sample columns the caller passed (they replace the store's)."""

    labels: Any = None
    predictions: Any = None
    metadata: dict[str, Any] | None = None
    thumbnails: Any = None


@dataclass(frozen=True, eq=False)
class _Input:
    """What an embedding reads: the features, the samples' columns, the layer and store."""

    features: Features
    columns: SampleColumns
    layer: str | None
    store: Any = None


_COLUMNS = ("predictions", "metadata", "thumbnails")


def _given(labels: Any, columns: Mapping[str, Any] | None) -> _Given:
    """The caller's per-sample columns, with an unknown key named."""
    columns = dict(columns or {})
    for key in columns:
        if key not in _COLUMNS:
            raise unknown_name_error(
                key, list(_COLUMNS), kind="column", where="embed(columns=...)", error=TypeError
            )
    return _Given(labels, **columns)


def _resolve_input(
    data: Any,
    layer: str | None,
    samples: Any,
    reduce: str | Callable[..., Any] | None,
    given: _Given,
    progress: bool,
    batch_size: int | None = None,
) -> _Input:
    """Features plus the per-sample columns (index, labels, ... thumbnails) of ``data``."""
    if is_store(data):
        stored = resolve_layer(data, layer)
        view = data[stored]
        columns = SampleColumns.from_store(
            data,
            samples,
            labels=given.labels,
            predictions=given.predictions,
            metadata=given.metadata,
            thumbnails=given.thumbnails,
        )
        feats = Features(
            view,
            reduce=reduce,
            samples=columns.positions,
            name=stored,
            progress=progress,
            block_rows=batch_size,
        )
        return _Input(feats, columns, stored, data)
    if isinstance(data, Embedding):
        raise TypeError("embed() takes features (a store or an array), not an Embedding")
    name = layer or getattr(data, "name", None)
    n = len(data)
    columns = SampleColumns.from_arrays(
        n,
        samples,
        labels=given.labels,
        predictions=given.predictions,
        metadata=given.metadata,
        thumbnails=given.thumbnails,
    )
    feats = Features(
        data,
        reduce=reduce,
        samples=sample_positions(samples, n),
        name=name,
        progress=progress,
        block_rows=batch_size,
    )
    return _Input(feats, columns, name)


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
def _cache_key(est: BaseEmbedding, src: _Input) -> str:
    params = {k: v for k, v in est.get_params().items() if k not in _NOT_IN_KEY}
    if callable(params.get("reduce")):
        params["reduce"] = src.features.reduction
    pos = src.columns.positions
    key = {
        "method": est.method,
        "layer": src.layer,
        "params": params,
        "n_samples_store": int(len(src.store)),
        "source_shape": list(src.features.source_shape),
        "samples": None if pos is None else hashlib.sha256(pos.tobytes()).hexdigest(),
    }
    return result_cache.cache_key("embedding", key)


def _load_cached(est: BaseEmbedding, src: _Input) -> Embedding | None:
    assert src.layer is not None  # a store's layer
    key = _cache_key(est, src)
    found = result_cache.load_cached(
        src.store, schema.embedding_group(src.layer, est.method), key, ("coords",)
    )
    if found is None:
        found = result_cache.load_cached(
            src.store, schema.embedding_variant_group(src.layer, est.method, key), key, ("coords",)
        )
    if found is None:
        return None
    data, attrs = found
    if len(data["coords"]) != src.features.n_samples:
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
    logger.info("reusing cached %s of %s", est.method, src.layer)
    return _result(
        data["coords"],
        est.method,
        attrs.get("params", {}),
        attrs.get("metrics", {}),
        src,
        estimator,
        from_cache=True,
    )


def _save_cached(est: BaseEmbedding, src: _Input) -> None:
    assert src.layer is not None
    data: dict[str, np.ndarray] = {"coords": est.embedding_}
    if src.columns.positions is not None:
        data["samples"] = src.columns.positions
    if isinstance(est, PCAEmbedding):
        data.update(
            components=est.components_,
            mean=est.mean_,
            explained_variance=est.explained_variance_,
            explained_variance_ratio=est.explained_variance_ratio_,
        )
    attrs: dict[str, Any] = {
        "method": est.method,
        "params": est.params_,
        "metrics": est.metrics_,
        "random_state": -1 if est.random_state is None else int(est.random_state),
    }
    key = _cache_key(est, src)
    # the latest map of (layer, method), what reports show; and one per parameter set
    for group in (
        schema.embedding_group(src.layer, est.method),
        schema.embedding_variant_group(src.layer, est.method, key),
    ):
        if not result_cache.save_cached(src.store, group, key, data, attrs):
            break


def _result(
    coords: np.ndarray,
    method: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    src: _Input,
    estimator: BaseEmbedding | None,
    from_cache: bool = False,
) -> Embedding:
    cols = src.columns
    if cols.label_mismatch:
        metrics = {**metrics, "label_mismatch": cols.label_mismatch}
    return Embedding(
        coords=coords,
        method=method,
        layer=src.layer,
        params=params,
        metrics=metrics,
        index=cols.index,
        labels=cols.labels,
        predictions=cols.predictions,
        metadata=dict(cols.metadata),
        thumbnails=cols.thumbnails,
        estimator=estimator,
        from_cache=from_cache,
        source=cols.source,
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
    columns: Mapping[str, Any] | None = None,
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
    labels : array (N,), optional
        Per-sample labels (the quality metrics and the figures); the store's when not given.
    columns : mapping, optional
        Other per-sample values for the figures, replacing the store's: any of
        ``{"predictions": (N,), "metadata": {name: (N,)}, "thumbnails": (N, h, w[, 3])}``.
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
        with opened(data) as store:
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
                columns=columns,
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
    src = _resolve_input(
        data,
        layer,
        samples,
        reduce,
        _given(labels, columns),
        progress,
        batch_size,
    )
    use_cache = bool(cache) and src.store is not None
    if use_cache and cache != "refresh":
        cached = _load_cached(est, src)
        if cached is not None:
            return cached
    est.fit(src.features, src.columns.labels)
    if use_cache:
        _save_cached(est, src)
    return _result(est.embedding_, est.method, est.params_, est.metrics_, src, est)
