"""The self-contained HTML report and the pipeline that fills it (``inspect-kit demo``/``report``)."""

from .document import Report, Section

__all__ = ["Report", "Section"]
