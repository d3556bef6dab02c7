"""Method names and the options that tune them (one dataclass, validated once)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["METHODS", "AttributionOptions", "canonical_method", "method_params"]

# method -> (signed, family)
METHODS: dict[str, tuple[bool, str]] = {
    "saliency": (False, "gradient"),
    "gradient": (True, "gradient"),
    "input-x-gradient": (True, "gradient"),
    "smoothgrad": (True, "noise"),
    "smoothgrad-squared": (False, "noise"),
    "vargrad": (False, "noise"),
    "integrated-gradients": (True, "path"),
    "guided-backprop": (True, "guided"),
    "gradcam": (False, "cam"),
    "gradcam++": (False, "cam"),
    "guided-gradcam": (True, "cam"),
    "occlusion": (True, "perturbation"),
    "lrp": (True, "lrp"),
}
_ALIASES = {
    "ig": "integrated-gradients",
    "integratedgradients": "integrated-gradients",
    "inputxgradient": "input-x-gradient",
    "gradientxinput": "input-x-gradient",
    "guidedbackprop": "guided-backprop",
    "guidedbackpropagation": "guided-backprop",
    "gradcampp": "gradcam++",
    "gradcamplusplus": "gradcam++",
    "guidedgradcam": "guided-gradcam",
    "smoothgradsq": "smoothgrad-squared",
    "smoothgradsquared": "smoothgrad-squared",
    "vanillagradient": "gradient",
}


def canonical_method(name: str) -> str:
    """The method's canonical name (case, ``_`` and ``-`` do not matter).

    Examples
    --------
    >>> canonical_method("Grad-CAM"), canonical_method("integrated_gradients"), canonical_method("IG")
    ('gradcam', 'integrated-gradients', 'integrated-gradients')
    """
    if not isinstance(name, str):
        raise TypeError(f"method must be a string, got {type(name).__name__}")
    flat = name.lower().replace("_", "").replace("-", "").replace(" ", "")
    for m in METHODS:
        if m.replace("-", "") == flat:
            return m
    if flat in _ALIASES:
        return _ALIASES[flat]
    from inspect_kit._names import unknown_name_error

    raise unknown_name_error(
        name, list(METHODS), kind="attribution method", where="inspect_kit", error=ValueError
    )


@dataclass(frozen=True)
class AttributionOptions:
    """Every knob of every method; each method records the ones it uses.

    Parameters
    ----------
    steps, rule, baseline, blur_sigma
        Integrated gradients: path points, quadrature (``"gausslegendre"`` as captum, or
        ``"riemann_trapezoid"``/``_left``/``_right``/``_middle``), baseline (``"zeros"``,
        ``"blurred"``, ``"uniform"``, a number, or an array) and the blur's sigma in voxels.
    samples, noise_level, noise_std
        SmoothGrad / VarGrad: noisy copies per sample and the noise's standard deviation,
        relative to each sample's value range (``noise_level``, Smilkov et al.'s 0.15) or
        absolute (``noise_std``, overrides).
    window, stride, window_mm, stride_mm, occlusion_value
        Occlusion: window and stride in voxels per spatial axis, or in mm (with ``spacing``),
        and the value written into the window.
    relu, interpolation, min_resolution, token_grid, prefix_tokens
        CAMs: ReLU on the map (Grad-CAM's definition), ``"linear"`` (bilinear/trilinear) or
        ``"nearest"`` upsampling, the fewest positions per axis the default layer keeps, and
        how a transformer's tokens map to the patch grid.
    composite, epsilon
        LRP: a zennit composite (default ``EpsilonPlusFlat`` with BatchNorm merged) and the
        epsilon of its epsilon rule.
    batchnorm
        ``"eval"`` (default) or ``"train"``: see :func:`model_guard`.
    """

    steps: int = 50
    rule: str = "gausslegendre"
    baseline: Any = "zeros"
    blur_sigma: float = 5.0
    samples: int = 50
    noise_level: float = 0.15
    noise_std: float | None = None
    window: Any = None
    stride: Any = None
    window_mm: Any = None
    stride_mm: Any = None
    occlusion_value: float = 0.0
    relu: bool = True
    interpolation: str = "linear"
    min_resolution: int = 4
    token_grid: tuple[int, ...] | None = None
    prefix_tokens: int | None = None
    composite: Any = None
    epsilon: float = 1e-6
    batchnorm: str = "eval"

    def updated(self, **changes: Any) -> AttributionOptions:
        """A copy with ``changes``; an unknown name is an error listing the known ones."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise TypeError(
                f"unknown attribution option(s) {', '.join(bad)}; the options are "
                f"{', '.join(sorted(known))}"
            )
        return replace(self, **changes)


_USED = {
    "gradient": (),
    "noise": ("samples", "noise_level", "noise_std"),
    "path": ("steps", "rule", "baseline", "blur_sigma"),
    "guided": (),
    "cam": ("relu", "interpolation", "min_resolution", "token_grid", "prefix_tokens"),
    "perturbation": ("window", "stride", "window_mm", "stride_mm", "occlusion_value"),
    "lrp": ("composite", "epsilon"),
}


def method_params(method: str, opts: AttributionOptions) -> dict[str, Any]:
    """The options ``method`` uses, JSON-able (arrays and composites by description)."""
    fam = METHODS[method][1]
    d = asdict(opts)
    out: dict[str, Any] = {"batchnorm": opts.batchnorm}
    for k in _USED[fam]:
        v = d[k]
        if k == "baseline" and not isinstance(v, str | int | float):
            v = "custom"
        elif k == "composite":
            v = "EpsilonPlusFlat+SequentialMergeBatchNorm" if v is None else type(v).__name__
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    if method == "guided-gradcam":
        out["guided"] = "function-level ReLU redirect"
    return out
