"""The one registry of embedding methods: names, display names and estimators.

:func:`~inspect_kit.analysis.embedding.embed`, the command line's ``--methods``, the report
and the figures' titles all read this registry, so adding a method is one module (an
estimator deriving from :class:`~inspect_kit.analysis.embedding.BaseEmbedding`) and one
call to :func:`register_method`. Built-in estimators are registered by import path and
imported only when used: reading the names costs no scikit-learn.

Examples
--------
>>> method_names()
('pca', 'tsne', 'umap')
>>> get_method("t-SNE").display_name
't-SNE'
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inspect_kit._names import close_matches

if TYPE_CHECKING:
    from ._base import BaseEmbedding

__all__ = [
    "PCA_SOLVERS",
    "EmbeddingMethod",
    "default_methods",
    "display_name",
    "get_method",
    "method_names",
    "register_method",
    "unregister_method",
]

#: How a PCA (the method, or t-SNE's and UMAP's pre-reduction) can be fitted; spelt here, where
#: the command line reads it without importing scikit-learn.
PCA_SOLVERS: tuple[str, ...] = ("auto", "memory", "covariance", "incremental", "dask")


def normalise(name: str) -> str:
    """The registry key of a method name: lower case, without '-' and '_' ('t-SNE' -> 'tsne')."""
    return str(name).lower().replace("-", "").replace("_", "")


@dataclass(frozen=True)
class EmbeddingMethod:
    """One registered embedding method.

    Attributes
    ----------
    name : str
        The key users pass (``method="tsne"``, ``--methods tsne``).
    display_name : str
        How titles and tables name it ("t-SNE").
    estimator : type or str
        The estimator class, or its ``"module:Class"`` path (imported on first use).
    axis_label : str
        Prefix of axis titles: ``"PC"`` gives "PC1", ``"t-SNE "`` gives "t-SNE 1".
    linear : bool
        Whether the map is a linear projection whose axes carry units (explained variance),
        so figures keep its aspect free; neighbour maps get equal scales.
    default : bool
        Computed by the command line and the report when no methods are named.
    """

    name: str
    display_name: str
    estimator: Any
    axis_label: str
    linear: bool = False
    default: bool = False

    def load(self) -> type[BaseEmbedding]:
        """The estimator class (imported now if registered by path)."""
        if isinstance(self.estimator, str):
            module, _, attr = self.estimator.partition(":")
            imported: type[BaseEmbedding] = getattr(importlib.import_module(module), attr)
            return imported
        cls: type[BaseEmbedding] = self.estimator
        return cls

    def accepts(self, parameter: str) -> bool:
        """Whether the estimator takes ``parameter`` (e.g. ``n_jobs``)."""
        return parameter in inspect.signature(self.load()).parameters


_REGISTRY: dict[str, EmbeddingMethod] = {}


def register_method(
    name: str,
    estimator: type | str,
    *,
    display_name: str | None = None,
    axis_label: str | None = None,
    linear: bool = False,
    default: bool = False,
    replace: bool = False,
) -> EmbeddingMethod:
    """Make an embedding method available to ``embed``, the command line, report and figures.

    Parameters
    ----------
    name : str
        Key of the method (normalised: lower case, '-' and '_' dropped). The estimator's
        ``method`` attribute must equal it (it is recorded with results).
    estimator : type or str
        A :class:`~inspect_kit.analysis.embedding.BaseEmbedding` subclass, or its
        ``"module:Class"`` path.
    display_name : str, optional
        Name in titles and tables (default: ``name``).
    axis_label : str, optional
        Prefix of axis titles (default: ``display_name`` and a space).
    linear : bool
        A linear projection (axes with units, like PCA).
    default : bool
        Also compute it when no methods are named (the built-in three are defaults).
    replace : bool
        Allow replacing a method registered under the same name.

    Returns
    -------
    EmbeddingMethod

    Examples
    --------
    >>> from inspect_kit.analysis.embedding import PCAEmbedding
    >>> class Whitened(PCAEmbedding):
    ...     method = "whitened"
    >>> register_method("whitened", Whitened, display_name="Whitened PCA").display_name
    'Whitened PCA'
    >>> unregister_method("whitened")
    """
    key = normalise(name)
    if not key:
        raise ValueError("a method needs a non-empty name")
    if key in _REGISTRY and not replace:
        raise ValueError(
            f"an embedding method {key!r} is already registered; pass replace=True to replace it"
        )
    if not isinstance(estimator, str):
        if not isinstance(estimator, type):
            raise TypeError(
                f"estimator must be a class or a 'module:Class' path, got {type(estimator).__name__}"
            )
        declared = getattr(estimator, "method", None)
        if declared != key:
            raise ValueError(
                f"{estimator.__name__}.method is {declared!r}; set it to {key!r}, the name "
                "the method is registered under (results record it)"
            )
    shown = display_name or key
    spec = EmbeddingMethod(
        name=key,
        display_name=shown,
        estimator=estimator,
        axis_label=axis_label if axis_label is not None else f"{shown} ",
        linear=bool(linear),
        default=bool(default),
    )
    _REGISTRY[key] = spec
    return spec


def unregister_method(name: str) -> None:
    """Remove a registered method (unknown names are ignored)."""
    _REGISTRY.pop(normalise(name), None)


def get_method(name: str) -> EmbeddingMethod:
    """The registered method called ``name`` ('t-SNE', 'tsne' and 't_sne' are one method).

    Raises
    ------
    ValueError
        Unknown method; the message lists the registered ones and close matches.
    """
    key = normalise(name)
    if key not in _REGISTRY:
        close = close_matches(key, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown method={name!r}{hint} (registered: {', '.join(map(repr, _REGISTRY))}; "
            "add one with inspect_kit.analysis.embedding.register_method)"
        )
    return _REGISTRY[key]


def method_names() -> tuple[str, ...]:
    """Names of every registered method, in registration order."""
    return tuple(_REGISTRY)


def default_methods() -> tuple[str, ...]:
    """Methods computed when none are named (the command line, the report)."""
    return tuple(k for k, m in _REGISTRY.items() if m.default)


def display_name(name: str) -> str:
    """How titles name a method: 'tsne' -> 't-SNE'; an unregistered name comes back as given."""
    spec = _REGISTRY.get(normalise(name))
    return spec.display_name if spec is not None else str(name)


def axis_label(name: str) -> str:
    """Prefix of a method's axis titles: 'pca' -> 'PC'; unregistered: the name and a space."""
    spec = _REGISTRY.get(normalise(name))
    return spec.axis_label if spec is not None else f"{name} "


def is_linear(name: str) -> bool:
    """Whether a method's map is a linear projection (axes with units)."""
    spec = _REGISTRY.get(normalise(name))
    return bool(spec is not None and spec.linear)


_PKG = "inspect_kit.analysis.embedding"
register_method(
    "pca",
    f"{_PKG}._pca:PCAEmbedding",
    display_name="PCA",
    axis_label="PC",
    linear=True,
    default=True,
)
register_method("tsne", f"{_PKG}._tsne:TSNEEmbedding", display_name="t-SNE", default=True)
register_method("umap", f"{_PKG}._umap:UMAPEmbedding", display_name="UMAP", default=True)
