"""The options a workflow takes, as small frozen dataclasses.

The command line parses its arguments into these objects and hands them to a workflow; the
same objects drive the workflows from Python. Each groups one concern (where the model comes
from, how data are read, what capture stores, how layers are embedded, probed or compared,
how units are visualised, how a run behaves), so no function relays a dozen keyword
arguments. :class:`ReportOptions` nests them: one per section of the report.

A field that is also a command-line flag says so in its ``metadata`` (:func:`option`): its
help, and the flag's spelling, type and choices where they differ from the field's. The CLI
generates its flags from these fields (``inspect_kit.cli``), so each option is spelled once.

Examples
--------
>>> DataOptions(size=(64, 64), channels=1).as_record()["size"]
[64, 64]
>>> ReportOptions(embedding=EmbeddingOptions(methods=("pca",))).embedding.methods
('pca',)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    "ProbeOptions",
    "ReportOptions",
    "RunOptions",
    "SimilarityOptions",
    "option",
]


def option(
    default: Any = None,
    help: str | Callable[[], str] = "",
    *,
    factory: Callable[[], Any] | None = None,
    **cli: Any,
) -> Any:
    """A dataclass field that is also a command-line flag.

    ``cli`` holds how the flag differs from the field: ``flag`` (its spelling, default
    ``--field-name``; a tuple for aliases), ``type`` (a callable, or ``"positive_int"`` /
    ``"positive_float"``), ``nargs``, ``choices``, ``metavar``, ``group`` (the ``--help``
    heading), ``split`` (comma- or space-separated list), ``none`` (the word meaning None,
    e.g. ``"none"``), ``exclusive`` (the name of a mutually exclusive group), ``required``.
    ``cli=False`` keeps a field off the command line. ``help`` may be a callable (evaluated
    when ``--help`` is built, so registries are read late).

    Examples
    --------
    >>> from dataclasses import dataclass, fields
    >>> @dataclass(frozen=True)
    ... class MyOptions:
    ...     order: int = option(2, "norm order", type="positive_int")
    >>> fields(MyOptions)[0].metadata["type"]
    'positive_int'
    """
    metadata = {"help": help, **cli}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _default_methods() -> tuple[str, ...]:
    from inspect_kit.analysis.embedding.registry import default_methods

    return tuple(default_methods())


def _methods_help() -> str:
    from inspect_kit.analysis.embedding.registry import default_methods, method_names

    return (
        f"embedding methods: {', '.join(method_names())} (default: {' '.join(default_methods())})"
    )


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


_MEDICAL = "medical volumes (NIfTI, DICOM)"


@dataclass(frozen=True)
class DataOptions:
    """How users' files are read (:func:`~inspect_kit.data.formats.load_data`).

    Every field is one ``--flag`` of the commands that read data (``capture``, and the
    commands of registered analyses that need inputs); its help is the flag's help.

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

    labels: str | None = option(
        None,
        "labels: CSV of filename,label rows, or file.npz:key / file.h5:dataset "
        "(default: sub-folder names, or the .npz's y)",
        group="data",
    )
    size: tuple[int, ...] | None = option(
        None,
        "resize samples to H W (or D H W)",
        type="positive_int",
        nargs="+",
        metavar="N",
        group="data",
    )
    channels: int | None = option(
        None,
        "channels the model expects, for every format: images to grayscale (1) or RGB "
        "(3); one-channel CT/MR repeated to C; 1 averages several",
        type="positive_int",
        metavar="C",
        group="data",
    )
    window: tuple[float, float] | None = option(
        None,
        "clip intensities to a window and scale it to [0, 1], e.g. -1000 400 (HU)",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        group="data",
    )
    normalize: Any = option(
        None, "none, imagenet, zscore, or MEAN,STD (per channel M1:M2:M3,S1:S2:S3)", group="data"
    )
    orientation: str | None = option(
        "RAS",
        "reorient volumes to these axis codes (default RAS); 'none' keeps the stored order",
        none="none",
        group=_MEDICAL,
    )
    spacing: tuple[float, ...] | None = option(
        None,
        "resample volumes to this voxel size in mm (anti-aliased); --size then crops or "
        "pads instead of resizing",
        type="positive_float",
        nargs=3,
        metavar=("D", "H", "W"),
        group=_MEDICAL,
    )
    as_slices: bool = option(
        False,
        "DICOM: one 2D sample per slice (for 2D networks), not one volume per series",
        flag="--slices",
        group=_MEDICAL,
    )
    sequences: tuple[str, ...] | None = option(
        None,
        "NIfTI: sub-folders holding one MRI sequence each (T1 T2 FLAIR); files of the "
        "same name form one multi-channel sample",
        nargs="+",
        metavar="NAME",
        group=_MEDICAL,
    )
    allow_irregular: bool = option(
        False,
        "load DICOM series with missing slices or uneven spacing (with a warning)",
        group=_MEDICAL,
    )
    skip_unreadable: bool = option(
        False, "skip unreadable files (they are listed) instead of stopping", group=_MEDICAL
    )
    keep_identifiers: bool = option(
        False, "store DICOM PatientID verbatim (default: a salted SHA-256 prefix)", group=_MEDICAL
    )
    id_salt: str | None = option(
        None,
        "salt of the hashed IDs; the same salt gives the same IDs across stores",
        group=_MEDICAL,
    )

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

        return load_data(source, **self.load_kwargs())

    def load_kwargs(self) -> dict[str, Any]:
        """:func:`~inspect_kit.data.formats.load_data`'s keywords: every field, by its name."""
        return {k: getattr(self, k) for k in (*self.RECORDED, "id_salt")}

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

    layers: tuple[str, ...] | None = option(
        None,
        "layers to capture (comma or space separated; 'relu:1' a second call, 'lstm[0]' "
        "one output, 'layer4.*' the blocks of layer4, 'layer4.**' everything in it; "
        "default: every convolution, activation and linear layer)",
        nargs="+",
        split=True,
    )
    reduce: str | None = option(
        "mean",
        "pool each channel's map over space (mean, max), flatten it, or store full "
        "maps (none: large for big inputs)",
        choices=("none", "mean", "max", "flatten"),
        none="none",
    )
    dtype: str | None = option(
        None,
        "storage dtype of activations (default: as computed)",
        choices=("float32", "float16", "bfloat16"),
    )
    batch_size: int | None = option(64, "samples per forward pass", type="positive_int")
    thumbnails: str | None = option(
        "slice",
        "input previews stored for hover (volumes: middle slice or MIP)",
        choices=("slice", "mip", "none"),
        none="none",
    )
    overwrite: bool = option(False, "replace an existing store", exclusive="existing")
    resume: bool = option(False, "continue an unfinished capture", exclusive="existing")

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

    methods: tuple[str, ...] = option(
        help=_methods_help, factory=lambda: tuple(_default_methods()), nargs="+", split=True
    )
    n_components: int = option(2, "2D or 3D maps", flag="--dims", type=int, choices=(2, 3))
    refresh: bool = option(False, "recompute cached embeddings")
    n_jobs: int = option(1, cli=False)
    method_params: Mapping[str, Any] | None = option(None, cli=False)

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

    layer: str | None = option(None, "layer whose channels to visualise", required=True)
    units: tuple[int, ...] | None = option(
        None, "channel indices (default: --top)", nargs="+", split=True, type=int
    )
    n_units: int = option(
        6,
        "with --store: the most class-selective channels; else the first ones",
        flag="--top",
        type="positive_int",
    )
    steps: int = option(256, "optimisation steps", type="positive_int")
    exemplars: int = option(5, "top dataset exemplars per unit", type=int)
    input_shape: tuple[int, ...] | None = option(
        None,
        "one input's shape (C H W or C D H W); default: from the store",
        type="positive_int",
        nargs="+",
        metavar="N",
    )
    value_range: tuple[float, float] | None = option(
        None,
        "input range in the model's units (default: from the store's record)",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
    )
    sanity: bool = option(False, "also run the weight-randomisation sanity check")
    sanity_steps: int | None = option(None, cli=False)
    sanity_units: int = option(3, cli=False)
    sanity_layers: tuple[str, ...] | None = option(None, cli=False)
    sanity_stages: int = option(3, cli=False)

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
class ProbeOptions:
    """Linear probes of a target across layers (:func:`~inspect_kit.analysis.probes.probe_profile`).

    Parameters
    ----------
    target : str
        ``"label"``, ``"prediction"`` or a metadata column of the store.
    cv : int
        Cross-validation folds.
    groups : str or None
        Metadata key whose samples stay in one fold (patients, sites). ``'auto'``: the first
        patient/series/site key of the store with repeated values; ``None``/``'none'``:
        ungrouped folds.
    C, chance, n_permutations, task
        As in :func:`~inspect_kit.analysis.probes.linear_probe`: the logistic regression's
        inverse L2 strength, ``'balanced'`` (1 / n_classes) or ``'permutation'`` chance.
    reduce : {"mean", "max", "flatten"}
        How spatial maps become one vector per sample.
    solver : {"auto", "memory", "streaming"}
        scikit-learn in memory, SGD over blocks of ``batch_size`` rows, or streaming only for a
        layer whose features do not fit in memory. Recorded in the store with the scores.
    batch_size, epochs : int, optional
        Rows per block and SGD passes of a streamed probe.

    Examples
    --------
    >>> ProbeOptions(target="site", groups="PatientID").cv
    5
    """

    target: str = option("label", "label, prediction, or a metadata column of the store")
    cv: int = option(5, "cross-validation folds", type="positive_int")
    groups: str | None = option(
        "auto",
        "metadata key whose samples stay in one fold (e.g. PatientID); 'auto' (default): "
        "the store's first patient/series/site key with repeated values; 'none': ungrouped",
        metavar="KEY",
    )
    C: float = option(
        1.0,
        "inverse L2 regularisation of the logistic probe (smaller: stronger)",
        type="positive_float",
    )
    chance: str = option(
        "balanced",
        "chance level: 'balanced' (1/n_classes for classification, the mean's R2 for "
        "regression) or 'permutation' (probes refitted on permuted targets, with a p-value)",
        choices=("balanced", "permutation"),
    )
    n_permutations: int = option(
        100, "permutations for --chance permutation", flag="--permutations", type="positive_int"
    )
    reduce: str = option(
        "mean",
        "how spatial maps become features: per-channel mean/max, or every value",
        choices=("mean", "max", "flatten"),
    )
    task: str = option(
        "auto",
        "'auto': float targets are continuous, others categorical",
        choices=("auto", "classification", "regression"),
    )
    solver: str = option(
        "auto",
        "'memory': scikit-learn on each layer's pooled features in memory; 'streaming': "
        "SGD over blocks of --batch-size rows (layers larger than memory); 'auto': streaming "
        "only for a layer whose features do not fit in 1 GiB",
        choices=("auto", "memory", "streaming"),
    )
    batch_size: int | None = option(
        None,
        "rows read at once by a streamed probe (default: about 64 MiB of activations)",
        type="positive_int",
        metavar="ROWS",
    )
    epochs: int | None = option(
        None, "SGD passes of a streamed classification probe (default: 5)", type="positive_int"
    )


@dataclass(frozen=True)
class SimilarityOptions:
    """CKA or RSA between layers (:func:`~inspect_kit.analysis.similarity.similarity`).

    Parameters
    ----------
    method : {"cka", "rsa"}
    kernel : {"linear", "rbf"}
        CKA's kernel.
    reduce : {"flatten", "mean", "max"}
        Compare full spatial maps, or per-channel pooled features.
    batch_size : int, optional
        CKA minibatch size (samples).
    n_samples : int, optional
        A seeded subset of this many samples (RSA default: 1000).
    refresh : bool
        Recompute a cached result.

    Examples
    --------
    >>> SimilarityOptions(method="rsa").reduction is None
    True
    """

    method: str = option("cka", "CKA or RSA", choices=("cka", "rsa"))
    kernel: str = option("linear", "CKA kernel", choices=("linear", "rbf"))
    reduce: str = option(
        "flatten",
        "compare full spatial maps (flatten) or per-channel pooled features",
        choices=("flatten", "mean", "max"),
    )
    batch_size: int | None = option(512, "CKA minibatch size (samples)", type="positive_int")
    n_samples: int | None = option(
        None,
        "use a seeded subset of this many samples (RSA default: 1000)",
        flag="--samples",
        type="positive_int",
    )
    refresh: bool = option(False, "recompute a cached result")

    @property
    def reduction(self) -> str | None:
        """``reduce`` as :func:`~inspect_kit.analysis.similarity.similarity` takes it."""
        return None if self.reduce == "flatten" else self.reduce


def _report_featurevis() -> FeatureVisOptions:
    return FeatureVisOptions(steps=192, sanity=True, sanity_steps=96)


@dataclass(frozen=True)
class ReportOptions:
    """What :func:`~inspect_kit.workflows.pipeline.build_report` computes, and how much.

    One option object per section (None leaves the section out), plus what the whole run
    shares. Registered analyses (:mod:`inspect_kit.workflows.registry`) add their sections
    with their own options' defaults; ``analyses`` overrides them by name (None: left out).

    Parameters
    ----------
    layers : sequence of str, optional
        Layers to profile (default: all stored).
    formats : tuple of str
        Static figure formats written beside the report.
    embedding, featurevis, latent, probe, similarity
        Each section's options, or None to leave it out. ``featurevis.sanity`` runs the
        weight-randomisation cascade; the report probes the label with ``probe.cv`` folds
        (grouped by the store's patient/site key, as ``groups='auto'``).
    random_baseline : bool
        Re-capture with randomised weights for the probe and similarity baselines.
    run : RunOptions
        random_state, device, threads (1 by default) and progress of the whole run.
    analyses : mapping
        Options of registered analyses by name.

    Examples
    --------
    >>> opts = ReportOptions(featurevis=FeatureVisOptions(n_units=3, steps=48), latent=None)
    >>> opts.featurevis.steps, opts.latent is None
    (48, True)
    """

    layers: Sequence[str] | None = None
    formats: Sequence[str] = ("png", "svg")
    embedding: EmbeddingOptions | None = field(default_factory=EmbeddingOptions)
    featurevis: FeatureVisOptions | None = field(default_factory=_report_featurevis)
    latent: LatentOptions | None = field(default_factory=LatentOptions)
    probe: ProbeOptions | None = field(default_factory=ProbeOptions)
    similarity: SimilarityOptions | None = field(default_factory=SimilarityOptions)
    random_baseline: bool = True
    run: RunOptions = field(default_factory=lambda: RunOptions(threads=1))
    analyses: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", _tuple(self.layers))
        object.__setattr__(self, "formats", tuple(self.formats or ()))
        if self.embedding is not None and not self.embedding.methods:
            object.__setattr__(self, "embedding", None)

    def run_options(self) -> RunOptions:
        """The run's random_state, device, threads and progress."""
        return self.run
