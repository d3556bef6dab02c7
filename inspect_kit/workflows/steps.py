"""The analyses a workflow runs, each one call on a store (and model), results returned.

Each combines capture and analyses under the options of :mod:`.options`. No figures are made
here and nothing is written but the store's caches; the report steps (:mod:`.report_steps`)
and the single-step commands (:mod:`.commands`) show the results.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from inspect_kit.analysis.embedding.registry import get_method
from inspect_kit.store import schema

from .options import EmbeddingOptions, FeatureVisOptions, LatentOptions, RunOptions

logger = logging.getLogger(__name__)


def compute_embeddings(
    store: Any,
    layers: Sequence[str],
    options: EmbeddingOptions,
    run: RunOptions,
    *,
    failures: list[dict[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{method: {layer: Embedding}}``, cached in the store.

    ``options.method_params`` (e.g. ``{"perplexity": 10, "n_neighbors": 8}``) go to the
    methods that accept them. With a ``failures`` list, a (layer, method) that cannot run
    (t-SNE's perplexity on 32 samples, 3 dimensions of a 2-feature layer) is logged, appended
    there as ``{"method", "layer", "error"}`` and skipped; the others are computed. Without
    it the error propagates.
    """
    from inspect_kit.analysis.embedding import embed

    out: dict[str, dict[str, Any]] = {}
    for method in options.methods:
        out[method] = {}
        spec = get_method(method)
        extra: dict[str, Any] = {"n_jobs": options.n_jobs} if spec.accepts("n_jobs") else {}
        extra.update(
            {
                k: v
                for k, v in (options.method_params or {}).items()
                if v is not None and spec.accepts(k)
            }
        )
        if "perplexity" not in extra and spec.accepts("perplexity"):
            # t-SNE's sample rule (analysis/embedding/_tsne.py): the default perplexity is
            # lowered for few samples (what --perplexity's help says), with a warning, and
            # recorded in the map's params
            from inspect_kit.analysis.embedding._tsne import largest_perplexity, min_samples

            default = inspect.signature(spec.load()).parameters["perplexity"].default
            n = len(store)
            if isinstance(default, (int, float)) and n < min_samples(default) and n >= 7:
                extra["perplexity"] = largest_perplexity(n)
                logger.warning(
                    "%s: %d samples are too few for the default perplexity %g; using %g "
                    "(set --perplexity to choose)",
                    method,
                    n,
                    default,
                    extra["perplexity"],
                )
        for layer in layers:
            logger.info("embedding %s with %s", layer, method)
            try:
                out[method][layer] = embed(
                    store,
                    layer,
                    method,
                    options.n_components,
                    random_state=run.random_state,
                    cache="refresh" if options.refresh else True,
                    progress=run.progress,
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
    """The layers asked for (all stored layers by default); an unknown one raises."""
    if not layers:
        return list(store.layers)
    for layer in layers:
        store[layer]  # KeyError naming close matches
    return list(layers)


@dataclass
class FeatureVisRun:
    """What :func:`run_featurevis` found."""

    result: Any
    exemplars: Any
    selectivity: np.ndarray | None
    preferred: dict[int, str]
    randomization: Any = None


def run_featurevis(
    model: nn.Module,
    options: FeatureVisOptions,
    run: RunOptions,
    *,
    store: Any = None,
    class_names: Sequence[str] | None = None,
) -> FeatureVisRun:
    """Pick units (most class-selective in the store), optimise them, find their exemplars.

    ``options.layer`` and ``options.input_shape`` must be set.
    """
    from inspect_kit.analysis.featurevis import channel, render
    from inspect_kit.analysis.featurevis.exemplars import top_exemplars
    from inspect_kit.analysis.featurevis.sanity import randomization_check
    from inspect_kit.analysis.randomization import sanity_cascade
    from inspect_kit.analysis.selection import (
        preferred_classes,
        select_units,
        unit_means,
    )

    layer, input_shape = options.layer, options.input_shape
    if layer is None or input_shape is None:
        raise ValueError("feature visualization needs a layer and an input shape")
    selectivity = None
    preferred: dict[int, str] = {}
    units = list(options.units) if options.units else None
    in_store = store is not None and layer in store.layers
    if store is not None and not in_store:
        logger.warning("layer %r is not in the store: no exemplars or unit selection", layer)
    if in_store:
        means = unit_means(store, layer)
        labels = store.labels
        picked, selectivity = select_units(means, labels, options.n_units)
        if units is None:
            units = picked
        if labels is not None:
            preferred = preferred_classes(means, labels, units, class_names)
    if units is None:
        units = list(range(options.n_units))
    units = [int(u) for u in units]
    # render's redirected ReLU gradients move units that are off for the start image
    logger.info("feature visualization of %s units %s", layer, units)
    result = render(
        model,
        channel(layer, units),
        tuple(input_shape),
        steps=options.steps,
        value_range=options.value_range,
        device=run.device,
        random_state=run.random_state,
        progress=run.progress,
    )
    ex = (
        top_exemplars(store, layer, k=options.exemplars, units=units, progress=run.progress)
        if in_store and options.exemplars > 0
        else None
    )
    randomization = None
    if options.sanity:
        sanity_units = units[: options.sanity_units]
        logger.info("randomisation sanity check of %s units %s", layer, sanity_units)
        randomization = randomization_check(
            model,
            channel(layer, sanity_units),
            tuple(input_shape),
            layers=list(options.sanity_layers)
            if options.sanity_layers is not None
            else sanity_cascade(model, layer, options.sanity_stages),
            steps=options.sanity_steps or options.steps,
            value_range=options.value_range,
            device=run.device,
            random_state=run.random_state,
            progress=run.progress,
        )
    return FeatureVisRun(result, ex, selectivity, preferred, randomization)


@contextmanager
def randomized_capture(
    model: nn.Module,
    inputs: np.ndarray,
    store: Any,
    layers: Sequence[str],
    *,
    random_state: int = 0,
    device: Any = None,
    progress: bool = True,
) -> Iterator[Any]:
    """A temporary store of the same layers of a copy of ``model`` with re-initialised weights.

    The layers are pooled as the trained store's are when those are pooled by max or
    flattened, else by channel mean (what the probes use). The store is deleted on exit.
    """
    from inspect_kit.analysis.randomization import randomize_weights
    from inspect_kit.capture import capture

    rand = randomize_weights(model, random_state=random_state + 1).eval()
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
    random_state: int = 0,
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
        random_state=random_state,
        progress=progress,
        groups=groups,
    )


def random_weights_similarity(
    store: Any,
    random_store: Any,
    layers: Sequence[str],
    *,
    random_state: int = 0,
    progress: bool = True,
) -> Any:
    """Linear CKA (debiased) of every trained layer with every layer of the randomised copy.

    Compared on the features the random store holds: channel means of full maps, unless the
    trained store pooled by max or flattened (then as stored).
    """
    from inspect_kit.analysis.similarity import similarity

    pooled = {random_store[layer].attrs.get(schema.REDUCTION_ATTR) for layer in layers}
    reduction: Literal["max", "flatten", "mean"] = (
        "max" if pooled == {"max"} else ("flatten" if pooled == {"flatten"} else "mean")
    )
    return similarity(
        store,
        random_store,
        layers=list(layers),
        other_layers=list(layers),
        method="cka",
        reduction=reduction,
        random_state=random_state,
        cache=False,  # the random store is temporary: nothing to key a cache on
        progress=progress,
    )


def layer_similarity(
    store: Any, layers: Sequence[str], *, random_state: int = 0, progress: bool = True
) -> Any:
    """Linear CKA (debiased, minibatch) between every pair of the store's layers, cached."""
    from inspect_kit.analysis.similarity import similarity

    return similarity(store, layers=list(layers), random_state=random_state, progress=progress)


def latent_probe(
    inputs: np.ndarray,
    store: Any,
    labels: np.ndarray | None,
    options: LatentOptions,
    run: RunOptions,
) -> dict[str, Any]:
    """Train a ConvAutoencoder on ``inputs`` and probe its latent space (codes saved in the store).

    Returns the :class:`~inspect_kit.analysis.latent.LatentProbe`, a traversal, the PCA of the
    codes, the label probe, the mean-image baseline MSE and the training history.
    """
    from inspect_kit.analysis.latent import LatentProbe
    from inspect_kit.models.autoencoder import ConvAutoencoder, fit_autoencoder

    random_state, device, progress = run.random_state, run.device, run.progress
    x = np.asarray(inputs, dtype=np.float32)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(x))
    n_val = max(1, len(x) // 5)
    val_idx, train_idx = order[:n_val], order[n_val:][: options.max_train]
    ae = ConvAutoencoder(tuple(x.shape[1:]), latent_dim=options.latent_dim)
    history = fit_autoencoder(
        ae,
        x[train_idx],
        epochs=options.epochs,
        val_data=x[val_idx],
        device=device,
        random_state=random_state,
        progress=progress,
    )
    ae.eval()
    meta = {k: v for k, v in store.metadata.items() if v is not None and v.dtype.kind in "iufb"}
    probe = LatentProbe(ae, device=device, progress=progress).fit(
        x, labels=labels, metadata=meta or None
    )
    probe.to_store(store)
    baseline = float(np.mean((x[val_idx] - x[train_idx].mean(axis=0)) ** 2))
    label_probe = (
        probe.probe("label", cv=options.cv, random_state=random_state)
        if labels is not None
        else None
    )
    traversal = probe.traverse(dim=None, steps=9)
    emb = probe.embed("pca", random_state=random_state)
    return {
        "probe": probe,
        "traversal": traversal,
        "latent_embedding": emb,
        "label_probe": label_probe,
        "mean_mse": float(np.mean(probe.reconstruction_error_)),
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


@contextmanager
def dask_scheduler(address: str | None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` connected to ``address`` while the block runs, or None.

    The client is the default one while it is open, so the analyses that stream (probes with
    ``solver='streaming'``, Dask PCA) compute on that cluster; it is closed afterwards (the
    cluster keeps running). ``None`` or ``''``: nothing is connected.

    Raises
    ------
    ImportError
        ``distributed`` is not installed (``pip install 'inspect-kit[scale]'``).
    OSError
        No scheduler answered at ``address``.

    Examples
    --------
    >>> with dask_scheduler(None) as client:
    ...     client is None
    True
    """
    if not address:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as err:
        raise ImportError(
            f"--scheduler {address} needs dask.distributed; install it with "
            "pip install 'inspect-kit[scale]'"
        ) from err
    try:
        client = Client(address)
    except (OSError, TimeoutError) as err:
        raise OSError(f"no dask scheduler answered at {address}: {err}") from err
    logger.info("computing on the dask cluster at %s", address)
    try:
        yield client
    finally:
        client.close()
