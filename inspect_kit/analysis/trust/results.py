"""The common shape of trust results: rows of a methods x metrics table.

Every result dataclass of :mod:`inspect_kit.analysis.trust` has ``to_records()`` (a list of
plain dicts, always available) and ``to_frame()`` (a :class:`pandas.DataFrame` of the same
rows when pandas is installed, else the records), so the pieces can be concatenated into the
table that ``ik.evaluate_attributions`` returns.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TrustResult", "records_to_frame"]


def records_to_frame(records: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``records`` if pandas is installed, else the records themselves.

    Examples
    --------
    >>> records_to_frame([{"method": "gradient", "pointing_game": 0.9}])  # doctest: +SKIP
         method  pointing_game
    0  gradient            0.9
    """
    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        return [dict(r) for r in records]
    return pd.DataFrame.from_records(records)


class TrustResult:
    """Mixin: ``to_frame()`` from ``to_records()``."""

    def to_records(self) -> list[dict[str, Any]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_frame(self) -> Any:
        """This result's rows as a pandas DataFrame (pandas installed) or a list of dicts."""
        return records_to_frame(self.to_records())
