"""What the figure builders read from the results they draw, as structural types.

Figures never import analysis code, so their signatures name :class:`typing.Protocol`
classes instead: each lists the attributes a builder reads. The analyses' results satisfy
them (:class:`~inspect_kit.analysis.embedding.Embedding` is an :class:`EmbeddingLike`,
:class:`~inspect_kit.analysis.probes.ProbeProfile` a :class:`ProbeProfileLike` ...), and so
does any object of a user's with the same attributes; a type checker tells which is missing.

Examples
--------
>>> from inspect_kit.analysis.similarity import Similarity
>>> sim: SimilarityLike = Similarity(np.eye(2), ["a", "b"], ["a", "b"], 10, "cka")
>>> sim.layers
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "EmbeddingLike",
    "ExemplarsLike",
    "FeatureVisLike",
    "InterpolationLike",
    "KernelsLike",
    "LatentCorrelationsLike",
    "ProbeProfileLike",
    "ProbeResultLike",
    "RandomizationLike",
    "ReconstructionErrorsLike",
    "SimilarityLike",
    "TraversalLike",
]

# Members are read-only properties: a dataclass field of the same name (or of a narrower
# type: list for Sequence, dict for Mapping) satisfies them.


class EmbeddingLike(Protocol):
    """A 2D/3D map of samples (:class:`~inspect_kit.analysis.embedding.Embedding`)."""

    @property
    def coords(self) -> np.ndarray: ...
    @property
    def method(self) -> str: ...
    @property
    def layer(self) -> str | None: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def metrics(self) -> Mapping[str, Any]: ...
    @property
    def index(self) -> np.ndarray | None: ...
    @property
    def labels(self) -> np.ndarray | None: ...
    @property
    def predictions(self) -> np.ndarray | None: ...
    @property
    def metadata(self) -> Mapping[str, np.ndarray]: ...
    @property
    def thumbnails(self) -> np.ndarray | None: ...
    @property
    def correct(self) -> np.ndarray | None: ...
    @property
    def title(self) -> str: ...
    @property
    def n_components(self) -> int: ...
    def __len__(self) -> int: ...


class ProbeResultLike(Protocol):
    """One layer's probe (:class:`~inspect_kit.analysis.probes.ProbeResult`)."""

    @property
    def cv(self) -> int: ...
    @property
    def chance_method(self) -> str: ...
    @property
    def fold_scores(self) -> np.ndarray: ...


class ProbeProfileLike(Protocol):
    """Probe scores across layers (:class:`~inspect_kit.analysis.probes.ProbeProfile`)."""

    @property
    def target(self) -> str: ...
    @property
    def reduce(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def layers(self) -> Sequence[str]: ...
    @property
    def results(self) -> Sequence[ProbeResultLike]: ...
    @property
    def scores(self) -> np.ndarray: ...
    @property
    def score_std(self) -> np.ndarray: ...
    @property
    def chance(self) -> np.ndarray: ...


class SimilarityLike(Protocol):
    """A layer-by-layer similarity matrix (:class:`~inspect_kit.analysis.similarity.Similarity`)."""

    @property
    def matrix(self) -> np.ndarray: ...
    @property
    def layers(self) -> Sequence[str]: ...
    @property
    def other_layers(self) -> Sequence[str]: ...
    @property
    def n_samples(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def store(self) -> str | None: ...
    @property
    def other(self) -> str | None: ...


class FeatureVisLike(Protocol):
    """Optimised inputs (:class:`~inspect_kit.analysis.featurevis.render.FeatureVisResult`)."""

    @property
    def images(self) -> np.ndarray: ...
    @property
    def trajectory(self) -> np.ndarray: ...
    @property
    def final_activations(self) -> np.ndarray: ...
    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def units(self) -> Sequence[int] | None: ...
    @property
    def layer(self) -> str | None: ...
    @property
    def objective(self) -> str: ...
    @property
    def value_range(self) -> tuple[float, float] | None: ...


class ExemplarsLike(Protocol):
    """Top dataset samples per unit (:class:`~inspect_kit.analysis.featurevis.exemplars.Exemplars`)."""

    @property
    def layer(self) -> str: ...
    @property
    def units(self) -> np.ndarray: ...
    @property
    def index(self) -> np.ndarray: ...
    @property
    def activations(self) -> np.ndarray: ...
    @property
    def thumbnails(self) -> np.ndarray | None: ...
    @property
    def labels(self) -> np.ndarray | None: ...
    @property
    def reduce(self) -> str: ...


class RandomizationLike(Protocol):
    """A cascading-randomisation check
    (:class:`~inspect_kit.analysis.featurevis.sanity.RandomizationResult`)."""

    @property
    def stages(self) -> Sequence[str]: ...
    @property
    def scores(self) -> np.ndarray: ...
    @property
    def mean_scores(self) -> np.ndarray: ...
    @property
    def reference(self) -> np.ndarray | None: ...
    @property
    def images(self) -> np.ndarray: ...
    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def metric(self) -> str: ...
    @property
    def objective(self) -> str: ...
    @property
    def value_range(self) -> tuple[float, float] | None: ...


class KernelsLike(Protocol):
    """Convolution weights (:class:`~inspect_kit.analysis.weights.Kernels`)."""

    @property
    def layer(self) -> str: ...
    @property
    def weights(self) -> np.ndarray: ...
    @property
    def dim(self) -> int: ...
    def orthogonal_slices(self) -> dict[str, np.ndarray]: ...


class TraversalLike(Protocol):
    """Decoded steps along latent dimensions (:class:`~inspect_kit.analysis.latent.Traversal`)."""

    @property
    def images(self) -> np.ndarray: ...
    @property
    def values(self) -> np.ndarray: ...
    @property
    def dims(self) -> Sequence[int]: ...
    @property
    def direction(self) -> str: ...
    @property
    def span(self) -> Any: ...


class InterpolationLike(Protocol):
    """Decoded path between two codes (:class:`~inspect_kit.analysis.latent.Interpolation`)."""

    @property
    def images(self) -> np.ndarray: ...
    @property
    def t(self) -> np.ndarray: ...
    @property
    def mode(self) -> str: ...


class ReconstructionErrorsLike(Protocol):
    """A fitted :class:`~inspect_kit.analysis.latent.LatentProbe`'s errors (its worst inputs
    and reconstructions, ``worst_inputs_`` ..., are read when present)."""

    @property
    def reconstruction_error_(self) -> np.ndarray: ...


class LatentCorrelationsLike(Protocol):
    """A fitted :class:`~inspect_kit.analysis.latent.LatentProbe`'s code-target relations."""

    @property
    def correlations_(self) -> Mapping[str, np.ndarray]: ...
    @property
    def correlation_kinds_(self) -> Mapping[str, str]: ...
