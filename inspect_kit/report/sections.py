"""The sections of a profile report, each built from analysis results and their figures.

Every function adds one section to a :class:`~inspect_kit.report.document.Report` and
registers its figures under stable names (``embedding_umap``, ``probe_profile`` ...), which
the pipeline also exports as PNG/SVG. Nothing here computes an analysis: the pipeline passes
results in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inspect_kit.analysis.embedding.registry import display_name
from inspect_kit.store import schema

from .document import Report


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def model_section(
    report: Report,
    *,
    model_info: Mapping[str, Any],
    provenance: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]],
    dataset: Mapping[str, Any],
    performance: Mapping[str, Any] | None = None,
    confusion: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    timings: Mapping[str, float] | None = None,
) -> None:
    """Model summary, data, accuracy, stored layers and provenance."""
    sec = report.section(
        "Model and provenance",
        intro="What was profiled, on which data, and how the activation store was made.",
    )
    sec.add_heading("Model")
    sec.add_key_values(model_info)
    sec.add_heading("Data")
    sec.add_key_values(dataset)
    if performance:
        sec.add_heading("Performance")
        sec.add_key_values(performance)
    if confusion is not None and class_names is not None and len(class_names) == len(confusion):
        rows = [[f"true {n}", *confusion[i].tolist()] for i, n in enumerate(class_names)]
        sec.add_table(
            ["", *[f"pred {n}" for n in class_names]],
            rows,
            caption="Confusion matrix (rows: true class, columns: prediction)",
        )
    sec.add_heading("Captured layers")
    sec.add_table(
        ["layer", "module", "stored shape", "source shape", "reduction"],
        [
            [r["name"], r["module_type"], r["shape"], r["source_shape"], r["reduction"]]
            for r in layers
        ],
    )
    sec.add_heading("Provenance")
    prov = {
        k: provenance.get(k)
        for k in (
            schema.CREATED_ATTR,
            schema.MODEL_CLASS_ATTR,
            schema.MODEL_SHA256_ATTR,
            schema.INSPECT_KIT_VERSION_ATTR,
            schema.TORCH_VERSION_ATTR,
            schema.NUMPY_VERSION_ATTR,
            schema.SCHEMA_VERSION_ATTR,
            schema.COMPLETE_ATTR,
        )
        if k in provenance
    }
    sec.add_key_values(prov)
    config = provenance.get(schema.CONFIG_ATTR)
    if isinstance(config, Mapping):
        sec.add_key_values({f"capture {k}": _short(v) for k, v in config.items()})
    if timings:
        sec.add_heading("Run time")
        sec.add_table(["step", "seconds"], [[k, float(v)] for k, v in timings.items()])


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def embedding_section(
    report: Report,
    embeddings: Mapping[str, Mapping[str, Any]],
    *,
    class_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Small multiples per method (layers side by side) and the quality table.

    ``embeddings[method][layer]`` is an :class:`~inspect_kit.analysis.embedding.Embedding`.
    Returns the table rows.
    """
    from inspect_kit.figures.embedding import plot_embedding_grid

    embs = [e for by_layer in embeddings.values() for e in by_layer.values()]
    classes = all(getattr(e, "labels_are_classes", True) is not False for e in embs)
    rings = (
        "ringed points are misclassified"
        if classes
        else "no point is marked misclassified: the labels are not the model's classes"
    )
    sec = report.section(
        "Embeddings",
        intro=(
            "Each layer's features (spatial maps averaged per channel) embedded in 2D. "
            "Same samples, same colours in every panel: read class separation through depth "
            f"from left to right. Hover a point to see its input; {rings}. "
            "Trustworthiness (1 = no false neighbours) and the k-nearest-neighbour "
            "label accuracy in the map and in the original feature space say how far to "
            "trust each map."
        ),
    )
    rows: list[dict[str, Any]] = []
    for method, by_layer in embeddings.items():
        if not by_layer:
            continue
        name = display_name(method)
        fig = plot_embedding_grid(
            dict(by_layer), label_names=class_names, title=f"{name} of each layer"
        )
        sec.add_heading(name)
        sec.add_figure(fig, name=f"embedding_{method}")
        for layer, emb in by_layer.items():
            m = emb.metrics
            rows.append(
                {
                    "method": name,
                    "layer": layer,
                    "trustworthiness": _num(m.get("trustworthiness")),
                    "knn_accuracy_map": _num(m.get("knn_accuracy")),
                    "knn_accuracy_features": _num(m.get("knn_accuracy_original")),
                    "cached": bool(emb.from_cache),
                }
            )
    sec.add_heading("Quality of the maps")
    sec.add_table(
        ["method", "layer", "trustworthiness", "kNN accuracy (map)", "kNN accuracy (features)"],
        [
            [
                r["method"],
                r["layer"],
                r["trustworthiness"],
                r["knn_accuracy_map"],
                r["knn_accuracy_features"],
            ]
            for r in rows
        ],
    )
    return rows


def featurevis_section(
    report: Report,
    *,
    result: Any,
    exemplars: Any,
    selectivity: np.ndarray | None,
    preferred: Mapping[int, str] | None,
    kernels: Any = None,
    class_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Gallery of optimised inputs beside their top dataset exemplars, and first-layer kernels.

    ``kernels`` is :func:`~inspect_kit.analysis.weights.conv_kernels`'s result, or None.
    """
    from inspect_kit.figures.featurevis import plot_unit_gallery

    units = list(result.units or range(len(result)))
    sec = report.section(
        "Feature visualization",
        intro=(
            f"Activation maximization of the {len(units)} most class-selective channels of "
            f"layer {result.layer}: each row shows the input optimised to excite the channel "
            "(left), the real inputs of the store that excite it most, and the optimisation's "
            "activation curve. Channels were ranked by the class selectivity index "
            "(Morcos et al., 2018) of their mean activation."
        ),
    )
    fig = plot_unit_gallery(
        result,
        exemplars,
        max_units=len(units),
        title=f"Units of {result.layer}",
        label_names=class_names,
    )
    sec.add_figure(fig, name=f"featurevis_{_safe(result.layer)}")
    rows = []
    for i, u in enumerate(units):
        ex = exemplars.for_unit(u) if exemplars is not None else None
        top = _num(ex["activations"][0]) if ex is not None else None
        opt = _num(result.final_activations[i])
        rows.append(
            {
                "unit": int(u),
                "selectivity": None if selectivity is None else _num(selectivity[u]),
                "preferred class": (preferred or {}).get(int(u)),
                "optimised activation": opt,
                "top exemplar activation": top,
                "optimised / exemplar": (opt / top) if (opt is not None and top) else None,
            }
        )
    sec.add_table(
        list(rows[0]) if rows else [],
        [list(r.values()) for r in rows],
        caption="An optimised input should excite its channel more than any real "
        "sample does (ratio above 1).",
    )
    if kernels is not None:
        from inspect_kit.figures.featurevis import plot_kernels

        sec.add_heading("First-layer kernels")
        sec.add_figure(plot_kernels(kernels, title=f"Kernels of {kernels.layer}"), name="kernels")
    return rows


def sanity_section(
    report: Report,
    *,
    randomization: Any = None,
    verdict: tuple[str, bool] | None = None,
    profiles: Mapping[str, Any] | None = None,
) -> None:
    """Randomised-weights sanity checks (Adebayo et al., 2018).

    ``verdict`` is :func:`~inspect_kit.analysis.randomization.randomization_verdict`'s text
    and whether it is a warning, shown below the cascade.
    """
    sec = report.section(
        "Sanity check: randomised weights",
        intro=(
            "An explanation that looks the same for a network with random weights does not "
            "explain what was learned (Adebayo et al., 2018). Below, the same analyses run on "
            "copies of the model whose weights were randomised."
        ),
    )
    if randomization is not None:
        from inspect_kit.figures.featurevis import plot_randomization

        sec.add_heading("Feature visualization under cascading randomisation")
        sec.add_figure(plot_randomization(randomization), name="sanity_featurevis")
        mean = randomization.mean_scores
        rows = [[stage, float(s)] for stage, s in zip(randomization.stages, mean, strict=False)]
        ref = randomization.reference_mean
        caption = f"Similarity ({randomization.metric}) of each stage's images to the trained ones"
        if ref is not None:
            caption += f"; two seeds of the trained model score {ref:.3f}"
        sec.add_table(["randomised up to", "mean similarity"], rows, caption=caption)
        if verdict is not None:
            sec.add_callout(verdict[0], warn=verdict[1])
    if profiles:
        from inspect_kit.figures.probes import plot_probe_profile

        sec.add_heading("Linear probes: trained vs random weights")
        sec.add_figure(
            plot_probe_profile(dict(profiles), title="Probe accuracy, trained vs random weights"),
            name="sanity_probe_profile",
        )
        names = list(profiles)
        layers = list(profiles[names[0]].layers)
        rows = []
        for i, layer in enumerate(layers):
            rows.append([layer, *[float(profiles[n].scores[i]) for n in names]])
        sec.add_table(["layer", *names], rows)


def latent_section(
    report: Report,
    *,
    probe: Any,
    traversal: Any,
    latent_embedding: Any,
    mean_mse: float,
    label_probe: Any = None,
    mean_baseline_mse: float | None = None,
    history: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Autoencoder latent probing: reconstruction, traversal, correlations, latent map."""
    from inspect_kit.figures.latent import (
        plot_latent_correlations,
        plot_latent_scatter,
        plot_reconstruction_errors,
        plot_traversal,
    )

    sec = report.section(
        "Latent probing (autoencoder)",
        intro=(
            "A convolutional autoencoder trained on the same inputs compresses each sample to "
            f"{probe.codes_.shape[1]} numbers. What the code keeps shows in how well it "
            "reconstructs, in what walking along each latent dimension decodes to, in how the "
            "dimensions correlate with labels and metadata, and in how well a linear probe "
            "reads the label from the code."
        ),
    )
    mse = float(mean_mse)
    summary: dict[str, Any] = {
        "latent dimensions": int(probe.codes_.shape[1]),
        "mean reconstruction error (MSE)": mse,
    }
    if mean_baseline_mse is not None:
        summary["mean-image baseline (MSE)"] = float(mean_baseline_mse)
        summary["error / baseline"] = mse / mean_baseline_mse if mean_baseline_mse else None
    if label_probe is not None:
        summary[f"label probe {label_probe.metric} (cv={label_probe.cv})"] = float(
            label_probe.score
        )
        summary["chance"] = float(label_probe.chance)
    if history:
        summary["epochs trained"] = history.get("epochs_run")
        if history.get("best_val_loss") is not None:
            summary["best validation loss"] = _num(history.get("best_val_loss"))
    sec.add_key_values(summary)
    sec.add_heading("Reconstruction error")
    sec.add_figure(plot_reconstruction_errors(probe), name="latent_reconstruction")
    sec.add_heading("Latent traversal")
    sec.add_figure(plot_traversal(traversal), name="latent_traversal")
    sec.add_heading("Latent dimensions vs labels and metadata")
    sec.add_figure(plot_latent_correlations(probe), name="latent_correlations")
    sec.add_heading("Latent space")
    sec.add_figure(
        plot_latent_scatter(latent_embedding, label_names=class_names)
        if class_names is not None
        else plot_latent_scatter(latent_embedding),
        name="latent_scatter",
    )
    return summary


def probe_section(
    report: Report, profile: Any, *, latent_probe: Any = None
) -> list[dict[str, Any]]:
    """Layer-wise linear probe profile."""
    from inspect_kit.figures.probes import plot_probe_profile

    sec = report.section(
        "Probe profile",
        intro=(
            f"A cross-validated linear probe ({profile.metric}) predicts the {profile.target} "
            "from each layer's features: where in depth it becomes linearly decodable. The "
            "dashed line is the chance level."
            + (
                f" Folds are grouped by {profile.groups} ({profile.results[0].n_groups} groups): "
                f"no {profile.groups} is in both the training and the test folds."
                if profile.groups and profile.results
                else ""
            )
        ),
    )
    sec.add_figure(
        plot_probe_profile(profile, title=f"Linear probe of {profile.target}"), name="probe_profile"
    )
    rows: list[dict[str, Any]] = []
    for layer, res in zip(profile.layers, profile.results, strict=True):
        rows.append(
            {
                "layer": layer,
                "score": float(res.score),
                "std": float(res.score_std),
                "chance": float(res.chance),
                "features": int(res.n_features),
            }
        )
    if latent_probe is not None:
        rows.append(
            {
                "layer": "autoencoder latent",
                "score": float(latent_probe.score),
                "std": float(latent_probe.score_std),
                "chance": float(latent_probe.chance),
                "features": int(latent_probe.n_features),
            }
        )
    sec.add_table(
        ["layer", profile.metric, "± std", "chance", "features"], [list(r.values()) for r in rows]
    )
    sec.add_text(f"Best layer: {profile.best_layer}.")
    return rows


def _safe(name: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


def similarity_section(
    report: Report,
    *,
    within: Any = None,
    random: Any = None,
    verdict: tuple[str, bool] | None = None,
) -> dict[str, Any]:
    """Representation similarity: CKA between the layers, and with a randomised copy.

    ``verdict`` is :func:`~inspect_kit.analysis.randomization.random_similarity_verdict`'s
    text and whether it is a warning, shown below the trained-vs-randomised table.
    """
    from inspect_kit.figures.similarity import plot_similarity

    sec = report.section(
        "Representation similarity",
        intro=(
            "Centered kernel alignment (CKA; Kornblith et al., 2019) compares two layers' "
            "representations of the same samples: 1 when they differ only by a rotation or "
            "a scaling, near 0 when unrelated. Debiased minibatch estimator (Nguyen et al., "
            "2021)."
        ),
    )
    summary: dict[str, Any] = {}
    if within is not None:
        sec.add_heading("Between the layers of the trained network")
        sec.add_figure(plot_similarity(within), name="similarity_layers")
        summary["layers"] = within.to_dict()
    if random is not None:
        sec.add_heading("Trained vs randomised weights")
        sec.add_text(
            "Each layer of the trained network against the same layers of a copy whose "
            "weights were re-initialised (the copy of the sanity check above), on "
            f"{random.params.get('reduction', 'mean')}-pooled features of the same samples. "
            "Similarity that stays high shows what the architecture and the input impose; "
            "where it falls, training changed the representation."
        )
        sec.add_figure(
            plot_similarity(random, title="CKA: trained vs randomised weights"),
            name="similarity_trained_vs_random",
        )
        diag = random.diagonal()
        sec.add_table(
            ["layer", "CKA(trained, randomised)"],
            [[layer, float(v)] for layer, v in zip(random.layers, diag, strict=True)],
        )
        if verdict is not None:
            sec.add_callout(verdict[0], warn=verdict[1])
        summary["trained_vs_random"] = dict(zip(random.layers, map(float, diag), strict=True))
    return summary
