"""Array helpers every layer shares, for numpy arrays and torch tensors alike.

:func:`spatial_pool` is the one global pooling of the package: capture's ``reduce="mean"``,
the embeddings' and probes' feature reduction, dataset exemplars and unit selection all call
it, so "a unit's activation" means the same number everywhere. It imports neither numpy's
nor torch's heavy parts beyond what the input already brought.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: how a spatial map becomes one number per channel
POOLINGS = ("mean", "max")


def spatial_pool(x: Any, how: str = "mean", *, dtype: Any = None) -> Any:
    """Pool every axis after the channel axis: ``(N, C, *S)`` to ``(N, C)``.

    Global average (or maximum) pooling of image maps ``(N, C, H, W)`` and volume maps
    ``(N, C, D, H, W)``. Inputs with two axes or fewer are already one value per channel and
    come back unchanged.

    Parameters
    ----------
    x : ndarray or torch.Tensor
        Activations; a tensor stays on its device (and differentiable), an array stays numpy.
    how : {'mean', 'max'}
    dtype : numpy dtype, optional
        For arrays: accumulate (and return) in this dtype, e.g. ``np.float64`` for exact means
        of float16 activations. Tensors keep their dtype.

    Returns
    -------
    ndarray or torch.Tensor, (N, C)

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2)
    >>> spatial_pool(x).tolist()
    [[1.5, 5.5], [9.5, 13.5]]
    >>> spatial_pool(x, "max").tolist()
    [[3.0, 7.0], [11.0, 15.0]]
    >>> import torch
    >>> spatial_pool(torch.ones(2, 3, 4, 4, 4)).shape
    torch.Size([2, 3])
    """
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}; use one of {POOLINGS}")
    if x.ndim <= 2:
        return x if dtype is None or not isinstance(x, np.ndarray) else x.astype(dtype)
    if not isinstance(x, np.ndarray) and hasattr(x, "amax"):  # a torch tensor
        dims = tuple(range(2, x.ndim))
        return x.mean(dim=dims) if how == "mean" else x.amax(dim=dims)
    flat = np.asarray(x).reshape(x.shape[0], x.shape[1], -1)
    if how == "mean":
        return flat.mean(axis=2, dtype=dtype)
    out = flat.max(axis=2)
    return out if dtype is None else out.astype(dtype)
