"""The analyses a profile runs, each one call on a store (and model), results returned.

No figures are made here and nothing is written but the store's caches; the pipeline passes
the results to :mod:`inspect_kit.report.sections`.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit.analysis.embedding.registry import get_method
from inspect_kit.arrays import spatial_pool
from inspect_kit.store import schema

logger = logging.getLogger(__name__)


def compute_embeddings(
    store: Any,
    layers: Sequence[str],
    methods: Sequence[str],
    *,
    n_components: int = 2,
    seed: int = 0,
    refresh: bool = False,
    n_jobs: int = 1,
    progress: bool = True,
    method_params: Mapping[str, Any] | None = None,
    failures: list[dict[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{method: {layer: Embedding}}``, cached in the store.

    ``n_jobs`` threads for t-SNE and UMAP: one by default, since on a small shared machine
    more threads than free cores made openTSNE several times slower, not faster.
    ``method_params`` (e.g. ``{"perplexity": 10, "n_neighbors": 8}``) go to the methods that
    accept them. With a ``failures`` list, a (layer, method) that cannot run (t-SNE's
    perplexity on 32 samples, 3 dimensions of a 2-feature layer) is logged, appended there as
    ``{"method", "layer", "error"}`` and skipped; the others are computed. Without it the
    error propagates.
    """
    from inspect_kit.analysis.embedding import embed

    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        out[method] = {}
        spec = get_method(method)
        extra = {"n_jobs": n_jobs} if spec.accepts("n_jobs") else {}
        extra.update({k: v for k, v in (method_params or {}).items()
                      if v is not None and spec.accepts(k)})
        for layer in layers:
            logger.info("embedding %s with %s", layer, method)
            try:
                out[method][layer] = embed(
                    store,
                    layer,
                    method,
                    n_components,
                    random_state=seed,
                    cache="refresh" if refresh else True,
                    progress=progress,
                    **extra,
                )
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
                if failures is None:
                    raise
                logger.warning("skipping the %s of %s: %s", method, layer, err)
                failures.append({"method": method, "layer": layer, "error": str(err)})
        if not out[method]:
            del out[method]
    return out


def check_layers(store: Any, layers: Sequence[str] | None) -> list[str]:
    if not layers:
        return list(store.layers)
    for layer in layers:
        store[layer]  # KeyError naming close matches
    return list(layers)


def unit_means(store: Any, layer: str) -> np.ndarray:
    """(N, C) per-channel means of a stored layer, read chunk by chunk."""
    parts = []
    for _, rows in store.iter_chunks(layer):
        rows = np.asarray(rows, dtype=np.float32)
        parts.append(spatial_pool(rows))
    return np.concatenate(parts)


def sanity_cascade(model: nn.Module, layer: str, max_stages: int = 3) -> list[str]:
    """Convolutions and linear layers up to ``layer``, top down, at most ``max_stages``.

    The randomisation check re-initialises them cumulatively in this order (Adebayo et al.,
    2018). A deep network gets evenly spaced stages from the top to the first layer, so the
    check costs ``max_stages + 2`` renders whatever the depth.

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> sanity_cascade(SmallCNN(), "relu3")
    ['conv3', 'conv2', 'conv1']
    """
    from inspect_kit.hooks import list_layers, parse_layer_spec

    order = [n for n, _ in model.named_modules()]
    base = parse_layer_spec(layer).module
    inside = [i for i, n in enumerate(order) if n == base or n.startswith(base + ".")]
    stop = inside[-1] if inside else len(order)
    kinds = ["Conv1d", "Conv2d", "Conv3d", "Linear"]
    below = [n for n in list_layers(model, types=kinds) if order.index(n) <= stop][::-1]
    if len(below) <= max_stages:
        return below
    picks = np.unique(np.linspace(0, len(below) - 1, max(1, max_stages)).round().astype(int))
    return [below[i] for i in picks]


@dataclass
class FeatureVisRun:
    result: Any
    exemplars: Any
    selectivity: np.ndarray | None
    preferred: dict[int, str]
    randomization: Any = None


def run_featurevis(
    model: nn.Module,
    *,
    layer: str,
    input_shape: Sequence[int],
    store: Any = None,
    units: Sequence[int] | None = None,
    n_units: int = 6,
    value_range: Sequence[float] | None = None,
    steps: int = 256,
    exemplars: int = 5,
    sanity: bool = False,
    sanity_steps: int | None = None,
    sanity_units: int = 3,
    sanity_layers: Sequence[str] | None = None,
    sanity_stages: int = 3,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
) -> FeatureVisRun:
    """Pick units (most class-selective in the store), optimise them, find their exemplars."""
    from inspect_kit.analysis.featurevis import channel, render
    from inspect_kit.analysis.featurevis.exemplars import top_exemplars
    from inspect_kit.analysis.featurevis.sanity import randomization_check

    from .selection import select_units

    selectivity = None
    preferred: dict[int, str] = {}
    in_store = store is not None and layer in store.layers
    if store is not None and not in_store:
        logger.warning("layer %r is not in the store: no exemplars or unit selection", layer)
    if in_store:
        means = unit_means(store, layer)
        labels = store.labels
        picked, selectivity = select_units(means, labels, n_units)
        if units is None:
            units = picked
        if labels is not None:
            classes = np.unique(labels)
            cm = np.stack([means[labels == c].mean(axis=0) for c in classes])
            for u in units:
                c = classes[int(np.argmax(cm[:, u]))]
                preferred[int(u)] = (
                    class_names[int(c)]
                    if class_names is not None and 0 <= int(c) < len(class_names)
                    else str(c)
                )
    if units is None:
        units = list(range(n_units))
    units = [int(u) for u in units]
    # render's redirected ReLU gradients move units that are off for the start image
    logger.info("feature visualization of %s units %s", layer, units)
    result = render(
        model,
        channel(layer, units),
        tuple(input_shape),
        steps=steps,
        value_range=value_range,
        device=device,
        random_state=seed,
        progress=progress,
    )
    ex = (
        top_exemplars(store, layer, k=exemplars, units=units, progress=progress)
        if in_store and exemplars > 0
        else None
    )
    randomization = None
    if sanity:
        logger.info("randomisation sanity check of %s units %s", layer, units[:sanity_units])
        randomization = randomization_check(
            model,
            channel(layer, units[:sanity_units]),
            tuple(input_shape),
            layers=list(sanity_layers)
            if sanity_layers is not None
            else sanity_cascade(model, layer, sanity_stages),
            steps=sanity_steps or steps,
            value_range=value_range,
            device=device,
            random_state=seed,
            progress=progress,
        )
    return FeatureVisRun(result, ex, selectivity, preferred, randomization)


def randomized_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every parameterised module re-initialised (same architecture)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's global RNG untouched
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone.eval()


@contextmanager
def randomized_capture(
    model: nn.Module,
    inputs: np.ndarray,
    store: Any,
    layers: Sequence[str],
    *,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
) -> Iterator[Any]:
    """A temporary store of the same layers of a copy of ``model`` with re-initialised weights.

    The layers are pooled as the trained store's are when those are pooled by max or
    flattened, else by channel mean (what the probes use). The store is deleted on exit.
    """
    from inspect_kit.capture import capture

    rand = randomized_copy(model, seed + 1)
    # the same features as the trained store's probes: its reduction, else the probes' mean
    stored = {store[layer].attrs.get(schema.REDUCTION_ATTR) for layer in layers}
    reduce = stored.pop() if len(stored) == 1 and stored & {"max", "flatten"} else "mean"
    with tempfile.TemporaryDirectory(prefix="inspect_kit_rand_") as tmp:
        rs = capture(
            rand,
            inputs,
            list(layers),
            Path(tmp) / "random.h5",
            reduce=reduce,
            labels=store.labels,
            thumbnails=None,
            device=device,
            progress=progress,
        )
        try:
            yield rs
        finally:
            rs.close()


def random_weights_profile(
    random_store: Any,
    layers: Sequence[str],
    *,
    cv: int = 5,
    seed: int = 0,
    progress: bool = True,
    groups: Any = None,
    store: Any = None,
) -> Any:
    """Probe profile of the layers of a randomised copy (see :func:`randomized_capture`).

    The baseline a trained network's probe profile must beat: random convolutional features
    are often linearly informative already. ``groups`` as for the trained probes: an array,
    or a metadata key of the trained ``store`` (the random store holds no metadata).
    """
    from inspect_kit.analysis.probes import probe_profile

    if isinstance(groups, str):
        if store is None:
            raise ValueError(f"groups={groups!r} names metadata: pass the trained store too")
        groups = np.asarray(store.metadata[groups])
    return probe_profile(
        random_store,
        layers,
        target="label",
        cv=cv,
        random_state=seed,
        progress=progress,
        groups=groups,
    )


def random_weights_similarity(
    store: Any,
    random_store: Any,
    layers: Sequence[str],
    *,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """Linear CKA (debiased) of every trained layer with every layer of the randomised copy.

    Compared on the features the random store holds: channel means of full maps, unless the
    trained store pooled by max or flattened (then as stored).
    """
    from inspect_kit.analysis.similarity import similarity

    pooled = {random_store[layer].attrs.get(schema.REDUCTION_ATTR) for layer in layers}
    reduction = "max" if pooled == {"max"} else ("flatten" if pooled == {"flatten"} else "mean")
    return similarity(
        store,
        random_store,
        layers=list(layers),
        other_layers=list(layers),
        method="cka",
        reduction=reduction,
        random_state=seed,
        cache=False,  # the random store is temporary: nothing to key a cache on
        progress=progress,
    )


def layer_similarity(store: Any, layers: Sequence[str], *, seed: int = 0, progress: bool = True) -> Any:
    """Linear CKA (debiased, minibatch) between every pair of the store's layers, cached."""
    from inspect_kit.analysis.similarity import similarity

    return similarity(store, layers=list(layers), random_state=seed, progress=progress)


def latent_probe(
    inputs: np.ndarray,
    store: Any,
    labels: np.ndarray | None,
    *,
    latent_dim: int = 8,
    epochs: int = 15,
    max_train: int = 4000,
    cv: int = 5,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a ConvAutoencoder on ``inputs`` and probe its latent space (codes saved in the store).

    Returns the :class:`~inspect_kit.analysis.latent.LatentProbe`, a traversal, the PCA of the
    codes, the label probe, the mean-image baseline MSE and the training history.
    """
    from inspect_kit.analysis.latent import LatentProbe
    from inspect_kit.models.autoencoder import ConvAutoencoder, fit_autoencoder

    x = np.asarray(inputs, dtype=np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, len(x) // 5)
    val_idx, train_idx = order[:n_val], order[n_val:][:max_train]
    ae = ConvAutoencoder(tuple(x.shape[1:]), latent_dim=latent_dim)
    history = fit_autoencoder(
        ae,
        x[train_idx],
        epochs=epochs,
        val_data=x[val_idx],
        device=device,
        seed=seed,
        progress=progress,
    )
    ae.eval()
    meta = {k: v for k, v in store.metadata.items() if v is not None and v.dtype.kind in "iufb"}
    probe = LatentProbe(ae, device=device, progress=progress).fit(
        x, labels=labels, metadata=meta or None
    )
    probe.to_store(store)
    baseline = float(np.mean((x[val_idx] - x[train_idx].mean(axis=0)) ** 2))
    label_probe = probe.probe("label", cv=cv, random_state=seed) if labels is not None else None
    traversal = probe.traverse(dim=None, steps=9)
    emb = probe.embed("pca", random_state=seed)
    return {
        "probe": probe,
        "traversal": traversal,
        "latent_embedding": emb,
        "label_probe": label_probe,
        "mean_baseline_mse": baseline,
        "history": history,
    }


def first_layer_kernels(model: nn.Module | None) -> Any:
    """The first convolution's kernels (:func:`~inspect_kit.analysis.weights.conv_kernels`),
    or None for a model without one."""
    from inspect_kit.analysis.weights import conv_kernels

    if model is None:
        return None
    try:
        return conv_kernels(model)
    except (ValueError, KeyError, TypeError) as err:  # a model without convolutions
        logger.info("no first-layer kernels to show: %s", err)
        return None
