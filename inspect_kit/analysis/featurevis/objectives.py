"""Objectives for activation maximization.

An :class:`Objective` maps the activations captured during one forward pass to a score per
batch element, shape ``(B,)``; :func:`~inspect_kit.analysis.featurevis.render.render`
maximises the sum of those scores. Objectives compose with ``+ - * /`` and scalars and
describe themselves, so ``channel("conv2", 3) - 1e-3 * total_variation()`` prints as
``channel(conv2, 3) - 0.001 * total_variation()``.

Batch semantics
---------------
Every objective scores each batch element separately. A unit given as a single int applies
to every element (``channel("conv2", 3)``); a unit given as a list assigns one unit per
element (``channel("conv2", [0, 1, 2, 3])`` optimises four images at once, image ``i`` for
channel ``i``) and fixes the batch size to the length of the list. ``diversity`` couples the
elements of a batch: each element's score is minus its mean similarity to the others.

Layers are named with the package's one layer-spec grammar (:mod:`inspect_kit.hooks.spec`):
dotted names of ``model.named_modules()``, ``":k"`` for a module's ``k``-th call in one
forward pass and ``"[i]"`` for one output of a module that returns several, exactly as the
activation store names them. Units have their own notation, ``"layer#3"`` or
``("layer", 3)``, never a colon. Two names are special: ``"input"`` (the image fed to the
model, after transforms and preprocessing; used by the regularisers) and ``"output"`` (the
model's return value; used by :func:`class_logit`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from inspect_kit.hooks.spec import parse_layer_spec

__all__ = [
    "INPUT",
    "OUTPUT",
    "Objective",
    "as_objective",
    "blur",
    "channel",
    "class_logit",
    "deepdream",
    "direction",
    "diversity",
    "l2",
    "neuron",
    "total_variation",
]

INPUT = "input"
OUTPUT = "output"

Units = int | Sequence[int]
ScoreFn = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class Objective:
    """A differentiable score per batch element, built from captured activations.

    Parameters
    ----------
    fn : callable
        ``fn(acts) -> Tensor (B,)`` where ``acts`` maps layer names (and ``"input"``,
        ``"output"``) to tensors of the current forward pass.
    description : str
        Human-readable description, used by ``repr`` and figure titles.
    layers : iterable of str
        Layer names ``fn`` reads (``"input"``/``"output"`` included when used).
    batch_size : int, optional
        Number of batch elements this objective defines (one unit per element), or None when
        it applies to any batch size.
    units : (layer, int or list of int), optional
        The unit(s) the objective is about, for labelling results and matching exemplars:
        one channel for every element, or one per element.

    Examples
    --------
    >>> obj = channel("conv2", 3) - 0.5 * channel("conv2", 4)
    >>> obj
    channel(conv2, 3) - 0.5 * channel(conv2, 4)
    """

    # Precedence: 0 atom, 1 product/quotient, 2 sum/difference; used to add parentheses.
    def __init__(
        self,
        fn: ScoreFn,
        description: str,
        layers: Sequence[str] = (),
        batch_size: int | None = None,
        units: tuple[str, int | list[int]] | None = None,
        _precedence: int = 0,
    ) -> None:
        self.fn = fn
        self.description = description
        self.layers = tuple(dict.fromkeys(layers))
        self.batch_size = batch_size
        self.units = units
        self._precedence = _precedence

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        score = self.fn(acts)
        if score.ndim != 1:
            raise ValueError(
                f"objective {self.description!r} returned shape {tuple(score.shape)}; "
                "an objective must return one score per batch element, shape (B,)"
            )
        return score

    def __repr__(self) -> str:
        return self.description

    def unit_indices(self, batch_size: int) -> list[int] | None:
        """The unit (channel / class) of each batch element, or None if not about units."""
        if self.units is None:
            return None
        u = self.units[1]
        return list(u) if isinstance(u, list) else [u] * batch_size

    def unit_labels(self, batch_size: int) -> list[str]:
        """One label per batch element (``"conv2#3"``), else the objective's description."""
        idx = self.unit_indices(batch_size)
        if idx is None or self.units is None:
            return [self.description] * batch_size
        layer = self.units[0]
        return [f"class {u}" if layer == OUTPUT else f"{layer}#{u}" for u in idx]

    # -- arithmetic -------------------------------------------------------------------------
    def _wrap(self, level: int) -> str:
        return f"({self.description})" if self._precedence > level else self.description

    def _combine(self, other: Any, op: str) -> Objective:
        other_obj = _coerce(other)
        if other_obj is None:
            # typeshed types NotImplemented as Any; the dunders hand it back to Python
            return NotImplemented  # type: ignore[no-any-return]
        batch_size = _merge_batch(self, other_obj)
        units = self.units if self.units is not None else other_obj.units
        a, b = self, other_obj
        if op in "+-":
            left = a._wrap(2)
            right = b._wrap(1) if op == "-" else b._wrap(2)
            level = 2
        else:
            left = a._wrap(1)
            right = b._wrap(0) if op == "/" else b._wrap(1)
            level = 1
        fns = {
            "+": lambda acts: a(acts) + b(acts),
            "-": lambda acts: a(acts) - b(acts),
            "*": lambda acts: a(acts) * b(acts),
            "/": lambda acts: a(acts) / b(acts),
        }
        return Objective(
            fns[op],
            f"{left} {op} {right}",
            layers=a.layers + b.layers,
            batch_size=batch_size,
            units=units,
            _precedence=level,
        )

    def _scalar(self, value: numbers.Real | float, op: str, reflected: bool) -> Objective:
        v = float(value)
        a = self
        txt = _fmt(v)
        if op == "+":
            fn = lambda acts: a(acts) + v  # noqa: E731
            desc = f"{txt} + {a._wrap(2)}" if reflected else f"{a._wrap(2)} + {txt}"
            level = 2
        elif op == "-":
            if reflected:
                fn = lambda acts: v - a(acts)  # noqa: E731
                desc = f"{txt} - {a._wrap(1)}"
            else:
                fn = lambda acts: a(acts) - v  # noqa: E731
                desc = f"{a._wrap(2)} - {txt}"
            level = 2
        elif op == "*":
            fn = lambda acts: a(acts) * v  # noqa: E731
            desc = f"{txt} * {a._wrap(1)}" if reflected else f"{a._wrap(1)} * {txt}"
            level = 1
        else:  # "/"
            if reflected:
                fn = lambda acts: v / a(acts)  # noqa: E731
                desc = f"{txt} / {a._wrap(0)}"
            else:
                if v == 0:
                    raise ZeroDivisionError(f"cannot divide objective {a.description!r} by 0")
                fn = lambda acts: a(acts) / v  # noqa: E731
                desc = f"{a._wrap(1)} / {txt}"
            level = 1
        return Objective(fn, desc, a.layers, a.batch_size, a.units, _precedence=level)

    def __add__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "+", reflected=False)
        return self._combine(other, "+")

    def __radd__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            # sum([...]) starts from 0: keep the description clean.
            if other == 0:
                return self
            return self._scalar(other, "+", reflected=True)
        return NotImplemented

    def __sub__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "-", reflected=False)
        return self._combine(other, "-")

    def __rsub__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "-", reflected=True)
        return NotImplemented

    def __mul__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "*", reflected=False)
        return self._combine(other, "*")

    def __rmul__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "*", reflected=True)
        return NotImplemented

    def __truediv__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "/", reflected=False)
        return self._combine(other, "/")

    def __rtruediv__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real):
            return self._scalar(other, "/", reflected=True)
        return NotImplemented

    def __neg__(self) -> Objective:
        a = self
        return Objective(lambda acts: -a(acts), f"-{a._wrap(0)}", a.layers, a.batch_size, a.units)


def _fmt(v: float) -> str:
    return f"{v:g}"


def _coerce(other: Any) -> Objective | None:
    return other if isinstance(other, Objective) else None


def _merge_batch(a: Objective, b: Objective) -> int | None:
    if a.batch_size is not None and b.batch_size is not None and a.batch_size != b.batch_size:
        raise ValueError(
            f"cannot combine {a.description!r} (batch of {a.batch_size}) with "
            f"{b.description!r} (batch of {b.batch_size}); give both the same number of units"
        )
    return a.batch_size if a.batch_size is not None else b.batch_size


def as_objective(obj: Objective | str | tuple[str, Units]) -> Objective:
    """Return ``obj`` as an :class:`Objective`.

    ``"layer#n"`` and ``("layer", n)`` mean ``channel(layer, n)``; a layer spec without a
    unit (``"layer4"``, ``"relu:1"``, ``"lstm[0]"``) means :func:`deepdream` of that output.
    A ``":n"`` suffix always selects a call, never a channel.

    Raises
    ------
    ValueError
        For ``"layer:n"``, which meant channel ``n`` in earlier versions and is now the
        ``n``-th call: the message names both and how to write each.

    Examples
    --------
    >>> as_objective("layer4.1.conv2#12")
    channel(layer4.1.conv2, 12)
    >>> as_objective(("layer4.1.conv2", [1, 2]))
    channel(layer4.1.conv2, [1, 2])
    """
    if isinstance(obj, Objective):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str):
        return channel(obj[0], obj[1])
    if isinstance(obj, str):
        spec = parse_layer_spec(obj)
        if spec.unit is not None:
            return channel(spec.key, spec.unit)
        if spec.call is not None and not spec.output:
            raise ValueError(
                f"objective {obj!r} is ambiguous: ':{spec.call}' selects call {spec.call} of "
                f"{spec.module!r} (as in capture), while older versions read it as channel "
                f"{spec.call}. Write {f'{spec.module}#{spec.call}'!r} or "
                f"({spec.module!r}, {spec.call}) for channel {spec.call}, "
                f"{f'{spec.key}#0'!r} for channel 0 of that call, or "
                f"fv.deepdream({spec.key!r}) for the whole call"
            )
        return deepdream(spec.key)
    raise TypeError(
        "expected an Objective, a 'layer#channel' string or a (layer, channel) pair, got "
        f"{type(obj).__name__}"
    )


# -- helpers ------------------------------------------------------------------------------------
def _layer(layer: str) -> str:
    """Check a layer spec early (at objective construction) and refuse a unit in it."""
    spec = parse_layer_spec(layer)
    if spec.unit is not None:
        raise ValueError(
            f"{layer!r} names unit {spec.unit}; give the layer {spec.key!r} and the unit as "
            "its own argument"
        )
    return spec.key


def _get(acts: Mapping[str, torch.Tensor], layer: str) -> torch.Tensor:
    try:
        return acts[layer]
    except KeyError:
        raise KeyError(f"no activation captured for {layer!r}; captured: {sorted(acts)}") from None


class _PerDevice:
    """A constant tensor copied to each device once: a copy at every step would make a GPU
    wait for the host (pageable host-to-device copies synchronise)."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t
        self._copies: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def on(self, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
        key = (device, dtype or self.t.dtype)
        if key not in self._copies:
            self._copies[key] = self.t.to(device=device, dtype=key[1])
        return self._copies[key]

    def max(self) -> torch.Tensor:
        return self.t.max()


def _unit_index(
    units: Units, what: str
) -> tuple[_PerDevice | int, int | None, str, int | list[int]]:
    """Normalise ``units`` into an index, a batch size, a description and the plain unit(s)."""
    if isinstance(units, bool) or not isinstance(units, (numbers.Integral, Sequence)):
        raise TypeError(f"{what} must be an int or a list of ints, got {units!r}")
    if isinstance(units, numbers.Integral):
        if units < 0:
            raise ValueError(f"{what} must be >= 0, got {units}")
        return int(units), None, str(int(units)), int(units)
    items = list(units)
    if not items or not all(
        isinstance(u, numbers.Integral) and not isinstance(u, bool) and u >= 0 for u in items
    ):
        raise ValueError(f"{what} must be a non-empty list of ints >= 0, got {units!r}")
    items = [int(u) for u in items]
    return _PerDevice(torch.tensor(items, dtype=torch.long)), len(items), str(items), items


def _check_batch(t: torch.Tensor, batch_size: int | None, desc: str) -> None:
    if batch_size is not None and t.shape[0] != batch_size:
        raise ValueError(
            f"{desc} defines {batch_size} units (one per batch element) but the batch has "
            f"{t.shape[0]} elements"
        )


def _check_channel(t: torch.Tensor, idx: _PerDevice | int, layer: str) -> None:
    if t.ndim < 2:
        raise ValueError(f"layer {layer!r} output has shape {tuple(t.shape)}; expected (B, C, ...)")
    top = int(idx.max()) if isinstance(idx, _PerDevice) else idx
    if top >= t.shape[1]:
        raise ValueError(
            f"unit {top} out of range for layer {layer!r} with {t.shape[1]} channels "
            f"(valid: 0..{t.shape[1] - 1})"
        )


def _select_channel(t: torch.Tensor, idx: _PerDevice | int) -> torch.Tensor:
    """(B, C, *S) -> (B, *S): channel ``idx`` (int) or channel ``idx[b]`` for element b."""
    if isinstance(idx, int):
        return t[:, idx]
    return t[torch.arange(t.shape[0], device=t.device), idx.on(t.device)]


# -- unit objectives ----------------------------------------------------------------------------
def channel(layer: str, n: Units) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` over all spatial positions.

    Parameters
    ----------
    layer : str
        A layer spec: a module name from ``model.named_modules()``, ``":k"`` for its k-th
        call, ``"[i]"`` for one output of a module that returns several.
    n : int or list of int
        One channel for every batch element, or one channel per batch element
        (``channel("conv2", 3)`` is what ``"conv2#3"`` stands for).

    Examples
    --------
    >>> channel("conv2", [0, 1, 2]).batch_size
    3
    """
    layer = _layer(layer)
    idx, bs, txt, plain = _unit_index(n, "channel")
    desc = f"channel({layer}, {txt})"

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        _check_channel(t, idx, layer)
        _check_batch(t, bs, desc)
        sel = _select_channel(t, idx)
        return sel.reshape(sel.shape[0], -1).mean(dim=1)

    return Objective(fn, desc, [layer], bs, (layer, plain))


def neuron(layer: str, n: Units, position: Sequence[int] | None = None) -> Objective:
    """Activation of channel ``n`` of ``layer`` at one spatial position.

    Parameters
    ----------
    layer : str
        Module name.
    n : int or list of int
        Channel(s), as in :func:`channel`.
    position : sequence of int, optional
        Spatial index ``(y, x)`` or ``(z, y, x)``; the centre of the map when omitted.

    Examples
    --------
    >>> neuron("conv2", 3, position=(4, 4))
    neuron(conv2, 3, at=(4, 4))
    """
    layer = _layer(layer)
    idx, bs, txt, plain = _unit_index(n, "neuron")
    pos = tuple(int(p) for p in position) if position is not None else None
    desc = f"neuron({layer}, {txt}" + (f", at={pos})" if pos is not None else ")")

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        _check_channel(t, idx, layer)
        _check_batch(t, bs, desc)
        sel = _select_channel(t, idx)
        spatial = sel.shape[1:]
        if not spatial:
            return sel
        where: tuple[int, ...] = pos if pos is not None else tuple(int(s) // 2 for s in spatial)
        if len(where) != len(spatial) or any(
            not 0 <= w < s for w, s in zip(where, spatial, strict=True)
        ):
            raise ValueError(
                f"position {where} is not inside the spatial shape {tuple(spatial)} of {layer!r}"
            )
        at: tuple[slice | int, ...] = (slice(None), *where)
        return sel[at]

    return Objective(fn, desc, [layer], bs, (layer, plain))


def deepdream(layer: str) -> Objective:
    """Whole-layer objective (DeepDream): mean squared activation of ``layer``.

    Examples
    --------
    >>> deepdream("conv3")
    deepdream(conv3)
    """
    layer = _layer(layer)

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        return t.reshape(t.shape[0], -1).pow(2).mean(dim=1)

    return Objective(fn, f"deepdream({layer})", [layer])


def class_logit(n: Units, layer: str = OUTPUT) -> Objective:
    """Logit of class ``n`` (pre-softmax) from the model output or from ``layer``.

    Examples
    --------
    >>> class_logit([0, 1])
    class_logit(output, [0, 1])
    """
    layer = _layer(layer)
    idx, bs, txt, plain = _unit_index(n, "class")
    desc = f"class_logit({layer}, {txt})"

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        _check_channel(t, idx, layer)
        _check_batch(t, bs, desc)
        sel = _select_channel(t, idx)
        return sel.reshape(sel.shape[0], -1).mean(dim=1)

    return Objective(fn, desc, [layer], bs, (layer, plain))


def direction(layer: str, vector: Any, name: str | None = None) -> Objective:
    """Projection of ``layer``'s activation onto a direction in its channel space.

    The score is the dot product of the unit-normalised ``vector`` with the channel vector at
    each spatial position, averaged over positions (a probe's weight vector, a PCA component,
    the difference of two class means ...).

    Parameters
    ----------
    layer : str
        Module name.
    vector : array-like, shape (C,) or (B, C)
        One direction for all batch elements, or one per element.
    name : str, optional
        Short name for the description (default ``"v"``).

    Examples
    --------
    >>> direction("conv3", [1.0, 0.0, -1.0], name="gm-wm")
    direction(conv3, gm-wm)
    """
    layer = _layer(layer)
    v = torch.as_tensor(vector, dtype=torch.float32)
    if v.ndim not in (1, 2) or v.shape[-1] == 0:
        raise ValueError(f"direction vector must have shape (C,) or (B, C), got {tuple(v.shape)}")
    norms = v.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("direction vector must be non-zero")
    bs = v.shape[0] if v.ndim == 2 else None
    unit = _PerDevice(v / norms)
    desc = f"direction({layer}, {name or 'v'})"

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        if t.ndim < 2 or t.shape[1] != unit.t.shape[-1]:
            raise ValueError(
                f"direction has {unit.t.shape[-1]} components but {layer!r} has shape {tuple(t.shape)}"
            )
        _check_batch(t, bs, desc)
        w = unit.on(t.device, t.dtype)
        w = w.reshape((-1, w.shape[-1]) + (1,) * (t.ndim - 2))
        proj = (t * w).sum(dim=1)
        return proj.reshape(t.shape[0], -1).mean(dim=1)

    return Objective(fn, desc, [layer], bs)


def diversity(layer: str) -> Objective:
    """Batch diversity: minus each element's mean cosine similarity of Gram matrices to the others.

    Add it with a small weight to a per-element objective to get different images for the
    same unit: ``channel("conv2", 3) + 0.1 * diversity("conv2")`` with a batch of several.

    Examples
    --------
    >>> channel("conv2", 3) + 0.1 * diversity("conv2")
    channel(conv2, 3) + 0.1 * diversity(conv2)
    """
    layer = _layer(layer)

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t = _get(acts, layer)
        b, c = t.shape[0], t.shape[1]
        if b < 2:
            raise ValueError("diversity needs a batch of at least 2 elements")
        flat = t.reshape(b, c, -1)
        gram = torch.bmm(flat, flat.transpose(1, 2)).reshape(b, -1)
        gram = F.normalize(gram, dim=1)
        sim = gram @ gram.T
        off = sim.sum(dim=1) - sim.diagonal()
        return -off / (b - 1)

    return Objective(fn, f"diversity({layer})", [layer])


# -- regularisers (penalties on the input: subtract them) ---------------------------------------
def l2(weight_center: float = 0.0) -> Objective:
    """Mean squared input value (distance to ``weight_center``); a penalty, so subtract it.

    Examples
    --------
    >>> channel("conv2", 3) - 1e-3 * l2()
    channel(conv2, 3) - 0.001 * l2()
    """
    c = float(weight_center)

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = _get(acts, INPUT)
        return (x - c).pow(2).reshape(x.shape[0], -1).mean(dim=1)

    return Objective(fn, "l2()" if c == 0 else f"l2(center={_fmt(c)})", [INPUT])


def total_variation() -> Objective:
    """Mean absolute difference of neighbouring input values along every spatial axis (2D or 3D).

    A penalty: subtract it. Works for ``(B, C, H, W)`` and ``(B, C, D, H, W)``.

    Examples
    --------
    >>> total_variation()
    total_variation()
    """

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = _get(acts, INPUT)
        total = x.new_zeros(x.shape[0])
        for axis in range(2, x.ndim):
            d = torch.diff(x, dim=axis).abs()
            total = total + d.reshape(x.shape[0], -1).mean(dim=1)
        return total

    return Objective(fn, "total_variation()", [INPUT])


def blur(sigma: float = 1.0) -> Objective:
    """Squared distance of the input to a (detached) Gaussian-blurred copy of itself.

    A penalty on high frequencies: subtract it. 2D and 3D.

    Examples
    --------
    >>> blur(0.5)
    blur(sigma=0.5)
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = _get(acts, INPUT)
        with torch.no_grad():
            smooth = gaussian_blur(x, sigma)
        return (x - smooth).pow(2).reshape(x.shape[0], -1).mean(dim=1)

    return Objective(fn, f"blur(sigma={_fmt(sigma)})", [INPUT])


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the spatial axes of ``(B, C, *S)`` (replicate padding)."""
    radius = max(1, int(round(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    nd = x.ndim - 2
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    c = x.shape[1]
    out = x
    for axis in range(nd):
        shape = [1] * nd
        shape[axis] = k.numel()
        weight = k.reshape(1, 1, *shape).repeat(c, 1, *([1] * nd))
        pad = [0, 0] * nd
        # F.pad lists the last axis first.
        pad[2 * (nd - 1 - axis)] = radius
        pad[2 * (nd - 1 - axis) + 1] = radius
        out = conv(F.pad(out, pad, mode="replicate"), weight, groups=c)
    return out
