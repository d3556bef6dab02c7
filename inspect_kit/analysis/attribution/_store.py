"""Attributions of a dataset written like activations: the store's writer (resumable,
checksummed, all-or-nothing per sample), one group per method, target and parameter set
(``attributions/<method>/<key>``, spelled by :mod:`inspect_kit.store.schema`)."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inspect_kit._version import __version__
from inspect_kit.capture import state_dict_sha256
from inspect_kit.capture.inputs import make_stream
from inspect_kit.store import schema
from inspect_kit.store.writer import Batch, StoreWriter

from ._api import attribute
from ._options import AttributionOptions, canonical_method
from ._result import Attribution
from ._targets import TargetLike

__all__ = ["attribute_to_store", "read_attributions"]

logger = logging.getLogger(__name__)


def _fields(a: Attribution) -> dict[str, np.ndarray]:
    out = {
        "maps": a.maps,
        "score": np.asarray(a.scores, dtype=np.float32),
        "target_class": np.asarray(a.target_classes, dtype=np.int64),
    }
    if a.completeness_gap is not None:
        out["completeness_gap"] = np.asarray(a.completeness_gap, dtype=np.float32)
    return out


def _group_attrs(a: Attribution) -> dict[str, Any]:
    return {
        "method": a.method,
        "params": json.dumps(a.params, sort_keys=True, default=str),
        "signed": bool(a.signed),
        "layer": a.layer or "",
        "layer_resolution": list(a.layer_resolution or ()),
        "model_sha256": a.model_sha256,
    }


def attribute_to_store(
    model: nn.Module,
    data: Any,
    path: str | Path,
    *,
    methods: Sequence[str],
    target: TargetLike = "predicted",
    layer: str | None = None,
    output: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    memory_budget: int | float | str | None = None,
    labels: Any = None,
    options: AttributionOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Attribute every sample of ``data`` with each method and write the maps to a store.

    The file is written by the store's writer, as a capture is: batch by batch from a
    background thread, each batch committed all-or-nothing (a killed run leaves the samples
    committed so far, readable, with ``complete = False``), chunks checksummed (Fletcher32),
    inputs fingerprinted so that ``resume=True`` continues only on the same data in the same
    order. Each method's rows live under ``attributions/<method>/<key>``: ``maps``
    ``(N, C, *spatial)``, ``score``, ``target_class`` (and ``completeness_gap`` for
    integrated gradients); the ``maps`` dataset's attributes hold the parameters, the CAM
    layer and its resolution.

    Parameters
    ----------
    model, data, target, layer, output, device, memory_budget, labels, options
        As for :func:`attribute`; ``data`` is read like capture reads it.
    path : str or Path
        The store file to write.
    methods : sequence of str
        Methods to run on every batch.
    batch_size : int, optional
        Samples per data batch (tensors and Datasets; a DataLoader keeps its own).
    resume, overwrite : bool
        Continue an unfinished store / replace an existing one.
    progress : bool

    Returns
    -------
    Path

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    >>> p = attribute_to_store(net, torch.rand(3, 1, 4, 4), "/tmp/ik_attr_doctest.h5",
    ...                        methods=["saliency"], overwrite=True, progress=False)
    >>> read_attributions(p)[0].maps.shape
    (3, 1, 4, 4)
    """
    path = Path(path)
    names = [canonical_method(m) for m in methods]
    opts = options or AttributionOptions()
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other; choose one")
    if path.exists() and not (resume or overwrite):
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it, or resume=True to continue"
        )
    stream = make_stream(data, batch_size=batch_size, labels=labels)
    sha = state_dict_sha256(model)
    config = {
        "kind": "attributions",
        "methods": names,
        "target": target if isinstance(target, str | int) else repr(target),
        "layer": layer,
        "output": output,
        "options": json.loads(
            json.dumps({k: v for k, v in vars(opts).items() if k != "composite"}, default=str)
        ),
        "data": stream.description,
    }
    resuming = resume and path.exists()
    if resuming:
        with schema.open_h5_read(path) as f:
            prov = schema.decode_attrs(f.attrs)
            prev = prov.get(schema.CONFIG_ATTR) or {}
            for k in ("methods", "target", "layer", "output", "options"):
                if prev.get(k) != config[k]:
                    raise ValueError(
                        f"cannot resume {path}: it was written with {k}={prev.get(k)!r} but this "
                        f"call has {k}={config[k]!r}; use the same arguments or a new path"
                    )
            if prov.get(schema.MODEL_SHA256_ATTR) != sha:
                raise ValueError(
                    f"cannot resume {path}: it was written from a model with other weights"
                )
            if prov.get(schema.COMPLETE_ATTR):
                logger.info("%s is already complete; nothing to resume", path)
                return path
    attrs = {
        schema.SCHEMA_VERSION_ATTR: schema.SCHEMA_VERSION,
        schema.INSPECT_KIT_VERSION_ATTR: __version__,
        schema.TORCH_VERSION_ATTR: torch.__version__,
        schema.NUMPY_VERSION_ATTR: np.__version__,
        schema.CREATED_ATTR: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        schema.MODEL_CLASS_ATTR: f"{type(model).__module__}.{type(model).__qualname__}",
        schema.MODEL_SHA256_ATTR: sha,
        schema.CONFIG_ATTR: config,
    }
    writer = StoreWriter(path, attrs, resume=resuming, expected_rows=stream.n_samples)
    skip, seen, ok = writer.n_done, 0, False
    groups: dict[str, str] = {}
    try:
        for number, b in enumerate(stream.batches):
            n = len(b)
            host = np.ascontiguousarray(b.x.detach().cpu().numpy())
            if seen < skip:
                stored = writer.stored_digests(seen, min(seen + n, skip))
                from inspect_kit.store.integrity import sample_digests

                if stored is not None and (stored != sample_digests(host[: len(stored)])).any():
                    raise ValueError(
                        f"cannot resume {path}: batch {number} is not the data the store holds "
                        "(input fingerprints differ); resume needs the same data in the same order"
                    )
            if seen + n <= skip:
                seen += n
                continue
            start = max(0, skip - seen)
            seen += n
            x, host = b.x[start:], host[start:]
            y = None if b.y is None else np.asarray(b.y)[start:]
            rows: dict[str, np.ndarray] = {}
            prediction = None
            for m in names:
                a = attribute(
                    model,
                    x,
                    method=m,
                    target=target,
                    layer=layer,
                    output=output,
                    device=device,
                    memory_budget=memory_budget,
                    labels=y,
                    options=opts,
                    progress=progress,
                )
                group = schema.attribution_group(m, a.key).split("/", 1)[1]
                if groups.setdefault(m, group) != group:
                    raise RuntimeError(
                        f"{m}: batch {number} resolved other parameters ({a.key}) than the first "
                        "batch; give layer= explicitly"
                    )
                for k, v in _fields(a).items():
                    rows[f"{group}/{k}"] = v
                if number == 0 or not writer.n_done:
                    writer.set_layer_attrs(f"{schema.ATTRIBUTIONS}/{group}/maps", _group_attrs(a))
                prediction = a.predictions
            assert b.index is not None
            writer.put(
                Batch(
                    index=b.index[start:],
                    layers={},
                    label=y,
                    prediction=prediction,
                    meta={k: v[start:] for k, v in b.meta.items()},
                    inputs=host,
                    attributions=rows,
                    number=number,
                )
            )
        if seen < skip:
            raise ValueError(
                f"cannot resume {path}: it holds {skip} samples but the data has {seen}"
            )
        ok = True
    finally:
        writer.close(complete=ok)
    return path


def _params(value: Any) -> dict[str, Any]:
    return dict(json.loads(value)) if isinstance(value, str) else dict(value)


def read_attributions(path: str | Path, method: str | None = None) -> list[Attribution]:
    """Every attribution group of a store (or one method's), as :class:`Attribution` objects.

    Reads the committed rows only (a store still being written, or killed, reads as far as
    it got).
    """
    out = []
    with schema.open_h5_read(path) as f:
        if schema.ATTRIBUTIONS not in f:
            return []
        n = int(f[schema.INDEX].shape[0])
        index = f[schema.INDEX][:n]
        labels = f[schema.LABEL][:n] if schema.LABEL in f else None
        preds = f[schema.PREDICTION][:n] if schema.PREDICTION in f else None
        sha = str(schema.decode_attrs(f.attrs).get(schema.MODEL_SHA256_ATTR, ""))
        for m in f[schema.ATTRIBUTIONS]:
            if method is not None and m != canonical_method(method):
                continue
            for key in f[f"{schema.ATTRIBUTIONS}/{m}"]:
                g = f[f"{schema.ATTRIBUTIONS}/{m}/{key}"]
                a = schema.decode_attrs(g["maps"].attrs)
                cls = g["target_class"][:n]
                res = tuple(int(v) for v in np.asarray(a.get("layer_resolution", [])))
                out.append(
                    Attribution(
                        maps=g["maps"][:n],
                        method=str(a.get("method", m)),
                        params=_params(a.get("params", {})),
                        targets=[f"class {int(c)}" if c >= 0 else "custom target" for c in cls],
                        target_classes=cls,
                        scores=g["score"][:n],
                        model_sha256=sha,
                        signed=bool(a.get("signed", True)),
                        layer=str(a.get("layer")) or None,
                        layer_resolution=res or None,
                        index=index,
                        labels=labels,
                        predictions=preds,
                        completeness_gap=g["completeness_gap"][:n]
                        if "completeness_gap" in g
                        else None,
                    )
                )
    return out
