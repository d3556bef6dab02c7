"""``inspect_kit.explore``: the embedding explorer, computed by analysis and shown by figures.

The widget (:class:`inspect_kit.figures.explorer.Explorer`) only shows maps; what it computes
on demand (another layer or method, a sample's nearest neighbours in the original features)
it asks of a :class:`~inspect_kit.analysis.embedding.maps.MapSource`. This function builds
the two, so that figures never import the analyses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from inspect_kit.analysis.embedding.maps import MapSource
from inspect_kit.figures.explorer import MAX_IMAGE_POINTS, register_renderer, require_anywidget

logger = logging.getLogger(__name__)

__all__ = ["explore"]


def explore(
    data: Any,
    layer: str | Sequence[str] | None = None,
    method: str = "pca",
    *,
    color: str | None = "auto",
    label_names: Sequence[str] | Mapping[Any, str] | None = None,
    samples: np.ndarray | None = None,
    features: np.ndarray | None = None,
    reduce: str | Callable[..., Any] | None = "mean",
    thumbnail_size: int | None = 24,
    images: bool = False,
    height: int = 420,
    **embed_kwargs: Any,
) -> Any:
    """Explore embeddings in Jupyter: maps with hover thumbnails, selection, neighbours.

    Parameters
    ----------
    data : ActivationStore, path of a store, Embedding, or list/dict of Embeddings
        A store is embedded with :func:`inspect_kit.embed` (its cache reused); embeddings are
        shown as they are (with their store, when they cover the whole of it, for neighbours
        and switching layers).
    layer : str or list of str, optional
        Layer(s) of the store to map (default: the last stored layer). Several layers are
        shown side by side and linked: a selection on one highlights the same samples on all.
    method : {'pca', 'tsne', 'umap'}
        Embedding method (switchable in the widget).
    color : str or None
        'auto' (labels, else predictions), 'label', 'prediction', 'correct', a metadata key,
        or None; switchable in the widget.
    label_names : sequence or mapping, optional
        Names of label values.
    samples : array of int or bool mask, optional
        Only these store rows.
    features : array (N, ...), optional
        Original features for :meth:`Explorer.neighbours` when exploring an Embedding that has
        no store.
    reduce : {'mean', 'max', 'flatten'} or callable
        Pooling of spatial maps, for the embedding and for neighbours.
    thumbnail_size : int or None
        Longest side of a thumbnail in the sprite sheet (px).
    images : bool
        Draw each point as its thumbnail (for up to a few thousand points; zoom in to see
        them larger). Switchable in the widget.
    height : int
        Height of a map in pixels.
    **embed_kwargs
        Passed to :func:`inspect_kit.embed` (``perplexity=30``, ``random_state=0`` ...).

    Returns
    -------
    Explorer
        An anywidget (:class:`inspect_kit.figures.explorer.Explorer`): display it (last line of a cell). ``.selected``, ``.select(rows)``,
        ``.on_select(callback)``, ``.selection_table()``, ``.neighbours(sample, k)``,
        ``.show(layers, method)``, ``.save_html(path)``.

    Examples
    --------
    >>> ex = inspect_kit.explore(store, ["relu2", "fc"], method="pca", color="site")  # doctest: +SKIP
    >>> ex.select(np.flatnonzero(store.labels == 1)).selection_table().head()  # doctest: +SKIP
    >>> ex.neighbours(int(ex.selected[0]), k=8)                             # doctest: +SKIP
    """
    require_anywidget()
    register_renderer()
    layers = [layer] if isinstance(layer, str) else (list(layer) if layer is not None else None)
    embed_kwargs.setdefault("progress", False)
    source = MapSource.from_data(
        data, layers, method, samples=samples, features=features, reduce=reduce, **embed_kwargs
    )
    if images and len(source.embeddings[0]) > MAX_IMAGE_POINTS:
        logger.warning(
            "images as points for %d samples: only useful up to a few thousand",
            len(source.embeddings[0]),
        )
    from inspect_kit.figures.explorer import Explorer  # defined when anywidget is installed

    return Explorer(
        source,
        color=color,
        label_names=label_names,
        thumbnail_size=thumbnail_size,
        images=images,
        height=height,
    )
