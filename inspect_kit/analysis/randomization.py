"""Weight randomisation: the one way inspect_kit turns a trained network into a random one.

Used by the cascading sanity check of feature visualization
(:func:`~inspect_kit.analysis.featurevis.sanity.randomization_check`) and by the
random-weights baseline of a probe profile. Adebayo et al. (NeurIPS 2018) re-initialise
layers with the network's own initialisation scheme; so does :func:`randomize_weights`.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "random_similarity_verdict",
    "randomization_verdict",
    "randomize_weights",
    "sanity_cascade",
]


@torch.no_grad()
def _redraw(p: torch.Tensor, generator: torch.Generator) -> None:
    """A parameter without an initialiser: a Gaussian with its own mean and std."""
    flat = p.detach().float()
    std = float(flat.std()) if flat.numel() > 1 else 0.0
    if std == 0.0:
        std = float(flat.abs().mean()) or 1.0
    noise = torch.randn(p.shape, generator=generator) * std + float(flat.mean())
    p.copy_(noise.to(device=p.device, dtype=p.dtype))


def randomize_weights(
    model: nn.Module,
    layers: Sequence[str] | None = None,
    *,
    random_state: int | None = 0,
    copy: bool = True,
) -> nn.Module:
    """Re-initialise every parameter of the named modules and of all their descendants.

    Each module with a ``reset_parameters`` method (convolutions, linear layers, norms,
    attention) is reset with its own initialisation scheme, which for a norm also resets the
    running statistics; any parameter no such method covers (a bare ``nn.Parameter`` such
    as a class token or a layer scale) is redrawn from a Gaussian with its own mean and
    standard deviation. The draws come from torch's generators seeded by ``random_state``
    inside :func:`torch.random.fork_rng`, so the caller's global RNG state is left as it was.

    Parameters
    ----------
    model : nn.Module
    layers : sequence of str, optional
        Dotted module names (``model.named_modules()``); default: the whole model.
    random_state : int or None
        Seed of the draws (None: not reproducible).
    copy : bool
        Randomise a deep copy (default) and leave ``model`` untouched; False changes
        ``model`` in place.

    Returns
    -------
    nn.Module
        The randomised model (the copy, or ``model`` itself), in the training mode it had.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    >>> rand = randomize_weights(net, ["1"], random_state=0)
    >>> torch.equal(rand[0].weight, net[0].weight), torch.equal(rand[1][0].weight, net[1][0].weight)
    (True, False)
    """
    target = _copy.deepcopy(model) if copy else model
    modules = dict(target.named_modules())
    names = [""] if layers is None else list(layers)
    unknown = [n for n in names if n not in modules]
    if unknown:
        from inspect_kit.hooks.layers import unknown_layer_error

        raise unknown_layer_error(unknown[0], [n for n in modules if n])
    chosen: dict[int, nn.Module] = {}
    for name in names:
        for m in modules[name].modules():  # the module and every descendant, each once
            chosen.setdefault(id(m), m)
    params = {id(p): p for m in chosen.values() for p in m.parameters(recurse=False)}
    devices = sorted({p.device.index or 0 for p in target.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        seed = torch.seed() if random_state is None else int(random_state)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        covered: set[int] = set()
        with torch.no_grad():
            for m in chosen.values():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
                    covered.update(id(p) for p in m.parameters(recurse=False))
            for key, p in params.items():
                if key not in covered:
                    _redraw(p, generator)
    return target


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


def randomization_verdict(mean: np.ndarray, reference: np.ndarray | None) -> tuple[str, bool]:
    """What a cascading randomisation says, and whether it is a warning.

    The baseline for "still the same picture" is not 1 but the similarity of two renders of
    the *trained* model with different seeds: a fully randomised model whose pictures are as
    similar to the trained ones as that is indistinguishable from it.

    Parameters
    ----------
    mean : ndarray (S,)
        Mean similarity to the trained images per stage
        (:attr:`~inspect_kit.analysis.featurevis.sanity.RandomizationResult.mean_scores`).
    reference : ndarray or None
        Similarities of two seeds of the trained model.

    Returns
    -------
    text : str
    warn : bool

    Examples
    --------
    >>> randomization_verdict(np.array([1.0, 0.3]), None)[1]
    False
    """
    first, last = float(mean[0]), float(mean[-1])
    if reference is not None:
        ref = float(np.mean(reference))
        if ref - last > 0.2:
            return (
                f"Randomising every layer lowers the similarity to {last:.2f}, well below the "
                f"{ref:.2f} of two seeds of the trained model: the pictures depend on the "
                "learned weights.",
                False,
            )
        return (
            f"Two seeds of the trained model already give pictures as different ({ref:.2f}) "
            f"as the fully randomised model does ({last:.2f}): the optimisation, not the "
            "learned weights, decides much of each picture's detail. Compare the activations "
            "and the exemplars rather than the pixels.",
            True,
        )
    if first - last > 0.2:
        return (
            f"Similarity falls from {first:.2f} to {last:.2f} once every layer is randomised: "
            "the pictures depend on the learned weights.",
            False,
        )
    return (
        f"Similarity only falls from {first:.2f} to {last:.2f}: these pictures depend little "
        "on the learned weights; read them with care.",
        True,
    )


def random_similarity_verdict(layers: list[str], diag: np.ndarray) -> tuple[str, bool]:
    """What CKA between each layer and its randomised copy says, and whether it is a warning.

    Parameters
    ----------
    layers : list of str
    diag : ndarray (L,)
        CKA of each layer with the same layer of the randomised copy
        (:meth:`~inspect_kit.analysis.similarity.Similarity.diagonal`).

    Returns
    -------
    text : str
    warn : bool
        True when every layer stays close to its random counterpart (CKA above 0.9), or
        when CKA is undefined.

    Examples
    --------
    >>> random_similarity_verdict(["a", "b"], np.array([0.9, 0.3]))
    ('CKA with the randomised copy falls to 0.30 at b (from 0.90 at a): training changed these \
representations.', False)
    """
    finite = np.isfinite(diag)
    if not finite.any():
        return "CKA with the randomised copy is undefined (constant features).", True
    values = np.where(finite, diag, np.nan)
    low = int(np.nanargmin(values))
    if np.nanmin(values) > 0.9:
        return (
            f"Every layer stays close to its randomised counterpart (CKA >= "
            f"{np.nanmin(values):.2f}): these representations mostly reflect the input and the "
            "architecture, not what training learned.",
            True,
        )
    return (
        f"CKA with the randomised copy falls to {values[low]:.2f} at {layers[low]} (from "
        f"{values[0]:.2f} at {layers[0]}): training changed these representations.",
        False,
    )
