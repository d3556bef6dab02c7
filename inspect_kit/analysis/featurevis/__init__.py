"""Feature visualization: activation maximization, dataset exemplars and sanity checks.

Objectives compose with arithmetic; parameterisations and transforms are small factories;
:func:`render` runs the optimisation for 2D images and 3D volumes of any channel count.

Examples
--------
>>> from inspect_kit import featurevis as fv                       # doctest: +SKIP
>>> res = fv.render(net, fv.channel("conv2", [0, 1, 2, 3]), (1, 16, 16),
...                 steps=128, value_range=(0, 1))                  # doctest: +SKIP
>>> ex = fv.top_exemplars(store, "conv2", k=5, units=[0, 1, 2, 3])  # doctest: +SKIP
"""

from .exemplars import Exemplars, top_exemplars
from .objectives import (
    Objective,
    as_objective,
    blur,
    channel,
    class_logit,
    deepdream,
    direction,
    diversity,
    l2,
    neuron,
    total_variation,
)
from .param import ParamSpec, channel_decorrelation, fourier, pixel
from .render import FeatureVisResult, intensity_window, render
from .sanity import RandomizationResult, image_similarity, randomization_check
from .transforms import compose, default_transforms, jitter, pad, rotate, scale

__all__ = [
    "Exemplars",
    "FeatureVisResult",
    "Objective",
    "ParamSpec",
    "RandomizationResult",
    "as_objective",
    "blur",
    "channel",
    "channel_decorrelation",
    "class_logit",
    "compose",
    "deepdream",
    "default_transforms",
    "direction",
    "diversity",
    "fourier",
    "image_similarity",
    "intensity_window",
    "jitter",
    "l2",
    "neuron",
    "pad",
    "pixel",
    "randomization_check",
    "render",
    "rotate",
    "scale",
    "top_exemplars",
    "total_variation",
]
