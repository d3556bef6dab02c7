"""Linear probes of a store's layers: where in depth a property becomes linearly decodable.

:func:`probe_profile` probes one target from each layer (read through the analysis base,
pooled block by block, in memory or streamed) with :class:`~inspect_kit.analysis.linear.LinearProbe`
and can save the profile in the store under ``probes/<target>``. The probe itself and its
result types live in :mod:`.linear` and :mod:`.probe_results` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from inspect_kit.store import schema

from . import cache as result_cache
from .base import (
    LABEL_NAMES,
    PREDICTION_NAMES,
    SampleColumns,
    layer_features,
    opened,
    resolve_layers,
)
from .blocks import dask_features, reduction_label
from .linear import LinearProbe, Solver, StreamingOptions, linear_probe, probe_estimator
from .probe_results import ProbeProfile, ProbeResult

logger = logging.getLogger(__name__)

__all__ = [
    "LinearProbe",
    "ProbeProfile",
    "ProbeResult",
    "StreamingOptions",
    "default_groups",
    "linear_probe",
    "probe_profile",
]

#: Metadata keys that name a sample's patient/subject/site, in order of preference: the
#: report groups its probes' cross-validation by the first one present with repeated values.
GROUP_KEYS: tuple[str, ...] = (
    "PatientID",
    "patient_id",
    "patient",
    "subject_id",
    "subject",
    "participant_id",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "volume",
    "site",
    "InstitutionName",
)


def default_groups(store: Any) -> str | None:
    """The metadata key a store's probes should be grouped by, or None.

    The first of :data:`GROUP_KEYS` in ``store.metadata`` whose values repeat (several samples
    of one patient, series or site) but are not all the same.

    Examples
    --------
    >>> default_groups(open_store("ct_slices.h5"))  # doctest: +SKIP
    'PatientID'
    """
    metadata = getattr(store, "metadata", None) or {}
    n = len(store)
    for key in GROUP_KEYS:
        if key in metadata:
            values = np.asarray(metadata[key])
            if len(values) != n:
                continue
            n_unique = len(np.unique(values.astype(str)))
            if 1 < n_unique < n:
                return key
    return None


def _target(columns: SampleColumns, target: Any) -> tuple[str, np.ndarray]:
    if not isinstance(target, str):
        return "target", np.asarray(target)
    return columns.target(target)


def _reduction_label(reduce: Any) -> str:
    if reduce is None or isinstance(reduce, str):
        return str(reduce).lower()
    return reduction_label(reduce)


def _features(store: Any, layer: str, reduce: Any, solver: str, batch_size: int | None) -> Any:
    """A layer's feature rows: in memory, or (streaming) read and pooled block by block, on
    the active ``dask.distributed`` cluster if there is one."""
    from ._dask import active_client

    if solver != "streaming":
        # pooled means in float64, as the streamed statistics are
        dtype = np.float64 if reduce == "mean" else None
        return layer_features(store, layer, reduce, dtype=dtype).to_numpy()
    feats = layer_features(store, layer, reduce, block_rows=batch_size)
    if active_client() is None or not hasattr(store, "to_dask"):
        return feats
    row_bytes = int(np.prod(feats.source_shape, dtype=np.int64)) * feats.dtype.itemsize
    return dask_features(feats, chunk_bytes=max(1, row_bytes) * feats.block_rows)


def _auto_solver(store: Any, layer: str, reduce: Any, memory_limit: int, chance: Any) -> str:
    """'memory' when a layer's pooled features (and scikit-learn's copies) fit in
    ``memory_limit``, else 'streaming' (never for permutation chance: in memory only)."""
    if chance == "permutation":
        return "memory"
    feats = layer_features(store, layer, reduce)
    return "memory" if feats.nbytes * 3 <= memory_limit else "streaming"


def _solver_attrs(
    solver: str, results: Sequence[ProbeResult], batch_size: int | None, probe: LinearProbe
) -> dict[str, Any]:
    """How a profile was fitted, for the store: the solver asked, the one each layer used,
    the streamed block size and epochs, and the ``dask.distributed`` scheduler it read on."""
    from ._dask import active_client

    used = [r.solver for r in results]
    client = active_client() if "streaming" in used else None
    return {
        "solver": solver,
        "layer_solvers": used,
        "batch_size": -1 if batch_size is None else int(batch_size),
        "epochs": int((probe.streaming or StreamingOptions()).epochs),
        "scheduler": "" if client is None else str(client.scheduler.address),
    }


def probe_profile(
    store: Any,
    layers: Sequence[str] | None = None,
    target: Any = "label",
    reduce: str | Callable[..., Any] | None = "mean",
    *,
    cv: int = 5,
    random_state: int | None = 0,
    save: bool = False,
    progress: bool = True,
    groups: Any = None,
    failures: list[dict[str, str]] | None = None,
    solver: Solver = "memory",
    batch_size: int | None = None,
    memory_limit: int = 2**30,
    **probe_kwargs: Any,
) -> ProbeProfile:
    """Linear probe of one target from each layer of an activation store.

    Shows where in depth a property becomes linearly decodable: the score per layer against
    its chance level.

    Parameters
    ----------
    store : ActivationStore or path
        A store written by :func:`inspect_kit.capture.capture`.
    layers : sequence of str, optional
        Layers in the order to report; default all of ``store.layers`` (capture order).
    target : str or array-like
        ``'label'``, ``'prediction'``, a metadata key, or an (N,) array.
    reduce : {'mean', 'max', 'flatten'} or callable
        How unreduced activations (N, C, *spatial) become vectors (as in
        :func:`inspect_kit.embed`); ``'mean'`` gives one feature per channel. Layers captured
        already reduced pass through.
    cv, random_state
        Passed to :func:`linear_probe` and recorded.
    save : bool
        Also write the profile to the store under ``probes/<target>``.
    groups : str or array-like, optional
        Grouped cross-validation (see :func:`linear_probe`): a metadata key of the store (e.g.
        ``'patient_id'`` captured from DICOM, a site ID) or an (N,) array. Samples of one
        group are never split between training and test folds.
    progress : bool
        Show a progress bar over layers.
    failures : list, optional
        With a list, a layer whose probe cannot run (non-finite features, too few samples
        for the folds asked) is logged, appended there as ``{"layer", "error"}`` and left out
        of the profile; the other layers are probed. Without it the error propagates.
    solver : {'memory', 'streaming', 'auto'}
        ``'streaming'`` probes layers larger than memory (see :func:`linear_probe`): each
        layer is read ``batch_size`` rows at a time and pooled block by block, never whole.
        With an active ``dask.distributed`` client, the blocks are read and pooled on the
        cluster's workers (through :meth:`ActivationStore.to_dask`; they must see the
        store's file), a few blocks ahead of the SGD on the client. ``'auto'``: per layer,
        'memory' when its pooled features fit in ``memory_limit`` (as PCA's ``'auto'``
        decides), else 'streaming'. Each result's ``solver`` says which ran.
    batch_size : int, optional
        Rows read at once when streaming (default: about 64 MiB of raw activations).
    memory_limit : int
        Bytes that ``solver='auto'`` lets a layer's features (and scikit-learn's copies) take.
    **probe_kwargs
        Further :class:`LinearProbe` parameters (``task``, ``C``, ``chance`` ...) and
        :class:`StreamingOptions` fields (``epochs``, ``sgd_alpha``). ``refit`` defaults to
        False here.

    Returns
    -------
    ProbeProfile

    Examples
    --------
    >>> profile = probe_profile("digits.h5", target="label")  # doctest: +SKIP
    >>> profile.best_layer  # doctest: +SKIP
    'fc'
    """
    if solver not in ("memory", "streaming", "auto"):
        raise ValueError(f"solver={solver!r} is not one of 'memory', 'streaming', 'auto'")
    probe_kwargs.setdefault("refit", False)
    probe = probe_estimator(
        cv=cv,
        random_state=random_state,
        **probe_kwargs,
        **({"batch_size": batch_size} if batch_size else {}),
    )
    if solver == "streaming" and probe.chance == "permutation":
        # LinearProbe says the same, but once per layer, each skipped with failures=[]
        raise ValueError(
            "chance='permutation' refits the probe n_permutations times: not offered with "
            "solver='streaming'; use chance='balanced' (or 'dummy' for regression)"
        )
    with opened(store) as st:
        names = resolve_layers(st, layers)
        columns = SampleColumns.from_store(st, read_thumbnails=False)
        target_name, y = _target(columns, target)
        n = len(columns)
        if len(y) != n:
            raise ValueError(f"target has {len(y)} values but the store has {n} samples")
        group_name = None
        if groups is not None:
            if isinstance(groups, str):
                group_name = groups
                if groups in LABEL_NAMES + PREDICTION_NAMES:
                    raise ValueError(f"groups={groups!r}: grouping by the target is not a grouping")
            groups = _target(columns, groups)[1]
            if len(groups) != n:
                raise ValueError(f"groups has {len(groups)} values but the store has {n} samples")
        results: list[ProbeResult] = []
        probed: list[str] = []
        for name in tqdm(names, desc="probing layers", disable=not progress):
            try:
                layer_solver: str = solver
                if solver == "auto":
                    layer_solver = _auto_solver(st, name, reduce, memory_limit, probe.chance)
                X = _features(st, name, reduce, layer_solver, batch_size)
                fitted = probe.set_params(solver=layer_solver).fit(X, y, groups)
                results.append(fitted.result_)
            except (ValueError, TypeError, np.linalg.LinAlgError) as err:
                if failures is None:
                    raise
                logger.warning("skipping the probe of %s: %s", name, err)
                failures.append({"layer": name, "error": str(err)})
                continue
            probed.append(name)
            logger.info("probe %s -> %s: %.3f", name, target_name, results[-1].score)
        if not probed:
            raise ValueError(
                "no layer could be probed: "
                + "; ".join(f"{f['layer']}: {f['error']}" for f in failures or [])
            )
        profile = ProbeProfile(
            layers=probed,
            results=results,
            target=target_name,
            reduce=_reduction_label(reduce),
            groups=group_name or ("array" if groups is not None else None),
        )
        if save:
            _save(st, profile, probe, solver, batch_size)
        return profile


def _save(
    store: Any, profile: ProbeProfile, probe: LinearProbe, solver: str, batch_size: int | None
) -> None:
    results = profile.results
    result_cache.write_result(
        store,
        schema.probe_group(profile.target),
        {
            "score": profile.scores,
            "score_std": profile.score_std,
            "chance": profile.chance,
            "fold_scores": np.stack([r.fold_scores for r in results]),
        },
        {
            "layers": list(profile.layers),
            "metric": profile.metric,
            "reduce": profile.reduce,
            "cv": probe.cv,
            "random_state": -1 if probe.random_state is None else probe.random_state,
            "chance_method": results[0].chance_method,
            "groups": profile.groups or "",
            **_solver_attrs(solver, results, batch_size, probe),
        },
    )
