"""Stores under faults: kills at every stage, full disks, I/O errors, readers across the finish,
truncation and bit flips, half-made files and per-sample columns that fall short.

Every capture here is compared with an uninterrupted capture of the same model and data
(the oracle), value for value.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from inspect_kit.capture import capture
from inspect_kit.store import StoreError, StoreWriteError, open_store
from inspect_kit.store.integrity import superblock_state
from inspect_kit.store.writer import StoreWriter

from ._faults_data import BATCH, N, tiny_data, tiny_model

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # seconds any subprocess may take


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def assert_same_store(got, want) -> None:
    """Two stores hold the same samples, exactly."""
    assert len(got) == len(want) and got.layers == want.layers
    np.testing.assert_array_equal(got.index, want.index)
    for name in want.layers:
        np.testing.assert_array_equal(got[name][:], want[name][:])
    for field in ("labels", "predictions", "logits", "thumbnails"):
        a, b = getattr(got, field), getattr(want, field)
        assert (a is None) == (b is None), field
        if b is not None:
            np.testing.assert_array_equal(a, b)
    assert got.metadata.keys() == want.metadata.keys()
    for k in want.metadata:
        np.testing.assert_array_equal(got.metadata[k], want.metadata[k])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    capture(tiny_model(), tiny_data(), ["0", "3"], path, progress=False).close()
    return path


def _no_leftovers(path: Path) -> None:
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()
    assert not any(t.name == "inspect_kit-writer" for t in threading.enumerate())


# -- kills (SIGKILL) at every stage, then resume ----------------------------------------------

KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import h5py
    sys.path.insert(0, sys.argv[4])
    from _faults_data import tiny_data, tiny_model
    import inspect_kit.store.writer as W
    from inspect_kit.capture import capture

    path, point, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    def hang():
        marker.write_text("here")
        time.sleep(600)

    if point == "before_first":
        W.StoreWriter._initialise = lambda self, batch: hang()
    elif point in ("first_uncommitted", "mid_write"):
        at = 0 if point == "first_uncommitted" else 16
        append = W.StoreWriter._append
        def _append(self, p, arr):
            if p == "samples/index" and self.n_done == at:
                hang()
            append(self, p, arr)
        W.StoreWriter._append = _append
    elif point == "finalise":
        modify = h5py.AttributeManager.modify
        def _modify(self, name, value):
            if name == "complete":
                hang()
            modify(self, name, value)
        h5py.AttributeManager.modify = _modify
    elif point == "closing":
        W._close_quietly = lambda f: hang()
    capture(tiny_model(), tiny_data(), ["0", "3"], path, progress=False)
    """
)


KILL_POINTS = ["before_first", "first_uncommitted", "mid_write", "finalise", "closing"]


def test_kill_at_any_stage_then_resume_gives_the_uninterrupted_store(tmp_path, reference):
    """SIGKILL before the first batch, before its commit, mid-write, while finishing, while
    closing (the five captures run side by side); each resumes to the uninterrupted store."""
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    procs = {}
    try:
        for point in KILL_POINTS:
            (tmp_path / point).mkdir()
            procs[point] = subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    str(tmp_path / point / "s.h5"),
                    point,
                    str(tmp_path / point / "marker"),
                    str(Path(__file__).parent),
                ],
                env=_env(),
                stderr=subprocess.PIPE,
                text=True,
            )
        deadline = time.monotonic() + TIMEOUT
        for point, proc in procs.items():
            marker = tmp_path / point / "marker"
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert marker.exists(), f"{point} never reached: {proc.poll()} {proc.stderr.read()}"
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            proc.stderr.close()

    for point in KILL_POINTS:
        path = tmp_path / point / "s.h5"
        if point in ("before_first", "first_uncommitted"):
            assert not path.exists()  # nothing committed: no store under the user's name
        elif point == "mid_write":
            with open_store(path) as live, open_store(reference) as ref:
                assert len(live) == 16 and not live.complete
                np.testing.assert_array_equal(live["0"][:], ref["0"][:16])
        else:
            with open_store(path) as killed:
                assert len(killed) == N and killed.complete == (point == "closing")
        s = capture(tiny_model(), tiny_data(), ["0", "3"], path, resume=True, progress=False)
        with s, open_store(reference) as ref:
            assert s.complete
            s.verify()
            assert_same_store(s, ref)
        assert superblock_state(path)[0] is True  # closed cleanly: plain h5py can write it
        with h5py.File(path, "r+") as f:
            assert f["samples/index"].shape == (N,)


# -- Hypothesis: crash images at random points, over batch sizes and dtypes -------------------


class _Cast(nn.Module):
    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return (x * 8).to(self.dtype)


def _typed_model(kind: str) -> nn.Module:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 6), nn.Identity())
    if kind == "int":
        model.append(_Cast(torch.int32))
    return model


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 13),
    batch=st.integers(1, 5),
    kind=st.sampled_from(["float32", "float16", "bfloat16", "int"]),
    kill_at=st.integers(0, 40),
    after=st.booleans(),
)
def test_crash_images_resume_exactly(tmp_path_factory, n, batch, kind, kill_at, after):
    """What a SIGKILL leaves is what was on disk at that moment: copy the file then, resume it.

    ``kill_at`` counts the writer's dataset appends (layers, columns, fingerprints, index),
    so the image may be cut inside a batch, between its rows and its commit, or after it.
    """
    d = tmp_path_factory.mktemp("crash")
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(n))
    labels = np.arange(n) % 4
    dtype = kind if kind in ("float16", "bfloat16") else None
    layers = ["0", "2"] if kind == "int" else ["0", "1"]

    def run(path, **kw):
        return capture(
            _typed_model(kind),
            x,
            layers,
            path,
            batch_size=batch,
            dtype=dtype,
            labels=labels,
            progress=False,
            **kw,
        )

    ref = run(d / "ref.h5")
    image = d / "image.h5"
    calls = []
    append = StoreWriter._append

    def _append(self, p, arr):
        if not after and len(calls) == kill_at:
            _image(self, image)
        append(self, p, arr)
        calls.append(p)
        if after and len(calls) == kill_at:
            _image(self, image)

    StoreWriter._append = _append
    try:
        run(d / "killed.h5").close()
    finally:
        StoreWriter._append = append
    with run(image, resume=True) as s, ref:
        assert s.complete
        assert_same_store(s, ref)
        assert s[layers[-1]].dtype == ref[layers[-1]].dtype
        s.verify()


def _image(writer: StoreWriter, image: Path) -> None:
    """Copy the writer's file as it is on disk, under the name it has there."""
    src = writer.path if writer.path.exists() else writer.partial
    dst = image if src == writer.path else image.with_name(image.name + ".partial")
    shutil.copyfile(src, dst)


# -- write errors ------------------------------------------------------------------------------


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = tiny_model()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.body(x)


def _inject(monkeypatch, fail_at: int, err: OSError, log: list) -> None:
    """Make the writer thread's ``fail_at``-th dataset write raise ``err``."""
    setitem = h5py.Dataset.__setitem__

    def failing(self, key, value):
        if threading.current_thread().name == "inspect_kit-writer":
            log.append(1)
            if len(log) == fail_at:
                raise err
        setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)


@pytest.mark.parametrize("fail_at", [1, 2, 13, 31])
def test_injected_enospc_is_one_error_and_keeps_committed_rows(
    tmp_path, monkeypatch, reference, fail_at
):
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    model = _Counting()
    writes: list[int] = []  # model.calls at each of the writer thread's dataset writes
    setitem = h5py.Dataset.__setitem__

    def failing(self, key, value):
        if threading.current_thread().name == "inspect_kit-writer":
            writes.append(model.calls)
            if len(writes) == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
        setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)
    path = tmp_path / "s.h5"
    with pytest.raises(StoreWriteError, match=r"s\.h5 failed: No space left on device") as info:
        capture(model, tiny_data(), ["body.0", "body.3"], path, progress=False)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert "\n" not in str(info.value)
    assert model.calls - writes[fail_at - 1] <= 2  # the caller heard within two batches
    gc.collect()
    assert unraisable == []  # no "Exception ignored" from h5py destructors
    assert not any(t.name == "inspect_kit-writer" for t in threading.enumerate())
    if fail_at <= 2:
        _no_leftovers(path)  # failed before its first commit: nothing half-made
        return
    with open_store(path) as s, open_store(reference) as ref:
        assert not s.complete and 0 < len(s) < N and len(s) % BATCH == 0
        s.verify()
        np.testing.assert_array_equal(s["body.0"][:], ref["0"][: len(s)])
        np.testing.assert_array_equal(s.labels, ref.labels[: len(s)])
    # space is back: the capture resumes to the uninterrupted store
    with capture(model, tiny_data(), ["body.0", "body.3"], path, resume=True, progress=False) as s:
        with open_store(reference) as ref:
            assert s.complete and len(s) == N
            np.testing.assert_array_equal(s["body.3"][:], ref["3"][:])
            np.testing.assert_array_equal(s.metadata["site"], ref.metadata["site"])


def test_write_error_while_finishing_leaves_an_incomplete_store(tmp_path, monkeypatch, reference):
    modify = h5py.AttributeManager.modify

    def failing(self, name, value):
        if name == "complete":
            raise OSError(errno.EIO, "Input/output error")
        modify(self, name, value)

    monkeypatch.setattr(h5py.AttributeManager, "modify", failing)
    path = tmp_path / "s.h5"
    with pytest.raises(StoreWriteError, match="Input/output error"):
        capture(tiny_model(), tiny_data(), ["0", "3"], path, progress=False)
    monkeypatch.undo()
    with open_store(path) as s, open_store(reference) as ref:
        assert not s.complete and len(s) == N
        assert_same_store(s, ref)
    with capture(tiny_model(), tiny_data(), ["0", "3"], path, resume=True, progress=False) as s:
        assert s.complete and len(s) == N


def test_real_full_disk_is_one_line_and_exit_1(tmp_path):
    """A real 2 MiB tmpfs filled by the CLI: one error line, exit status 1, a readable store."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        npz = tmp_path / "x.npz"
        np.savez(npz, x=np.random.default_rng(0).random((800, 1, 32, 32), dtype=np.float32))
        out = mnt / "acts.h5"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "inspect_kit",
                "capture",
                "inspect_kit.models:SmallCNN",
                str(npz),
                "--out",
                str(out),
                "--layers",
                "conv1",
                "--reduce",
                "none",
                "--batch-size",
                "32",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=_env(),
        )
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert run.returncode == 1, run.stderr[-3000:]
        assert len(lines) == 1, run.stderr[-3000:]
        assert lines[0].startswith("inspect-kit capture: error: writing ")
        assert "No space left on device" in lines[0] and str(out) in lines[0]
        if out.exists():
            with open_store(out) as s:
                assert not s.complete and len(s) % 32 == 0
                s.verify()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)


# -- readers never block the writer; a view is a snapshot ------------------------------------

READER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from inspect_kit.store import open_store

    path, opened, release = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    deadline = time.monotonic() + 100
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    s = open_store(path)
    n0 = len(s)
    opened.write_text(str(n0))
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    lengths = [len(s.index), len(s.labels), len(s["0"][:]), len(s["3"][:]),
               len(s.metadata["site"]), len(s.predictions)]
    was_complete = s.complete
    n1 = s.refresh()
    print(json.dumps({"n0": n0, "lengths": lengths, "was_complete": was_complete,
                      "n1": n1, "complete": s.complete}))
    s.close()
    """
)


def test_a_reader_open_across_the_finish_neither_blocks_it_nor_sees_ragged_columns(
    tmp_path, reference
):
    path, opened, release = tmp_path / "s.h5", tmp_path / "opened", tmp_path / "release"
    script = tmp_path / "reader.py"
    script.write_text(READER_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(opened), str(release)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def data():
            for number, batch in enumerate(tiny_data()):
                if number == 3:  # hold the capture until the reader has the file open
                    deadline = time.monotonic() + TIMEOUT
                    while not opened.exists() and time.monotonic() < deadline:
                        time.sleep(0.02)
                    assert opened.exists(), "the reader never opened the store"
                yield batch

        with capture(tiny_model(), data(), ["0", "3"], path, progress=False) as s:
            assert s.complete and len(s) == N
        release.write_text("go")
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    n0 = got["n0"]
    assert 0 < n0 < N and n0 % BATCH == 0
    assert got["lengths"] == [n0] * 6  # one snapshot: every column has the committed length
    assert not got["was_complete"]
    assert got["n1"] == N and got["complete"]


# -- damage is detected ------------------------------------------------------------------------


@pytest.fixture()
def store_copy(tmp_path, reference):
    path = tmp_path / "copy.h5"
    shutil.copyfile(reference, path)
    return path


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.999])
def test_truncated_store_is_an_error_naming_the_file(store_copy, keep):
    size = store_copy.stat().st_size
    os.truncate(store_copy, int(size * keep))
    with pytest.raises(StoreError, match=rf"{store_copy.name}: .*(truncated|damaged)"):
        with open_store(store_copy) as s:
            s.verify()


def test_truncated_killed_store_is_an_error(tmp_path, reference):
    """A store still flagged open for writing (killed) is checked chunk by chunk."""
    path = tmp_path / "k.h5"
    write = StoreWriter._write

    def _write(self, batch):
        write(self, batch)
        if self.n_done == 20:
            _image(self, path)

    StoreWriter._write = _write
    try:
        capture(tiny_model(), tiny_data(), ["0", "3"], tmp_path / "full.h5", progress=False)
    finally:
        StoreWriter._write = write
    assert superblock_state(path)[0] is False
    with open_store(path) as s:
        assert len(s) == 20
    # cut into the committed rows' chunks
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        offsets = []
        f["layers/0"].id.chunk_iter(lambda i: offsets.append(i.byte_offset))
    os.truncate(path, min(offsets) + 10)
    with pytest.raises(StoreError, match=r"k\.h5 .*(truncated|damaged)"):
        open_store(path)


def _chunk_offsets(path: Path, name: str) -> list[tuple[int, int]]:
    with h5py.File(path, "r") as f:
        found = []
        f[name].id.chunk_iter(lambda i: found.append((i.byte_offset, i.size)))
    return found


def _flip(path: Path, offset: int, bit: int = 3) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ (1 << bit)]))


@pytest.mark.parametrize("name", ["layers/0", "layers/3", "samples/label", "samples/index"])
def test_bit_flip_in_data_is_an_error_naming_file_and_dataset(store_copy, name):
    offset, size = _chunk_offsets(store_copy, name)[0]
    _flip(store_copy, offset + size // 2)
    with open_store(store_copy) as s:
        with pytest.raises(StoreError, match=rf"copy\.h5 is damaged: reading /{name} failed"):
            s.verify()


def test_random_bit_flips_never_read_back_as_other_values(store_copy, reference):
    rng = np.random.default_rng(0)
    size = store_copy.stat().st_size
    pristine = store_copy.read_bytes()
    detected = 0
    for offset in rng.integers(0, size, 40):
        store_copy.write_bytes(pristine)
        _flip(store_copy, int(offset), int(rng.integers(0, 8)))
        try:
            with open_store(store_copy) as s, open_store(reference) as ref:
                s.verify()
                assert_same_store(s, ref)  # a flip in unused bytes changes nothing
                assert s.provenance == ref.provenance
        except StoreError as err:
            assert store_copy.name in str(err)
            detected += 1
    assert detected >= 20  # most of a small store's bytes are data or checksummed metadata


# -- nothing half-made; per-sample columns are all-or-nothing ---------------------------------


class _Unbatched(nn.Module):
    def forward(self, x):
        return x.sum()


class _Skips(nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return self.used(x)


@pytest.mark.parametrize(
    "model, layers, x, match",
    [
        (_Skips(), ["used", "unused"], torch.randn(8, 4), "never ran"),
        (nn.Sequential(nn.Linear(4, 2)), ["0"], torch.randn(8, 5), "shapes cannot be multiplied"),
        (nn.Sequential(_Unbatched()), ["0"], torch.randn(8, 4), "not the batch axis"),
    ],
)
def test_failed_first_forward_leaves_no_file_and_a_rerun_works(tmp_path, model, layers, x, match):
    path = tmp_path / "s.h5"
    with pytest.raises(RuntimeError, match=match):
        capture(model, x, layers, path, progress=False)
    _no_leftovers(path)
    ok = nn.Sequential(nn.Linear(4, 2))
    with capture(ok, torch.randn(8, 4), ["0"], path, progress=False) as s:  # no overwrite=
        assert s.complete and len(s) == 8


@pytest.mark.parametrize(
    "second, match",
    [
        ({"x": torch.randn(4, 4)}, r"batch 1 lacks labels that the earlier batches had"),
        (
            {"x": torch.randn(4, 4), "y": torch.arange(4), "site": np.arange(4)},
            r"batch 1 has metadata 'site' that the earlier batches did not",
        ),
    ],
)
def test_per_sample_columns_are_all_or_nothing(tmp_path, second, match):
    first = {"x": torch.randn(4, 4), "y": torch.arange(4)}
    path = tmp_path / "s.h5"
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match=match):
        capture(model, [first, second, first], ["0"], path, progress=False)
    with open_store(path) as s:  # the batch before is committed and intact
        assert len(s) == 4 and not s.complete and len(s.labels) == 4
        with torch.no_grad():
            np.testing.assert_array_equal(s["0"][:], model(first["x"]).numpy())


def test_labels_appearing_after_the_first_batch_are_an_error(tmp_path):
    batches = [{"x": torch.randn(4, 4)}, {"x": torch.randn(4, 4), "y": torch.arange(4)}]
    with pytest.raises(ValueError, match=r"batch 1 has labels that the earlier batches did not"):
        capture(nn.Sequential(nn.Linear(4, 2)), batches, ["0"], tmp_path / "s.h5", progress=False)


# -- resume checks that the data is the same -------------------------------------------------


class _FailsAt(nn.Module):
    def __init__(self, at: int):
        super().__init__()
        self.body, self.at, self.calls = tiny_model(), at, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("interrupted")
        return self.body(x)


def test_resume_refuses_other_data_and_leaves_the_store_as_it_was(tmp_path, reference):
    path = tmp_path / "s.h5"
    model = _FailsAt(4)
    with pytest.raises(RuntimeError, match="interrupted"):
        capture(model, tiny_data(), ["body.0", "body.3"], path, progress=False)
    other = tiny_data(seed=6)
    with pytest.raises(ValueError, match=r"sample 0 \(in batch 0\) is not the input"):
        capture(model, other, ["body.0", "body.3"], path, resume=True, progress=False)
    changed = tiny_data()
    changed[1]["x"] = changed[1]["x"].clone()
    changed[1]["x"][2, 0, 0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"sample 6 \(in batch 1\) is not the input"):
        capture(model, changed, ["body.0", "body.3"], path, resume=True, progress=False)
    with pytest.raises(ValueError, match="holds 12 samples but the data has only 8"):
        capture(model, tiny_data()[:2], ["body.0", "body.3"], path, resume=True, progress=False)
    with open_store(path) as s, open_store(reference) as ref:
        assert len(s) == 12 and not s.complete
        np.testing.assert_array_equal(s["body.0"][:], ref["0"][:12])
    with capture(model, tiny_data(), ["body.0", "body.3"], path, resume=True, progress=False) as s:
        assert s.complete and len(s) == N
        np.testing.assert_array_equal(s["body.3"][:], open_store(reference)["3"][:])
