"""The one result cache: keys from every parameter and the package version, hits and misses,
writes only through write_result, and the analyses that use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import inspect_kit as ik
from inspect_kit import capture
from inspect_kit.analysis import cache


@pytest.fixture
def store(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    X = np.random.default_rng(0).normal(size=(80, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    with capture(net, X, ["0", "1", "2"], tmp_path / "s.h5", labels=y, progress=False) as s:
        yield s


PARAMS = {"method": "cka", "layers": ["a", "b"], "batch_size": 64, "random_state": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"method": "rsa"},
        {"layers": ["b", "a"]},
        {"batch_size": 32},
        {"batch_size": None},
        {"random_state": 1},
        {"extra": 0},
    ],
)
def test_every_parameter_changes_the_key(change):
    base = cache.cache_key("similarity", PARAMS)
    assert cache.cache_key("similarity", {**PARAMS, **change}) != base
    assert cache.cache_key("similarity", dict(reversed(list(PARAMS.items())))) == base


def test_the_analysis_and_the_package_version_are_in_the_key(monkeypatch):
    base = cache.cache_key("similarity", PARAMS)
    assert cache.cache_key("embedding", PARAMS) != base
    assert cache.cache_key("similarity", PARAMS, version="0.0.1") != base
    import inspect_kit._version as version

    monkeypatch.setattr(version, "__version__", "99.0")
    assert cache.package_version() == "99.0"
    assert cache.cache_key("similarity", PARAMS) != base


def test_hit_miss_and_where_results_go(store):
    group = cache.result_group("similarity", "cka", "k1")
    assert group == "similarity/cka/k1"
    key = cache.cache_key("similarity", PARAMS)
    assert cache.load_cached(store, group, key) is None  # miss: nothing there
    assert cache.save_cached(store, group, key, {"matrix": np.eye(2)}, {"n": 3})
    data, attrs = cache.load_cached(store, group, key, ("matrix",))
    np.testing.assert_array_equal(data["matrix"], np.eye(2))
    assert attrs["n"] == 3 and attrs["key"] == key
    assert attrs["inspect_kit_version"] == cache.package_version()
    other = cache.cache_key("similarity", {**PARAMS, "random_state": 1})
    assert cache.load_cached(store, group, other) is None  # miss: other parameters
    assert cache.load_cached(store, group, key, ("bandwidths",)) is None  # miss: incomplete
    with pytest.raises(ValueError, match="result group"):
        cache.result_group("layers", "x")
    with pytest.raises(ValueError, match="captured data"):
        cache.write_result(store, "samples/extra", {"a": np.zeros(2)}, {})


def test_a_store_that_cannot_be_written_is_logged_not_fatal(store, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr(store, "save_result", refuse)
    assert not cache.save_cached(store, "probes/x", "k", {"a": np.zeros(1)}, {})
    assert "read-only" in caplog.text
    with pytest.raises(OSError):
        cache.write_result(store, "probes/x", {"a": np.zeros(1)}, {})


def test_analyses_write_their_results_through_write_result(store, monkeypatch):
    written: list[str] = []
    real = cache.write_result

    def spy(st, group, data, attrs, **kw):
        written.append(group)
        return real(st, group, data, attrs, **kw)

    monkeypatch.setattr(cache, "write_result", spy)
    ik.embed(store, "1", "pca", progress=False)
    first = ik.similarity(store, batch_size=None, progress=False)
    again = ik.similarity(store, batch_size=None, progress=False)
    ik.probe_profile(store, ["0", "2"], cv=3, save=True, progress=False)
    tops = [g.split("/")[0] for g in written]
    assert tops == ["embeddings", "embedding_cache", "similarity", "probes"]
    assert again.from_cache and not first.from_cache
    np.testing.assert_array_equal(again.matrix, first.matrix)
    # a new version of the package recomputes
    import inspect_kit._version as version

    monkeypatch.setattr(version, "__version__", "99.0")
    assert not ik.similarity(store, batch_size=None, progress=False).from_cache
    assert not ik.embed(store, "1", "pca", progress=False).from_cache
