"""A complete capture is never lost by a later write (issue 23, finding 5).

Every kind of write after a capture (the CLI's ``/inputs`` record, embedding, probe,
similarity and latent caches) goes to the results file beside the store, atomically. A real
full tmpfs during each kind, and a SIGKILL inside each kind, leave the store verifying, the
earlier results as they were, and the next write repairs what was left, with one line.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from inspect_kit.capture import capture
from inspect_kit.store import open_store, schema
from inspect_kit.store.results import results_path

from ._faults_data import tiny_data, tiny_model

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120

#: one group of each kind of result write
KINDS = {
    "inputs": schema.INPUTS,
    "embedding": schema.embedding_group("3", "pca"),
    "embedding_cache": schema.embedding_variant_group("3", "pca", "k" * 24),
    "probe": schema.probe_group("label"),
    "similarity": f"{schema.SIMILARITY}/cka/abc",
    "latent": schema.LATENT,
}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("made") / "s.h5"
    capture(tiny_model(), tiny_data(8), ["0", "3"], path, progress=False).close()
    with open_store(path) as s:
        assert s.save_result("probes/first", {"acc": np.arange(3.0)}, {"note": "before"})
    return path


def _intact(path: Path) -> None:
    with open_store(path) as s:
        s.verify()
        assert s.complete and len(s) == 8
        found = s.load_result("probes/first")
        assert found is not None and found[1]["note"] == "before"
        np.testing.assert_array_equal(found[0]["acc"], np.arange(3.0))


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` up to ``leave`` free bytes."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_full_disk_during_a_result_write_loses_nothing(made, small_disk, kind, caplog):
    path = small_disk / "s.h5"
    shutil.copy(made, path)
    shutil.copy(results_path(made), results_path(path))
    sidecar_before = results_path(path).read_bytes()
    filler = _fill(small_disk, leave=4096)
    big = {"values": np.random.default_rng(0).random((200, 200))}  # 320 kB: cannot fit
    with caplog.at_level(logging.WARNING), open_store(path) as s:
        assert s.save_result(KINDS[kind], big, {"kind": kind}) is False
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert str(path) in lines[0]
    assert results_path(path).read_bytes() == sidecar_before
    assert not list(small_disk.glob("*.tmp-*"))
    _intact(path)
    filler.unlink()
    with open_store(path) as s:  # the next command writes it
        assert s.save_result(KINDS[kind], big, {"kind": kind})
        np.testing.assert_array_equal(s.load_result(KINDS[kind])[0]["values"], big["values"])
    _intact(path)


def test_a_full_disk_during_embed_is_one_warning_and_the_store_stands(made, small_disk):
    path = small_disk / "s.h5"
    shutil.copy(made, path)
    _fill(small_disk, leave=2048)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspect_kit",
            "embed",
            str(path),
            "--methods",
            "pca",
            "--layers",
            "3",
            "--out",
            str(small_disk.parent / "figs"),
            "--formats",
            "html",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    warned = [ln for ln in run.stderr.splitlines() if "not saved" in ln]
    assert len(warned) == 1 and "No space left" in warned[0], run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    with open_store(path) as s:
        s.verify()


KILLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import h5py, numpy as np
    from inspect_kit.store import open_store

    path, group, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    create = h5py.Group.create_dataset

    def hang(self, name, *args, **kwargs):
        ds = create(self, name, *args, **kwargs)
        if self.name.strip("/") == group:  # inside the write of this result
            self.file.flush()
            marker.write_text("here")
            time.sleep(600)
        return ds

    h5py.Group.create_dataset = hang
    with open_store(path) as s:
        s.save_result(group, {"values": np.arange(10.0)}, {"kind": "killed"})
    """
)


def test_a_kill_inside_each_result_write_loses_nothing(made, tmp_path, caplog):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    procs = {}
    for kind, group in KINDS.items():
        (tmp_path / kind).mkdir()
        path = tmp_path / kind / "s.h5"
        shutil.copy(made, path)
        shutil.copy(results_path(made), results_path(path))
        procs[kind] = subprocess.Popen(
            [sys.executable, str(script), str(path), group, str(tmp_path / kind / "marker")],
            env=_env(),
        )
    try:
        deadline = time.time() + TIMEOUT
        for kind in KINDS:
            while not (tmp_path / kind / "marker").exists():
                assert procs[kind].poll() is None, kind
                assert time.time() < deadline
                time.sleep(0.05)
            os.kill(procs[kind].pid, signal.SIGKILL)
            procs[kind].wait(timeout=TIMEOUT)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for kind, group in KINDS.items():
        path = tmp_path / kind / "s.h5"
        assert list((tmp_path / kind).glob("*.tmp-*")), kind  # the kill left its write behind
        _intact(path)
        caplog.clear()
        with caplog.at_level(logging.WARNING), open_store(path) as s:
            assert s.load_result(group) is None  # the killed write never happened
            assert s.save_result(group, {"values": np.arange(4.0)}, {"kind": "again"})
            assert s.load_result(group)[1]["kind"] == "again"
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == 1 and "interrupted" in lines[0], lines
        assert not list((tmp_path / kind).glob("*.tmp-*"))
        _intact(path)


def test_a_read_only_filesystem_reads_and_skips_saving_with_one_line(made, small_disk, caplog):
    path = small_disk / "s.h5"
    shutil.copy(made, path)
    shutil.copy(results_path(made), results_path(path))
    run = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if run.returncode != 0:
        pytest.skip(f"cannot remount read-only: {run.stderr!r}")
    with caplog.at_level(logging.WARNING), open_store(path) as s:
        s.verify()
        for group in KINDS.values():
            assert s.save_result(group, {"v": np.arange(3)}, {}) is False
        assert s.load_result("probes/first")[1]["note"] == "before"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "not writable" in lines[0], lines
