"""Capture under ``torchrun``: every rank captures its shard into a part, rank 0 joins them.

The same :func:`inspect_kit.capture` call runs on every rank. Rank ``r`` of ``W`` takes the
samples at positions ``r, r + W, r + 2W, ...`` (``DistributedSampler`` order without its
padding: every sample exactly once, the last shards may be one shorter) and writes them with
the ordinary single-process writer to ``<path>.parts/rank-0000r.h5``. After every rank has
finished, rank 0 writes at ``path`` a master file whose layer datasets are HDF5 virtual
datasets over the parts (see :mod:`inspect_kit.store.parts`), so that the store reads, in
the dataset's order, exactly like one written by a single process.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler, Subset

from ..store import ActivationStore
from ..store import parts as store_parts

logger = logging.getLogger(__name__)


def env_world_size() -> int:
    """WORLD_SIZE set by ``torchrun`` (1 outside it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def wanted(distributed: bool | None) -> bool:
    """Whether a capture call is one rank of a distributed job.

    ``None`` (the default) means: yes when ``torch.distributed`` is initialised with more than
    one rank. ``True`` also initialises the process group from ``torchrun``'s environment
    (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) when nobody did. ``False`` never shards.
    """
    import torch.distributed as dist

    if distributed is False:
        return False
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1 or bool(distributed)
    if distributed:
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise RuntimeError(
                "WriteOptions(distributed=True) but torch.distributed is not initialised and "
                "RANK/WORLD_SIZE "
                "are not set; launch with torchrun --nproc_per_node N ..., or call "
                "torch.distributed.init_process_group first"
            )
        return True
    return False


def _shard_data(data: Any, rank: int, world: int) -> tuple[Any, np.ndarray, int]:
    """This rank's share of ``data``: (sharded data, global positions, total sample count)."""
    if isinstance(data, torch.Tensor | np.ndarray):
        n = len(data)
        return data[rank::world], np.arange(rank, n, world, dtype=np.int64), n
    if isinstance(data, DataLoader):
        if not isinstance(data.sampler, SequentialSampler):
            raise ValueError(
                f"distributed capture shards the data itself, but this DataLoader has a "
                f"{type(data.sampler).__name__}; pass a DataLoader without sampler/shuffle (or "
                "the Dataset), and inspect_kit gives each rank every world_size-th sample"
            )
        n = len(data.dataset)  # type: ignore[arg-type]  # torch's Dataset declares no __len__
        positions = np.arange(rank, n, world, dtype=np.int64)
        loader = DataLoader(
            Subset(data.dataset, positions.tolist()),
            batch_size=data.batch_size,
            collate_fn=data.collate_fn,
            num_workers=data.num_workers,
            pin_memory=data.pin_memory,
            timeout=data.timeout,
            worker_init_fn=data.worker_init_fn,
            persistent_workers=data.persistent_workers if data.num_workers else False,
        )
        return loader, positions, n
    if isinstance(data, Dataset) or (
        hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, list)
    ):
        n = len(data)  # type: ignore[arg-type]  # torch's Dataset declares no __len__
        positions = np.arange(rank, n, world, dtype=np.int64)
        return Subset(data, positions.tolist()), positions, n
    raise TypeError(
        f"distributed capture needs data whose samples can be addressed by position (a tensor, "
        f"numpy array, Dataset or DataLoader over a Dataset), got {type(data).__name__}; an "
        "iterable of batches cannot be split across ranks without reading it on every rank"
    )


def _shard_column(values: Any, positions: np.ndarray, n: int, what: str) -> Any:
    if values is None:
        return None
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if len(arr) != n:
        raise ValueError(f"{what} has {len(arr)} entries but data has {n} samples")
    return arr[positions]


def _agree(failed: bool, what: str) -> None:
    """All ranks learn whether any failed (so none waits forever for a dead one's part)."""
    import torch.distributed as dist

    flag = torch.tensor([1 if failed else 0], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        flag = flag.cuda(torch.cuda.current_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if int(flag.item()) and not failed:
        raise RuntimeError(
            f"another rank failed while {what}; rerun the same job with resume=True to "
            "complete the store (each rank resumes its own part)"
        )


@contextmanager
def _together(what: str) -> Iterator[None]:
    """Run a step on every rank; afterwards all learn whether any rank's step raised."""
    failed = True
    try:
        yield
        failed = False
    finally:
        _agree(failed, what)


def capture_distributed(
    model: Any,
    data: Any,
    layers: Any,
    path: Path,
    *,
    batch_size: int | None,
    labels: Any,
    metadata: Mapping[str, Any] | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    capture_fn: Any,
    **kwargs: Any,
) -> ActivationStore:
    """One rank's part of a distributed capture; see :func:`inspect_kit.capture`."""
    import torch.distributed as dist

    from ..store import open_store

    with process_group_from_env(kwargs.get("device")):
        rank, world = dist.get_rank(), dist.get_world_size()
        folder = store_parts.parts_dir(path)
        with _together("preparing the parts folder"):
            if resume and overwrite:
                raise ValueError("resume=True and overwrite=True contradict each other; choose one")
            if path.exists() and not (resume or overwrite):
                raise FileExistsError(
                    f"{path} already exists; pass overwrite=True to replace it, or resume=True "
                    "to continue a capture that did not finish"
                )
            if resume:
                store_parts.check_world_size(folder, world)
            if rank == 0:
                if path.exists():
                    path.unlink()  # rewritten over the parts at the end
                folder.mkdir(parents=True, exist_ok=True)
                if not resume:
                    store_parts.remove_stale_parts(folder, world)
        part = store_parts.part_path(folder, rank)
        with _together(f"capturing into its part of {path}"):
            sharded, positions, n = _shard_data(data, rank, world)
            if n == 0:
                raise ValueError("data yielded no samples; nothing to capture")
            if len(positions):  # fewer samples than ranks: the others write no part
                meta = {
                    k: _shard_column(v, positions, n, f"metadata[{k!r}]")
                    for k, v in (metadata or {}).items()
                }
                store = capture_fn(
                    model,
                    sharded,
                    layers,
                    part,
                    batch_size=batch_size,
                    labels=_shard_column(labels, positions, n, "labels="),
                    metadata=meta or None,
                    resume=resume,
                    overwrite=overwrite,
                    progress=progress and rank == 0,
                    **{k: v for k, v in kwargs.items() if k != "write"},
                    write=dataclasses.replace(kwargs["write"], distributed=False),
                )
                store.close()
                store_parts.mark_part(part, rank=rank, world_size=world, positions=positions)
        with _together(f"joining the parts into {path}"):
            if rank == 0:
                store_parts.write_master(path, folder, world, n)
        logger.info("rank %d/%d: %d of %d samples in %s", rank, world, len(positions), n, part)
        return open_store(path)


@contextmanager
def process_group_from_env(device: Any = None) -> Iterator[int]:
    """Join the ``torchrun`` job this process belongs to, if any; yield this process's rank.

    Outside ``torchrun`` (no RANK/WORLD_SIZE in the environment) nothing happens and the rank
    is 0. A process group this function created is destroyed on exit.
    """
    import torch.distributed as dist

    created = False
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ and not dist.is_initialized():
        on_gpu = device is not None and torch.device(device).type == "cuda"
        if on_gpu and torch.device(device).index is not None:
            # NCCL's collectives run on the current device: this rank's GPU, not every
            # rank's cuda:0
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
        created = True
    try:
        yield dist.get_rank() if dist.is_initialized() else 0
    finally:
        if created:
            dist.destroy_process_group()


def barrier() -> None:
    """``torch.distributed.barrier()`` when a process group is initialised; else nothing."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def is_rank_zero() -> bool:
    """True outside ``torchrun`` and on its rank 0 (the one that reports)."""
    return os.environ.get("RANK", "0") == "0"
