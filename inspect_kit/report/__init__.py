"""The self-contained HTML report: the document and its sections, nothing else.

The workflows that fill it (``inspect-kit report`` and ``demo``) are in
:mod:`inspect_kit.workflows`.
"""

from .document import Report, Section

__all__ = ["Report", "Section"]
