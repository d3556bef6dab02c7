"""The master file over per-rank parts, built without torchrun (ranks simulated in turn)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import inspect_kit
from inspect_kit.store import parts


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


def _parts_store(tmp_path: Path, x: np.ndarray, world: int, **kw: object) -> Path:
    """What `world` ranks leave: part r holds x[r::world], then rank 0 joins them."""
    path = tmp_path / "joined.h5"
    folder = parts.parts_dir(path)
    folder.mkdir()
    n = len(x)
    for r in range(min(world, n)):
        pos = np.arange(r, n, world)
        meta = {k: np.asarray(v)[pos] for k, v in kw.get("metadata", {}).items()}
        inspect_kit.capture(
            _model(), x[pos], ["1", "3"], parts.part_path(folder, r), batch_size=3,
            labels=np.asarray(kw["labels"])[pos], metadata=meta, progress=False,
        ).close()  # fmt: skip
        parts.mark_part(parts.part_path(folder, r), rank=r, world_size=world, positions=pos)
    parts.write_master(path, folder, world, n)
    return path


@pytest.mark.parametrize(("n", "world"), [(11, 3), (2, 3), (8, 2)])
def test_master_reads_as_single_store(tmp_path: Path, n: int, world: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 2, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    meta = {"site": np.array([f"s{i}" for i in range(n)]), "dose": rng.random(n)}
    single = inspect_kit.capture(
        _model(), x, ["1", "3"], tmp_path / "one.h5", batch_size=5, labels=labels,
        metadata=meta, progress=False,
    )  # fmt: skip
    path = _parts_store(tmp_path, x, world, labels=labels, metadata=meta)
    with inspect_kit.open_store(path) as joined:
        assert joined.complete and joined.n_samples == n
        for name in ("1", "3"):
            # float32 forward passes of different batch compositions: equal to float32 precision
            np.testing.assert_allclose(joined[name][:], single[name][:], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                joined[name][[n - 1, 0]], single[name][[n - 1, 0]], rtol=1e-5, atol=1e-6
            )
        np.testing.assert_array_equal(joined.index, np.arange(n))
        np.testing.assert_array_equal(joined.labels, labels)
        np.testing.assert_array_equal(joined.metadata["site"], meta["site"])
        np.testing.assert_array_equal(joined.metadata["dose"], meta["dose"])
        np.testing.assert_array_equal(joined.thumbnails, single.thumbnails)
        assert joined.provenance["distributed"]["world_size"] == world
    single.close()
    with h5py.File(path, "r") as f:  # plain h5py: one virtual array in the dataset's order
        assert f["layers/3"].is_virtual and f["layers/3"].shape == (n, 4)


def test_incomplete_part_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((6, 2, 6, 6)).astype(np.float32)
    path = _parts_store(tmp_path, x, 2, labels=np.zeros(6))
    part = parts.part_path(parts.parts_dir(path), 1)
    with h5py.File(part, "r+") as f:  # as if rank 1 stopped one sample short
        for name in ("samples/index", "samples/label"):
            f[name].resize(2, axis=0)
    with pytest.raises(RuntimeError, match=r"hold \[3, 2\] samples but ranks should hold \[3, 3\]"):
        parts.write_master(path, parts.parts_dir(path), 2, 6)
    with inspect_kit.open_store(path) as store:  # the earlier master is left as it was
        assert store.n_samples == 6


def test_resume_with_other_world_size_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((6, 2, 6, 6)).astype(np.float32)
    path = _parts_store(tmp_path, x, 3, labels=np.zeros(6))
    with pytest.raises(ValueError, match="world size 3, this job has 2"):
        parts.check_world_size(parts.parts_dir(path), 2)
    parts.check_world_size(parts.parts_dir(path), 3)
