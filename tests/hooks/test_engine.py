"""The one hook engine: one rule for tuple outputs, hooks always removed, early stop, grads."""

import pytest
import torch
from torch import nn

from inspect_kit.hooks import LayerRecorder, resolve_layers


class Pair(nn.Module):
    def forward(self, x):
        return x + 1, (2 * x, {"neg": -x})


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.relu = nn.ReLU(inplace=True)
        self.pair = Pair()
        self.boom = nn.Identity()

    def forward(self, x):
        h = self.relu(self.lin(x))
        h = self.relu(h - 0.5)
        a, (b, c) = self.pair(h)
        if torch.is_grad_enabled() and getattr(self, "explode", False):
            raise RuntimeError("forward failed")
        return self.boom(a + b + c["neg"])


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_capture_rule_every_call_and_every_output():
    net = Net()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    with LayerRecorder(resolve_layers(net, ["lin", "relu", "pair"])) as rec, torch.no_grad():
        rec.run(net, x)
    assert list(rec.outputs) == [
        "lin",
        "relu",
        "relu:1",
        "pair[0]",
        "pair[1][0]",
        "pair[1][1][neg]",
    ]
    h = torch.relu(net.lin(x))
    # the in-place ReLU that follows cannot alter what was recorded
    torch.testing.assert_close(rec.outputs["lin"].tensor, net.lin(x).detach())
    torch.testing.assert_close(rec.outputs["relu"].tensor, h.detach())
    torch.testing.assert_close(rec.outputs["relu:1"].tensor, torch.relu(h - 0.5).detach())
    assert rec.outputs["relu:1"].call_index == 1 and rec.outputs["pair[0]"].module_path == "pair"
    with LayerRecorder(resolve_layers(net, ["pair[1]", "relu:1"])) as rec, torch.no_grad():
        rec.run(net, x)
    assert list(rec.outputs) == ["relu:1", "pair[1][0]", "pair[1][1][neg]"]
    assert no_hooks(net)


def test_one_tensor_mode_names_the_outputs_to_choose_from():
    net = Net()
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    with LayerRecorder(resolve_layers(net, ["pair"]), flatten=False) as rec:
        with pytest.raises(ValueError, match=r"'pair\[0\]' \(2, 4\), 'pair\[1\]\[0\]'"):
            rec.run(net, x)
    with LayerRecorder(resolve_layers(net, ["pair[1][0]"]), flatten=False) as rec:
        rec.run(net, x)
    assert list(rec.outputs) == ["pair[1][0]"]
    with LayerRecorder(resolve_layers(net, ["pair[7]"])) as rec:
        with pytest.raises(KeyError, match=r"no output \[7\]"):
            rec.run(net, x)
    assert no_hooks(net)


def test_hooks_are_removed_when_the_forward_fails():
    net = Net()
    net.explode = True
    with pytest.raises(RuntimeError, match="forward failed"):
        with LayerRecorder(resolve_layers(net, ["lin", "pair"])) as rec:
            rec.run(net, torch.zeros(2, 3))
    assert no_hooks(net)


def test_stop_early_and_keep_grad():
    net = Net()
    calls = []
    net.pair.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with LayerRecorder(
        resolve_layers(net, ["relu:1", "lin"]), keep_grad=True, every_call=False, stop_early=True
    ) as rec:
        out = rec.run(net, x)
    assert out is None and not calls  # nothing after relu:1 ran
    rec.outputs["lin"].tensor.sum().backward()
    torch.testing.assert_close(x.grad, net.lin.weight.sum(0).expand(2, 3).detach())
    with LayerRecorder(resolve_layers(net, ["relu:3"]), every_call=False) as rec:
        with pytest.raises(RuntimeError, match="'relu:3' did not run"):
            rec.run(net, x)
    with pytest.raises(ValueError, match="every_call=False"):
        LayerRecorder({}, stop_early=True)
