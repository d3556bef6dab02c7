"""Which layers and units to look at when the user does not say, and what they prefer.

A profile cannot show every channel of every layer. It shows the channels that respond most
selectively to one class (class selectivity index, Morcos et al. 2018), in the deepest layer
that still has spatial maps, since those are the units whose pictures are most telling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inspect_kit.arrays import spatial_pool
from inspect_kit.store import schema

from .base import layer_blocks


def unit_means(store: Any, layer: str) -> np.ndarray:
    """(N, C) per-channel means of a stored layer, read chunk by chunk.

    Examples
    --------
    >>> means = unit_means(store, "relu3")                       # doctest: +SKIP
    """
    parts = [
        spatial_pool(np.asarray(rows, dtype=np.float32), "mean")
        for _, rows in layer_blocks(store, layer)
    ]
    return np.concatenate(parts)


def preferred_classes(
    activations: np.ndarray,
    labels: np.ndarray,
    units: Sequence[int],
    class_names: Sequence[str] | None = None,
) -> dict[int, str]:
    """The class with the highest mean activation of each unit (named when names are given).

    Parameters
    ----------
    activations : ndarray (N, C)
        Per-channel activations (e.g. :func:`unit_means`).
    labels : ndarray (N,)
    units : sequence of int
    class_names : sequence of str, optional
        Names indexed by integer label.

    Returns
    -------
    dict
        ``{unit: class}``.

    Examples
    --------
    >>> acts = np.array([[0.0, 1.0], [2.0, 0.0], [3.0, 0.0]])
    >>> preferred_classes(acts, np.array([0, 1, 1]), [0, 1], ["a", "b"])
    {0: 'b', 1: 'a'}
    """
    acts = np.asarray(activations)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    cm = np.stack([acts[labels == c].mean(axis=0) for c in classes])
    out: dict[int, str] = {}
    for u in units:
        c = classes[int(np.argmax(cm[:, int(u)]))]
        named = class_names is not None and np.asarray(c).dtype.kind in "iuf"
        if named and class_names is not None and 0 <= int(c) < len(class_names):
            out[int(u)] = class_names[int(c)]
        else:
            out[int(u)] = str(c)
    return out


def class_selectivity(activations: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class selectivity index of each unit: ``(mu_max - mu_rest) / (mu_max + mu_rest)``.

    ``mu_max`` is the unit's highest class-mean activation and ``mu_rest`` the mean of the
    other class means (Morcos et al., 2018). A unit with negative activations is shifted to
    make its minimum zero (non-negative units, e.g. after a ReLU, are left as they are), so
    the index lies in [0, 1]: 0 responds equally to every class, 1 to one class only. Dead
    units (all zero) get 0.

    Parameters
    ----------
    activations : ndarray (N, C) or (N, C, ...)
        Spatial maps are averaged.
    labels : ndarray (N,)

    Returns
    -------
    ndarray (C,)

    Examples
    --------
    >>> acts = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> class_selectivity(acts, np.array([0, 1, 1])).round(2)
    array([1., 0.])
    """
    acts = np.asarray(activations, dtype=np.float64)
    acts = spatial_pool(acts)
    if acts.ndim != 2:
        raise ValueError(f"activations must be (N, C) or (N, C, ...), got shape {acts.shape}")
    labels = np.asarray(labels)
    if len(labels) != len(acts):
        raise ValueError(f"{len(labels)} labels for {len(acts)} samples")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("class selectivity needs at least two classes among the labels")
    acts = acts - np.minimum(acts.min(axis=0, keepdims=True), 0.0)
    means = np.stack([acts[labels == c].mean(axis=0) for c in classes])  # (K, C)
    top = means.max(axis=0)
    rest = (means.sum(axis=0) - top) / (len(classes) - 1)
    denom = top + rest
    return np.where(denom > 1e-12, (top - rest) / np.where(denom > 1e-12, denom, 1.0), 0.0)


def select_units(
    activations: np.ndarray,
    labels: np.ndarray | None,
    n: int,
) -> tuple[list[int], np.ndarray | None]:
    """The ``n`` most class-selective live units (or the ``n`` most active without labels).

    Returns
    -------
    units : list of int
        Channel indices, most selective first.
    scores : ndarray (C,) or None
        The selectivity of every unit (None without labels).
    """
    acts = np.asarray(activations, dtype=np.float64)
    acts = spatial_pool(acts)
    spread = acts.std(axis=0)
    live = spread > 1e-8 * max(1.0, float(np.abs(acts).max(initial=0.0)))
    scores = None
    if labels is not None and len(np.unique(labels)) >= 2:
        scores = class_selectivity(acts, labels)
        key = np.where(live, scores, -np.inf)
    else:
        key = np.where(live, spread, -np.inf)
    order = [int(u) for u in np.argsort(-key, kind="stable") if np.isfinite(key[u])]
    if not order:
        order = list(range(acts.shape[1]))
    return order[: max(1, int(n))], scores


def spatial_layers(store: Any) -> list[str]:
    """Stored layers whose activations are maps larger than 1 pixel: (N, C, H, W) or 3D."""
    out = []
    for name in store.layers:
        shape = store[name].attrs.get(schema.SOURCE_SHAPE_ATTR) or list(store[name].shape[1:])
        if len(shape) >= 3 and int(np.prod(shape[1:])) > 1:
            out.append(name)
    return out


def featurevis_layer(store: Any) -> str | None:
    """The deepest stored layer that still has spatial maps (None when none has).

    Its channels respond to the largest input patterns a picture can still show; deeper
    layers (pooled, linear) have no spatial extent left.
    """
    spatial = spatial_layers(store)
    return spatial[-1] if spatial else None
