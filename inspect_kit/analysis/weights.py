"""Weight views: the convolution kernels of a layer (by default the first), 2D or 3D, any C.

First-layer kernels act directly on intensities, so they read as edge, blob or texture
detectors; a 3D kernel is shown as its three orthogonal central slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from inspect_kit.hooks import resolve_layers

__all__ = ["Kernels", "conv_kernels"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)

#: Names of the three orthogonal planes of a (D, H, W) kernel, by the axis they cut.
PLANES = {"axial": 0, "coronal": 1, "sagittal": 2}


@dataclass
class Kernels:
    """Convolution kernels of one layer.

    Attributes
    ----------
    layer : str
        Module name.
    weights : ndarray, shape (out, in, kh, kw) or (out, in, kd, kh, kw)
        A copy of the weights (float32, on the CPU). Transposed convolutions are given as
        (out, in, ...) as well.
    module_type : str
    """

    layer: str
    weights: np.ndarray
    module_type: str

    @property
    def dim(self) -> int:
        """Spatial dimensionality of the kernels (2 or 3)."""
        return self.weights.ndim - 2

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[1])

    def plane(self, name: str, index: int | None = None) -> np.ndarray:
        """A slice through every 3D kernel: ``(out, in, a, b)``.

        Parameters
        ----------
        name : {"axial", "coronal", "sagittal"}
            The plane, cutting the D, H or W axis of the kernel.
        index : int, optional
            Position along the cut axis (default: the centre).
        """
        if self.dim != 3:
            raise ValueError(f"planes exist for 3D kernels; {self.layer!r} has {self.dim}D kernels")
        if name not in PLANES:
            raise ValueError(f"plane must be one of {list(PLANES)}, got {name!r}")
        axis = PLANES[name]
        size = self.weights.shape[2 + axis]
        i = size // 2 if index is None else int(index)
        if not 0 <= i < size:
            raise ValueError(f"index {i} outside 0..{size - 1} for the {name} axis")
        plane: np.ndarray = np.take(self.weights, i, axis=2 + axis)
        return plane

    def orthogonal_slices(self) -> dict[str, np.ndarray]:
        """The three central planes of every 3D kernel, ``{"axial": (out, in, h, w), ...}``."""
        return {name: self.plane(name) for name in PLANES}


def conv_kernels(model: nn.Module, layer: str | None = None) -> Kernels:
    """Weights of a convolution layer, by default the model's first one.

    Parameters
    ----------
    model : nn.Module
    layer : str, optional
        Name of a convolution module; the first ``Conv2d``/``Conv3d`` in
        ``model.named_modules()`` order when omitted.

    Returns
    -------
    Kernels

    Examples
    --------
    >>> from inspect_kit.models import SmallCNN
    >>> k = conv_kernels(SmallCNN(in_channels=1, dim=3))
    >>> k.layer, k.weights.shape
    ('conv1', (8, 1, 3, 3, 3))
    """
    module: nn.Module
    if layer is None:
        found = [(n, m) for n, m in model.named_modules() if isinstance(m, _CONV_TYPES)]
        found = [(n, m) for n, m in found if m.weight.ndim in (4, 5)]
        if not found:
            raise ValueError("the model has no Conv2d/Conv3d layer; name a layer explicitly")
        name, module = found[0]
    else:
        name, module = next(iter(resolve_layers(model, [layer]).items()))
    weight = getattr(module, "weight", None)
    if weight is None or weight.ndim not in (4, 5):
        raise ValueError(
            f"layer {name!r} ({type(module).__name__}) has no 2D/3D convolution weight; "
            "name a Conv2d or Conv3d layer"
        )
    w = weight.detach().float().cpu().numpy().copy()
    if isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
        w = np.swapaxes(w, 0, 1).copy()
    return Kernels(layer=name, weights=w, module_type=type(module).__name__)
