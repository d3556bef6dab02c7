"""Tolerances that follow the dtype compared and the size of the computation.

A float32 result computed two ways (a hook and a direct call, a blocked and a plain sum, a
GEMM and an einsum) agrees to a few float32 ulps *of the magnitudes involved*, not of each
element: an element that cancels to almost zero carries the absolute error of its large
terms. So the tolerance is ``safety * eps(dtype) * sqrt(terms)`` both relative to each element
and relative to the largest magnitude of the reference, where ``terms`` is how many values
each result accumulates (a dot product's length, a convolution's fan-in) and ``eps`` is that
of the lower-precision side. float64 tolerances on float32 values are the mistake this avoids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-07
EPS64 = float(np.finfo(np.float64).eps)  # 2.22e-16


def _as_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def eps_of(*arrays: Any) -> float:
    """Machine epsilon of the least precise floating dtype among ``arrays`` (float64 if none)."""
    eps = EPS64
    for a in arrays:
        dt = _as_numpy(a).dtype
        if np.issubdtype(dt, np.floating):
            eps = max(eps, float(np.finfo(dt).eps))
    return eps


def tolerance(actual: Any, desired: Any, *, terms: int = 1, safety: float = 16.0) -> dict:
    """``rtol``/``atol`` for comparing ``actual`` with ``desired`` at their precision.

    Examples
    --------
    >>> tolerance(np.ones(3, np.float32), np.ones(3))["rtol"] == 16 * EPS32
    True
    """
    rel = safety * eps_of(actual, desired) * float(np.sqrt(max(int(terms), 1)))
    scale = float(np.max(np.abs(_as_numpy(desired)), initial=0.0))
    return {"rtol": rel, "atol": rel * scale}


def assert_close(
    actual: Any, desired: Any, *, terms: int = 1, safety: float = 16.0, err_msg: str = ""
) -> None:
    """``assert_allclose`` with the tolerance of :func:`tolerance`."""
    a, d = _as_numpy(actual), _as_numpy(desired)
    np.testing.assert_allclose(a, d, **tolerance(a, d, terms=terms, safety=safety), err_msg=err_msg)
