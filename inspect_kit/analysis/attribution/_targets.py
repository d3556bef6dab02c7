"""What is explained: the one scalar per sample whose gradient (or change) an attribution maps.

A target is resolved once, on the unperturbed input (the predicted class of the image, not of
an integrated-gradients path point), into a :class:`ResolvedTarget` that turns any later
output into one score per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from inspect_kit.hooks import parse_layer_spec, select_outputs

__all__ = ["Region", "ResolvedTarget", "TargetLike", "resolve_target", "select_model_output"]


@dataclass(frozen=True)
class Region:
    """A segmentation target: one class channel summed over a region of the output grid.

    Parameters
    ----------
    channel : int
        The output channel (class) whose logits are summed.
    where : {"predicted", "mask", "component"}
        ``"predicted"``: the voxels whose argmax over channels is ``channel`` (for one output
        channel: logit > 0). ``"mask"``: the voxels of ``mask``. ``"component"``: one
        connected component of the predicted region, the largest by default or the one
        containing ``seed`` (a voxel index).
    mask : array, optional
        Boolean ``(N, *spatial)`` or ``(*spatial)`` mask for ``where="mask"``.
    seed : tuple of int, optional
        A voxel inside the component to explain (``where="component"``).

    Examples
    --------
    >>> Region(1).describe()
    'channel 1 summed over its predicted region'
    """

    channel: int
    where: str = "predicted"
    mask: Any = None
    seed: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.where not in ("predicted", "mask", "component"):
            raise ValueError(
                f"Region(where={self.where!r}) is not one of 'predicted', 'mask', 'component'"
            )
        if self.where == "mask" and self.mask is None:
            raise ValueError("Region(where='mask') needs mask=: a boolean array of the output grid")

    def describe(self) -> str:
        what = {
            "predicted": "its predicted region",
            "mask": "the given mask",
            "component": "one connected component of its predicted region"
            + ("" if self.seed is None else f" (through voxel {tuple(self.seed)})"),
        }[self.where]
        return f"channel {self.channel} summed over {what}"


TargetLike = int | str | Sequence[int] | np.ndarray | torch.Tensor | Region | Callable[..., Any]


def select_model_output(out: Any, output: str | None) -> torch.Tensor:
    """The one tensor of a model's output that is explained.

    ``output`` uses the layer grammar's output part (``"[logits]"``, ``"[0]"``); ``None``
    accepts a plain tensor only.

    Examples
    --------
    >>> t = torch.zeros(2, 3)
    >>> select_model_output({"logits": t, "aux": t}, "[logits]").shape
    torch.Size([2, 3])
    """
    spec = parse_layer_spec("output" + (output or ""))
    return select_outputs(out, spec, "output", single=True)[0][1]


def _components(region: np.ndarray) -> np.ndarray:
    """Label the connected components of a boolean N-D array (face neighbours)."""
    from scipy import ndimage

    labels, _ = ndimage.label(region)
    return np.asarray(labels)


@dataclass
class ResolvedTarget:
    """A target fixed on the unperturbed inputs of one batch.

    ``classes`` holds one class index per sample (class targets), ``masks`` one weight map
    per sample over the output grid (region targets), ``fn`` a user callable.
    """

    kind: str
    descriptions: list[str]
    output: str | None = None
    classes: torch.Tensor | None = None
    channel: int | None = None
    masks: torch.Tensor | None = None
    fn: Callable[..., Any] | None = None

    def scores(self, out: Any, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One score per row of ``out``; ``rows[i]`` is the sample row ``i`` belongs to."""
        y = select_model_output(out, self.output)
        n = y.shape[0]
        idx = torch.arange(n, device=y.device) if rows is None else rows.to(y.device)
        if self.kind == "class":
            assert self.classes is not None
            if y.ndim != 2:
                raise ValueError(
                    f"a class target needs an output of shape (N, classes), got {tuple(y.shape)}; "
                    "for a segmentation output use target=Region(channel)"
                )
            return y[torch.arange(n, device=y.device), self.classes.to(y.device)[idx]]
        if self.kind == "region":
            assert self.masks is not None and self.channel is not None
            m = self.masks.to(y.device, y.dtype)[idx]
            return (y[:, self.channel] * m).flatten(1).sum(1)
        assert self.fn is not None
        s = self.fn(y)
        if not isinstance(s, torch.Tensor) or s.shape != (n,):
            raise ValueError(
                "a callable target must return one score per sample, a tensor of shape "
                f"({n},); got {getattr(s, 'shape', type(s).__name__)}"
            )
        return s


def resolve_target(
    target: TargetLike,
    out: Any,
    *,
    labels: np.ndarray | None = None,
    output: str | None = None,
) -> ResolvedTarget:
    """Fix ``target`` on the output of the unperturbed batch.

    Parameters
    ----------
    target : int, sequence of int, "predicted", "label", Region or callable
        A class index (every sample), one class per sample, the predicted class (argmax),
        the true label (``labels`` needed), a segmentation :class:`Region`, or a callable
        taking the selected output ``(N, ...)`` and returning ``(N,)`` scores.
    out : model output of the batch
    labels : array, optional
        The batch's true labels, for ``"label"``.
    output : str, optional
        Which output of a tuple/dict model, in the layer grammar (``"[logits]"``).

    Examples
    --------
    >>> r = resolve_target("predicted", torch.tensor([[0.0, 2.0], [3.0, 1.0]]))
    >>> r.classes.tolist(), r.descriptions
    ([1, 0], ['class 1 (predicted)', 'class 0 (predicted)'])
    """
    y = select_model_output(out, output).detach()
    n = y.shape[0]
    suffix = f" of output {output}" if output else ""
    if isinstance(target, Region):
        return _resolve_region(target, y, output, suffix)
    if callable(target) and not isinstance(target, torch.Tensor | np.ndarray):
        name = getattr(target, "__name__", type(target).__name__)
        return ResolvedTarget("callable", [f"{name}(output){suffix}"] * n, output, fn=target)
    if isinstance(target, str):
        if y.ndim != 2:
            raise ValueError(
                f"target={target!r} needs an output of shape (N, classes), got {tuple(y.shape)}; "
                "for a segmentation network use target=Region(channel)"
            )
        if target == "predicted":
            cls = y.argmax(1)
            how = "predicted"
        elif target == "label":
            if labels is None:
                raise ValueError(
                    "target='label' needs the true labels: give labels= or data whose batches "
                    "carry them, e.g. (x, y) tuples"
                )
            cls = torch.as_tensor(np.asarray(labels), device=y.device).long().reshape(-1)
            if len(cls) != n:
                raise ValueError(f"got {len(cls)} labels for {n} samples")
            how = "true label"
        else:
            raise ValueError(
                f"target={target!r} is not understood; use a class index, 'predicted', 'label', "
                "a Region or a callable on the output"
            )
        return ResolvedTarget(
            "class", [f"class {int(c)} ({how}){suffix}" for c in cls.tolist()], output, classes=cls
        )
    cls = torch.as_tensor(np.asarray(target), device=y.device).long().reshape(-1)
    if cls.numel() == 1:
        cls = cls.repeat(n)
    if len(cls) != n:
        raise ValueError(
            f"target gives {len(cls)} classes for {n} samples; give one or one per sample"
        )
    if y.ndim != 2:
        raise ValueError(
            f"a class target needs an output of shape (N, classes), got {tuple(y.shape)}; "
            "for a segmentation network use target=Region(channel)"
        )
    if int(cls.max()) >= y.shape[1] or int(cls.min()) < 0:
        raise ValueError(f"class target {cls.tolist()} is outside 0..{y.shape[1] - 1}")
    return ResolvedTarget(
        "class", [f"class {int(c)}{suffix}" for c in cls.tolist()], output, classes=cls
    )


def _resolve_region(
    region: Region, y: torch.Tensor, output: str | None, suffix: str
) -> ResolvedTarget:
    if y.ndim < 3:
        raise ValueError(
            f"a Region target needs a segmentation output (N, C, *spatial), got {tuple(y.shape)}"
        )
    if not 0 <= region.channel < y.shape[1]:
        raise ValueError(f"Region channel {region.channel} is outside 0..{y.shape[1] - 1}")
    n, spatial = y.shape[0], tuple(y.shape[2:])
    if region.where == "mask":
        m = torch.as_tensor(np.asarray(region.mask)).bool()
        if tuple(m.shape) == spatial:
            m = m.expand(n, *spatial)
        if tuple(m.shape) != (n, *spatial):
            raise ValueError(
                f"Region mask has shape {tuple(m.shape)}; the output grid is {spatial} "
                f"(give {spatial} or {(n, *spatial)})"
            )
        masks = m.to(y.device)
    else:
        if y.shape[1] == 1:
            pred = y[:, 0] > 0
        else:
            pred = y.argmax(1) == region.channel
        masks = pred
        if region.where == "component":
            chosen = []
            for p in pred.cpu().numpy():
                lab = _components(p)
                if region.seed is not None:
                    k = int(lab[tuple(region.seed)])
                    if k == 0:
                        raise ValueError(
                            f"voxel {tuple(region.seed)} is not in the predicted region of channel "
                            f"{region.channel}"
                        )
                else:
                    sizes = np.bincount(lab.ravel())
                    sizes[0] = 0
                    k = int(sizes.argmax())
                chosen.append(lab == k if k else np.zeros_like(p))
            masks = torch.as_tensor(np.stack(chosen), device=y.device)
    counts = masks.flatten(1).sum(1).tolist()
    desc = [f"{region.describe()}{suffix} ({int(c)} voxels)" for c in counts]
    return ResolvedTarget("region", desc, output, channel=region.channel, masks=masks.float())
