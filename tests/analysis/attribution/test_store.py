"""Attributions of a dataset in a store: the writer's guarantees, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from inspect_kit.analysis.attribution import attribute, attribute_to_store, read_attributions
from inspect_kit.store import schema

from ._models import tiny

X = torch.rand((10, 1, 16, 16), generator=torch.Generator().manual_seed(0))
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def _ref(method: str, **kw: object) -> np.ndarray:
    return attribute(tiny(2), X, method=method, target="label", labels=Y, progress=False, **kw).maps


def test_store_holds_every_method_under_its_group(tmp_path: Path) -> None:
    p = attribute_to_store(
        tiny(2),
        X,
        tmp_path / "a.h5",
        methods=["gradcam", "ig"],
        target="label",
        labels=Y,
        batch_size=4,
        progress=False,
    )
    got = {a.method: a for a in read_attributions(p)}
    np.testing.assert_allclose(got["gradcam"].maps, _ref("gradcam"), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(
        got["integrated-gradients"].maps, _ref("integrated-gradients"), rtol=1e-5, atol=1e-7
    )
    assert got["gradcam"].layer == "relu3" and got["gradcam"].layer_resolution == (8, 8)
    assert got["integrated-gradients"].completeness_gap is not None
    assert got["gradcam"].target_classes.tolist() == Y.tolist()
    with h5py.File(p, "r") as f:
        assert f.attrs[schema.COMPLETE_ATTR]
        groups = list(f[f"{schema.ATTRIBUTIONS}/gradcam"])
        assert len(groups) == 1
        ds = f[f"{schema.ATTRIBUTIONS}/gradcam/{groups[0]}/maps"]
        assert ds.fletcher32 and ds.shape == (10, 1, 16, 16)
        assert f[schema.INPUT_DIGEST].shape == (10,)


class _Dies:
    """Batches of X; raises once ``after`` batches were handed out (a crash mid-run)."""

    def __init__(self, after: int):
        self.after = after

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i in range(0, 10, 3):
            if i // 3 == self.after:
                raise RuntimeError("killed")
            yield X[i : i + 3], torch.as_tensor(Y[i : i + 3])


def test_killed_mid_write_then_resumed_exactly(tmp_path: Path) -> None:
    p = tmp_path / "a.h5"
    with pytest.raises(RuntimeError, match="killed"):
        attribute_to_store(
            tiny(2), _Dies(2), p, methods=["saliency"], target="label", progress=False
        )
    with h5py.File(p, "r") as f:
        assert not f.attrs[schema.COMPLETE_ATTR] and f[schema.INDEX].shape == (6,)
    attribute_to_store(
        tiny(2), _Dies(99), p, methods=["saliency"], target="label", resume=True, progress=False
    )
    (a,) = read_attributions(p)
    np.testing.assert_array_equal(a.index, np.arange(10))
    np.testing.assert_allclose(a.maps, _ref("saliency"), rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="methods"):
        attribute_to_store(
            tiny(2), _Dies(99), p, methods=["gradcam"], target="label", resume=True, progress=False
        )
    other = X.clone()
    other[0] += 1
    p2 = tmp_path / "b.h5"
    with pytest.raises(RuntimeError, match="killed"):
        attribute_to_store(
            tiny(2), _Dies(1), p2, methods=["saliency"], target="label", progress=False
        )
    with pytest.raises(ValueError, match="fingerprints differ"):
        attribute_to_store(
            tiny(2),
            [(other[:3], torch.as_tensor(Y[:3]))],
            p2,
            methods=["saliency"],
            target="label",
            resume=True,
            progress=False,
        )


def test_sigkill_mid_write_then_resume(tmp_path: Path) -> None:
    p = tmp_path / "k.h5"
    script = textwrap.dedent(
        f"""
        import os, signal, torch, numpy as np
        from inspect_kit.analysis.attribution import attribute_to_store
        from tests.analysis.attribution._models import tiny
        X = torch.rand((10, 1, 16, 16), generator=torch.Generator().manual_seed(0))
        def batches():
            for i in range(0, 10, 3):
                if i == 9:
                    import time; time.sleep(0.5)  # the writer thread commits what it has
                    os.kill(os.getpid(), signal.SIGKILL)
                yield X[i:i + 3]
        attribute_to_store(tiny(2), batches(), {str(p)!r}, methods=["gradient"], target=1,
                           progress=False)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    attribute_to_store(
        tiny(2), X, p, methods=["gradient"], target=1, batch_size=3, resume=True, progress=False
    )
    (a,) = read_attributions(p)
    ref = attribute(tiny(2), X, method="gradient", target=1, progress=False).maps
    np.testing.assert_allclose(a.maps, ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(a.index, np.arange(10))
