"""One writer at a time: an exclusive lock on ``<store>.lock`` held for the whole of a write.

Every write of a store takes it: a capture (from before its ``.partial`` file is made until the
store is closed), a resume, the join of a torchrun store's parts, and every result write
(:mod:`inspect_kit.store.results`). The lock is ``fcntl.flock`` on a file beside the store
(the kernel drops it when its holder dies, so a killed writer never leaves a stale lock), and
the file names its holder (pid, host, command) so the second writer can say who holds it.
Readers take no lock: a reader never blocks a writer.

A holder re-entering its own lock (a capture whose resume first repairs a killed store) counts
up; the file is removed when the last holder in the process lets go, while still locked (a
waiting process that opened the old file notices that it is gone and opens the new one).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth), for this process
_guard = threading.Lock()


class StoreLockedError(OSError):
    """Another process is writing the store: one line naming the path and the holder.

    Examples
    --------
    >>> err = StoreLockedError("acts.h5 is being written by pid 12 on host a (capture ...)")
    >>> isinstance(err, OSError)
    True
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the store at ``path``: ``<store>.lock``."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


def _holder_text(fd: int) -> str:
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw.decode() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict):
        return "another process"
    cmd = str(info.get("command", ""))[:160]
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} ({cmd})"


def _identity() -> bytes:
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:400]}
    ).encode()


def acquire(path: str | os.PathLike[str]) -> None:
    """Take the store's write lock or raise :class:`StoreLockedError` at once (no waiting)."""
    lp = lock_path(path)
    key = str(lp.absolute())
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return
        while True:
            try:
                fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                cause = os.strerror(err.errno) if err.errno else str(err)
                if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise StoreLockedError(
                        f"cannot write {path}: its folder is not writable ({cause})"
                    ) from err
                wrapped = OSError(
                    err.errno, f"cannot write {path}: making its lock file {lp} failed ({cause})"
                )
                raise wrapped from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_text(fd)
                os.close(fd)
                raise StoreLockedError(
                    f"{path} is being written by {holder}; wait for it to finish "
                    "(nothing was changed)"
                ) from None
            try:  # the holder before us may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(lp).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _identity(), 0)
        except OSError:  # a full disk: the lock holds all the same, without its holder's name
            pass
        _held[key] = (fd, 1)


def release(path: str | os.PathLike[str]) -> None:
    """Let go of a lock taken with :func:`acquire` (the last release removes the file)."""
    lp = lock_path(path)
    key = str(lp.absolute())
    with _guard:
        if key not in _held:
            return
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        try:
            lp.unlink(missing_ok=True)  # still locked: nobody else can be inside
        except OSError:
            pass
        os.close(fd)


def holds(path: str | os.PathLike[str]) -> bool:
    """Whether this process holds the write lock of the store at ``path``."""
    return str(lock_path(path).absolute()) in _held


@contextmanager
def write_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the store's write lock for the ``with`` block.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = tempfile.TemporaryDirectory()
    >>> with write_lock(pathlib.Path(d.name) / "acts.h5"):
    ...     pass
    >>> d.cleanup()
    """
    acquire(path)
    try:
        yield
    finally:
        release(path)
