"""Per-sample transforms (inspect_kit.data.transforms) against independent implementations:
scikit-image's anti-aliased resize for volumes, torch's interpolate and plain arithmetic for
images, and MONAI's Resize to show why the 3D path is ours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inspect_kit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SampleTransform,
    adapt_channels,
    channels_of,
    normalise,
    parse_normalize,
    resize,
    scale_integers,
)


def _rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).random(shape).astype(np.float32)


def test_2d_resize_is_antialiased_bilinear():
    x = torch.from_numpy(_rand(3, 37, 29))
    ref = F.interpolate(x[None], size=(12, 10), mode="bilinear", antialias=True)[0]
    torch.testing.assert_close(resize(x, (12, 10)), ref, rtol=1e-5, atol=1e-6)


def test_3d_resize_matches_scikit_image_anti_aliased_linear():
    skimage_transform = pytest.importorskip("skimage.transform")
    x = _rand(40, 48, 56)
    ours = resize(torch.from_numpy(x)[None], (20, 16, 28))[0].numpy()
    ref = skimage_transform.resize(x, (20, 16, 28), order=1, anti_aliasing=True, mode="edge")
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_3d_resize_keeps_a_constant_volume_constant_where_monai_darkens_the_border():
    # why the 3D path is not MONAI's Resize(anti_aliasing=True): its zero-padded Gaussian
    # pulls the border towards 0 (benchmarks/transforms.py measures it)
    x = torch.ones(1, 40, 48, 56)
    ours = resize(x, (20, 16, 28))
    torch.testing.assert_close(ours, torch.ones(1, 20, 16, 28))
    monai = pytest.importorskip("monai.transforms")
    theirs = torch.as_tensor(
        np.asarray(monai.Resize((20, 16, 28), mode="trilinear", anti_aliasing=True)(x))
    )
    assert float(theirs.min()) < 0.9


def test_window_then_imagenet_normalisation_by_hand():
    x = _rand(3, 8, 8) * 200 - 100
    out = SampleTransform(window=(-50.0, 50.0), normalize="imagenet")(x).numpy()
    w = (np.clip(x, -50, 50) + 50) / 100
    ref = (w - np.asarray(IMAGENET_MEAN)[:, None, None]) / np.asarray(IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_per_channel_normalisation_of_a_volume_uses_the_channel_axis():
    x = torch.from_numpy(_rand(2, 4, 5, 6))
    out = normalise(x, (0.5, 0.25), (2.0, 4.0))
    torch.testing.assert_close(out[0], (x[0] - 0.5) / 2.0)
    torch.testing.assert_close(out[1], (x[1] - 0.25) / 4.0)
    with pytest.raises(ValueError, match="one per channel"):
        normalise(x, (0.1, 0.2, 0.3), (1.0,))


def test_zscore_is_per_sample():
    out = SampleTransform(normalize="zscore")(_rand(1, 16, 16) * 7 + 3)
    assert abs(float(out.mean())) < 1e-5
    assert float(out.std()) == pytest.approx(1.0, rel=1e-5)


def test_channels_are_repeated_averaged_or_refused():
    one = torch.arange(4.0).view(1, 2, 2)
    assert torch.equal(adapt_channels(one, 3)[2], one[0])
    three = torch.stack([one[0], one[0] * 2, one[0] * 3])
    torch.testing.assert_close(adapt_channels(three, 1)[0], one[0] * 2)
    assert channels_of(1, 3) == 3 and channels_of(3, 1) == 1 and channels_of(2, None) == 2
    with pytest.raises(ValueError, match="channels=3"):
        adapt_channels(torch.zeros(2, 2, 2), 3)


def test_parse_normalize_spellings():
    assert parse_normalize(None) is None and parse_normalize("none") is None
    assert parse_normalize("zscore") == "zscore"
    assert parse_normalize("0.5,0.2") == ((0.5,), (0.2,))
    assert parse_normalize((0.5, [0.1, 0.2])) == ((0.5,), (0.1, 0.2))
    with pytest.raises(ValueError, match="not understood"):
        parse_normalize("bright")


def test_integers_scale_to_unit_range():
    assert scale_integers(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert scale_integers(np.array([65535], np.uint16)).tolist() == [1.0]
    assert scale_integers(np.array([-3.5])).dtype == np.float32
