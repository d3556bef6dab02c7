"""Figure of linear probes across layers: where in depth a property becomes decodable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import plotly.graph_objects as go

from inspect_kit.figures import theme
from inspect_kit.figures.protocols import ProbeProfileLike

__all__ = ["plot_probe_profile"]

_METRIC_TITLES = {
    "accuracy": "probe accuracy",
    "balanced_accuracy": "probe balanced accuracy",
    "r2": "probe R²",
}
_CHANCE_NAMES = {
    "permutation": "permuted labels",
    "balanced": "balanced, 1/n classes",
    "dummy": "mean predictor",
}


def plot_probe_profile(
    profile: ProbeProfileLike | Sequence[ProbeProfileLike] | Mapping[str, ProbeProfileLike],
    *,
    title: str | None = None,
    show_chance: bool = True,
    height: int = 420,
) -> go.Figure:
    """Cross-validated probe score per layer, with its spread across folds and chance level.

    Parameters
    ----------
    profile : ProbeProfile, or a sequence/mapping of them
        From :func:`inspect_kit.probe_profile`; several profiles (e.g. one per target) are
        drawn as one line each over the union of their layers, in order of first appearance.
    title : str, optional
    show_chance : bool
        Draw each profile's chance level as a dashed line.
    height : int

    Returns
    -------
    go.Figure

    Examples
    --------
    >>> fig = plot_probe_profile(probe_profile(store, target="label"))  # doctest: +SKIP
    """
    if isinstance(profile, Mapping):
        profiles = list(profile.values())
        names = [str(k) for k in profile]
    elif isinstance(profile, Sequence) and not hasattr(profile, "layers"):
        profiles = list(profile)
        names = [p.target for p in profiles]
    else:
        one = cast(ProbeProfileLike, profile)  # a single profile: it has layers
        profiles, names = [one], [one.target]
    if not profiles:
        raise ValueError("no probe profiles to plot")
    metrics = {p.metric for p in profiles}
    if len(metrics) > 1:
        raise ValueError(
            f"profiles mix metrics {sorted(metrics)}; plot accuracy and R² profiles separately"
        )
    metric = metrics.pop()
    layers: list[str] = []
    for p in profiles:
        layers += [name for name in p.layers if name not in layers]
    colors = theme.categorical_colors(len(profiles))
    fig = go.Figure()
    for p, name, color in zip(profiles, names, colors, strict=True):
        cv = p.results[0].cv if p.results else None
        folds = np.stack([r.fold_scores for r in p.results]) if p.results else np.zeros((0, 0))
        fig.add_trace(
            go.Scatter(
                x=list(p.layers),
                y=p.scores,
                error_y=dict(type="data", array=p.score_std, visible=True, thickness=1.2),
                mode="lines+markers",
                name=name,
                line=dict(color=color, width=2.5),
                marker=dict(size=8),
                customdata=np.column_stack([p.score_std, p.chance, folds.min(1), folds.max(1)])
                if len(folds)
                else None,
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.3f}} ± %{{customdata[0]:.3f}} "
                f"({cv}-fold)<br>folds %{{customdata[2]:.3f}}–%{{customdata[3]:.3f}}"
                "<br>chance %{customdata[1]:.3f}<extra></extra>",
            )
        )
        if show_chance:
            method = p.results[0].chance_method if p.results else "dummy"
            what = _CHANCE_NAMES.get(method, method)
            fig.add_trace(
                go.Scatter(
                    x=list(p.layers),
                    y=p.chance,
                    mode="lines",
                    name=f"chance: {name} ({what})",
                    line=dict(color=color, dash="dash", width=1.5),
                    hovertemplate=f"chance ({what}) %{{y:.3f}}<extra></extra>",
                )
            )
    reduce = profiles[0].reduce
    fig.update_layout(
        template=theme.TEMPLATE,
        title=title or f"Linear probes by layer ({'features: ' + reduce if reduce else ''})",
        xaxis=dict(title="layer (capture order)", categoryorder="array", categoryarray=layers),
        yaxis=dict(title=_METRIC_TITLES.get(metric, metric)),
        height=height,
        hovermode="closest",
    )
    if metric in ("accuracy", "balanced_accuracy"):
        fig.update_yaxes(range=[0, 1.02])
    return fig
