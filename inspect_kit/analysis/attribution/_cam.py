"""Class activation maps: Grad-CAM, Grad-CAM++ and guided Grad-CAM, in 2D and 3D.

The maps are computed at the CAM layer's resolution (kept as ``layer_maps``) and upsampled
to the input grid: bilinear for images, trilinear for volumes (``align_corners=False``, so
the map stays registered to the voxel grid and its spacing), or nearest when asked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._budget import spans
from ._gradients import Runner
from ._layers import CamLayer, activation_tap

__all__ = ["cam_maps", "upsample"]


def upsample(maps: torch.Tensor, size: tuple[int, ...], mode: str = "linear") -> torch.Tensor:
    """Resize ``(N, C, *s)`` maps to ``size``: ``"linear"`` is bilinear (2D) / trilinear (3D).

    Examples
    --------
    >>> upsample(torch.ones(1, 1, 2, 2, 2), (4, 4, 4)).shape
    torch.Size([1, 1, 4, 4, 4])
    """
    if tuple(maps.shape[2:]) == tuple(size):
        return maps
    if mode == "nearest":
        return F.interpolate(maps, size=size, mode="nearest")
    if mode != "linear":
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {mode!r}")
    m = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
    return F.interpolate(maps, size=size, mode=m, align_corners=False)


def _acts_grads(
    run: Runner, layer: CamLayer, x: torch.Tensor, owner: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    store: list[torch.Tensor] = []
    xi = x.detach().requires_grad_(True)  # a leaf that needs grad: the graph reaches the layer
    with activation_tap(layer, store), torch.enable_grad():
        scores = run.target.scores(run.model(xi), owner)
        if not store:
            raise RuntimeError(f"the CAM layer {layer.spec!r} did not run in the forward pass")
        (g,) = torch.autograd.grad(scores.sum(), store[0], allow_unused=True)
    a = store[0].detach()
    g = torch.zeros_like(a) if g is None else g
    if layer.tokens is not None:
        a, g = layer.tokens.to_maps(a, layer.spec), layer.tokens.to_maps(g, layer.spec)
    return a, g


def cam_maps(
    run: Runner, layer: CamLayer, x: torch.Tensor, variant: str, relu: bool = True
) -> torch.Tensor:
    """CAMs at the layer's resolution, ``(N, 1, *layer_resolution)``.

    ``variant`` is ``"gradcam"`` (channel weights: the spatial mean of the gradient) or
    ``"gradcam++"`` (Chattopadhay et al.'s closed-form weights, as MONAI computes them but
    without the per-sample factor ``exp(score)``, which only rescales a sample's map and
    overflows for large logits).
    """
    outs = []
    for s, e in spans(len(x), run.rows):
        owner = torch.arange(s, e, device=x.device)
        a, g = _acts_grads(run, layer, x[s:e], owner)
        b, c = a.shape[:2]
        ones = [1] * (a.ndim - 2)
        if variant == "gradcam":
            w = g.reshape(b, c, -1).mean(2).reshape(b, c, *ones)
        else:
            g2 = g.pow(2)
            denom = 2 * g2 + (a * g.pow(3)).reshape(b, c, -1).sum(-1).reshape(b, c, *ones)
            denom = torch.where(denom != 0.0, denom, torch.ones_like(denom))
            alpha = g2 / (denom + 1e-7)
            w = (alpha * F.relu(g)).reshape(b, c, -1).sum(-1).reshape(b, c, *ones)
        cam = (w * a).sum(1, keepdim=True)
        outs.append(F.relu(cam) if relu else cam)
    return torch.cat(outs)
