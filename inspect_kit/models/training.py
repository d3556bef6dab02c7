"""The one training loop (classifiers and autoencoders alike) and classifier helpers."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import trange

from inspect_kit.hooks import model_device, model_state_preserved

logger = logging.getLogger(__name__)

Batch = Any  # a tensor, a tuple/list of tensors, or whatever a user's DataLoader yields
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
MetricFn = Callable[[nn.Module, Batch], torch.Tensor | float]


# ----------------------------------------------------------------------------- helpers


# One definition of "the model's device" for the whole package.
default_device = model_device


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    return default_device(model) if device is None else torch.device(device)


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's RNGs for the duration only (dropout, VAE sampling), then restore them."""
    if seed is None:
        yield
        return
    cuda = device.type == "cuda"
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        yield


def _to_tensor(a: Any, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        # copy read-only arrays (torch warns on them); contiguous ones are shared, not copied
        t = torch.from_numpy(np.ascontiguousarray(a) if a.flags.writeable else a.copy())
        # numpy's default float64 would not match float32 model weights.
        return t.float() if t.is_floating_point() else t
    raise TypeError(f"{name} must be a tensor or a numpy array, got {type(a).__name__}")


def _move(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_move(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _move(v, device) for k, v in batch.items()}
    return batch


def _batch_len(batch: Batch) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, tuple | list):
        for b in batch:
            return _batch_len(b)
    if isinstance(batch, Mapping):
        for b in batch.values():
            return _batch_len(b)
    return 1


class _Batches:
    """Iterate mini-batches of in-memory tensors, a Dataset or a DataLoader."""

    def __init__(self, data: Any, batch_size: int, name: str) -> None:
        self.loader: DataLoader[Any] | None = None
        self.dataset: Dataset[Any] | None = None
        self.tensors: tuple[torch.Tensor, ...] | None = None
        self.single = False
        self.batch_size = batch_size
        if isinstance(data, DataLoader):
            self.loader = data
        elif isinstance(data, torch.Tensor | np.ndarray):
            self.tensors, self.single = (_to_tensor(data, name),), True
        elif isinstance(data, tuple | list):
            if not data:
                raise ValueError(f"{name} is an empty {type(data).__name__}; pass X or (X, y)")
            self.tensors = tuple(_to_tensor(a, f"{name}[{i}]") for i, a in enumerate(data))
            lengths = {len(t) for t in self.tensors}
            if len(lengths) != 1:
                raise ValueError(
                    f"the arrays in {name} have different lengths {sorted(lengths)}; "
                    "they must all have one row per sample"
                )
        elif isinstance(data, Dataset):
            self.dataset = data
        else:
            raise TypeError(
                f"{name} must be a tensor/array X, a tuple (X, y, ...), a torch Dataset or a "
                f"DataLoader, got {type(data).__name__}"
            )
        if self.tensors is not None and len(self.tensors[0]) == 0:
            raise ValueError(f"{name} has no samples")

    def __call__(self, shuffle: bool, generator: torch.Generator) -> Iterator[Batch]:
        if self.loader is not None:
            yield from self.loader
        elif self.dataset is not None:
            yield from DataLoader(
                self.dataset, batch_size=self.batch_size, shuffle=shuffle, generator=generator
            )
        elif self.tensors is not None:
            n = len(self.tensors[0])
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                parts = tuple(t[idx] for t in self.tensors)
                yield parts[0] if self.single else parts


def _check_loss(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TypeError(f"loss_fn must return a scalar tensor (e.g. loss.mean()), got {got}")
    return loss


def _evaluate(
    model: nn.Module,
    batches: _Batches,
    loss_fn: LossFn,
    metrics: Mapping[str, MetricFn],
    device: torch.device,
    generator: torch.Generator,
) -> dict[str, float]:
    totals = dict.fromkeys(["loss", *metrics], 0.0)
    count = 0
    model.eval()
    with torch.no_grad():
        for batch in batches(False, generator):
            batch = _move(batch, device)
            n = _batch_len(batch)
            totals["loss"] += float(_check_loss(loss_fn(model, batch))) * n
            for name, fn in metrics.items():
                totals[name] += float(fn(model, batch)) * n
            count += n
    if count == 0:
        raise ValueError("val_data produced no batches")
    return {k: v / count for k, v in totals.items()}


# ----------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    data: Any,
    loss_fn: LossFn,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    val_data: Any = None,
    patience: int | None = None,
    device: str | torch.device | None = None,
    random_state: int | None = 0,
    progress: bool = True,
    weight_decay: float = 0.0,
    metrics: Mapping[str, MetricFn] | None = None,
    restore_best: bool = True,
) -> dict[str, Any]:
    """Train ``model`` with Adam by minimising ``loss_fn(model, batch)``; the one training loop.

    The loss function receives the model and a batch already moved to ``device`` and returns
    a scalar tensor, so it can be anything: a classifier's cross-entropy
    (``lambda m, b: F.cross_entropy(m(b[0]), b[1])``), an autoencoder's reconstruction error
    (``lambda m, x: F.mse_loss(m(x), x)``) or a VAE's ELBO that reads ``mu``/``logvar`` from the
    model's output.

    Parameters
    ----------
    model : nn.Module
        Trained in place. It is moved to ``device`` (in place) and stays there. Every submodule
        gets back the training flag it came in with (also after an error or KeyboardInterrupt):
        call ``model.eval()`` before inference. Parameters with ``requires_grad=False`` are
        not trained.
    data : tensor/array, tuple of tensors/arrays, Dataset or DataLoader
        A single tensor/array ``X`` gives batches that are tensors; a tuple ``(X, y, ...)`` gives
        tuples; a Dataset is batched by a DataLoader; a DataLoader is used as it is (its own
        batch size and shuffling). Floating numpy arrays become float32 tensors.
    loss_fn : callable (model, batch) -> scalar tensor
    epochs : int
        Maximum number of passes over ``data``.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=64
    val_data : same forms as ``data``, optional
        Evaluated (in eval mode, without gradients) after every epoch.
    patience : int, optional
        Stop after this many epochs without a lower validation loss (needs ``val_data``).
    device : str or torch.device, optional
        Where to train; default: the device of the model's first parameter, else cpu.
    random_state : int or None, default=0
        Seeds the shuffling (a ``torch.Generator``) and, for the duration of training only,
        torch's RNG (dropout, VAE sampling), so equal seeds give equal weights on one device;
        None draws fresh ones.
    progress : bool, default=True
        Show a tqdm progress bar over epochs.
    weight_decay : float, default=0.0
        Adam weight decay.
    metrics : mapping of name -> callable (model, batch) -> float, optional
        Extra validation metrics (batch means), recorded as ``history['val_<name>']``.
    restore_best : bool, default=True
        With ``val_data``, end with the weights of the epoch with the lowest validation loss.

    Returns
    -------
    history : dict
        ``train_loss`` and ``val_loss`` (lists, one value per epoch run; ``val_loss`` empty
        without ``val_data``), ``val_<metric>`` lists, ``best_epoch`` (0-based index of the
        lowest validation loss, else of the last epoch), ``best_val_loss``, ``epochs_run``,
        ``stopped_early`` and ``config`` (the arguments, device as a string).

    Examples
    --------
    >>> import torch, torch.nn.functional as F
    >>> from inspect_kit.models import SmallCNN, fit
    >>> X, y = torch.rand(64, 1, 8, 8), torch.randint(0, 2, (64,))
    >>> net = SmallCNN(n_classes=2)
    >>> hist = fit(net, (X, y), lambda m, b: F.cross_entropy(m(b[0]), b[1]), epochs=2,
    ...            progress=False)
    >>> len(hist["train_loss"])
    2
    """
    seed = random_state
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a callable (model, batch) -> scalar tensor")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if patience is not None:
        if val_data is None:
            raise ValueError("patience (early stopping) needs val_data to monitor")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int or None, got {patience!r}")
    metrics = dict(metrics or {})
    train_batches = _Batches(data, batch_size, "data")
    val_batches = None if val_data is None else _Batches(val_data, batch_size, "val_data")
    dev = _resolve_device(model, device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True; nothing to train")

    history: dict[str, Any] = {
        "train_loss": [],
        "val_loss": [],
        **{f"val_{name}": [] for name in metrics},
        "best_epoch": None,
        "best_val_loss": None,
        "epochs_run": 0,
        "stopped_early": False,
        "config": {
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "patience": patience,
            "random_state": seed,
            "weight_decay": weight_decay,
            "device": str(dev),
        },
    }
    model.to(dev)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    if seed is None:
        generator.seed()
    best_state: dict[str, torch.Tensor] | None = None
    best_loss = math.inf
    stale = 0

    with (
        model_state_preserved(model, eval_mode=False),
        _seeded(seed, dev),
        trange(epochs, desc="fit", disable=not progress, leave=False) as bar,
    ):
        for epoch in bar:
            model.train()
            total, count = 0.0, 0
            for batch in train_batches(True, generator):
                batch = _move(batch, dev)
                optimizer.zero_grad(set_to_none=True)
                loss = _check_loss(loss_fn(model, batch))
                loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
                optimizer.step()
                n = _batch_len(batch)
                total += float(loss.detach()) * n
                count += n
            if count == 0:
                raise ValueError("data produced no batches")
            train_loss = total / count
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training loss became {train_loss} in epoch {epoch}; try a lower lr "
                    f"(now {lr}) or check the data for nan/inf"
                )
            history["train_loss"].append(train_loss)
            history["epochs_run"] = epoch + 1
            postfix = {"train": f"{train_loss:.4f}"}

            if val_batches is None:
                history["best_epoch"] = epoch
            else:
                scores = _evaluate(model, val_batches, loss_fn, metrics, dev, generator)
                history["val_loss"].append(scores["loss"])
                for name in metrics:
                    history[f"val_{name}"].append(scores[name])
                postfix["val"] = f"{scores['loss']:.4f}"
                if scores["loss"] < best_loss:
                    best_loss, stale = scores["loss"], 0
                    history["best_epoch"], history["best_val_loss"] = epoch, best_loss
                    if restore_best:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            bar.set_postfix(postfix)
            logger.debug("epoch %d: %s", epoch, postfix)
            if patience is not None and stale >= patience:
                history["stopped_early"] = True
                logger.info("early stop after epoch %d (best %d)", epoch, history["best_epoch"])
                break
        if best_state is not None:
            model.load_state_dict(best_state)
    return history


# ----------------------------------------------------------------------------- classifiers


def _classification_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def _accuracy(model: nn.Module, batch: Batch) -> float:
    x, y = batch
    return float((model(x).argmax(dim=1) == y).float().mean())


def _check_xy(X: Any, y: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    Xt = _to_tensor(X, f"{name} X")
    yt = _to_tensor(y, f"{name} y")
    if yt.ndim != 1 or yt.is_floating_point() or yt.dtype == torch.bool:
        raise ValueError(
            f"{name} y must be a 1-D array of integer class indices, got "
            f"shape {tuple(yt.shape)} dtype {yt.dtype}"
        )
    if len(Xt) != len(yt):
        raise ValueError(f"{name} X has {len(Xt)} samples but y has {len(yt)}")
    if len(yt) and int(yt.min()) < 0:
        raise ValueError(f"{name} y has negative class indices; expected 0..K-1")
    return Xt, yt.long()


def fit_classifier(
    model: nn.Module,
    X: Any,
    y: Any,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    val_data: tuple[Any, Any] | None = None,
    patience: int | None = None,
    device: str | torch.device | None = None,
    random_state: int | None = 0,
    progress: bool = True,
    weight_decay: float = 0.0,
) -> dict[str, Any]:
    """Train a classifier with cross-entropy on ``(X, y)`` using :func:`fit`.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of ``X`` to logits ``(n, K)``; trained in place (see :func:`fit`).
    X : tensor or array, shape (N, C, ...)
    y : tensor or array of int, shape (N,)
        Class indices in ``0..K-1``.
    epochs, lr, batch_size, patience, device, random_state, progress, weight_decay
        As in :func:`fit`.
    val_data : tuple (X_val, y_val), optional
        Validation split: recorded as ``val_loss`` and ``val_accuracy`` per epoch, used for
        early stopping and to restore the best weights.

    Returns
    -------
    history : dict
        As :func:`fit`, with ``val_accuracy`` when ``val_data`` is given.

    Examples
    --------
    >>> from inspect_kit.data import load_digits_images
    >>> from inspect_kit.models import SmallCNN, fit_classifier, evaluate_classifier
    >>> X, y = load_digits_images(size=16)
    >>> net = SmallCNN(n_classes=10)
    >>> hist = fit_classifier(net, X[:1500], y[:1500], epochs=5, progress=False)
    >>> evaluate_classifier(net, X[1500:], y[1500:])["accuracy"] > 0.8
    True
    """
    Xt, yt = _check_xy(X, y, "training")
    val = None
    if val_data is not None:
        if not isinstance(val_data, tuple | list) or len(val_data) != 2:
            raise ValueError("val_data must be a tuple (X_val, y_val)")
        val = _check_xy(val_data[0], val_data[1], "val_data")
    return fit(
        model,
        (Xt, yt),
        _classification_loss,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        val_data=val,
        patience=patience,
        device=device,
        random_state=random_state,
        progress=progress,
        weight_decay=weight_decay,
        metrics={"accuracy": _accuracy} if val is not None else None,
    )


def predict_logits(
    model: nn.Module,
    X: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Model outputs for ``X`` in eval mode without gradients, as a float32 numpy array.

    The model's training flags are restored afterwards; it is moved to ``device`` if given.

    Examples
    --------
    >>> import torch
    >>> from inspect_kit.models import SmallCNN, predict_logits
    >>> predict_logits(SmallCNN(n_classes=3), torch.zeros(5, 1, 8, 8)).shape
    (5, 3)
    """
    Xt = _to_tensor(X, "X")
    dev = _resolve_device(model, device)
    model.to(dev)
    out = []
    with model_state_preserved(model, eval_mode=False), torch.no_grad():
        model.eval()
        for start in range(0, len(Xt), batch_size):
            out.append(model(Xt[start : start + batch_size].to(dev)).float().cpu())
    if not out:
        raise ValueError("X has no samples")
    return torch.cat(out).numpy()


def evaluate_classifier(
    model: nn.Module,
    X: Any,
    y: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Measure a classifier on held-out data.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean per-class recall), ``loss`` (mean
        cross-entropy), ``confusion_matrix`` ((K, K) int64, rows = true class),
        ``predictions`` ((N,) int64) and ``n``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from inspect_kit.models import SmallCNN, evaluate_classifier
    >>> X, y = torch.zeros(4, 1, 8, 8), np.array([0, 1, 0, 1])
    >>> res = evaluate_classifier(SmallCNN(n_classes=2), X, y)
    >>> res["confusion_matrix"].shape, res["n"]
    ((2, 2), 4)
    """
    Xt, yt = _check_xy(X, y, "evaluation")
    logits = torch.from_numpy(predict_logits(model, Xt, batch_size=batch_size, device=device))
    y_np = yt.numpy()
    k = max(int(logits.shape[1]), int(y_np.max()) + 1)
    pred = logits.argmax(dim=1).numpy().astype(np.int64)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_np, pred), 1)
    support = cm.sum(axis=1)
    recall = np.diag(cm)[support > 0] / support[support > 0]
    return {
        "accuracy": float((pred == y_np).mean()),
        "balanced_accuracy": float(recall.mean()),
        "loss": float(F.cross_entropy(logits, yt)),
        "confusion_matrix": cm,
        "predictions": pred,
        "n": len(y_np),
    }
