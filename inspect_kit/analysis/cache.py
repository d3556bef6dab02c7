"""The one result cache of the analyses: results in the store, keyed by every parameter.

Each analysis writes its results under one of the schema's result groups
(:data:`inspect_kit.store.schema.RESULT_GROUPS`: ``embeddings``, ``latent``, ``probes``,
``similarity``, ``attributions`` ...) with :func:`save_cached` (or :func:`write_result` for a
result that is not looked up again), and finds them again with :func:`load_cached`. A key is
the SHA-256 of every parameter that changes the values, the analysis' name, the cache format
(:data:`CACHE_VERSION`) and the package version: a result computed by another version of
inspect_kit is recomputed, never trusted.

:func:`write_result` is the only place that writes results: where results are kept (the
store's file today) changes there and nowhere else.

Examples
--------
>>> key = cache_key("similarity", {"method": "cka", "layers": ["a", "b"]})
>>> len(key), key == cache_key("similarity", {"layers": ["a", "b"], "method": "cka"})
(64, True)
>>> key == cache_key("similarity", {"method": "rsa", "layers": ["a", "b"]})
False
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inspect_kit.store import schema

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_VERSION",
    "cache_key",
    "load_cached",
    "package_version",
    "result_group",
    "save_cached",
    "store_identity",
    "write_result",
]

#: bumped when a change of the cache's layout makes earlier results unreadable
CACHE_VERSION = 2
#: attribute holding a result's key
KEY_ATTR = "key"
#: attribute holding the version of inspect_kit that wrote a result
VERSION_ATTR = schema.INSPECT_KIT_VERSION_ATTR


def package_version() -> str:
    """The installed version of inspect_kit (part of every key)."""
    from inspect_kit._version import __version__

    return str(__version__)


def cache_key(analysis: str, params: Mapping[str, Any], *, version: str | None = None) -> str:
    """SHA-256 (hex) of an analysis' parameters, the cache format and the package version.

    Parameters
    ----------
    analysis : str
        Which analysis (``'embedding'``, ``'similarity'``, ...): equal parameters of two
        analyses never share a key.
    params : mapping
        Every parameter that changes the result, JSON-serialisable (anything else is keyed by
        its ``str``); order does not matter.
    version : str, optional
        The package version to key with (default the installed one).
    """
    payload = {
        "analysis": analysis,
        "cache_version": CACHE_VERSION,
        "inspect_kit_version": package_version() if version is None else version,
        "params": dict(params),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def result_group(kind: str, *parts: str) -> str:
    """``kind/part/...``: a group under one of the schema's result groups.

    Raises
    ------
    ValueError
        ``kind`` is not a result group of the schema.

    Examples
    --------
    >>> result_group(schema.SIMILARITY, "cka", "0123abcd") == schema.SIMILARITY + "/cka/0123abcd"
    True
    """
    if kind not in schema.RESULT_GROUPS:
        raise ValueError(
            f"{kind!r} is not a result group of the store's schema; use one of "
            f"{', '.join(schema.RESULT_GROUPS)}"
        )
    return "/".join([kind, *(p.strip("/") for p in parts if p)])


def store_identity(store: Any) -> dict[str, Any]:
    """What identifies another store in a key: its file, model hash, creation time, size."""
    prov = store.provenance
    return {
        "path": str(Path(store.path).resolve()),
        "model_sha256": prov.get(schema.MODEL_SHA256_ATTR),
        "created": prov.get(schema.CREATED_ATTR),
        "n_samples": int(store.n_samples),
    }


def write_result(
    store: Any,
    group: str,
    data: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    *,
    best_effort: bool = False,
) -> bool:
    """Write a result (arrays ``data``, JSON-able ``attrs``) under ``group``, replacing it.

    The one function that writes analysis results: under a result group of the schema
    (:func:`result_group`), or a group the user named, never under the captured data
    (``samples``, ``layers``). With ``best_effort``, a store that cannot
    be written (a capture still writing it, a read-only file system) is logged and False
    returned; otherwise the error propagates.

    Examples
    --------
    >>> write_result(store, schema.probe_group("label"), {"score": s}, {})  # doctest: +SKIP
    True
    """
    top = group.strip("/").split("/")[0]
    if top in (schema.SAMPLES, schema.LAYERS, ""):
        raise ValueError(
            f"results cannot be written under /{group.strip('/')}: that is captured data; "
            f"use a result group ({', '.join(schema.RESULT_GROUPS)})"
        )
    try:
        store.save_result(group, dict(data), dict(attrs))
    except OSError as err:
        if not best_effort:
            raise
        logger.warning("could not save %s in %s: %s", group, getattr(store, "path", store), err)
        return False
    return True


def save_cached(
    store: Any,
    group: str,
    key: str,
    data: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
) -> bool:
    """Cache a result under ``group`` with its ``key`` (best effort: False if not written)."""
    full = {**attrs, KEY_ATTR: key, VERSION_ATTR: package_version()}
    return write_result(store, group, data, full, best_effort=True)


def load_cached(
    store: Any, group: str, key: str, required: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The result saved under ``group`` with this ``key`` (and the ``required`` arrays), or None.

    A result saved with another key (other parameters, another version of inspect_kit) is
    not returned.
    """
    found = store.load_result(group)
    if found is None:
        return None
    data, attrs = found
    if attrs.get(KEY_ATTR) != key or any(name not in data for name in required):
        return None
    return data, attrs
