"""Weight views: first-layer kernels of trained 2D and 3D networks."""

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.analysis.weights import conv_kernels
from inspect_kit.models import SmallCNN


def test_first_layer_of_a_trained_2d_network(digits_cnn):
    k = conv_kernels(digits_cnn)
    assert k.layer == "conv1" and k.dim == 2 and k.module_type == "Conv2d"
    np.testing.assert_array_equal(k.weights, digits_cnn.conv1.weight.detach().numpy())
    k.weights[:] = 0  # a copy: the model keeps its weights
    assert digits_cnn.conv1.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="3D kernels"):
        k.plane("axial")


def test_3d_kernels_as_orthogonal_slices(mni3d_cnn):
    k = conv_kernels(mni3d_cnn)
    w = mni3d_cnn.conv1.weight.detach().numpy()
    assert k.weights.shape == (8, 1, 3, 3, 3) and k.dim == 3
    planes = k.orthogonal_slices()
    np.testing.assert_array_equal(planes["axial"], w[:, :, 1])
    np.testing.assert_array_equal(planes["coronal"], w[:, :, :, 1])
    np.testing.assert_array_equal(planes["sagittal"], w[:, :, :, :, 1])
    np.testing.assert_array_equal(k.plane("axial", 0), w[:, :, 0])
    with pytest.raises(ValueError, match="0..2"):
        k.plane("coronal", 3)


def test_any_channel_count_named_layers_and_transposed_convs():
    net = SmallCNN(in_channels=5, dim=2, random_state=0)
    assert conv_kernels(net).n_in == 5
    k2 = conv_kernels(net, "conv2")
    assert k2.weights.shape == (16, 8, 3, 3)
    deconv = nn.Sequential(nn.Linear(2, 2), nn.ConvTranspose3d(2, 5, 3))
    kt = conv_kernels(deconv)
    assert kt.weights.shape == (5, 2, 3, 3, 3)
    np.testing.assert_array_equal(kt.weights[4, 1], deconv[1].weight.detach().numpy()[1, 4])


def test_errors_name_the_problem():
    net = SmallCNN(dim=2)
    with pytest.raises(KeyError, match="conv1"):
        conv_kernels(net, "conv9")
    with pytest.raises(ValueError, match="Conv2d or Conv3d"):
        conv_kernels(net, "bn1")
    with pytest.raises(ValueError, match="no Conv2d"):
        conv_kernels(nn.Sequential(nn.Linear(3, 3)))


def test_trained_kernels_differ_from_their_initialisation(digits_cnn):
    init = SmallCNN(in_channels=1, n_classes=10, dim=2, random_state=0)
    moved = np.abs(conv_kernels(digits_cnn).weights - conv_kernels(init).weights).mean()
    assert moved > 1e-3
    assert torch.equal(torch.as_tensor(conv_kernels(init).weights), init.conv1.weight.detach())
