"""The registry of analyses: each is declared once, and the CLI and the report follow.

An :class:`AnalysisSpec` names an analysis's options (a frozen dataclass whose fields carry
their ``--help`` in :func:`~inspect_kit.workflows.options.option` metadata), its computation,
its store group, its figure, its report section and its ``--help`` examples. From that one
registration:

- ``inspect-kit NAME`` exists, with one flag per option field (``inspect_kit.cli``), the
  inputs the analysis needs (a store; or a model, its data and optionally a store), the run
  options every command shares, and the examples under ``--help``;
- the report (:func:`~inspect_kit.workflows.pipeline.build_report`) has its section, in
  registration order, with the options of ``ReportOptions.analyses[NAME]`` (default: the
  options class's defaults; None leaves it out);
- the README's recipe "Adding an analysis" lists what to write.

Nothing here imports torch, scikit-learn or the analyses: computations, figures and
sections are named by dotted path (``"package.module:attribute"``) and imported when they
run, so ``inspect-kit --help`` stays fast.

A computation is called as ``compute(inputs, options)`` with an :class:`AnalysisInputs`
(the opened store, the live model and the data when the analysis declares ``needs="model"``,
the layers, the run options) and returns its result; it writes what it keeps with
:meth:`AnalysisInputs.save` (under its store group). ``figure(result, options)`` returns
``{name: go.Figure}``; ``section(section, result, options)`` fills the report section it is
given and may return summary rows; ``rows(result)`` gives the table the command prints.

The built-in analyses (embed, featurevis, probe, compare, and the report-only latent and
sanity sections) are registered at the end of this module; their commands have a module of
their own in ``inspect_kit.cli`` for what they print beyond the generic table.

Examples
--------
>>> from dataclasses import dataclass
>>> from inspect_kit.workflows.options import option
>>> @dataclass(frozen=True)
... class NormOptions:
...     order: int = option(2, "order of the norm", type="positive_int")
>>> spec = AnalysisSpec(
...     name="norms", summary="Mean activation norm of each layer.", options=NormOptions,
...     compute="mypkg.norms:compute", store_group="norms", section="mypkg.norms:section",
...     examples=("inspect-kit norms acts.h5 --order 1",))
>>> register_analysis(spec) is spec
True
>>> get_analysis("norms").store_group
'norms'
>>> unregister_analysis("norms")
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .options import (
    EmbeddingOptions,
    FeatureVisOptions,
    LatentOptions,
    ProbeOptions,
    RunOptions,
    SimilarityOptions,
)

__all__ = [
    "AnalysisInputs",
    "AnalysisSpec",
    "analyses",
    "get_analysis",
    "load_plugins",
    "register_analysis",
    "resolve",
    "unregister_analysis",
]

#: what a spec may name by dotted path or give directly
Target = str | Callable[..., Any] | None


def resolve(target: str | Callable[..., Any]) -> Any:
    """The object a dotted path ``"package.module:attribute"`` names (a callable as is).

    Examples
    --------
    >>> resolve("inspect_kit.workflows.options:ProbeOptions").__name__
    'ProbeOptions'
    """
    if not isinstance(target, str):
        return target
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{target!r}: name it as 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis, declared once: options, computation, store group, figure, section.

    Parameters
    ----------
    name : str
        The command (``inspect-kit NAME``) and the key of its options in
        ``ReportOptions.analyses``.
    summary : str
        One line: the command's help and the report section's heading note.
    options : type, optional
        A frozen dataclass; its fields with ``option(...)`` metadata become the command's
        flags (required for a command).
    compute : str or callable, optional
        ``compute(inputs: AnalysisInputs, options) -> result``, what the generic command and
        report section call. The built-ins, whose commands (``inspect_kit.cli.<name>``) and
        report steps are modules of their own, name the workflow function those call.
    needs : {"store", "model"}
        ``"store"``: the command takes a STORE; ``"model"``: a MODEL and its DATA (read with
        :class:`~inspect_kit.workflows.options.DataOptions`' flags), and ``--store`` for what a
        capture recorded. A report runs a ``"model"`` analysis only when it has the model and
        the inputs.
    store_group : str, optional
        Where its results live in a store (``/<store_group>/...``).
    figure : str or callable, optional
        ``figure(result, options) -> {name: go.Figure}``; the command writes them.
    section : str or callable, optional
        ``section(section, result, options) -> summary or None``, given the report's new
        :class:`~inspect_kit.report.document.Section` titled ``title``; or a report step
        (an object with ``enabled``/``compute``/``render``, as the built-ins).
    title : str, optional
        The report section's title (default: the name, capitalised).
    rows : str or callable, optional
        ``rows(result) -> list of dict``: the table (or ``--json``) the command prints.
    examples : tuple of str
        Command lines shown under ``--help`` (each must parse; a test checks).
    notes : str
        Text after the examples in ``--help``.
    command : bool
        False for a report-only section (no ``inspect-kit NAME``).
    """

    name: str
    summary: str
    options: type[Any] | None = None
    compute: Target = None
    needs: Literal["store", "model"] = "store"
    store_group: str | None = None
    figure: Target = None
    section: Target = None
    title: str | None = None
    rows: Target = None
    examples: tuple[str, ...] = ()
    notes: str = ""
    command: bool = True

    def __post_init__(self) -> None:
        if not self.name.isidentifier() and not self.name.replace("-", "_").isidentifier():
            raise ValueError(f"analysis name {self.name!r}: use letters, digits, '-' or '_'")
        if self.options is not None and not dataclasses.is_dataclass(self.options):
            raise TypeError(f"{self.name}: options must be a dataclass, got {self.options!r}")
        if self.command and self.options is None:
            raise ValueError(f"{self.name}: a command needs its options dataclass (options=...)")
        if self.needs not in ("store", "model"):
            raise ValueError(f"{self.name}: needs must be 'store' or 'model', got {self.needs!r}")
        if self.command and not self.examples:
            raise ValueError(f"{self.name}: a command needs at least one --help example")
        if self.command and self.compute is None:
            raise ValueError(f"{self.name}: a command needs a computation (compute=...)")
        object.__setattr__(self, "examples", tuple(self.examples))

    @property
    def heading(self) -> str:
        """The report section's title."""
        return self.title or self.name.replace("_", " ").replace("-", " ").capitalize()

    def default_options(self) -> Any:
        """The options class with its defaults (None for a spec without options)."""
        return None if self.options is None else self.options()

    def epilog(self) -> str:
        """The ``--help`` text after the arguments: examples, then notes."""
        text = "examples:\n" + "\n".join(f"  {line}" for line in self.examples)
        return text + (f"\n\n{self.notes.strip()}" if self.notes.strip() else "")


@dataclass
class AnalysisInputs:
    """What a registered computation runs on.

    Attributes
    ----------
    spec : AnalysisSpec
    store : ActivationStore or None
        The opened store (None for a ``needs="model"`` analysis run without ``--store``).
    store_path : Path or None
    layers : list of str
        Layers asked for (default: every stored layer; empty without a store).
    run : RunOptions
    model : nn.Module or None
        The live model (``needs="model"``), in eval mode.
    data : ndarray or None
        The inputs (``needs="model"``), ``(N, C, H, W)`` or ``(N, C, D, H, W)``: what
        ``--data`` read with the data flags, or the report's inputs in the store's order.
    labels, class_names
        Per-sample labels and class names, when known.
    """

    spec: AnalysisSpec
    store: Any = None
    store_path: Path | None = None
    layers: list[str] = field(default_factory=list)
    run: RunOptions = field(default_factory=RunOptions)
    model: Any = None
    data: Any = None
    labels: Any = None
    class_names: Sequence[str] | None = None

    def save(
        self,
        key: str,
        data: Mapping[str, Any],
        options: Any = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> str:
        """Write ``data`` under ``/<store_group>/<key>`` with its options and the version.

        Returns the group written. Every option field and ``random_state`` are recorded, so
        a result says how it was made.
        """
        if self.store is None:
            raise ValueError(f"{self.spec.name}: no store to save results in (give --store)")
        if not self.spec.store_group:
            raise ValueError(f"{self.spec.name}: the registration declares no store_group")
        from inspect_kit._version import __version__

        record: dict[str, Any] = {
            "analysis": self.spec.name,
            "inspect_kit_version": __version__,
            "random_state": self.run.random_state,
        }
        if options is not None and dataclasses.is_dataclass(options):
            record["options"] = {
                f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            }
        record.update(attrs or {})
        group = f"{self.spec.store_group.strip('/')}/{key.strip('/')}"
        from inspect_kit.analysis.cache import write_result  # the one writer of results

        write_result(self.store, group, dict(data), record)
        return group


_REGISTRY: dict[str, AnalysisSpec] = {}


def _attribute_options() -> type[Any]:
    from .attribution import AttributeOptions  # torch-free: the options dataclass only

    return AttributeOptions


def register_analysis(spec: AnalysisSpec, *, replace: bool = False) -> AnalysisSpec:
    """Add ``spec`` to the registry (its command and report section follow); returns it.

    A second registration of the same name is an error unless ``replace``.
    """
    if spec.name in _REGISTRY and not replace:
        raise ValueError(
            f"an analysis named {spec.name!r} is already registered; pick another name or "
            "pass replace=True"
        )
    _RESERVED = {"layers", "capture", "report", "demo"}
    if spec.command and spec.name in _RESERVED:
        raise ValueError(f"{spec.name!r} is a built-in command; pick another name")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_analysis(name: str) -> None:
    """Remove a registered analysis (tests, notebooks that re-register)."""
    _REGISTRY.pop(name, None)


#: entry-point group through which an installed package registers its analyses
ENTRY_POINT_GROUP = "inspect_kit.analyses"
_PLUGINS_LOADED = False


def load_plugins(*, reload: bool = False) -> list[str]:
    """Register the analyses installed packages declare; returns the entry points loaded.

    A package declares ``[project.entry-points."inspect_kit.analyses"]`` with
    ``name = "mypkg.norms:SPEC"`` (an :class:`AnalysisSpec`, registered here) or
    ``name = "mypkg.norms"`` (a module that registers when imported). Called once, by
    :func:`analyses`; ``reload`` reads the entry points again.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED and not reload:
        return []
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, AnalysisSpec) and _REGISTRY.get(obj.name) is not obj:
            register_analysis(obj)
        loaded.append(ep.value)
    return loaded


def analyses(*, commands_only: bool = False) -> list[AnalysisSpec]:
    """The registered analyses, in registration order (the report's section order).

    The analyses installed packages declare as entry points are registered on first call.
    """
    load_plugins()
    return [s for s in _REGISTRY.values() if s.command or not commands_only]


def get_analysis(name: str) -> AnalysisSpec:
    """The registered analysis ``name``; an unknown name lists the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise KeyError(f"no analysis named {name!r}; registered: {known}") from None


# -- the built-in analyses ---------------------------------------------------------------------
_STEPS = "inspect_kit.workflows.report_steps"

register_analysis(
    AnalysisSpec(
        name="embed",
        summary="PCA, t-SNE and UMAP maps of stored layers, with quality metrics.",
        options=EmbeddingOptions,
        compute="inspect_kit.workflows.commands:embed_layers",
        store_group="embeddings",
        figure="inspect_kit.figures.embedding:plot_embedding_grid",
        section=f"{_STEPS}:EmbeddingStep",
        title="Embeddings",
        examples=(
            "inspect-kit embed acts.h5 --layers layer3,layer4 --methods pca,umap --out figures/",
            "inspect-kit embed acts.h5 --methods tsne --color prediction --formats html,png,pdf",
            "inspect-kit embed big.h5 --methods pca,umap --pca-solver dask "
            "--scheduler tcp://scheduler:8786",
        ),
    )
)
register_analysis(
    AnalysisSpec(
        name="featurevis",
        summary="Activation maximization of units, with dataset exemplars.",
        options=FeatureVisOptions,
        compute="inspect_kit.workflows.commands:featurevis_units",
        needs="model",
        figure="inspect_kit.figures.featurevis:plot_unit_gallery",
        section=f"{_STEPS}:FeatureVisStep",
        title="Feature visualization",
        examples=(
            "inspect-kit featurevis inspect_kit.models:SmallCNN --weights net.pt "
            "--model-args '{\"n_classes\": 3}' --layer relu3 --store acts.h5 --top 6 --sanity "
            "--out fv/",
            "inspect-kit featurevis torchvision.models:resnet18 --layer layer4 --units 0,1,2 "
            "--input-shape 3 224 224 --value-range 0 1 --out fv/",
        ),
    )
)
register_analysis(
    AnalysisSpec(
        name="latent",
        summary="A convolutional autoencoder trained on the inputs, its latent space probed.",
        options=LatentOptions,
        compute="inspect_kit.workflows.steps:latent_probe",
        needs="model",
        store_group="latent",
        figure="inspect_kit.figures.latent:plot_latent_correlations",
        section=f"{_STEPS}:LatentStep",
        title="Latent probing (autoencoder)",
        command=False,
    )
)
register_analysis(
    AnalysisSpec(
        name="probe",
        summary="Linear probes of every stored layer: where a property is decodable.",
        options=ProbeOptions,
        compute="inspect_kit.workflows.commands:probe_layers",
        store_group="probes",
        figure="inspect_kit.figures.probes:plot_probe_profile",
        section=f"{_STEPS}:ProbeStep",
        title="Probe profile",
        examples=(
            "inspect-kit probe acts.h5 --out probes/",
            "inspect-kit probe acts.h5 --target site --layers layer2,layer3,layer4 --cv 5",
            "inspect-kit probe ct.h5 --groups PatientID --chance permutation --permutations 200 "
            "--C 0.1",
            "inspect-kit probe big.h5 --solver streaming --batch-size 512 --epochs 5",
            "inspect-kit probe big.h5 --solver streaming --scheduler tcp://scheduler:8786",
        ),
        notes="a layer that cannot be probed is reported (a row with its error) and skipped; a "
        "fragile\nscore carries its warning. Streamed probes (SGD over blocks of rows) never "
        "hold a layer in\nmemory; with --scheduler they read and pool the blocks on that Dask "
        "cluster's workers. The\nsolver, batch size and epochs are recorded with the scores in "
        "the store (/probes/<target>).",
    )
)
register_analysis(
    AnalysisSpec(
        name="sanity",
        summary="Randomised weights: the feature visualization cascade and baselines.",
        compute="inspect_kit.workflows.steps:random_weights_profile",
        needs="model",
        section=f"{_STEPS}:SanityStep",
        title="Sanity check: randomised weights",
        command=False,
    )
)
register_analysis(
    AnalysisSpec(
        name="compare",
        summary="Representation similarity (CKA or RSA) of every layer pair of one or two stores.",
        options=SimilarityOptions,
        compute="inspect_kit.workflows.compare:compare_stores",
        store_group="similarity",
        figure="inspect_kit.figures.similarity:plot_similarity",
        section=f"{_STEPS}:SimilarityStep",
        title="Representation similarity",
        examples=(
            "inspect-kit compare acts.h5 --out figures/",
            "inspect-kit compare run1.h5 run2.h5 --layers layer1,layer2,layer3,layer4 "
            "--formats html png",
            "inspect-kit compare site_a.h5 site_b.h5 --method rsa --samples 500 --json",
        ),
        notes="With one store, its layers are compared with each other; with two (two seeds, "
        "two models, two\nsites' fine-tunes), every layer of the first with every layer of the "
        "second, on the samples\nboth hold (matched by their dataset index). Results are cached "
        "in the first store.",
    )
)
register_analysis(
    AnalysisSpec(
        name="attribute",
        summary="Attribution maps (Grad-CAM, integrated gradients, occlusion ...) into a store.",
        options=_attribute_options(),
        compute="inspect_kit.workflows.attribution:attribute_analysis",
        section="inspect_kit.workflows.attribution:attribution_section",
        needs="model",
        store_group="attributions",
        title="Where the model looks",
        examples=(
            "inspect-kit attribute torchvision.models:resnet18 scans/ --weights best.pt "
            "--model-args '{\"num_classes\": 2}' --channels 3 --size 224 224 "
            "--method gradcam integrated-gradients occlusion --target predicted --out attr.h5",
            "inspect-kit attribute mynet.py:Net volumes/ --method gradcam "
            "--layer features.denseblock3 --memory-budget 4GiB --out attr.h5",
        ),
        notes="The model and data options are capture's; maps are written as computed (signed "
        "where the\nmethod is signed) under attributions/<method>/<key> of the store.",
    )
)
