"""``random_state``: the one name for randomness, with scikit-learn's meaning.

Every analysis that draws random numbers takes ``random_state``: an int (reproducible), a
:class:`numpy.random.Generator` (draws the seed from it, so a sequence of calls sharing one
generator is reproducible as a whole), or None (fresh entropy). The int actually used is
recorded with the result, so even a None run can be repeated.
"""

from __future__ import annotations

from typing import Union

import numpy as np

#: what ``random_state=`` accepts
RandomState = Union[int, np.integer, np.random.Generator, None]  # noqa: UP007 (a runtime alias)

_SEED_SPAN = 2**32


def resolve_seed(random_state: RandomState) -> int:
    """The integer seed a ``random_state`` stands for (drawn when it is a Generator or None).

    Examples
    --------
    >>> resolve_seed(7)
    7
    >>> resolve_seed(np.random.default_rng(0)) == resolve_seed(np.random.default_rng(0))
    True
    """
    if random_state is None:
        return int(np.random.default_rng().integers(_SEED_SPAN))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(_SEED_SPAN))
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise TypeError(
            "random_state must be an int, a numpy.random.Generator or None, got "
            f"{type(random_state).__name__}"
        )
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}")
    return int(random_state)
