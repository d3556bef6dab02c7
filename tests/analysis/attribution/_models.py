"""Tiny models for the attribution tests (16-32 px, a few channels): seeded, eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(dim: int) -> type[nn.Module]:
    return nn.Conv2d if dim == 2 else nn.Conv3d


class TinyCNN(nn.Module):
    """conv-relu-conv-relu-pool-conv-relu-gap-linear with ReLU modules (``relu="module"``),
    functional ``F.relu`` (``"functional"``) or in-place modules (``"inplace"``)."""

    def __init__(self, dim: int = 2, in_ch: int = 1, n_classes: int = 3, relu: str = "module"):
        super().__init__()
        conv = _conv(dim)
        pool = nn.MaxPool2d if dim == 2 else nn.MaxPool3d
        gap = nn.AdaptiveAvgPool2d if dim == 2 else nn.AdaptiveAvgPool3d
        self.mode = relu
        self.conv1 = conv(in_ch, 4, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=relu == "inplace")
        self.conv2 = conv(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=relu == "inplace")
        self.pool = pool(2)
        self.conv3 = conv(6, 8, 3, padding=1)
        self.relu3 = nn.ReLU(inplace=relu == "inplace")
        self.gap = gap(1)
        self.fc = nn.Linear(8, n_classes)

    def _act(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if self.mode == "functional" else m(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self.relu1, self.conv1(x))
        x = self._act(self.relu2, self.conv2(x))
        x = self.pool(x)
        x = self._act(self.relu3, self.conv3(x))
        return self.fc(self.gap(x).flatten(1))


def tiny(dim: int = 2, in_ch: int = 1, relu: str = "module", seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(dim, in_ch, relu=relu).eval()


class RegionModel(nn.Module):
    """Logit 1 depends only on the inputs inside one known box; logit 0 is a constant-ish bias.

    ``x -> conv -> (mask * h) -> relu -> sum -> linear``: outside the box nothing reaches
    logit 1, and the ``relu`` layer's maps are zero there.
    """

    def __init__(self, shape: tuple[int, ...], box: tuple[slice, ...]):
        super().__init__()
        dim = len(shape)
        self.conv = _conv(dim)(1, 4, 1)
        self.relu = nn.ReLU()
        mask = torch.zeros(shape)
        mask[box] = 1.0
        self.register_buffer("mask", mask)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4]))
            self.fc.bias.copy_(torch.tensor([1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.conv(x) * self.mask)
        return self.fc(h.flatten(2).sum(2))


class TwiceModel(nn.Module):
    """One conv block called twice in a forward (shared weights)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.block(torch.relu(self.stem(x))))
        h = torch.relu(self.block(h))
        return self.head(h.mean((2, 3)))


def snapshot(model: nn.Module) -> dict[str, object]:
    """Everything the guard promises to restore, for comparisons."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "hooks": [
            (
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
                len(m._backward_pre_hooks),
            )
            for m in model.modules()
        ],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_same(before: dict[str, object], model: nn.Module) -> None:
    after = snapshot(model)
    state_b, state_a = before["state"], after["state"]
    assert isinstance(state_b, dict) and isinstance(state_a, dict)
    assert state_b.keys() == state_a.keys()
    for k in state_b:
        assert torch.equal(state_b[k], state_a[k]), f"{k} changed"
    for key in ("training", "requires_grad", "inplace", "hooks"):
        assert before[key] == after[key], f"{key} changed"
    assert all(g is None for g in after["grads"]), "parameter gradients were left"
