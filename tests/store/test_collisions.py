"""One writer at a time (issue 23, finding 6): concurrent captures and resumes of one path.

Every process ends with exactly one exact store (the one it captured, value for value) or one
clean refusal naming the path; the store left at the path is never a mix of two writers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from inspect_kit.capture import capture
from inspect_kit.cli import main
from inspect_kit.store import open_store
from inspect_kit.store.lock import lock_path, write_lock

from ._faults_data import tiny_data, tiny_model

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 150

# One launcher imports torch once, then forks the writers (cheap, and they start together);
# each writer is its own process, with its own file descriptors and HDF5 library state.
LAUNCHER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from _faults_data import tiny_data, tiny_model
    from inspect_kit.capture import capture
    from inspect_kit.store.lock import StoreLockedError

    path, mode, seeds = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    out = Path(sys.argv[5])

    def slow(batches):
        for b in batches:
            time.sleep(0.01)
            yield b

    start = time.time() + 0.5
    pids = {}
    for i, seed in enumerate(seeds):
        pid = os.fork()
        if pid == 0:
            code, text = 0, "DONE"
            try:
                time.sleep(max(0.0, start - time.time()))
                capture(tiny_model(), slow(tiny_data(seed=seed)), ["0", "3"], path,
                        resume=(mode == "resume"), progress=False).close()
            except (StoreLockedError, FileExistsError) as err:
                code, text = 3, f"REFUSED {err}"
            except BaseException as err:
                code, text = 1, f"{type(err).__name__}: {err}"
            (out / f"{i}.txt").write_text(text)
            os._exit(code)
        pids[pid] = i
    results = {}
    deadline = time.time() + 100
    while pids and time.time() < deadline:
        pid, status = os.waitpid(-1, 0)
        results[pids.pop(pid)] = os.waitstatus_to_exitcode(status)
    print(json.dumps(results))
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run_together(tmp_path: Path, path: Path, seeds: list[int], mode: str) -> list[tuple]:
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    out = tmp_path / f"out-{mode}"
    out.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            str(path),
            mode,
            json.dumps(seeds),
            str(Path(__file__).parent),
            str(out),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stderr
    codes = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(codes) == len(seeds), (codes, run.stderr)
    return [
        (seeds[i], codes[str(i)], (out / f"{i}.txt").read_text(), "") for i in range(len(seeds))
    ]


def _assert_exact(path: Path, want: Path) -> None:
    with open_store(path) as got, open_store(want) as ref:
        got.verify()
        assert got.complete and len(got) == len(ref)
        np.testing.assert_array_equal(got.index, ref.index)
        np.testing.assert_array_equal(got.input_digests, ref.input_digests)
        for name in ref.layers:
            np.testing.assert_array_equal(got[name][:], ref[name][:])
        np.testing.assert_array_equal(got.labels, ref.labels)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    out = {}
    for seed in range(8):
        out[seed] = folder / f"ref{seed}.h5"
        capture(tiny_model(), tiny_data(seed=seed), ["0", "3"], out[seed], progress=False).close()
    return out


def _check_refusal(out: str, err: str, path: Path) -> None:
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("REFUSED"), (out, err)
    assert str(path) in lines[0]
    if "being written" in lines[0]:
        assert "pid " in lines[0] and "host " in lines[0]


def test_eight_concurrent_captures_leave_one_exact_store(tmp_path, references):
    path = tmp_path / "one.h5"
    results = _run_together(tmp_path, path, list(range(8)), "new")
    done = [s for s, rc, out, err in results if rc == 0]
    assert len(done) == 1, results
    for _s, rc, out, err in results:
        if rc != 0:
            assert rc == 3, out
            _check_refusal(out, err, path)
    _assert_exact(path, references[done[0]])
    assert not lock_path(path).exists()
    assert not path.with_name(path.name + ".partial").exists()


def test_four_concurrent_resumes_complete_the_store_exactly(tmp_path, references):
    path = tmp_path / "partial.h5"
    data = tiny_data(seed=0)
    with pytest.raises(RuntimeError, match="stop"):

        def stopping():
            for i, b in enumerate(data):
                if i == 4:
                    raise RuntimeError("stop")
                yield b

        capture(tiny_model(), stopping(), ["0", "3"], path, progress=False)
    with open_store(path) as partial:
        assert not partial.complete and len(partial) == 16
    results = _run_together(tmp_path, path, [0, 0, 0, 0], "resume")
    assert any(rc == 0 for _, rc, _, _ in results), results
    for _s, rc, out, err in results:
        if rc != 0:
            assert rc == 3, out
            _check_refusal(out, err, path)
    _assert_exact(path, references[0])


def test_a_second_writer_is_refused_with_the_holder_and_changes_nothing(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(12, 1, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    path = tmp_path / "s.h5"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from inspect_kit.store.lock import acquire\n"
            "acquire(sys.argv[1]); print('held', flush=True); time.sleep(120)",
            str(path),
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in tmp_path.iterdir())
        code = main(
            [
                "capture",
                "inspect_kit.models:SmallCNN",
                "--model-args",
                '{"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}',
                str(tmp_path / "d.npz"),
                "--out",
                str(path),
                "-q",
            ]
        )
        err = capsys.readouterr().err
        after = sorted(p.name for p in tmp_path.iterdir())
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and f"pid {holder.pid}" in lines[0]
    assert before == after and not path.exists()


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    path = tmp_path / "s.h5"
    with write_lock(path), write_lock(path):
        assert lock_path(path).exists()
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from inspect_kit.store.lock import acquire, StoreLockedError\n"
                "try:\n    acquire(sys.argv[1])\nexcept StoreLockedError as e:\n"
                "    print(e); sys.exit(3)",
                str(path),
            ],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert probe.returncode == 3 and f"pid {os.getpid()}" in probe.stdout
    assert not lock_path(path).exists()
