"""The result of an attribution: maps as computed, and everything needed to read them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Attribution", "flat_maps"]


def flat_maps(maps: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """One flag per sample: True where the map is all-zero or constant (nothing to show).

    Examples
    --------
    >>> flat_maps(np.stack([np.zeros((1, 4, 4)), np.eye(4)[None]])).tolist()
    [True, False]
    """
    m = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if m.shape[1] == 0:
        return np.ones(len(m), dtype=bool)
    span = m.max(1) - m.min(1)
    scale = np.maximum(np.abs(m).max(1), np.finfo(np.float32).tiny)
    return np.asarray(span <= rtol * scale, dtype=bool) | ~np.isfinite(m).all(1)


@dataclass
class Attribution:
    """Attribution maps of N samples, stored as computed (signed where the method is signed).

    Attributes
    ----------
    maps : ndarray (N, C, *spatial)
        The maps on the input grid. Gradient methods keep one map per input channel; CAMs and
        occlusion have C = 1. Not normalised: a figure normalises for display only.
    method : str
        The method's name (``"integrated-gradients"``, ``"gradcam"`` ...).
    params : dict
        Every parameter that changes the maps (JSON-able); :attr:`key` is derived from it.
    targets : list of str
        The explained target of each sample, in words (``"class 3 (predicted)"``).
    target_classes : ndarray (N,) or None
        The class index explained (class targets), -1 otherwise.
    scores : ndarray (N,)
        The explained score f(x) of each sample.
    model_sha256 : str
        sha256 of the model's state_dict, as a capture records it.
    signed : bool
        Whether the maps carry a sign (a diverging colour map shows them).
    layer, layer_resolution, layer_maps
        For CAM methods: the layer spec, its spatial resolution and the maps at that
        resolution before upsampling.
    index : ndarray (N,)
        Each sample's position in the dataset.
    labels, predictions : ndarray (N,) or None
    completeness_gap : ndarray (N,) or None
        Integrated gradients: sum of the map minus (f(x) - f(baseline)).
    flat : ndarray (N,) of bool
        All-zero or constant maps.
    warnings : list of str
        What could make the maps wrong, named (train-mode BatchNorm, unseen ReLUs, layers
        without an LRP rule, a CAM layer coarser than a few voxels per axis ...).

    Examples
    --------
    >>> a = Attribution(np.zeros((1, 1, 4, 4), np.float32), "saliency", {}, ["class 0"])
    >>> a.flat.tolist(), a.spatial_shape
    ([True], (4, 4))
    """

    maps: np.ndarray
    method: str
    params: dict[str, Any]
    targets: list[str]
    target_classes: np.ndarray | None = None
    scores: np.ndarray | None = None
    model_sha256: str = ""
    signed: bool = True
    layer: str | None = None
    layer_resolution: tuple[int, ...] | None = None
    layer_maps: np.ndarray | None = None
    index: np.ndarray | None = None
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    completeness_gap: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    warnings: list[str] = field(default_factory=list)
    flat: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.flat = flat_maps(self.maps)

    def __len__(self) -> int:
        return len(self.maps)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The input grid the maps live on."""
        return tuple(int(s) for s in self.maps.shape[2:])

    @property
    def key(self) -> str:
        """The store key: method, target and every parameter (sorted JSON)."""
        return json.dumps({"method": self.method, **self.params}, sort_keys=True, default=str)

    def summed(self) -> np.ndarray:
        """The maps summed over channels, ``(N, *spatial)`` (what a figure shows).

        Examples
        --------
        >>> a = Attribution(np.ones((2, 3, 4, 4), np.float32), "gradient", {}, ["c", "c"])
        >>> a.summed().shape, float(a.summed()[0, 0, 0])
        ((2, 4, 4), 3.0)
        """
        return np.asarray(self.maps.sum(1))

    def describe(self) -> str:
        """One line: method, layer and its resolution (for CAMs), samples, flat maps."""
        parts = [self.method, f"{len(self)} sample(s)"]
        if self.layer is not None and self.layer_resolution is not None:
            parts.append(f"layer {self.layer} at {'x'.join(map(str, self.layer_resolution))}")
        if self.flat.any():
            parts.append(f"{int(self.flat.sum())} flat map(s)")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"Attribution({self.describe()}, maps {tuple(self.maps.shape)})"
