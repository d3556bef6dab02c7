"""A small reference convolutional classifier for 2D images and 3D volumes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_GAP = {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


class SmallCNN(nn.Sequential):
    """Small conv net with flat, readable layer names, for 2D images or 3D volumes.

    For ``widths=(8, 16, 32)`` the layers are, in order::

        conv1 bn1 relu1 pool1  conv2 bn2 relu2 pool2  conv3 bn3 relu3  gap flatten fc

    Every block but the last halves the spatial size (``poolK``); ``gap`` averages the last
    feature maps to one vector per sample, so any input size of at least
    ``2 ** (len(widths) - 1)`` pixels per side works. Convolution and ReLU outputs are spatial
    maps (good capture targets for embeddings and feature visualization); ``gap`` / ``flatten``
    give a ``widths[-1]``-dimensional embedding; ``fc`` gives the logits.

    Parameters
    ----------
    in_channels : int, default=1
        Input channels (1 for CT/MR, 3 for RGB).
    n_classes : int, default=10
        Number of output logits.
    dim : {2, 3}, default=2
        2 for ``(N, C, H, W)`` images, 3 for ``(N, C, D, H, W)`` volumes.
    widths : sequence of int, default=(8, 16, 32)
        Output channels of each conv block.
    kernel_size : int, default=3
        Convolution kernel size (odd; padding keeps the spatial size).
    batch_norm : bool, default=True
        Put a BatchNorm layer (``bnK``) between each convolution and its ReLU.
    inplace_relu : bool, default=False
        Use ``nn.ReLU(inplace=True)``, as torchvision models do. The ReLU then overwrites the
        output of the layer before it, which activation capture must cope with.
    random_state : int or None, default=0
        Seed of the weight initialisation (drawn inside ``torch.random.fork_rng``, so the global
        RNG is untouched); ``None`` uses torch's global RNG.

    Attributes
    ----------
    dim, in_channels, n_classes, widths : as given
    conv_layers : list of str
        Names of the convolution layers (``['conv1', 'conv2', 'conv3']``).

    Examples
    --------
    >>> import torch
    >>> from inspect_kit.models import SmallCNN
    >>> net = SmallCNN(in_channels=1, n_classes=3, dim=3)
    >>> net(torch.zeros(2, 1, 16, 16, 16)).shape
    torch.Size([2, 3])
    >>> [name for name, _ in net.named_children()][:4]
    ['conv1', 'bn1', 'relu1', 'pool1']
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        dim: int = 2,
        widths: Sequence[int] = (8, 16, 32),
        *,
        kernel_size: int = 3,
        batch_norm: bool = True,
        inplace_relu: bool = False,
        pool_size: int = 1,
        random_state: int | None = 0,
    ) -> None:
        if dim not in (2, 3) or isinstance(dim, bool):
            raise ValueError(f"dim must be 2 (images) or 3 (volumes), got {dim!r}")
        widths = tuple(widths)
        if not widths or not all(isinstance(w, int) and w > 0 for w in widths):
            raise ValueError(
                f"widths must be a non-empty sequence of positive ints, got {widths!r}"
            )
        for name, value in (("in_channels", in_channels), ("n_classes", n_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd int (e.g. 3), got {kernel_size!r}"
            )

        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(
                f"pool_size must be a positive int (1 = global pooling), got {pool_size!r}"
            )

        args = (
            in_channels,
            n_classes,
            dim,
            widths,
            kernel_size,
            batch_norm,
            inplace_relu,
            pool_size,
        )
        if random_state is None:
            layers = self._build(*args)
        else:
            # Only the CPU generator is seeded, inside a fork, so global RNG state is untouched.
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(random_state)
                layers = self._build(*args)
        super().__init__(layers)
        self.dim = dim
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.widths = widths
        self.conv_layers = [f"conv{i}" for i in range(1, len(widths) + 1)]

    @staticmethod
    def _build(
        in_channels: int,
        n_classes: int,
        dim: int,
        widths: tuple[int, ...],
        kernel_size: int,
        batch_norm: bool,
        inplace_relu: bool,
        pool_size: int,
    ) -> OrderedDict[str, nn.Module]:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for i, width in enumerate(widths, start=1):
            layers[f"conv{i}"] = _CONV[dim](
                channels, width, kernel_size, padding=kernel_size // 2, bias=not batch_norm
            )
            if batch_norm:
                layers[f"bn{i}"] = _NORM[dim](width)
            layers[f"relu{i}"] = nn.ReLU(inplace=inplace_relu)
            if i < len(widths):
                layers[f"pool{i}"] = _POOL[dim](2)
            channels = width
        layers["avgpool"] = _GAP[dim](pool_size)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels * pool_size**dim, n_classes)
        return layers
