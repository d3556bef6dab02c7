"""The capture loop: model + data -> one HDF5 activation store."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import logging
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._version import __version__
from ..hooks import LayerRecorder, model_state_preserved, on_device, resolve_layers
from ..imaging import THUMBNAIL_MODES, check_mode, thumbnails_from_tensor
from ..store import lock as store_lock
from ..store import open_store, schema
from ..store.integrity import check_resumed_inputs, sample_digests, superblock_state
from ..store.reader import ActivationStore
from ..store.writer import Batch, StoreWriter, recover_killed_store
from .inputs import InputBatch, InputStream, make_stream
from .reductions import resolve_dtype, resolve_reduction

logger = logging.getLogger(__name__)

#: longest side, in pixels, of the input previews a capture stores
THUMBNAIL_SIZE = 64


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the state_dict's names, dtypes, shapes and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # hashed in place, no copy of the weights (numpy's stubs make ndarray a buffer only for
        # Python >= 3.12)
        h.update(_host_bytes(t))  # type: ignore[arg-type]
    return h.hexdigest()


def _host_bytes(t: torch.Tensor) -> np.ndarray:
    """A tensor's bytes as a C-contiguous host array (bfloat16 as its raw 16 bits)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return np.ascontiguousarray(t.numpy())


def _check_same_inputs(
    writer: StoreWriter, path: Path, x: torch.Tensor, start: int, number: int
) -> None:
    """On resume, the inputs of the samples already in the store must be those given now."""
    stored = writer.stored_digests(start, start + len(x))
    if stored is None:
        return
    now = sample_digests(_host_bytes(x))
    differ = np.flatnonzero(stored != now[: len(stored)])
    if differ.size:
        raise ValueError(
            f"cannot resume {path}: sample {start + int(differ[0])} (in batch {number}) is not "
            "the input the store captured there (their CRC-32 fingerprints differ); resume "
            "needs the same data in the same order. Capture other data into a new store, or "
            "pass overwrite=True to replace this one"
        )


class _HostCopier:
    """Copies device tensors to the host; through reused pinned buffers when on a GPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self._free: dict[tuple[Any, ...], list[torch.Tensor]] = defaultdict(list)

    @staticmethod
    def _storable(t: torch.Tensor) -> torch.Tensor:
        # numpy has no bfloat16: move its raw bits as int16 (decoded by the reader)
        return t.view(torch.int16) if t.dtype == torch.bfloat16 else t

    @staticmethod
    def _numpy(t: torch.Tensor, bf16: bool) -> np.ndarray:
        arr = t.numpy()
        return arr.view(np.uint16) if bf16 else arr

    def copy(
        self, tensors: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, np.ndarray], Callable[[], None] | None, Callable[[], None] | None]:
        out: dict[str, np.ndarray] = {}
        if not self.cuda:
            for k, t in tensors.items():
                bf16 = t.dtype == torch.bfloat16
                out[k] = self._numpy(self._storable(t).cpu(), bf16)
            return out, None, None
        used: list[tuple[tuple[Any, ...], torch.Tensor]] = []
        for k, t in tensors.items():
            bf16 = t.dtype == torch.bfloat16
            src = self._storable(t)
            key = (tuple(src.shape), src.dtype)
            buf = (
                self._free[key].pop()
                if self._free[key]
                else torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
            )
            buf.copy_(src, non_blocking=True)
            used.append((key, buf))
            out[k] = self._numpy(buf, bf16)
        event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # unannotated in torch
        event.record()

        def release() -> None:
            for key, buf in used:
                self._free[key].append(buf)

        return out, event.synchronize, release


class _Background(threading.Thread):
    """Run ``fn(*args)`` in a thread; :meth:`result` joins it and returns (or raises)."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        super().__init__(name="inspect_kit-hash", daemon=True)
        self._fn, self._args = fn, args
        self._out: Any = None
        self._err: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._out = self._fn(*self._args)
        except BaseException as err:  # noqa: BLE001 - re-raised by result()
            self._err = err

    def result(self) -> Any:
        self.join()
        if self._err is not None:
            raise self._err
        return self._out


def _classifier_outputs(out: Any, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(logits, prediction) when the model output looks like class scores (N, K>1)."""
    if isinstance(out, Mapping):
        out = out.get("logits")
    if (
        isinstance(out, torch.Tensor)
        and out.ndim == 2
        and out.shape[0] == n
        and out.shape[1] > 1
        and out.is_floating_point()
    ):
        logits = out.detach().float()
        return logits, logits.argmax(dim=1)
    return None, None


def _check_path(path: Path, *, resume: bool, overwrite: bool) -> bool:
    """Return True when an existing store is to be resumed."""
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other; choose one")
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a directory; give a file path such as {path / 'activations.h5'}"
        )
    if not path.exists():
        if resume:
            logger.info("resume=True but %s does not exist: starting a new store", path)
        return False
    if resume:
        return True
    if overwrite:
        return False
    raise FileExistsError(
        f"{path} already exists; pass overwrite=True to replace it, or resume=True to continue "
        "a capture that did not finish"
    )


def _check_resumable(path: Path, config: dict[str, Any], sha: str) -> bool:
    """Validate an existing store against this call before touching it; True if complete."""
    with open_store(path) as old:
        prov = old.provenance
        prev = prov.get(schema.CONFIG_ATTR) or {}
        for key in ("layers", "reduce", "dtype"):
            if prev.get(key) != config.get(key):
                raise ValueError(
                    f"cannot resume {path}: it was captured with {key}={prev.get(key)!r} but this "
                    f"call has {key}={config.get(key)!r}; use the same arguments or a new path"
                )
        if prov.get(schema.MODEL_SHA256_ATTR) != sha:
            raise ValueError(
                f"cannot resume {path}: it was captured from a model with different weights "
                f"(sha256 {str(prov.get(schema.MODEL_SHA256_ATTR))[:12]} vs {sha[:12]}); use a new path"
            )
        complete = old.complete
    if complete and superblock_state(path)[0] is False:
        recover_killed_store(path)  # killed after its last write: close it cleanly
    return complete


def _plane_spacing(meta: Mapping[str, Any]) -> np.ndarray | None:
    """(N, 2) row/column spacing of the inputs' H and W axes when the data recorded it."""
    cols = [meta.get(k) for k in schema.SPACING_META[1:]]
    if any(c is None or np.asarray(c).dtype.kind not in "fiu" for c in cols):
        return None
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)


@dataclass(frozen=True)
class WriteOptions:
    """How :func:`capture` writes its store: the options most captures leave as they are.

    Parameters
    ----------
    compression : {None, "gzip", "lzf", "blosc"}
        Filter of the activation datasets, recorded in the store's ``compression`` attribute:
        gzip (level 4, byte shuffle; small, slower), lzf (fast, moderate), or Blosc LZ4 with
        byte shuffle (fast and small; needs hdf5plugin, which readers then need too).
        Chunks follow the samples either way.
    queue_size : int
        Batches that may wait for the background writer; bounds host memory.
    distributed : bool, optional
        Whether this call is one rank of a ``torchrun`` job. Default: yes when
        ``torch.distributed`` is initialised with more than one rank; True also initialises
        the process group from torchrun's environment. Each rank then captures every
        world_size-th sample into ``<path>.parts/rank-NNNNN.h5`` and rank 0 joins the parts
        into one store at ``path`` (HDF5 virtual datasets); see the README.

    Examples
    --------
    >>> WriteOptions(compression="lzf").queue_size
    4
    """

    compression: str | None = None
    queue_size: int = 4
    distributed: bool | None = None


@dataclass
class _Plan:
    """What a capture call resolved before running: checked arguments and the data stream."""

    path: Path
    modules: dict[str, nn.Module]
    reduce_name: str | None
    transform: Callable[[torch.Tensor], torch.Tensor]
    thumbnails: str | None
    resuming: bool
    stream: InputStream
    config: dict[str, Any]
    write: WriteOptions


def capture(
    model: nn.Module,
    data: Any,
    layers: str | Iterable[str],
    path: str | Path,
    *,
    reduce: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    labels: Any = None,
    metadata: Mapping[str, Any] | None = None,
    thumbnails: str | None = "slice",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    write: WriteOptions | None = None,
) -> ActivationStore:
    """Run ``data`` through ``model`` and stream the named layers' activations to an HDF5 store.

    Parameters
    ----------
    model : nn.Module
        A trained network. It runs in eval mode under ``torch.no_grad`` and comes back as it
        went in: training flags, ``requires_grad``, device and hooks.
    data : DataLoader, Dataset, tensor, ndarray or iterable of batches
        Batches may be ``x``, ``(x, y, ...)`` or dicts (``{"image": x, "label": y, "site": s}``:
        the input under x/input/image/volume, labels under y/label/target, other per-sample
        entries become metadata). Images are (N, C, H, W), volumes (N, C, D, H, W), any C.
    layers : str or list of str
        Dotted module names (see :func:`list_layers`); glob patterns expand. A module called
        several times per forward is stored once per call: ``name``, ``name:1``, ...
    path : str or Path
        The store to write.
    reduce : {None, "mean", "max", "flatten"} or callable, optional
        Applied on the device before the copy: None keeps full maps, "mean"/"max" pool over
        space (N, C), "flatten" gives (N, C*H*W), a callable maps (N, ...) to (N, ...).
    dtype : {None, "float32", "float16", "bfloat16"}, optional
        Storage dtype of floating activations (bfloat16 is stored as raw bits and read back
        as float32).
    device : str or torch.device, optional
        Where the forward runs; default the model's device. The model is moved back after.
    batch_size : int, optional
        Batch size for tensor/array/Dataset data (default 64); DataLoaders keep theirs.
    labels, metadata : array-like, dict of array-like, optional
        Per-sample labels and metadata aligned with the data's order (they override labels
        found in the batches).
    thumbnails : {"slice", "mip", "ortho", None}
        Store small uint8 previews of image-like inputs, at most 64 pixels a side (a volume's
        middle slice, its maximum-intensity projection, or its three orthogonal middle
        slices; see :mod:`inspect_kit.imaging`); None stores none.
    resume : bool
        Continue a store whose capture did not finish, skipping the samples it holds. The data
        must come in the same order.
    overwrite : bool
        Replace an existing file. Without this or ``resume``, an existing file is an error.
    progress : bool
        Show a progress bar.
    write : WriteOptions, optional
        How the store is written: ``compression``, ``queue_size`` and ``distributed`` (one
        rank of a ``torchrun`` job); see :class:`WriteOptions`.

    Returns
    -------
    ActivationStore
        The store, opened read-only.

    Examples
    --------
    >>> import tempfile, torch, inspect_kit
    >>> folder = tempfile.TemporaryDirectory()
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    >>> store = inspect_kit.capture(model, torch.rand(10, 1, 8, 8), ["0", "1"],
    ...                             f"{folder.name}/acts.h5", reduce="mean", progress=False)
    >>> store["1"].shape
    (10, 4)
    >>> store.close()
    >>> packed = inspect_kit.capture(model, torch.rand(10, 1, 8, 8), "1", f"{folder.name}/z.h5",
    ...     reduce="mean", progress=False, write=WriteOptions(compression="gzip"))
    >>> packed.provenance["compression"]
    'gzip'
    >>> packed.close(); folder.cleanup()
    """
    path, write = Path(path), write or WriteOptions()
    from .distributed import capture_distributed, wanted

    if wanted(write.distributed):
        return capture_distributed(
            model,
            data,
            layers,
            path,
            batch_size=batch_size,
            labels=labels,
            metadata=metadata,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            capture_fn=capture,
            reduce=reduce,
            dtype=dtype,
            device=device,
            thumbnails=thumbnails,
            write=write,
        )
    if not store_lock.holds(path):
        # one writer at a time: the store's lock is held from the checks of what is at the
        # path until the store is closed, so a second writer is refused before touching it
        with store_lock.write_lock(path):
            return capture(
                model,
                data,
                layers,
                path,
                reduce=reduce,
                dtype=dtype,
                device=device,
                batch_size=batch_size,
                labels=labels,
                metadata=metadata,
                thumbnails=thumbnails,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
                write=dataclasses.replace(write, distributed=False),
            )
    plan = _plan(model, data, layers, path, reduce, dtype, device, batch_size, thumbnails, write)
    plan.resuming = _check_path(path, resume=resume, overwrite=overwrite)
    plan.stream = make_stream(data, batch_size=batch_size, labels=labels, metadata=metadata)
    plan.config["data"] = plan.stream.description
    # The weights' hash is a fixed cost of every capture (~50 ms for a resnet18): a new store
    # needs it only when its file is created, so it runs beside the first batch's forward.
    sha_job = _Background(state_dict_sha256, model)
    if plan.resuming and _check_resumable(path, plan.config, sha_job.result()):
        # resume means the same capture: the data's fingerprints are checked as for a partial one
        done = open_store(path)
        try:
            check_resumed_inputs(
                path, done.input_digests, (_host_bytes(b.x) for b in plan.stream.batches)
            )
        except BaseException:
            done.close()
            raise
        logger.info("%s is already complete; nothing to resume", path)
        return done
    # Fetch the first batch before creating anything, so empty data leaves no file behind.
    batches = iter(plan.stream.batches)
    first = next(batches, None)
    if first is None or len(first) == 0:
        raise ValueError("data yielded no samples; nothing to capture")
    attrs = _store_attrs(model, plan, sha_job.result() if plan.resuming else "pending")
    writer = StoreWriter(
        path,
        attrs,
        resume=plan.resuming,
        queue_size=write.queue_size,
        expected_rows=plan.stream.n_samples,
        compression=write.compression,
        overwrite=overwrite,
    )
    ok = False
    bar = tqdm(
        total=plan.stream.n_samples,
        initial=min(writer.n_done, plan.stream.n_samples or writer.n_done),
        unit="sample",
        desc=f"capture {path.name}",
        disable=not progress,
    )
    try:
        with (
            model_state_preserved(model),
            on_device(model, device) as dev,
            LayerRecorder(plan.modules, plan.transform) as rec,
            torch.no_grad(),
        ):
            _run(model, plan, _Target(writer, attrs, sha_job, bar), rec, dev, [first], batches)
            ok = True
    finally:
        bar.close()
        sha_job.join()  # no thread left reading the model once capture returns
        try:
            writer.close(complete=ok)
        except Exception:
            if ok:
                raise
            logger.warning("closing %s after a failed capture also failed", path, exc_info=True)
    _warn_nonfinite(writer)
    return open_store(path)


def _plan(
    model: nn.Module,
    data: Any,
    layers: str | Iterable[str],
    path: Path,
    reduce: str | Callable[[torch.Tensor], torch.Tensor] | None,
    dtype: str | torch.dtype | None,
    device: str | torch.device | None,
    batch_size: int | None,
    thumbnails: str | None,
    write: WriteOptions,
) -> _Plan:
    """Check the arguments (layers, reduction, dtype, thumbnails) before anything runs."""
    modules = resolve_layers(model, layers)
    reduce_name, reduce_fn = resolve_reduction(reduce)
    store_dtype = resolve_dtype(dtype)
    if thumbnails is not None:
        if thumbnails not in THUMBNAIL_MODES + ("mid",):
            raise ValueError(
                f"thumbnails={thumbnails!r}; use one of {', '.join(map(repr, THUMBNAIL_MODES))} "
                "or None"
            )
        thumbnails = check_mode(thumbnails)

    def transform(t: torch.Tensor) -> torch.Tensor:  # on the device, before the copy
        if reduce_fn is not None:
            t = reduce_fn(t)
        if store_dtype is not None and t.is_floating_point():
            t = t.to(store_dtype)
        return t

    config = {
        "layers": list(modules),
        "reduce": reduce_name,
        "dtype": None if store_dtype is None else str(store_dtype).replace("torch.", ""),
        "batch_size": batch_size,
        "device": None if device is None else str(device),
        "thumbnails": thumbnails,
        "compression": write.compression,
        "data": None,  # the stream's description, once the data is opened
    }
    empty = InputStream(iter(()), None, {})
    return _Plan(path, modules, reduce_name, transform, thumbnails, False, empty, config, write)


def _store_attrs(model: nn.Module, plan: _Plan, sha: str) -> dict[str, Any]:
    """The store's provenance attributes (the weights' hash may still be 'pending')."""
    return {
        schema.SCHEMA_VERSION_ATTR: schema.SCHEMA_VERSION,
        schema.INSPECT_KIT_VERSION_ATTR: __version__,
        schema.TORCH_VERSION_ATTR: torch.__version__,
        schema.NUMPY_VERSION_ATTR: np.__version__,
        schema.CREATED_ATTR: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        schema.MODEL_CLASS_ATTR: f"{type(model).__module__}.{type(model).__qualname__}",
        schema.MODEL_SHA256_ATTR: sha,
        schema.CONFIG_ATTR: plan.config,
        schema.COMPRESSION: plan.write.compression or "none",
    }


@dataclass
class _Target:
    """Where recorded batches go: the writer, the attributes it writes on creation, the
    weights' hash still being computed, and the progress bar."""

    writer: StoreWriter
    attrs: dict[str, Any]
    sha_job: _Background
    bar: Any


def _run(
    model: nn.Module,
    plan: _Plan,
    target: _Target,
    rec: LayerRecorder,
    dev: torch.device,
    head: list[InputBatch],
    rest: Iterator[InputBatch],
) -> None:
    """The loop over batches: skip what a resumed store holds, forward, record, write."""
    copier = _HostCopier(dev)
    skip, seen = target.writer.n_done, 0
    expected: set[str] | None = None
    for number, b in enumerate(itertools.chain(head, rest)):
        n = len(b)
        if seen < skip:  # already in the store (resume): check it is the same data
            _check_same_inputs(target.writer, plan.path, b.x[: skip - seen], seen, number)
        if seen + n <= skip:
            seen += n
            continue
        if seen < skip:
            b = b.slice(skip - seen)
            n = len(b)
        seen += n
        rec.reset()
        out = model(b.x.to(dev, non_blocking=True))
        keys = set(rec.outputs)
        if expected is None:
            _check_layers_ran(plan.modules, keys)
            expected = keys
            _describe_layers(rec, plan.reduce_name, target.writer)
        elif keys != expected:
            raise RuntimeError(
                f"batch {number} produced layer outputs {sorted(keys ^ expected)} that "
                "differ from the first batch; the forward pass must call the same modules "
                "for every batch"
            )
        _write_batch(b, number, out, _per_sample(rec, n), plan, target, copier)
        target.bar.update(n)
    if seen == 0:
        raise ValueError("data yielded no samples; nothing to capture")
    if seen < skip:
        raise ValueError(
            f"cannot resume {plan.path}: it holds {skip} samples but the data has only "
            f"{seen}; resume needs the same data in the same order"
        )


def _check_layers_ran(modules: Mapping[str, nn.Module], keys: set[str]) -> None:
    missing = [
        s
        for s in modules
        if not any(k == s or k.startswith(s + "[") or k.startswith(s + ":") for k in keys)
    ]
    if missing:
        raise RuntimeError(
            f"layer(s) {', '.join(map(repr, missing))} never ran in the forward pass "
            "of the first batch (an unused module, or a branch not taken); "
            "capture layers that the forward pass calls"
        )


def _describe_layers(rec: LayerRecorder, reduce_name: str | None, writer: StoreWriter) -> None:
    """Each recorded layer's attributes (module, call, reduction, shape before it)."""
    for key, c in rec.outputs.items():
        layer_attrs = {
            schema.MODULE_PATH_ATTR: c.module_path,
            schema.MODULE_TYPE_ATTR: c.module_type,
            schema.CALL_INDEX_ATTR: c.call_index,
            schema.REDUCTION_ATTR: reduce_name,
            schema.SOURCE_SHAPE_ATTR: list(c.source_shape[1:]),
        }
        if c.tensor.dtype == torch.bfloat16:
            layer_attrs[schema.STORED_AS] = schema.BFLOAT16
        writer.set_layer_attrs(key, layer_attrs)


def _per_sample(rec: LayerRecorder, n: int) -> dict[str, torch.Tensor]:
    """The recorded outputs, each checked to have the batch as its first axis."""
    tensors: dict[str, torch.Tensor] = {}
    for key, c in rec.outputs.items():
        if c.tensor.ndim == 0 or c.tensor.shape[0] != n:
            raise RuntimeError(
                f"layer {key!r} gave an output of shape {tuple(c.source_shape)} for a "
                f"batch of {n}: its first axis is not the batch axis, so it cannot be "
                "stored per sample; capture another layer or pass a reduce= callable"
            )
        tensors[key] = c.tensor
    return tensors


def _write_batch(
    b: InputBatch,
    number: int,
    out: Any,
    tensors: dict[str, torch.Tensor],
    plan: _Plan,
    target: _Target,
    copier: _HostCopier,
) -> None:
    """Hand one batch's activations, predictions and thumbnails to the background writer."""
    n = len(b)
    logits, pred = _classifier_outputs(out, n)
    extra: dict[str, torch.Tensor] = {}
    if logits is not None and pred is not None:
        extra["__logits"], extra["__pred"] = logits, pred
    thumb = None
    if plan.thumbnails is not None:  # from the host copy when there is one: no sync
        thumb = thumbnails_from_tensor(
            b.x, mode=plan.thumbnails, size=THUMBNAIL_SIZE, spacing=_plane_spacing(b.meta)
        )
    host, ready, release = copier.copy({**tensors, **extra})
    if target.attrs[schema.MODEL_SHA256_ATTR] == "pending":  # read when the file is created
        target.attrs[schema.MODEL_SHA256_ATTR] = target.sha_job.result()
    if b.index is None:  # make_stream numbers every batch
        raise RuntimeError(f"batch {number} has no sample index")
    target.writer.put(
        Batch(
            index=b.index,
            layers={k: host[k] for k in tensors},
            label=b.y,
            prediction=host.get("__pred"),
            logits=host.get("__logits"),
            thumbnail=thumb,
            meta=b.meta,
            inputs=_host_bytes(b.x),
            number=number,
            ready=ready,
            release=release,
        )
    )


def _warn_nonfinite(writer: StoreWriter) -> None:
    for name, count in writer.nonfinite.items():
        warnings.warn(
            f"layer {name!r} produced {count} non-finite values (NaN/inf); they are stored as "
            "they are, and analyses will refuse them until you filter those samples",
            RuntimeWarning,
            stacklevel=3,
        )
