"""Model-randomisation sanity check for feature visualizations (Adebayo et al., NeurIPS 2018).

A visualization that looks the same for a network whose weights were replaced by noise tells
nothing about what the network learned. :func:`randomization_check` renders the objective on
the trained model, then on a deep copy whose layers are re-initialised one by one from the
top down (cascading randomisation with
:func:`~inspect_kit.analysis.randomization.randomize_weights`), and scores each stage's images
against the trained ones. The trained model is never modified.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, stats
from torch import nn
from tqdm.auto import tqdm

from inspect_kit.hooks import parse_layer_spec, resolve_layers
from inspect_kit.seeding import RandomState, resolve_seed

from ..randomization import randomize_weights
from .objectives import INPUT, OUTPUT, Objective, as_objective
from .render import render

logger = logging.getLogger(__name__)

__all__ = ["RandomizationResult", "image_similarity", "randomization_check"]


_METRICS = ("spearman", "ssim")


@dataclass
class RandomizationResult:
    """Similarity of visualizations under cascading weight randomisation.

    Attributes
    ----------
    stages : list of str
        ``"trained"`` then, for each stage, the module randomised at that stage (cumulative:
        stage ``s`` has the modules of stages ``1..s`` randomised).
    scores : ndarray (S, B)
        Similarity of each stage's image to the trained image, per unit (stage 0 is the
        trained model against itself, 1 by construction).
    reference : ndarray (B,) or None
        Similarity of the trained model's images for two different seeds (``random_state``
        and ``random_state + 1``): what "the same picture" scores, given the randomness of
        the optimisation itself.
    images : ndarray (S, B, C, ...)
        The rendered images of every stage.
    final_activations : ndarray (S, B)
    labels : list of str
    metric : str
    objective : str
    value_range : (float, float) or None
        The value range the images were rendered in.
    random_state : int
        The seed of the check (drawn when it got a Generator or None): every render used
        it, the reference render ``random_state + 1``, the weight randomisation it too.
    flat : ndarray (S, B) of bool
        Renders that stayed flat (see ``FeatureVisResult.flat``). A flat image says nothing
        about the weights (grey matches grey), so its score is NaN, not a similarity.
    notes : list of str
        Why scores are NaN (which units, which stages), empty when none are.
    """

    stages: list[str]
    scores: np.ndarray
    reference: np.ndarray | None
    images: np.ndarray
    final_activations: np.ndarray
    labels: list[str]
    metric: str
    objective: str
    value_range: tuple[float, float] | None
    random_state: int
    params: dict[str, Any] = field(default_factory=dict)
    flat: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reference_mean(self) -> float | None:
        """Mean similarity of two seeds of the trained model's renders (None without one)."""
        return None if self.reference is None else float(np.mean(self.reference))

    @property
    def mean_scores(self) -> np.ndarray:
        """Mean similarity over the units that have one (NaN ones left out), per stage."""
        scores = np.asarray(self.scores, dtype=float)
        out = np.full(scores.shape[0], np.nan)
        ok = np.isfinite(scores)
        counts = ok.sum(axis=1)
        out[counts > 0] = np.where(ok, scores, 0.0).sum(axis=1)[counts > 0] / counts[counts > 0]
        return out


def _ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean SSIM (Wang et al. 2004) over a (C, *S) pair, 7-voxel uniform windows, 2D or 3D."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64), strict=True):
        size = min(7, *x.shape)

        def f(t: np.ndarray, size: int = size) -> np.ndarray:
            smooth: np.ndarray = ndimage.uniform_filter(t, size=size, mode="reflect")
            return smooth

        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        out.append(s.mean())
    return float(np.mean(out))


def image_similarity(
    a: np.ndarray, b: np.ndarray, metric: str = "spearman", data_range: float | None = None
) -> np.ndarray:
    """Similarity per batch element of two image batches ``(B, C, *S)``.

    Parameters
    ----------
    a, b : ndarray
        Same shape.
    metric : {"spearman", "ssim"}
        Spearman rank correlation of the voxel values, or mean structural similarity.
    data_range : float, optional
        For SSIM: the span of possible values (default: the joint range of ``a`` and ``b``).

    Examples
    --------
    >>> x = np.random.default_rng(0).random((2, 1, 8, 8))
    >>> image_similarity(x, x).round(3).tolist()
    [1.0, 1.0]
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 3:
        raise ValueError(
            f"expected two batches of the same shape (B, C, ...), got {a.shape}, {b.shape}"
        )
    scores = []
    for x, y in zip(a, b, strict=True):
        if metric == "spearman":
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                scores.append(0.0)
                continue
            scores.append(float(stats.spearmanr(x.ravel(), y.ravel()).statistic))
        else:
            rng = (
                data_range
                if data_range is not None
                else float(max(a.max(), b.max()) - min(a.min(), b.min()))
            )
            scores.append(_ssim(x, y, rng or 1.0))
    return np.asarray(scores)


def _parametrised_modules(model: nn.Module) -> list[str]:
    return [
        name
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    ]


def _default_layers(model: nn.Module, objective: Objective) -> list[str]:
    """Parametrised modules up to the deepest one the objective reads, top down."""
    names = _parametrised_modules(model)
    order = [n for n, _ in model.named_modules()]
    read = [parse_layer_spec(spec).module for spec in objective.layers if spec != INPUT]
    if OUTPUT not in read and read:
        last = max(order.index(r) for r in read if r in order)
        # a module's children come after it in named_modules(): include them
        deepest = order[last]
        names = [n for n in names if order.index(n) <= last or n.startswith(deepest + ".")]
    return names[::-1]


def randomization_check(
    model: nn.Module,
    objective: Objective | str,
    input_shape: Sequence[int],
    *,
    layers: Sequence[str] | None = None,
    metric: str = "spearman",
    reference: bool = True,
    random_state: RandomState = 0,
    progress: bool = True,
    **render_kwargs: Any,
) -> RandomizationResult:
    """Cascading weight randomisation: does the visualization depend on the learned weights?

    Parameters
    ----------
    model : nn.Module
        The trained network (left untouched: a deep copy is randomised).
    objective, input_shape
        As in :func:`~inspect_kit.analysis.featurevis.render.render`.
    layers : sequence of str, optional
        Modules to randomise, in cascade order (top first). A container (``"features.denseblock1"``)
        is randomised recursively: every parameter of it and its descendants. A module with no
        parameters anywhere below it is an error (it would randomise nothing). Default: every
        module with parameters up to the deepest layer the objective reads, from the top down.
    metric : {"spearman", "ssim"}
        Similarity of each stage's images to the trained images.
    reference : bool
        Also render the trained model with the next seed, to report how similar two
        visualizations of the *same* model are (``result.reference``).
    random_state : int, numpy.random.Generator or None
        The one seed of the check: every stage renders with it (so stages differ only by
        their weights), the reference render uses ``random_state + 1``, and the weight
        randomisation draws from it. Recorded as ``result.random_state``.
    progress : bool
        Show a progress bar over stages.
    **render_kwargs
        Passed to ``render`` (steps, value_range, preprocess, param, transforms, device ...).

    Returns
    -------
    RandomizationResult
        Units whose trained or randomised render stayed flat score NaN (``result.flat``,
        ``result.notes`` say which): a flat image matches any other flat image.

    Raises
    ------
    ValueError
        A layer to randomise has no parameters (nothing would change).

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> res = randomization_check(SmallCNN(), "conv2#0", (1, 16, 16), steps=4,
    ...                           value_range=(0, 1), progress=False)
    >>> res.stages
    ['trained', 'conv2', 'bn1', 'conv1']
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    random_state = resolve_seed(random_state)
    reference_at = random_state + 1
    obj = as_objective(objective)
    names = list(layers) if layers is not None else _default_layers(model, obj)
    if names:
        resolve_layers(model, names)  # KeyError with close matches
        found = dict(model.named_modules())
        empty = [n for n in names if not any(True for _ in found[n].parameters())]
        if empty:
            raise ValueError(
                f"layers {empty} have no parameters (nor have their children): randomising "
                f"them changes nothing; modules with weights: {_parametrised_modules(model)[:12]}"
            )
    render_kwargs = {**render_kwargs, "progress": False}
    vr = render_kwargs.get("value_range")
    data_range = float(vr[1] - vr[0]) if vr is not None else None

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return image_similarity(a, b, metric, data_range)

    bar = tqdm(
        total=len(names) + 1 + bool(reference),
        desc="randomization check",
        disable=not progress,
    )
    base = render(model, obj, input_shape, random_state=random_state, **render_kwargs)
    bar.update()
    reference_scores = None
    if reference:
        other = render(model, obj, input_shape, random_state=reference_at, **render_kwargs)
        reference_scores = similarity(base.images, other.images)
        bar.update()

    copy_ = copy.deepcopy(model)
    images = [base.images]
    finals = [base.final_activations]
    flats = [np.asarray(base.flat)]
    scores = [similarity(base.images, base.images)]
    modules = dict(copy_.named_modules())
    for i, name in enumerate(names):
        base_name = parse_layer_spec(name)[0]
        if not any(True for _ in modules[base_name].parameters()):
            raise ValueError(
                f"module {name!r} ({type(modules[base_name]).__name__}) has no parameters, nor "
                "have its children: randomising it changes nothing; pick a module with weights"
            )
        # cumulative: this stage's module (and all its descendants) on top of the earlier ones
        randomize_weights(copy_, [base_name], random_state=int(random_state) + i, copy=False)
        res = render(copy_, obj, input_shape, random_state=random_state, **render_kwargs)
        images.append(res.images)
        finals.append(res.final_activations)
        flats.append(np.asarray(res.flat))
        scores.append(similarity(base.images, res.images))
        bar.update()
    bar.close()
    flat = np.stack(flats)
    score_arr = np.stack(scores).astype(float)
    unusable = flat | flat[:1]  # a flat trained render makes every stage's comparison void
    score_arr[unusable] = np.nan
    notes = []
    if flat[0].any():
        labs = [lab for lab, f in zip(base.labels, flat[0], strict=True) if f]
        notes.append(
            f"the trained model's render stayed flat for {labs}: no similarity is reported "
            "for them (a flat image matches any flat image)"
        )
    for stage, row in zip(names, flat[1:], strict=True):
        new = row & ~flat[0]
        if new.any():
            labs = [lab for lab, f in zip(base.labels, new, strict=True) if f]
            notes.append(f"after randomising {stage} the render stayed flat for {labs}: NaN")
    for note in notes:
        logger.warning("randomization check: %s", note)
    if reference_scores is not None and flat[0].any():
        reference_scores = np.where(flat[0], np.nan, reference_scores)
    return RandomizationResult(
        stages=["trained", *names],
        scores=score_arr,
        reference=reference_scores,
        images=np.stack(images),
        final_activations=np.stack(finals),
        labels=base.labels,
        metric=metric,
        objective=obj.description,
        value_range=base.value_range,
        random_state=random_state,
        params=dict(base.params),
        flat=flat,
        notes=notes,
    )
