"""The layer-spec grammar, one for capture, the store and every analysis (no torch needed).

A layer spec names one output of one call of one module::

    module[:call][[output]...][#unit]

``module``
    A dotted name of ``model.named_modules()`` (``"layer4.1.conv2"``), or a glob over them:
    ``*`` and ``?`` match within one dotted component (``"stages.*"`` is the direct children
    of ``stages``), ``**`` crosses dots (``"stages.**"`` is every descendant, ``"**.relu"``
    every module named ``relu`` at any depth).
``:call``
    The module's ``call``-th call in one forward pass, counted from 0: ``"relu:1"`` is the
    second call of ``relu`` (a resnet block calls its ``relu`` twice). Without it, capture
    keeps every call (``relu``, ``relu:1``, ...) and an analysis reads the first.
``[output]``
    One output of a module that returns a tuple, list or dict: ``"lstm[0]"``,
    ``"head[logits]"``, nested ``"block[1][0]"`` -- the names capture stores them under.
``#unit``
    One unit (channel, neuron) of that output: ``"layer4#3"``, ``"relu:1#3"``. Only
    analyses that look at units read it (feature visualization); a unit is never written
    with a colon, which always means a call.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["LayerSpec", "glob_regex", "is_glob", "parse_layer_spec"]

_SPEC = re.compile(
    r"^(?P<module>[^:\[\]#]+)"
    r"(?::(?P<call>\d+))?"
    r"(?P<output>(?:\[[^\[\]]+\])*)"
    r"(?:#(?P<unit>\d+))?$"
)

GRAMMAR = "module[:call][[output]][#unit], e.g. 'layer4.1.relu:1', 'lstm[0]', 'layer4#3'"


class LayerSpec(NamedTuple):
    """A parsed layer spec: ``module``, ``call`` (None: every call / the first),
    ``output`` (the ``[...]`` suffix, ``""`` for the whole output) and ``unit``."""

    module: str
    call: int | None = None
    output: str = ""
    unit: int | None = None

    @property
    def key(self) -> str:
        """The spec without its unit: the name an output is stored and looked up under."""
        return self.module + ("" if self.call is None else f":{self.call}") + self.output

    def __str__(self) -> str:
        return self.key + ("" if self.unit is None else f"#{self.unit}")


def parse_layer_spec(spec: str) -> LayerSpec:
    """Split a layer spec into its parts.

    Raises
    ------
    ValueError
        For a string that does not follow the grammar, saying what does.

    Examples
    --------
    >>> parse_layer_spec("block.relu:1")
    LayerSpec(module='block.relu', call=1, output='', unit=None)
    >>> parse_layer_spec("lstm[0]")
    LayerSpec(module='lstm', call=None, output='[0]', unit=None)
    >>> parse_layer_spec("layer4#3").unit
    3
    """
    if not isinstance(spec, str):
        raise TypeError(f"a layer spec is a string, got {type(spec).__name__}: {spec!r}")
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"{spec!r} is not a layer spec; the grammar is {GRAMMAR}")
    call, unit = m.group("call"), m.group("unit")
    return LayerSpec(
        m.group("module"),
        None if call is None else int(call),
        m.group("output"),
        None if unit is None else int(unit),
    )


def is_glob(name: str) -> bool:
    """True when a module name is a pattern (``*``, ``?``)."""
    return "*" in name or "?" in name


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex for a module-name glob that respects the dotted structure.

    ``*`` and ``?`` stay within one dotted component; ``**`` crosses dots; ``**.`` at the
    start (or ``.**.`` inside) also matches zero components.

    Examples
    --------
    >>> bool(glob_regex("stages.*").fullmatch("stages.0")), bool(glob_regex("stages.*").fullmatch("stages.0.conv"))
    (True, False)
    >>> bool(glob_regex("**.relu").fullmatch("relu")), bool(glob_regex("stages.**").fullmatch("stages.0.conv"))
    (True, True)
    """
    out, i, n = [], 0, len(pattern)
    while i < n:
        if pattern.startswith("**", i):
            starts_component = i == 0 or pattern[i - 1] == "."
            if starts_component and pattern.startswith(".", i + 2):
                out.append(r"(?:[^.]+\.)*")  # "**." : any number of whole components
                i += 3
            else:
                out.append(".*")
                i += 2
            continue
        c = pattern[i]
        out.append("[^.]*" if c == "*" else "[^.]" if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out))
