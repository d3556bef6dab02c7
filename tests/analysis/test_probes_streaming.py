"""Linear probes streamed block by block (SGD) against the in-memory probe, on real digits.

The oracle is scikit-learn's LogisticRegression / RidgeCV probe on the same folds; the
streamed probe may trail it by a stated margin (SGD, 5 epochs). Reads are instrumented: no
read of the layer is larger than one block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import inspect_kit
from inspect_kit.analysis.probes import linear_probe, probe_profile
from inspect_kit.store.reader import LayerView

#: balanced accuracy the streamed SGD probe may lose to the in-memory logistic regression
MARGIN = 0.04
N_DIGITS = 1797


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data.astype(np.float32), d.target


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 1797 real digits through a random conv + ReLU, full (8, 6, 6) maps stored."""
    d = load_digits()
    x = (d.images[:, None] / 16.0).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU())
    path = tmp_path_factory.mktemp("stream_probe") / "digits.h5"
    with pytest.MonkeyPatch.context() as mp:  # several HDF5 chunks
        mp.setattr("inspect_kit.store.writer.CHUNK_BYTES", 64 * 288 * 4)
        inspect_kit.capture(
            model, x, ["1"], path, labels=d.target, batch_size=64, progress=False,
            metadata={"writer": (np.arange(N_DIGITS) // 30).astype(str)},
        ).close()  # fmt: skip
    return path


def test_streamed_probe_of_a_store_reads_blocks_and_matches_memory(
    digits_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with inspect_kit.open_store(digits_store) as store:
        memory = probe_profile(store, ["1"], reduce="flatten", progress=False).results[0]

        reads: list[int] = []
        original = LayerView.__getitem__

        def recording(self: LayerView, key: object) -> np.ndarray:
            out = original(self, key)
            reads.append(len(out))
            return out

        monkeypatch.setattr(LayerView, "__getitem__", recording)
        streamed = probe_profile(
            store, ["1"], reduce="flatten", solver="streaming", batch_size=100,
            progress=False, epochs=5,
        ).results[0]  # fmt: skip
    assert streamed.solver == "streaming" and memory.solver == "memory"
    assert streamed.n_features == memory.n_features == 288
    # the same folds: the same chance level, the same per-fold class sets
    assert streamed.chance == memory.chance
    assert memory.score > 0.9
    assert streamed.score > memory.score - MARGIN, (streamed.score, memory.score)
    # every read is one block: 1 row to learn the shape, then 7 passes of 18 blocks
    blocks = -(-N_DIGITS // 100)
    assert max(reads) <= 100
    assert len(reads) == 1 + (5 + 2) * blocks
    assert sum(reads) == 1 + (5 + 2) * N_DIGITS


def test_streamed_probe_keeps_groups_and_matches_memory(digits) -> None:
    X, y = digits
    writers = np.arange(len(y)) // 30  # 60 groups: no writer in two folds
    memory = linear_probe(X, y, groups=writers, refit=False)
    streamed = linear_probe(X, y, groups=writers, solver="streaming", batch_size=128)
    assert streamed.n_groups == memory.n_groups == 60
    assert streamed.chance == memory.chance
    assert streamed.score > memory.score - MARGIN, (streamed.score, memory.score)
    # the refitted pipeline: the streamed scaler is the data's mean and std
    scaler, sgd = streamed.estimator[0], streamed.estimator[-1]
    np.testing.assert_allclose(scaler.mean_, X.astype(np.float64).mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(scaler.var_, X.astype(np.float64).var(axis=0), rtol=1e-9, atol=1e-9)
    assert type(sgd).__name__ == "SGDClassifier"
    assert (streamed.estimator.predict(X) == y).mean() > 0.95


def test_streamed_ridge_probe_equals_ridgecv(digits) -> None:
    X, _ = digits
    rng = np.random.default_rng(0)
    # a continuous target read out from two pixels, with noise: R² well below 1 is possible
    target = 2.0 * X[:, 20] + X[:, 30] + rng.normal(scale=2.0, size=len(X))
    memory = linear_probe(X, target)
    streamed = linear_probe(X, target, solver="streaming", batch_size=128)
    assert streamed.task == "regression" and streamed.chance == memory.chance
    assert 0.5 < memory.score < 0.99
    # exact: the same penalty per fold (leave-one-out), the same scores to float precision
    np.testing.assert_allclose(streamed.fold_scores, memory.fold_scores, rtol=1e-6)
    ridge, ridgecv = streamed.estimator[-1], memory.estimator[-1]
    assert ridge.alpha == ridgecv.alpha_
    np.testing.assert_allclose(ridge.coef_, ridgecv.coef_, rtol=1e-5, atol=1e-8)
    # the in-memory pipeline predicts float32 rows in float32
    expected = memory.estimator.predict(X)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(streamed.estimator.predict(X), expected, atol=1e-5 * scale)


def test_streaming_refuses_permutation_chance(digits) -> None:
    X, y = digits
    with pytest.raises(ValueError, match="permutation"):
        linear_probe(X, y, solver="streaming", chance="permutation")
    with pytest.raises(ValueError, match="solver"):
        linear_probe(X, y, solver="sgd")


def test_streamed_probe_on_a_local_cluster(digits_store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with inspect_kit.open_store(digits_store) as store:
        memory = probe_profile(store, ["1"], reduce="flatten", groups="writer", progress=False)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            with (
                distributed.Client(cluster) as client,
                distributed.get_task_stream(client) as stream,
            ):
                assert len(client.scheduler_info()["workers"]) == 2
                streamed = probe_profile(
                    store, ["1"], reduce="flatten", solver="streaming", batch_size=256,
                    groups="writer", progress=False,
                ).results[0]  # fmt: skip
        finally:
            cluster.close()
    # the blocks were read and reduced on the workers (tasks of the layer's Dask array)
    assert any("reduce_block" in str(t["key"]) for t in stream.data)
    assert streamed.solver == "streaming" and streamed.n_groups == 60
    assert streamed.chance == memory.results[0].chance
    assert streamed.score > memory.results[0].score - MARGIN, (streamed, memory)
