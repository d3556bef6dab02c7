"""Store round trips, concurrent reading, and recovery from a capture killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from inspect_kit.capture import capture
from inspect_kit.store import open_store

KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    from torch.utils.data import Dataset
    from inspect_kit.capture import capture

    class Slow(Dataset):
        def __init__(self, delay):
            self.x = torch.randn(64, 1, 6, 6, generator=torch.Generator().manual_seed(5))
            self.delay = delay
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            time.sleep(self.delay)
            return self.x[i], i % 3

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))

    if __name__ == "__main__":
        capture(model(), Slow(float(sys.argv[2])), ["0", "3"], sys.argv[1], batch_size=4, progress=False)
    """
)


def test_killed_capture_reads_back_and_resumes_without_duplicates(tmp_path):
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script), str(path), "0.02"], env=env)
    try:
        deadline = time.time() + 120
        seen = 0
        while time.time() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    # a second reader while the capture is writing (SWMR)
                    with open_store(path) as live:
                        seen = len(live)
                        if seen >= 12:
                            assert not live.complete
                            break
                except (OSError, KeyError):
                    pass  # file created but datasets not yet there
            time.sleep(0.05)
        assert proc.poll() is None, "capture finished before it could be killed; slow it down"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen >= 12
    sys.path.insert(0, str(tmp_path))
    try:
        import kill_me
    finally:
        sys.path.remove(str(tmp_path))
    data = kill_me.Slow(0.0)
    model = kill_me.model()
    with torch.no_grad():
        ref = model[0](data.x).numpy()
    with open_store(path) as s:
        n = len(s)
        assert not s.complete and 12 <= n < 64 and n % 4 == 0
        np.testing.assert_allclose(s["0"][:], ref[:n], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(s.labels, np.arange(n) % 3)
    s = capture(model, data, ["0", "3"], path, batch_size=4, resume=True, progress=False)
    assert s.complete and len(s) == 64
    np.testing.assert_array_equal(s.index, np.arange(64))
    np.testing.assert_allclose(s["0"][:], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(s.labels, np.arange(64) % 3)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 9),
    batch=st.integers(1, 4),
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    dtype=st.sampled_from([None, "float16", "bfloat16"]),
)
def test_round_trip_over_shapes_and_dtypes(tmp_path_factory, n, batch, shape, dtype):
    path = tmp_path_factory.mktemp("rt") / "s.h5"
    x = torch.randn([n, *shape], generator=torch.Generator().manual_seed(n))
    model = nn.Sequential()
    model.add_module("id", nn.Identity())
    store = capture(
        model, x, ["id"], path, batch_size=batch, dtype=dtype, thumbnails=None, progress=False
    )
    with store:
        got = store["id"][:]
        want = x if dtype is None else x.to(getattr(torch, dtype)).float()
        # float16 reads back as float16; bfloat16 (no numpy type) widens to float32
        assert got.shape == tuple(x.shape)
        assert got.dtype == (np.float16 if dtype == "float16" else np.float32)
        np.testing.assert_array_equal(got.astype(np.float32), want.numpy())
        assert store["id"].stored_dtype == (dtype or "float32")
        # lazy reads: slices, negative and fancy indices agree with the whole
        idx = np.array([n - 1, 0, n // 2])
        np.testing.assert_array_equal(store["id"][idx], got[idx])
        np.testing.assert_array_equal(store["id"][-1], got[-1])
        chunks = [rows for _, rows in store.iter_chunks("id", batch_size=2)]
        np.testing.assert_array_equal(np.concatenate(chunks), got)


def test_store_readable_with_plain_h5py_and_provenance(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(10, 3)
    s = capture(
        model, x, ["1"], tmp_path / "p.h5", labels=np.arange(10) % 2, batch_size=3, progress=False
    )
    prov = s.provenance
    assert prov["schema_version"] == 1 and prov["complete"] is True
    assert prov["model_class"] == "torch.nn.modules.container.Sequential"
    assert len(prov["model_sha256"]) == 64 and prov["config"]["layers"] == ["1"]
    assert prov["torch_version"] == torch.__version__
    s.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["layers/1"].shape == (10, 4)
        assert f["layers/1"].chunks[0] >= 1 and f["layers/1"].maxshape[0] is None
        np.testing.assert_array_equal(f["samples/label"][:], np.arange(10) % 2)
        np.testing.assert_array_equal(f["samples/index"][:], np.arange(10))


def test_sha256_changes_with_weights(tmp_path):
    from inspect_kit.capture import state_dict_sha256

    m = nn.Linear(3, 2)
    a = state_dict_sha256(m)
    with torch.no_grad():
        m.weight[0, 0] += 1e-3
    assert state_dict_sha256(m) != a


def test_save_and_load_results(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    s = capture(model, torch.randn(5, 3), ["0"], tmp_path / "r.h5", progress=False)
    coords = np.random.default_rng(0).normal(size=(5, 2))
    s.save_result(
        "embeddings/0/pca",
        {"coords": coords, "names": np.array(["a", "b"])},
        {"params": {"n_components": 2}, "seed": 0},
    )
    data, attrs = s.load_result("embeddings/0/pca")
    np.testing.assert_array_equal(data["coords"], coords)
    assert list(data["names"]) == ["a", "b"]
    assert attrs == {"params": {"n_components": 2}, "seed": 0}
    assert s.results() == ["embeddings/0/pca"] and s.load_result("embeddings/x") is None
    assert len(s["0"][:]) == 5  # still readable after the write
    with pytest.raises(ValueError, match="captured data"):
        s.save_result("layers/0", {"a": coords}, {})
    assert "embeddings/0/pca" in s.summary()


def test_default_chunked_iteration_over_a_large_layer(tmp_path):
    # regression: two refreshed h5py objects of one SWMR dataset broke reads under HDF5 2.0
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Flatten())
    x = torch.randn(300, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    s = capture(model, x, ["1"], tmp_path / "big.h5", batch_size=100, progress=False)
    whole = s["1"][:]
    blocks = list(s.iter_chunks("1"))
    assert sum(len(b) for _, b in blocks) == 300
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), whole)
    view = s["1"]
    first = view[:10]
    np.testing.assert_array_equal(s["1"][5:15][:5], first[5:])
