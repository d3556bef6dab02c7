"""Plotly figure builders: each takes analysis results and returns a ``go.Figure``."""
