"""Transforms: shapes in 2D/3D, exact shifts and rotations, fusion, seeds."""

import math

import numpy as np
import pytest
import torch

from inspect_kit.analysis.featurevis import transforms as T


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=gen(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(3, 2, 9, 11), (2, 1, 5, 6, 7)])
@pytest.mark.parametrize(
    "make",
    [
        lambda: T.jitter(2),
        lambda: T.scale((0.8, 1.2)),
        lambda: T.rotate((-20, 20)),
        lambda: T.default_transforms((40, 40)),
        lambda: T.compose(T.jitter(1), T.rotate((-10, 10)), T.scale((0.9, 1.1))),
    ],
)
def test_geometric_transforms_keep_the_shape(shape, make):
    x = rand(*shape)
    assert make()(x, gen()).shape == x.shape


def test_pad_grows_every_spatial_side():
    assert T.pad(2)(rand(1, 1, 4, 5), gen()).shape == (1, 1, 8, 9)
    assert T.pad(1, mode="constant", value=-1)(rand(2, 3, 4, 4, 4), gen()).shape == (2, 3, 6, 6, 6)
    out = T.pad(1, mode="constant", value=-7.0)(rand(1, 1, 3, 3), gen())
    assert out[0, 0, 0, 0] == -7.0
    # a pad inside a compose splits the fused affine runs but keeps working
    out = T.compose(T.jitter(1), T.pad(2), T.rotate((-5, 5)))(rand(1, 1, 6, 6, 6), gen())
    assert out.shape == (1, 1, 10, 10, 10)


def test_rejects_a_batch_without_channels():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        T.jitter(1)(rand(4, 4), gen())


@pytest.mark.parametrize("nd", [2, 3])
def test_jitter_is_an_exact_integer_shift(nd):
    x = rand(*((4, 1) + (10,) * nd), seed=3)
    out = T.jitter(2)(x, gen(5))
    inner = (slice(None), slice(None)) + (slice(2, -2),) * nd
    for b in range(x.shape[0]):
        matches = []
        for shift in np.ndindex(*(5,) * nd):
            s = tuple(int(v) - 2 for v in shift)
            rolled = torch.roll(x[b : b + 1], shifts=s, dims=tuple(range(2, 2 + nd)))
            if torch.allclose(out[b : b + 1][inner], rolled[inner], atol=1e-10):
                matches.append(s)
        assert len(matches) == 1, f"element {b}: {matches}"


def test_rotation_by_90_degrees_is_rot90_in_2d():
    x = rand(1, 1, 8, 8, seed=1)
    out = T.rotate((90, 90))(x, gen())
    candidates = [torch.rot90(x, k, dims=(2, 3)) for k in (1, -1)]
    assert any(torch.allclose(out, c, atol=1e-9) for c in candidates)


def test_rotation_by_90_degrees_permutes_a_cube():
    # the three plane rotations by 90 degrees map voxels onto voxels: no interpolation
    x = rand(1, 1, 6, 6, 6, seed=2)
    out = T.rotate((90, 90))(x, gen())
    assert torch.allclose(torch.sort(out.flatten()).values, torch.sort(x.flatten()).values)
    assert not torch.allclose(out, x)


def test_rotation_respects_non_square_shapes():
    # a round blob stays round when rotated, whatever the aspect of the image
    h, w = 24, 48
    yy, xx = torch.meshgrid(
        torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij"
    )
    blob = torch.exp(-(yy**2 + xx**2) / (2 * 3.0**2)).double()[None, None]
    out = T.rotate((37, 37))(blob, gen())
    # bilinear interpolation error only (ignoring the aspect would stretch the blob by 2x)
    assert (out - blob).abs().max() < 0.03


def test_zero_rotation_and_unit_scale_are_identity():
    x = rand(2, 2, 6, 7, 8)
    assert torch.allclose(T.rotate((0, 0))(x, gen()), x, atol=1e-10)
    assert torch.allclose(T.scale((1, 1))(x, gen()), x, atol=1e-10)


def test_zoom_by_two_halves_the_slope_of_a_ramp():
    w = 32
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, 16, w).contiguous()
    out = T.scale((2.0, 2.0))(ramp, gen())
    slope = (out[0, 0, 8, 20] - out[0, 0, 8, 12]) / 8
    assert slope.item() == pytest.approx(0.5, abs=1e-9)


def test_compose_fuses_affine_runs_like_sequential_application():
    x = rand(2, 1, 20, 20, seed=4)
    fused = T.compose(T.jitter(2), T.rotate((-15, 15)))(x, gen(7))
    g = gen(7)
    sequential = T.rotate((-15, 15))(T.jitter(2)(x, g), g)
    inner = (slice(None), slice(None), slice(5, -5), slice(5, -5))
    # the fused run interpolates once: equal up to interpolation error, inside the borders
    assert (fused[inner] - sequential[inner]).abs().mean() < 0.05
    assert (
        repr(T.compose(T.jitter(2), T.rotate((-15, 15)))) == "compose(jitter(2), rotate(-15, 15))"
    )


def test_a_seed_reproduces_the_draws():
    t = T.default_transforms((48, 48, 48))
    x = rand(2, 1, 48, 48, 48)
    a, b, c = t(x, gen(11)), t(x, gen(11)), t(x, gen(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_default_transforms_are_sized_to_the_input():
    assert repr(T.default_transforms((224, 224))) == (
        "compose(jitter(14), scale(0.95, 1.05), rotate(-5, 5), jitter(7))"
    )
    assert repr(T.default_transforms((12, 12, 12))) == "compose(jitter(1))"


def test_invalid_parameters_are_rejected():
    for bad in (
        lambda: T.jitter(-1),
        lambda: T.scale((0, 1)),
        lambda: T.rotate((5, -5)),
        lambda: T.pad(1, mode="wrap"),
        lambda: T.jitter(1, padding_mode="edge"),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError):
        T.compose(3)


def test_rotation_angles_follow_the_requested_range():
    # the angle recovered from a rotated 2D point set lies within the range
    x = torch.zeros(64, 1, 33, 33, dtype=torch.float64)
    x[:, :, 16, 28] = 1.0  # a dot 12 voxels right of the centre
    out = T.rotate((10, 30))(x, gen(3))
    angles = []
    for b in range(64):
        yy, xx = np.unravel_index(int(out[b, 0].argmax()), (33, 33))
        angles.append(abs(math.degrees(math.atan2(yy - 16, xx - 16))))
    assert 8 <= min(angles) and max(angles) <= 32
    assert max(angles) - min(angles) > 10
