"""The options a workflow takes, as small frozen dataclasses.

The command line parses its arguments into these objects and hands them to a workflow; the
same objects drive the workflows from Python. Each groups one concern (where the model comes
from, how data are read, what capture stores, how layers are embedded, how units are
visualised, how a run behaves), so no function relays a dozen keyword arguments.

Examples
--------
>>> DataOptions(size=(64, 64), channels=1).as_record()["size"]
[64, 64]
>>> ReportOptions(methods=("pca",)).embedding_options().methods
('pca',)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from inspect_kit.data.formats import UserData

__all__ = [
    "CaptureOptions",
    "DataOptions",
    "EmbeddingOptions",
    "FeatureVisOptions",
    "LatentOptions",
    "ModelSource",
    "ReportOptions",
    "RunOptions",
]


def _default_methods() -> tuple[str, ...]:
    from inspect_kit.analysis.embedding.registry import default_methods

    return tuple(default_methods())


def _tuple(values: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return tuple(values) if values else None


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves: random_state, device, CPU threads, progress bars.

    Parameters
    ----------
    random_state : int
        ``random_state`` of every analysis and render.
    device : str, optional
        Torch device (default: where the model is).
    threads : int, optional
        CPU threads for torch and BLAS during the run (None leaves the settings alone).
    progress : bool
        Progress bars and step messages.
    """

    random_state: int = 0
    device: str | None = None
    threads: int | None = None
    progress: bool = True


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``package.module:factory`` or ``file.py:factory``.

    Parameters
    ----------
    spec : str
        The factory (``torchvision.models:resnet18``, ``inspect_kit.models:SmallCNN``,
        ``path/to/net.py:Net``) or a saved model file.
    weights : path, optional
        A ``state_dict`` file.
    model_args : mapping, optional
        Keyword arguments of the factory.

    Examples
    --------
    >>> ModelSource("inspect_kit.models:SmallCNN", model_args={"n_classes": 3}).load()
    ... # doctest: +SKIP
    """

    spec: str
    weights: str | Path | None = None
    model_args: Mapping[str, Any] | None = None

    def load(self, device: Any = None) -> nn.Module:
        """The model, in eval mode, on ``device``."""
        from inspect_kit.models.registry import load_model

        return load_model(
            self.spec, weights=self.weights, model_args=self.model_args, device=device
        )

    def as_record(self) -> dict[str, Any]:
        """How a store records it (``/inputs``), with the weights file as an absolute path."""
        return {
            "model": self.spec,
            "weights": str(Path(self.weights).resolve()) if self.weights else None,
            "model_args": dict(self.model_args or {}),
        }


@dataclass(frozen=True)
class DataOptions:
    """How users' files are read (:func:`~inspect_kit.data.formats.load_data`).

    Parameters
    ----------
    labels : str, optional
        CSV of ``filename,label`` rows, or ``file.npz:key`` / ``file.h5:dataset``.
    size : tuple of int, optional
        Resize samples to H W (or D H W).
    channels : {1, 3}, optional
        Convert images to grayscale or RGB.
    window : (float, float), optional
        Clip intensities to a window and scale it to [0, 1] (e.g. HU).
    normalize : str or (mean, std), optional
        ``"imagenet"``, ``"zscore"``, ``"none"`` or per-channel mean and std.
    orientation, spacing, as_slices, sequences, allow_irregular, skip_unreadable,
    keep_identifiers, id_salt
        Medical volumes (NIfTI, DICOM): as in :func:`~inspect_kit.data.formats.load_data`.
        ``id_salt`` is never recorded in a store.
    """

    labels: str | None = None
    size: tuple[int, ...] | None = None
    channels: int | None = None
    window: tuple[float, float] | None = None
    normalize: Any = None
    orientation: str | None = "RAS"
    spacing: tuple[float, ...] | None = None
    as_slices: bool = False
    sequences: tuple[str, ...] | None = None
    allow_irregular: bool = False
    skip_unreadable: bool = False
    keep_identifiers: bool = False
    id_salt: str | None = None

    #: the load_data keywords recorded in a store (id_salt, a secret, is not)
    RECORDED = (
        "labels",
        "size",
        "channels",
        "window",
        "normalize",
        "orientation",
        "spacing",
        "as_slices",
        "sequences",
        "allow_irregular",
        "skip_unreadable",
        "keep_identifiers",
    )

    def __post_init__(self) -> None:
        for name in ("size", "window", "spacing", "sequences"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))

    def load(self, source: str | Path) -> UserData:
        """Read ``source`` with these options."""
        from inspect_kit.data.formats import load_data

        return load_data(source, **{k: getattr(self, k) for k in (*self.RECORDED, "id_salt")})

    def as_record(self) -> dict[str, Any]:
        """JSON-friendly form, as recorded in a store's ``/inputs`` (without ``id_salt``)."""
        out = {k: getattr(self, k) for k in self.RECORDED}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DataOptions:
        """The options a store's ``/inputs`` record holds (unknown keys ignored)."""
        return cls(**{k: v for k, v in record.items() if k in cls.RECORDED})


@dataclass(frozen=True)
class CaptureOptions:
    """What :func:`~inspect_kit.capture` stores.

    Parameters
    ----------
    layers : tuple of str, optional
        Layer specs (globs allowed); default: every convolution, activation and linear leaf
        (top-level blocks for big models).
    reduce : {"mean", "max", "flatten"} or None
        Pool each channel's map over space, flatten it, or keep full maps (None).
    dtype : str, optional
        Storage dtype (default: as computed).
    batch_size : int, optional
    thumbnails : {"slice", "mip"} or None
        Input previews stored for hover.
    overwrite, resume : bool
        Replace an existing store, or continue an unfinished capture.
    """

    layers: tuple[str, ...] | None = None
    reduce: str | None = "mean"
    dtype: str | None = None
    batch_size: int | None = 64
    thumbnails: str | None = "slice"
    overwrite: bool = False
    resume: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", _tuple(self.layers))


@dataclass(frozen=True)
class EmbeddingOptions:
    """How stored layers are embedded (:func:`~inspect_kit.embed`).

    Parameters
    ----------
    methods : tuple of str
        Embedding methods, in the order they are shown.
    n_components : {2, 3}
    refresh : bool
        Recompute cached embeddings.
    method_params : mapping, optional
        Parameters for the methods that accept them (``{"perplexity": 10}``).
    n_jobs : int
        Threads for t-SNE and UMAP: one by default, since on a small shared machine more
        threads than free cores made openTSNE several times slower, not faster.
    """

    methods: tuple[str, ...] = field(default_factory=lambda: tuple(_default_methods()))
    n_components: int = 2
    refresh: bool = False
    n_jobs: int = 1
    method_params: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))


@dataclass(frozen=True)
class FeatureVisOptions:
    """Activation maximization of a layer's units, their exemplars and the sanity check.

    Parameters
    ----------
    layer : str, optional
        Layer whose channels to visualise (default in a report: the deepest stored layer
        with spatial maps).
    units : tuple of int, optional
        Channel indices (default: the ``n_units`` most class-selective in the store).
    n_units : int
    steps : int
        Optimisation steps.
    exemplars : int
        Top dataset exemplars per unit.
    input_shape : tuple of int, optional
        One input's shape (default: from the inputs or the store's record).
    value_range : (float, float), optional
        Input range in the model's units (default: from the inputs or the store's record).
    sanity : bool
        Also run the cascading weight-randomisation check.
    sanity_steps : int, optional
        Steps of each sanity render (default: ``steps``).
    sanity_units : int
        How many of the units the sanity check renders.
    sanity_layers : tuple of str, optional
        Modules to randomise, top first (default: up to ``sanity_stages`` convolutions and
        linear layers up to ``layer``).
    sanity_stages : int
    """

    layer: str | None = None
    units: tuple[int, ...] | None = None
    n_units: int = 6
    steps: int = 256
    exemplars: int = 5
    input_shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    sanity: bool = False
    sanity_steps: int | None = None
    sanity_units: int = 3
    sanity_layers: tuple[str, ...] | None = None
    sanity_stages: int = 3

    def __post_init__(self) -> None:
        units = None if self.units is None else tuple(int(u) for u in self.units)
        object.__setattr__(self, "units", units or None)
        object.__setattr__(self, "input_shape", _tuple(self.input_shape))
        object.__setattr__(self, "value_range", _tuple(self.value_range))
        layers = self.sanity_layers
        object.__setattr__(self, "sanity_layers", None if layers is None else tuple(layers))


@dataclass(frozen=True)
class LatentOptions:
    """The autoencoder trained on the inputs for latent probing.

    Parameters
    ----------
    latent_dim : int
    epochs : int
    max_train : int
        At most this many training samples (a fifth of the inputs is held out).
    cv : int
        Folds of the label probe on the codes.
    """

    latent_dim: int = 8
    epochs: int = 25
    max_train: int = 4000
    cv: int = 5


@dataclass(frozen=True)
class ReportOptions:
    """What :func:`~inspect_kit.workflows.pipeline.build_report` computes, and how much.

    One flat set of keywords for users; each step of the report reads the small option
    object it needs (:meth:`embedding_options`, :meth:`featurevis_options`,
    :meth:`latent_options`, :meth:`run_options`).

    Examples
    --------
    >>> opts = ReportOptions(methods=("pca", "umap"), n_units=3, featurevis_steps=48)
    >>> opts.featurevis_options().steps, opts.featurevis_options().n_units
    (48, 3)
    """

    methods: tuple[str, ...] = field(default_factory=lambda: tuple(_default_methods()))
    layers: list[str] | None = None
    formats: tuple[str, ...] = ("png", "svg")
    featurevis: bool = True
    featurevis_layer: str | None = None
    n_units: int = 6
    featurevis_steps: int = 192
    exemplars: int = 5
    sanity: bool = True
    sanity_units: int = 3
    sanity_steps: int = 96
    sanity_layers: list[str] | None = None
    sanity_stages: int = 3
    random_baseline: bool = True
    latent: bool = True
    latent_dim: int = 8
    autoencoder_epochs: int = 25
    latent_max_train: int = 4000
    probe_cv: int = 5
    similarity: bool = True
    n_jobs: int = 1
    threads: int | None = 1
    random_state: int = 0
    device: str | None = None
    progress: bool = True

    def run_options(self) -> RunOptions:
        return RunOptions(
            random_state=self.random_state,
            device=self.device,
            threads=self.threads,
            progress=self.progress,
        )

    def embedding_options(self) -> EmbeddingOptions:
        return EmbeddingOptions(methods=tuple(self.methods), n_jobs=self.n_jobs)

    def featurevis_options(self) -> FeatureVisOptions:
        return FeatureVisOptions(
            layer=self.featurevis_layer,
            n_units=self.n_units,
            steps=self.featurevis_steps,
            exemplars=self.exemplars,
            sanity=self.sanity,
            sanity_steps=self.sanity_steps,
            sanity_units=self.sanity_units,
            sanity_layers=None if self.sanity_layers is None else tuple(self.sanity_layers),
            sanity_stages=self.sanity_stages,
        )

    def latent_options(self) -> LatentOptions:
        return LatentOptions(
            latent_dim=self.latent_dim,
            epochs=self.autoencoder_epochs,
            max_train=self.latent_max_train,
            cv=self.probe_cv,
        )
