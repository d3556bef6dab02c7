"""Reference lesion detectors: :class:`SmallCNN` trained on :func:`make_lesion_task` data.

They are the known-answer models the trust metrics are checked on: a clean detector, one
trained on the shortcut variant (the corner tag), and one trained on permuted labels (the data
randomisation test of Adebayo et al., 2018).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from inspect_kit.data.lesions import LesionTask
from inspect_kit.models.cnn import SmallCNN
from inspect_kit.models.training import fit_classifier

__all__ = ["fit_lesion_cnn"]


def fit_lesion_cnn(
    task: LesionTask,
    *,
    epochs: int = 12,
    lr: float = 3e-3,
    batch_size: int = 32,
    widths: tuple[int, ...] = (8, 16, 32),
    permute_labels: bool = False,
    device: str | torch.device = "cpu",
    random_state: int = 0,
    progress: bool = False,
) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a 2D or 3D :class:`SmallCNN` (2 logits) to detect the lesions of ``task``.

    Parameters
    ----------
    task : LesionTask
        Training data (2D or 3D; the network's dimension follows it).
    epochs, lr, batch_size
        As in :func:`~inspect_kit.models.fit_classifier` (Adam; no validation split).
    widths : tuple of int, default=(8, 16, 32)
        Channels of the conv blocks.
    permute_labels : bool, default=False
        Train on a random permutation of the labels: a model that can only memorise, for the
        data randomisation test.
    device : str or torch.device, default="cpu"
    random_state : int, default=0
        Seeds the initialisation, the shuffling and the label permutation.
    progress : bool, default=False

    Returns
    -------
    model : SmallCNN
        In eval mode.
    history : dict
        :func:`~inspect_kit.models.fit` history, with ``permute_labels``.

    Examples
    --------
    >>> from inspect_kit.data.lesions import make_lesion_task
    >>> task = make_lesion_task(dim=2, n_samples=64, random_state=0)
    >>> net, hist = fit_lesion_cnn(task, epochs=1)
    >>> net(torch.from_numpy(task.X[:2])).shape
    torch.Size([2, 2])
    """
    y = task.y
    if permute_labels:
        y = np.random.default_rng(random_state).permutation(y)
    net = SmallCNN(
        in_channels=1, n_classes=2, dim=task.dim, widths=widths, random_state=random_state
    )
    history = fit_classifier(
        net,
        task.X,
        y,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        random_state=random_state,
        progress=progress,
    )
    history["permute_labels"] = permute_labels
    net.eval()
    return net, history
