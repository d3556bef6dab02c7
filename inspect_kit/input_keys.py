"""Which key holds the inputs and which the labels: the one rule for dict batches and array files.

A dict batch (``{"img": x, "label": y}``) given to capture, autoencoder training or feature
visualization, and an ``.npz`` file read as data, name their inputs and labels by the first
key of :data:`X_KEYS` / :data:`Y_KEYS` they hold. A leaf below every layer.

Examples
--------
>>> first_key({"label": 0, "img": 1}, X_KEYS), first_key(["y", "x"], Y_KEYS)
('img', 'y')
"""

from __future__ import annotations

from collections.abc import Collection

#: keys that hold the inputs, in order of preference
X_KEYS = ("x", "X", "input", "inputs", "image", "images", "img", "volume", "volumes", "data")
#: keys that hold the labels, in order of preference
Y_KEYS = ("y", "Y", "label", "labels", "target", "targets")


def first_key(present: Collection[str], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` that is in ``present`` (a dict, or a list of names), or None.

    Examples
    --------
    >>> first_key(["images", "x"], X_KEYS)
    'x'
    >>> first_key(["pixels"], X_KEYS) is None
    True
    """
    return next((k for k in keys if k in present), None)
