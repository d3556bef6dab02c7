"""Image panels shared by the feature-visualization figures: grey colour scales, planes of a
volume, heatmap traces in the user's units, and the labels of units and exemplars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from . import theme
from .protocols import ExemplarsLike, FeatureVisLike

#: Colour scales for grey-level medical images.
GRAYSCALES: dict[str, list[list[Any]]] = {
    "gray": theme.GRAY_SCALE,
    "gray_r": [[0.0, "#FFFFFF"], [1.0, "#000000"]],
    # matplotlib's "bone": grey with a touch of blue in the mid-tones, as in X-ray viewers
    "bone": [
        [0.0, "#000000"],
        [0.375, "#545474"],
        [0.75, "#a7c7c7"],
        [1.0, "#ffffff"],
    ],
}

PLANES = ("axial", "coronal", "sagittal")  # cut axis 0 (D), 1 (H), 2 (W) of a volume
SLIDER_PX = 85  # vertical room for one slider with its current-value label
TITLE_PX = 10  # font size of panel titles in galleries


def resolve_colorscale(name: str | list[Any]) -> Any:
    if isinstance(name, str) and name in GRAYSCALES:
        return GRAYSCALES[name]
    return name


def axis_ref(fig: go.Figure, row: int, col: int) -> tuple[str, str]:
    sp = fig.get_subplot(row, col)
    return sp.xaxis.plotly_name, sp.yaxis.plotly_name


def style_image_axes(fig: go.Figure, row: int, col: int) -> None:
    xname, yname = axis_ref(fig, row, col)
    anchor = xname.replace("axis", "")
    fig.layout[xname].update(visible=False, constrain="domain")
    fig.layout[yname].update(
        visible=False, autorange="reversed", scaleanchor=anchor, constrain="domain"
    )


def plane_of(volume: np.ndarray, plane: str, index: int | None = None) -> np.ndarray:
    axis = PLANES.index(plane)
    i = volume.shape[axis] // 2 if index is None else index
    cut: np.ndarray = np.take(volume, i, axis=axis)
    return cut


def image_trace(
    img: np.ndarray, zrange: tuple[float, float] | None, colorscale: Any, name: str
) -> go.BaseTraceType:
    if img.ndim == 3 and img.shape[-1] == 3:  # RGB (h, w, 3)
        arr = img.astype(np.float64)
        lo, hi = zrange if zrange is not None else (np.nanmin(arr), np.nanmax(arr))
        u8 = np.clip(np.round((arr - lo) / max(hi - lo, 1e-12) * 255), 0, 255).astype(np.uint8)
        return go.Image(z=u8, name=name, hoverinfo="skip")
    kw = {} if zrange is None else {"zmin": zrange[0], "zmax": zrange[1]}
    return go.Heatmap(
        z=img,
        colorscale=colorscale,
        showscale=False,
        name=name,
        hovertemplate=f"{name}<br>x=%{{x}} y=%{{y}}<br>value=%{{z:.4g}}<extra></extra>",
        **kw,
    )


def sample_plane(sample: np.ndarray, channel: int | str, rgb_ok: bool = True) -> np.ndarray:
    """(C, *S) -> (*S) or (*S, 3) for channel='rgb'; 'auto' draws 3-channel images in colour."""
    if channel == "auto":
        channel = "rgb" if sample.shape[0] == 3 and sample.ndim == 3 and rgb_ok else 0
    if channel == "rgb":
        if sample.shape[0] != 3:
            raise ValueError(f"channel='rgb' needs 3 channels, got {sample.shape[0]}")
        return np.moveaxis(sample, 0, -1)
    c = int(channel)
    if not 0 <= c < sample.shape[0]:
        raise ValueError(f"channel {c} out of range for {sample.shape[0]} channels")
    one: np.ndarray = sample[c]
    return one


def class_name(value: Any, names: Sequence[str] | Mapping[Any, str] | None) -> str:
    """A label shown by its class name when one is known, else ``y=<value>``."""
    if names is not None:
        if isinstance(names, Mapping):
            if value in names:
                return str(names[value])
        else:
            try:
                i = int(value)
            except (TypeError, ValueError):
                i = -1
            if 0 <= i < len(names):
                return str(names[i])
    return f"y={value}"


def unit_label(label: str, layer: str | None) -> str:
    """A unit's label without the layer the figure's title already names ('conv1#3' -> 'unit 3')."""
    if layer and label.startswith(f"{layer}#"):
        return f"unit {label[len(layer) + 1 :]}"
    return label


def pick_units(n: int, units: Sequence[int] | None, max_units: int) -> list[int]:
    if units is None:
        return list(range(min(n, max_units)))
    picked = [int(u) for u in units]
    bad = [u for u in picked if not 0 <= u < n]
    if bad:
        raise ValueError(f"batch elements {bad} out of range 0..{n - 1}")
    return picked


def exemplar_rows(
    result: FeatureVisLike, exemplars: ExemplarsLike | None, picked: list[int]
) -> list[int | None]:
    """For each picked batch element, the row of ``exemplars`` with the same unit."""
    if exemplars is None:
        return [None] * len(picked)
    ex_units = list(np.asarray(exemplars.units).tolist())
    if result.units is None:
        if len(ex_units) != len(result.labels):
            raise ValueError(
                "the result's objective names no units; give exemplars with one row per "
                f"batch element ({len(result.labels)}), got {len(ex_units)}"
            )
        return list(picked)
    if result.layer is not None and exemplars.layer not in (result.layer, "array"):
        raise ValueError(
            f"exemplars are for layer {exemplars.layer!r} but the result for {result.layer!r}"
        )
    rows: list[int | None] = []
    for b in picked:
        u = result.units[b]
        rows.append(ex_units.index(u) if u in ex_units else None)
    return rows
