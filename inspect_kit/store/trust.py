"""What a store can and cannot make happen: a store is data that may come from a stranger.

Reading a store never reaches another file or the network:

* :func:`check_foreign_storage` (run whenever a store is opened) refuses datasets whose bytes
  live in another file -- HDF5 external raw storage, external links, virtual datasets -- unless
  they are the store's own recorded torchrun parts in ``<store>.parts/`` beside it; and it
  checks every per-sample dataset's extent against the bytes the file holds for it, so that a
  tiny file cannot declare rows that a read would allocate gigabytes for;
* :func:`checked_record` checks what the ``/inputs`` record names before anything uses it: a
  recorded sample shape within :data:`MAX_SAMPLE_VALUES`, and a data path that is a file or a
  folder of a supported format (never a system folder) -- anything else is dropped with one
  warning, and the report asks for ``--data``/``--input-shape`` instead.

Rebuilding a recorded model never downloads: see
:func:`inspect_kit.models.registry.load_zoo_model`.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import schema

logger = logging.getLogger(__name__)

#: the most values one recorded input sample may have (a 512^3 volume; 512 MiB as float32)
MAX_SAMPLE_VALUES = 512**3
#: the most axes a recorded sample shape may have
MAX_SAMPLE_NDIM = 5
#: how many times larger than its stored bytes a compressed dataset may read back
MAX_COMPRESSION_RATIO = 2048

#: folders a recorded data path is never read from (nor any folder inside them)
SYSTEM_FOLDERS = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/snap",
)
#: files a recorded data path may name, and files a recorded data folder must hold
DATA_FILE_SUFFIXES = (".npz", ".h5", ".hdf5", ".hdf")
FOLDER_FILE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".nii",
    ".nii.gz",
    ".dcm",
    ".dicom",
    ".ima",
)
#: folder entries looked at (top level and one level down) to find a supported file
_SCAN_LIMIT = 2000


def _part_targets(f: h5py.File, path: Path) -> set[tuple[Path, str]] | None:
    """The (part file, dataset) pairs a torchrun master may map, or None if not a master."""
    raw = f.attrs.get("distributed")
    info = schema.decode_attr(raw) if raw is not None else None
    if not isinstance(info, dict) or not isinstance(info.get("parts"), list):
        return None
    folder = (path.parent / (path.name + ".parts")).resolve()
    allowed: set[tuple[Path, str]] = set()
    for rel in info["parts"]:
        if not isinstance(rel, str) or not re.fullmatch(r"[^/\\]+\.parts/rank-\d{5}\.h5", rel):
            return None
        target = (path.parent / rel).resolve()
        if target.parent != folder:
            return None
        allowed.add((target, ""))
    return allowed


def check_foreign_storage(f: h5py.File, path: str | Path) -> None:
    """Raise StoreError if reading the store would read another file (see the module doc).

    Examples
    --------
    >>> with h5py.File("acts.h5", "r") as f:                    # doctest: +SKIP
    ...     check_foreign_storage(f, "acts.h5")
    """
    path = Path(path)
    parts = _part_targets(f, path)
    part_files = {p for p, _ in parts} if parts else set()
    bad: list[str] = []

    def visit(name: str, link: Any) -> None:
        if isinstance(link, h5py.ExternalLink):
            bad.append(f"/{name} is a link into another file ({link.filename})")
            return
        if not isinstance(link, h5py.HardLink):
            return
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.external:
            bad.append(f"/{name} keeps its bytes in another file ({obj.external[0][0]!r})")
        elif obj.is_virtual:
            for src in obj.virtual_sources():
                target = (path.parent / src.file_name).resolve()
                own = (
                    name.startswith(schema.LAYERS + "/")
                    and target in part_files
                    and src.dset_name.strip("/") == name
                )
                if not own:
                    bad.append(
                        f"/{name} is a virtual dataset over {src.file_name!r}:{src.dset_name}, "
                        "not one of the store's own torchrun parts"
                    )
                    return

    f.visititems_links(visit)
    if bad:
        raise schema.StoreError(
            f"{path} is refused: {bad[0]}; a store is data that reads only itself (and its own "
            "torchrun parts beside it), so it never reads other files"
        )


def check_extent(ds: h5py.Dataset, rows: int, path: str | Path, name: str) -> None:
    """Raise StoreError if ``rows`` rows of ``ds`` would read back more bytes than the file
    holds for them (beyond what its compression can explain): a memory bomb, or lost rows."""
    if ds.is_virtual or rows == 0:
        return
    row_values = math.prod(ds.shape[1:])
    logical = rows * row_values * max(1, ds.dtype.itemsize)
    stored = int(ds.id.get_storage_size())
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    compressed = any(code != h5py.h5z.FILTER_FLETCHER32 for code in filters)
    limit = stored * (MAX_COMPRESSION_RATIO if compressed else 1)
    if logical > limit:
        raise schema.StoreError(
            f"{path} is damaged: /{name} declares {rows} rows of {logical:,} bytes but the file "
            f"holds {stored:,} bytes for them; refusing to read it"
        )


def _shape_problem(shape: Any) -> str | None:
    if shape is None:
        return None
    try:
        dims = [int(v) for v in np.asarray(shape).reshape(-1)]
    except (TypeError, ValueError, OverflowError):
        return f"sample_shape {shape!r} is not a list of whole numbers"
    if any(d <= 0 for d in dims) or len(dims) > MAX_SAMPLE_NDIM:
        return f"sample_shape {dims} is not 1 to {MAX_SAMPLE_NDIM} positive sizes"
    if math.prod(dims) > MAX_SAMPLE_VALUES:
        return (
            f"sample_shape {dims} has {math.prod(dims):,} values per sample, over the limit of "
            f"{MAX_SAMPLE_VALUES:,}"
        )
    return None


def _split_key(source: str) -> Path:
    path = Path(source)
    if not path.exists() and ":" in source:
        head = source.rpartition(":")[0]
        if Path(head).suffix.lower() in DATA_FILE_SUFFIXES:
            return Path(head)
    return path


def _inside(path: Path, folder: str) -> bool:
    return path == Path(folder) or Path(folder) in path.parents


def _has_data_files(folder: Path) -> bool:
    seen = 0
    queue = [folder]
    for depth in range(2):
        subdirs: list[Path] = []
        for current in queue:
            try:
                entries = os.scandir(current)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    seen += 1
                    if seen > _SCAN_LIMIT:
                        return False
                    name = entry.name.lower()
                    try:
                        is_file = entry.is_file()
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    if is_file and name.endswith(FOLDER_FILE_SUFFIXES):
                        return True
                    if is_dir and depth == 0:
                        subdirs.append(Path(entry.path))
        queue = subdirs
    return False


def recorded_data_refusal(source: Any) -> str | None:
    """Why a recorded data path is not re-read, or None when it is a file or folder of a
    supported format that a user could have passed.

    Examples
    --------
    >>> recorded_data_refusal("/etc")
    '/etc is a system folder'
    >>> recorded_data_refusal("/no/such/scans")
    '/no/such/scans does not exist'
    """
    if not isinstance(source, str) or not source:
        return f"{source!r} is not a path"
    given = _split_key(source)
    if not given.exists():
        return f"{given} does not exist"
    path = given.resolve()
    home = Path.home().resolve()
    if path == Path(path.anchor) or path in (home, home.parent) or path == Path("/home"):
        return f"{given} is a root or home folder, not a data folder"
    if any(_inside(path, folder) for folder in SYSTEM_FOLDERS):
        return f"{given} is a system folder" if path.is_dir() else f"{given} is a system file"
    if path.is_file():
        name = path.name.lower()
        if not name.endswith(DATA_FILE_SUFFIXES):
            return f"{given} is not an .npz or HDF5 file"
        return None
    if path.is_dir():
        if not _has_data_files(path):
            return f"{given} holds no images, NIfTI or DICOM files (looked two levels deep)"
        return None
    return f"{given} is neither a file nor a folder"


def checked_record(record: Mapping[str, Any], store: str | Path = "the store") -> dict[str, Any]:
    """The ``/inputs`` record with what may not be used dropped, one warning for each.

    Examples
    --------
    >>> checked_record({"sample_shape": [3, 40000, 40000], "kind": "images"})
    {'kind': 'images'}
    """
    out = dict(record)
    problem = _shape_problem(out.get("sample_shape"))
    if problem:
        logger.warning(
            "%s records a %s: it is ignored (pass --input-shape to set the shape)", store, problem
        )
        out.pop("sample_shape")
    source = out.get("data")
    if source is not None and source != "inspect_kit.data:load_mni_patches":
        why = recorded_data_refusal(source)
        if why is not None:
            logger.warning(
                "%s records its data as %s, which is not read again: %s (pass --data to read "
                "the inputs)",
                store,
                source,
                why,
            )
            out.pop("data")
    return out


# -- no network while a store's record is acted on ------------------------------------------------
_NETWORK_EVENTS = frozenset(
    {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"}
)
_offline: contextvars.ContextVar[str | None] = contextvars.ContextVar("_offline", default=None)
_hook_installed = False
_hook_lock = threading.Lock()


class NetworkRefusedError(RuntimeError):
    """Code run for a store's record tried to reach the network (a weights download)."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _NETWORK_EVENTS:
        what = _offline.get()
        if what is not None:
            raise NetworkRefusedError(
                f"{what} tried to reach the network ({event} {args[:2]!r}); a store never "
                "makes anything download: name the model yourself with its weights file"
            )


@contextmanager
def offline(what: str) -> Iterator[None]:
    """Refuse every socket connection and name lookup of this thread inside the block.

    An audit hook (installed once, on first use) raises :class:`NetworkRefusedError`; outside
    these blocks it does nothing.

    Examples
    --------
    >>> import socket
    >>> with offline("rebuilding a model"):
    ...     socket.getaddrinfo("example.org", 443)
    Traceback (most recent call last):
    ...
    inspect_kit.store.trust.NetworkRefusedError: rebuilding a model tried to reach the network (socket.getaddrinfo ('example.org', 443)); a store never makes anything download: name the model yourself with its weights file
    """
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
    token = _offline.set(what)
    try:
        yield
    finally:
        _offline.reset(token)
