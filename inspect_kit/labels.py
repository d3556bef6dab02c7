"""Are a data set's labels the model's classes? Accuracy only means something when they are.

An ImageNet model run on four folder classes predicts ImageNet classes (0-999), while the
labels number the folders (0-3): comparing the two reads "accuracy 0.000, every sample
misclassified", which is false. :func:`label_class_mismatch` says why the comparison is
meaningless, or returns None when nothing contradicts it.

A leaf below every layer (numpy only): the store's reader, the embeddings, the figures and
the report all use the same check and the same sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NOT_CLASSES", "label_class_mismatch"]

#: What a figure or report says in place of an accuracy it must not show.
NOT_CLASSES = "labels are not the model's classes: accuracy not shown"


def label_class_mismatch(
    labels: Any,
    predictions: Any,
    *,
    n_outputs: int | None = None,
    class_names: Sequence[str] | None = None,
    model_class_names: Sequence[str] | None = None,
) -> str | None:
    """Why ``labels`` cannot be compared with the model's ``predictions``, or None.

    The labels are not the model's classes when any of these holds:

    - labels that are not integers (class names) against integer predictions;
    - label values outside ``[0, n_outputs)`` (``n_outputs``: the logits' width);
    - more distinct labels than the model has outputs;
    - the data's ``class_names`` number differently from the model's outputs (four folders
      against 1,000 logits), or differ from ``model_class_names``;
    - most predictions (over half) are values that no label takes: the model answers in
      classes the data set does not have.

    Parameters
    ----------
    labels, predictions : array-like of shape (N,)
    n_outputs : int, optional
        Number of the model's classes (the width of its logits).
    class_names : sequence of str, optional
        Names of the data's label values (e.g. the folder names).
    model_class_names : sequence of str, optional
        Names of the model's classes, when known.

    Returns
    -------
    str or None
        The reason, with the numbers that show it; None when the labels may be the classes.

    Examples
    --------
    >>> import numpy as np
    >>> label_class_mismatch(np.array([0, 1, 2, 3]), np.array([281, 285, 2, 409]),
    ...                      n_outputs=1000, class_names=["a", "b", "c", "d"])
    'the data has 4 classes (a, b, c, d) but the model has 1000 outputs'
    >>> label_class_mismatch(np.array([0, 1, 1]), np.array([0, 1, 0]), n_outputs=2) is None
    True
    """
    if labels is None or predictions is None:
        return None
    y = np.asarray(labels)
    p = np.asarray(predictions)
    if len(y) == 0:
        return None
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub" and p.dtype.kind in "iub":
        what = "continuous" if y.dtype.kind == "f" else "names"
        return (
            f"the labels are {what} (e.g. {y.tolist()[0]!r}) but the model predicts class numbers"
        )
    values = np.unique(y)
    if n_outputs is not None and y.dtype.kind in "iub":
        n_outputs = int(n_outputs)
        outside = values[(values < 0) | (values >= n_outputs)]
        if outside.size:
            return (
                f"label values {outside[:5].tolist()} lie outside the model's {n_outputs} "
                f"classes [0, {n_outputs})"
            )
        if len(values) > n_outputs:
            return f"there are {len(values)} distinct labels but the model has {n_outputs} outputs"
        if class_names is not None and len(class_names) != n_outputs:
            names = ", ".join(map(str, list(class_names)[:6]))
            more = ", ..." if len(class_names) > 6 else ""
            return (
                f"the data has {len(class_names)} classes ({names}{more}) but the model has "
                f"{n_outputs} outputs"
            )
    if class_names is not None and model_class_names is not None:
        ours, theirs = [str(c) for c in class_names], [str(c) for c in model_class_names]
        if ours != theirs[: len(ours)]:
            return f"the data's class names {ours[:4]} differ from the model's {theirs[:4]}"
    foreign = ~np.isin(p, values)
    if foreign.mean() > 0.5:
        return (
            f"{foreign.mean():.0%} of the predictions ({int(foreign.sum())} of {len(p)}) are "
            f"classes that no label takes (labels {values[:6].tolist()}"
            f"{', ...' if len(values) > 6 else ''})"
        )
    return None
