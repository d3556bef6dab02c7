import pytest
import torch
from torch import nn

from inspect_kit.models import SmallCNN


def _outputs(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for name, layer in model.named_children():
        x = layer(x)
        out[name] = x
    return out


def test_layer_names_are_flat_and_in_order():
    names = [n for n, _ in SmallCNN().named_children()]
    assert names == [
        "conv1", "bn1", "relu1", "pool1",
        "conv2", "bn2", "relu2", "pool2",
        "conv3", "bn3", "relu3",
        "avgpool", "flatten", "fc",
    ]  # fmt: skip
    no_bn = [n for n, _ in SmallCNN(widths=(4, 4), batch_norm=False).named_children()]
    assert no_bn == ["conv1", "relu1", "pool1", "conv2", "relu2", "avgpool", "flatten", "fc"]
    assert SmallCNN(widths=(4, 4, 4, 4)).conv_layers == ["conv1", "conv2", "conv3", "conv4"]


@pytest.mark.parametrize(
    "dim, in_channels, shape",
    [(2, 1, (16, 16)), (2, 3, (20, 13)), (3, 1, (12, 12, 12)), (3, 2, (8, 10, 9))],
)
@pytest.mark.parametrize("pool_size", [1, 3])
def test_shapes_for_2d_3d_and_any_channel_count(dim, in_channels, shape, pool_size):
    net = SmallCNN(in_channels=in_channels, n_classes=5, dim=dim, pool_size=pool_size).eval()
    x = torch.randn(4, in_channels, *shape, generator=torch.Generator().manual_seed(0))
    outs = _outputs(net, x)
    assert outs["conv1"].shape == (4, 8, *shape)  # padding keeps the size: spatial maps
    assert outs["pool1"].shape == (4, 8, *(s // 2 for s in shape))
    assert outs["relu3"].shape[:2] == (4, 32) and outs["relu3"].ndim == 2 + dim
    assert outs["flatten"].shape == (4, 32 * pool_size**dim)
    assert outs["fc"].shape == (4, 5)
    torch.testing.assert_close(net(x), outs["fc"])


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = SmallCNN(random_state=1), SmallCNN(random_state=1), SmallCNN(random_state=2)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    # random_state=None draws from torch's global RNG
    torch.manual_seed(11)
    glob = SmallCNN(random_state=None)
    torch.manual_seed(11)
    assert torch.equal(SmallCNN(random_state=None).conv1.weight, glob.conv1.weight)


@pytest.mark.parametrize("inplace", [False, True])
def test_gradients_reach_the_input(inplace):
    # feature visualization optimises the input, so d(unit)/d(input) must be non-zero
    net = SmallCNN(n_classes=3, inplace_relu=inplace).eval()
    assert net.relu1.inplace is inplace
    x = torch.randn(2, 1, 16, 16, requires_grad=True)
    net(x)[:, 1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_inplace_relu_gives_the_same_outputs():
    x = torch.randn(3, 1, 16, 16)
    a = SmallCNN(inplace_relu=False).eval()
    b = SmallCNN(inplace_relu=True).eval()
    torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 1}, "dim must be 2"),
        ({"widths": ()}, "widths"),
        ({"widths": (8, 0)}, "widths"),
        ({"in_channels": 0}, "in_channels"),
        ({"n_classes": 0}, "n_classes"),
        ({"kernel_size": 4}, "odd"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_invalid_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SmallCNN(**kwargs)


def test_works_on_meta_device():
    net = SmallCNN(dim=3, n_classes=2).to("meta")
    out = net(torch.empty(2, 1, 8, 8, 8, device="meta"))
    assert out.shape == (2, 2) and out.device.type == "meta"
