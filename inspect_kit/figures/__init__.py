"""Plotly figure builders: each takes analysis results and returns a ``go.Figure``.

Figures never compute beyond layout; they display inline in Jupyter, save as self-contained
HTML (``save_html``/``to_html``, hover thumbnails included) and export to PNG/SVG/PDF for
papers (``export_figure``/``FigureExporter`` with ``publication_layout``). The builders'
parameters are typed by the Protocols of :mod:`inspect_kit.figures.protocols`
(``EmbeddingLike``, ``SimilarityLike`` ...), re-exported here for annotating code of one's own.
"""

from .embedding import plot_embedding, plot_embedding_grid
from .explorer import show_figure
from .export import ExportError, FigureExporter, export_figure, find_browser
from .featurevis import (
    plot_kernels,
    plot_randomization,
    plot_trajectories,
    plot_unit_gallery,
    plot_volume,
)
from .html import ThumbnailFigure, save_html, to_html
from .latent import (
    plot_interpolation,
    plot_latent_correlations,
    plot_latent_scatter,
    plot_reconstruction_errors,
    plot_traversal,
)
from .probes import plot_probe_profile
from .protocols import (
    EmbeddingLike,
    ExemplarsLike,
    FeatureVisLike,
    InterpolationLike,
    KernelsLike,
    LatentCorrelationsLike,
    ProbeProfileLike,
    ProbeResultLike,
    RandomizationLike,
    ReconstructionErrorsLike,
    SimilarityLike,
    TraversalLike,
)
from .publication import column_width, is_grayscale_safe, publication_layout
from .similarity import plot_similarity

__all__ = [
    "EmbeddingLike",
    "ExemplarsLike",
    "ExportError",
    "FeatureVisLike",
    "FigureExporter",
    "InterpolationLike",
    "KernelsLike",
    "LatentCorrelationsLike",
    "ProbeProfileLike",
    "ProbeResultLike",
    "RandomizationLike",
    "ReconstructionErrorsLike",
    "SimilarityLike",
    "ThumbnailFigure",
    "TraversalLike",
    "column_width",
    "export_figure",
    "find_browser",
    "is_grayscale_safe",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_interpolation",
    "plot_kernels",
    "plot_latent_correlations",
    "plot_latent_scatter",
    "plot_probe_profile",
    "plot_randomization",
    "plot_reconstruction_errors",
    "plot_similarity",
    "plot_trajectories",
    "plot_traversal",
    "plot_unit_gallery",
    "plot_volume",
    "publication_layout",
    "save_html",
    "show_figure",
    "to_html",
]
