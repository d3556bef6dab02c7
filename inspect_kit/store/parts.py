"""One logical store over per-rank parts: the master file of HDF5 virtual datasets.

A distributed capture leaves ``<store>.parts/rank-00000.h5``, ``rank-00001.h5``, ... (each an
ordinary store holding every ``world_size``-th sample, its ``/samples/index`` the samples'
positions in the dataset) and, at ``<store>``, a master file:

- ``/layers/<name>`` are *virtual datasets*: rank ``r``'s rows map to the strided selection
  ``[r::world_size]`` of the layer, so the activations stay where the ranks wrote them (no
  copy of terabytes at the end of a job), and every reader (h5py, the reader here, any HDF5
  tool) sees one array in the dataset's order.
- ``/samples/*`` (index, labels, predictions, logits, metadata, thumbnails) are ordinary
  datasets interleaved into the dataset's order: they are small, and strings (metadata) are
  variable-length types that virtual datasets do not map.
- root attributes: rank 0's provenance, ``complete`` (true when every part is), and
  ``distributed`` (world size, the parts' relative paths).

Source files are named relative to the master, so the store and its ``.parts`` folder move
together.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import lock as _lock
from . import schema
from .integrity import open_h5, seal_attrs

logger = logging.getLogger(__name__)

PART_RE = re.compile(r"^rank-(\d{5})\.h5$")
#: root attribute of a master file: {"world_size": W, "parts": [...]}
DISTRIBUTED = "distributed"


def parts_dir(path: str | Path) -> Path:
    """The folder holding the per-rank parts of the store at ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def part_path(folder: Path, rank: int) -> Path:
    """The part file of ``rank``."""
    return folder / f"rank-{rank:05d}.h5"


def _existing_parts(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = PART_RE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return found


def check_world_size(folder: Path, world: int) -> None:
    """On resume, the parts must come from a job of the same world size."""
    for rank, p in sorted(_existing_parts(folder).items()):
        try:
            with open_h5(p) as f:
                stored = f.attrs.get("world_size")
        except OSError:
            stored = None  # a killed writer's part: the capture's resume recovers it
        if rank >= world or (stored is not None and int(stored) != world):
            was = int(stored) if stored is not None else f"more than {rank}"
            raise ValueError(
                f"cannot resume {folder}: its parts were written by a job of world size {was}, "
                f"this job has {world}; rerun with the same number of processes, or with "
                "overwrite=True to start again"
            )


def remove_stale_parts(folder: Path, world: int) -> None:
    """Delete parts of ranks this job does not have (left by a larger earlier job)."""
    for rank, p in _existing_parts(folder).items():
        if rank >= world:
            p.unlink()


def mark_part(path: Path, *, rank: int, world_size: int, positions: np.ndarray) -> None:
    """Record the part's rank and its samples' positions in the dataset."""
    with _lock.write_lock(path), h5py.File(path, "r+", libver="latest") as f:
        index = f[schema.INDEX]
        n = index.shape[0]
        index[:] = positions[:n]
        f.attrs["rank"] = rank
        f.attrs["world_size"] = world_size
        seal_attrs(f)


def _interleaved(sources: list[h5py.Dataset], world: int, n: int) -> np.ndarray:
    first = sources[0]
    if first.dtype.kind == "O" or h5py.check_string_dtype(first.dtype) is not None:
        out: np.ndarray = np.empty((n,) + first.shape[1:], dtype=object)
    else:
        out = np.empty((n,) + first.shape[1:], dtype=first.dtype)
    for r, ds in enumerate(sources):
        rows = ds[: len(range(r, n, world))]
        if out.dtype.kind == "O":
            rows = [v.decode() if isinstance(v, bytes) else v for v in rows]
        out[r::world] = rows
    return out


def write_master(path: Path, folder: Path, world: int, n: int) -> None:
    """Write the master file at ``path`` over the ``world`` parts in ``folder``."""
    # ranks beyond the sample count (n < world) hold nothing and write no part
    used = min(world, n)
    with _lock.write_lock(path):
        _write_master(path, folder, world, n, used)
    logger.info("joined %d parts into %s (%d samples)", world, path, n)


def _write_master(path: Path, folder: Path, world: int, n: int, used: int) -> None:
    files = [h5py.File(part_path(folder, r), "r", libver="latest") for r in range(used)]
    try:
        counts = [int(f[schema.INDEX].shape[0]) for f in files]
        expected = [len(range(r, n, world)) for r in range(used)]
        if counts != expected:
            raise RuntimeError(
                f"the parts in {folder} hold {counts} samples but ranks should hold {expected}; "
                "rerun the job with resume=True to complete them"
            )
        complete = all(bool(f.attrs.get("complete", False)) for f in files)
        base = files[0]
        tmp = path.with_name(path.name + ".joining")
        with h5py.File(tmp, "w", libver="latest") as out:
            for k, v in base.attrs.items():
                if k in ("rank", "world_size", "complete"):
                    continue
                out.attrs[k] = v
            config = schema.decode_attr(base.attrs.get("config", "{}"))
            if isinstance(config, dict) and isinstance(config.get("data"), dict):
                config["data"]["n_samples"] = n
                if isinstance(config["data"].get("shape"), list):
                    config["data"]["shape"][0] = n
                out.attrs["config"] = schema.encode_attr(config)
            rel = [str(part_path(folder, r).relative_to(path.parent)) for r in range(used)]
            out.attrs[DISTRIBUTED] = json.dumps(
                {"world_size": world, "parts": rel, "layout": "strided"}
            )
            out.create_group(schema.LAYERS)
            samples = out.create_group(schema.SAMPLES)

            def copy_samples(name: str, obj: Any) -> None:
                full = f"{schema.SAMPLES}/{name}"
                if isinstance(obj, h5py.Group):
                    out.require_group(full)
                    return
                arr = _interleaved([f[full] for f in files], world, n)
                dtype = h5py.string_dtype() if arr.dtype.kind == "O" else arr.dtype
                chunks = (min(n, obj.chunks[0]),) + obj.chunks[1:] if obj.chunks else None
                ds = out.create_dataset(full, data=arr, dtype=dtype, chunks=chunks)
                for k, v in obj.attrs.items():
                    ds.attrs[k] = v

            base[schema.SAMPLES].visititems(copy_samples)
            del samples
            for name in base[schema.LAYERS]:
                full = f"{schema.LAYERS}/{name}"
                src = base[full]
                row = tuple(src.shape[1:])
                for r, f in enumerate(files):
                    if full not in f or tuple(f[full].shape[1:]) != row:
                        raise RuntimeError(
                            f"part {r} of {path} has no layer {name!r} of rows {row}; the parts "
                            "do not come from the same capture call"
                        )
                layout = h5py.VirtualLayout(shape=(n,) + row, dtype=src.dtype)
                for r in range(used):
                    layout[r:n:world] = h5py.VirtualSource(rel[r], full, shape=(expected[r],) + row)
                ds = out.create_virtual_dataset(full, layout)
                for k, v in src.attrs.items():
                    ds.attrs[k] = v
                bad = sum(int(f[full].attrs.get("nonfinite_count", 0)) for f in files)
                if bad:
                    ds.attrs["nonfinite_count"] = bad
                seal_attrs(ds)
            out.attrs["complete"] = complete
            seal_attrs(out)
        tmp.replace(path)
    finally:
        for f in files:
            f.close()
