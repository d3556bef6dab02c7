"""What the embedding explorer computes: maps of a store's layers, features and neighbours.

The explorer widget (:mod:`inspect_kit.figures.explorer`) only shows. When its user switches
layer or method, or asks for a sample's nearest neighbours, it asks the :class:`MapSource` it
was given, which embeds (through :func:`~inspect_kit.analysis.embedding.embed`, so the
store's cache is reused), reads and pools the original features, and searches them.
:func:`inspect_kit.explore` builds the two.

Examples
--------
>>> import numpy as np
>>> from inspect_kit.analysis.embedding import embed
>>> X = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
>>> source = MapSource([embed(X, method="pca", progress=False)], features=X)
>>> points, distances = source.neighbours(0, k=3)
>>> points.shape, bool(np.all(np.diff(distances) >= 0))
((3,), True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base import is_store, open_path
from .registry import method_names

__all__ = ["MapSource", "is_store"]


class MapSource:
    """The maps an explorer starts with, and what computes more of them.

    Parameters
    ----------
    embeddings : sequence of Embedding
        The maps shown first (one per panel); they must show the same samples.
    store : ActivationStore, optional
        The store they came from: needed to switch layer or method and, unless ``features``
        is given, for neighbours.
    rows : array of int64, optional
        The store rows the maps show (default: all of them).
    reduce : {'mean', 'max', 'flatten'} or callable
        Pooling of spatial maps, for new embeddings and for neighbours.
    features : array (N, ...), optional
        Original features for :meth:`neighbours` when there is no store.
    layer_options, method_options : sequence of str, optional
        What the widget offers (default: the store's layers and every registered method,
        or only what ``embeddings`` show when there is no store).
    embed_kwargs : dict, optional
        Passed to :func:`~inspect_kit.analysis.embedding.embed` for new maps.
    """

    def __init__(
        self,
        embeddings: Sequence[Any],
        *,
        store: Any = None,
        rows: np.ndarray | None = None,
        reduce: str | Callable[..., Any] | None = "mean",
        features: np.ndarray | None = None,
        layer_options: Sequence[str] | None = None,
        method_options: Sequence[str] | None = None,
        embed_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.embeddings = list(embeddings)
        if not self.embeddings:
            raise ValueError("no embedding to explore")
        sizes = {len(e) for e in self.embeddings}
        if len(sizes) > 1:
            raise ValueError(
                f"linked maps must show the same samples; their sizes are {sorted(sizes)}"
            )
        self.store = store
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.reduce = reduce
        self.embed_kwargs = dict(embed_kwargs or {})
        self._cache: dict[tuple[str, str], Any] = {
            (str(e.layer), e.method): e for e in self.embeddings
        }
        self._features: dict[str | None, np.ndarray] = {}
        if features is not None:
            from ..blocks import Features

            self._features[None] = Features(features, reduce=reduce, progress=False).to_numpy()
        if layer_options is None:
            layer_options = (
                list(store.layers) if store is not None else [str(e.layer) for e in embeddings]
            )
        if method_options is None:
            method_options = (
                list(method_names())
                if store is not None
                else sorted({e.method for e in self.embeddings})
            )
        self.layer_options = list(layer_options)
        self.method_options = list(method_options)

    @classmethod
    def from_data(
        cls,
        data: Any,
        layers: Sequence[str] | None = None,
        method: str = "pca",
        *,
        samples: Any = None,
        features: np.ndarray | None = None,
        reduce: str | Callable[..., Any] | None = "mean",
        **embed_kwargs: Any,
    ) -> MapSource:
        """The source for a store (or its path), an Embedding, or a list/dict of them.

        A store's ``layers`` (default: its last layer) are embedded with ``method``;
        embeddings are taken as they are, with their store reopened when they cover the whole
        of it (so that neighbours and switching work).
        """
        from ._api import Embedding, embed

        if isinstance(data, str | Path):
            data = open_path(data)
        if is_store(data):
            store = data
            stored = list(store.layers)
            if not stored:
                raise ValueError(f"the store {store.path} holds no layers")
            rows = None
            if samples is not None:
                rows = np.asarray(samples)
                rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
            kwargs = dict(embed_kwargs, reduce=reduce)
            embs = [
                embed(store, lay, method, samples=rows, **kwargs)
                for lay in (list(layers) if layers else [stored[-1]])
            ]
            return cls(
                embs,
                store=store,
                rows=rows,
                reduce=reduce,
                features=features,
                embed_kwargs=embed_kwargs,
            )
        if isinstance(data, Embedding):
            embs = [data]
        elif isinstance(data, Mapping):
            embs = list(data.values())
        elif isinstance(data, Sequence) and data and all(isinstance(e, Embedding) for e in data):
            embs = list(data)
        else:
            raise TypeError(
                "explore() takes an activation store (or its path), an Embedding, or a list of "
                f"Embeddings; got {type(data).__name__}"
            )
        sizes = {len(e) for e in embs}
        if len(sizes) > 1:
            raise ValueError(
                f"linked maps must show the same samples; their sizes are {sorted(sizes)}"
            )
        # an embedding of a whole store: reopen it, so neighbours and switching work
        store = None
        src = embs[0].source
        if src and Path(src).exists() and all(e.source == src for e in embs):
            candidate = open_path(src)
            if len(candidate) == len(embs[0]) and np.array_equal(
                candidate.index, np.asarray(embs[0].index)
            ):
                store = candidate
            else:
                candidate.close()
        return cls(embs, store=store, reduce=reduce, features=features, embed_kwargs=embed_kwargs)

    def _samples(self) -> np.ndarray | None:
        if self.rows is None or len(self.rows) == len(self.store):
            return None
        return self.rows

    def has(self, layer: str, method: str) -> bool:
        """Whether the map of ``layer`` by ``method`` is at hand without computing."""
        return (str(layer), method) in self._cache

    def embedding(self, layer: str, method: str) -> Any:
        """The map of ``layer`` by ``method`` (computed, or read from the store's cache)."""
        key = (str(layer), method)
        if key not in self._cache:
            if self.store is None:
                raise ValueError(
                    "switching layer or method needs the store the embeddings came from; "
                    "explore(store, ...) instead of an Embedding"
                )
            from ._api import embed

            self._cache[key] = embed(
                self.store,
                layer,
                method,
                samples=self._samples(),
                reduce=self.reduce,
                **self.embed_kwargs,
            )
        return self._cache[key]

    def features(self, layer: str | None = None) -> np.ndarray:
        """The original features ``(N, D)`` of ``layer`` (default: the first map's), float32."""
        layer = layer or self.embeddings[0].layer
        if self.store is None:
            if None in self._features:
                return self._features[None]
            raise ValueError(
                "neighbours need the original features: explore a store, or pass "
                "features=<array (N, ...)> with the embedding"
            )
        if layer not in self._features:
            from ..blocks import Features

            self._features[layer] = Features(
                self.store[layer],
                reduce=self.reduce,
                samples=self._samples(),
                name=layer,
                progress=False,
            ).to_numpy()
        return self._features[layer]

    def neighbours(
        self, point: int, k: int = 10, layer: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` points nearest to ``point`` in the original features, and their distances.

        ``point`` and the result are positions on the map (0..N-1), the point itself left
        out; Euclidean distance, nearest first.
        """
        from sklearn.neighbors import NearestNeighbors

        X = self.features(layer)
        if not 0 < k < len(X):
            raise ValueError(f"k must be between 1 and {len(X) - 1}, got {k}")
        nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
        dist, idx = nn.kneighbors(X[point : point + 1])
        keep = idx[0] != point
        return idx[0][keep][:k], dist[0][keep][:k]
