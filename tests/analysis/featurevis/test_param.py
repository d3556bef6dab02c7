"""Parameterisations: shapes for any C in 2D/3D, the 1/f spectrum, decorrelation from data."""

import numpy as np
import pytest
import torch

from inspect_kit.analysis.featurevis import param as P
from tests.numeric import EPS32, assert_close


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("spec", [P.pixel(), P.fourier(), P.fourier(decay=1.5)])
@pytest.mark.parametrize("shape", [(1, 16, 16), (2, 9, 13), (5, 8, 8), (1, 6, 7, 9), (3, 8, 8, 8)])
def test_shapes_for_any_channel_count(spec, shape):
    p = spec.build(4, shape, gen())
    out = p()
    assert out.shape == (4, *shape)
    assert out.requires_grad
    assert all(t.requires_grad for t in p.parameters())


def test_invalid_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        P.pixel().build(1, (16, 16), gen())
    with pytest.raises(ValueError):
        P.fourier().build(1, (1, 0, 4), gen())


@pytest.mark.parametrize("shape", [(2, 10, 7), (1, 6, 5, 8)])
def test_fourier_image_is_the_inverse_fft_of_the_scaled_spectrum(shape):
    p = P.fourier(decay=1.0).build(2, shape, gen(3))
    spec = p.spectrum.detach().numpy()
    coeffs = (spec[..., 0] + 1j * spec[..., 1]) * p.scale.numpy()
    axes = tuple(range(-(len(shape) - 1), 0))
    expected = np.fft.irfftn(coeffs, s=shape[1:], axes=axes, norm="ortho")
    # float32 FFT against numpy's float64 one, over every pixel
    assert_close(p(), expected, terms=int(np.prod(shape[1:])))


def test_fourier_scale_decays_as_one_over_frequency():
    scale = P._fourier_scale((32, 32), decay=1.0).numpy()
    fy = np.fft.fftfreq(32)[:, None]
    fx = np.fft.rfftfreq(32)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    nz = f > 1 / 32
    ratio = scale[nz] * f[nz]
    # scale * f is constant (1/f), up to the float32 rounding of scale
    np.testing.assert_allclose(ratio, ratio[0], rtol=4 * EPS32)
    # 3D: same law along the radius
    s3 = P._fourier_scale((8, 8, 8), decay=2.0).numpy()
    assert s3[0, 0, 2] / s3[0, 0, 4] == pytest.approx(4.0, rel=4 * EPS32)


def test_fourier_images_are_smoother_than_pixel_images():
    def roughness(x):
        return np.abs(np.diff(x, axis=-1)).mean() / x.std()

    f = P.fourier(sd=1.0).build(8, (1, 32, 32), gen())().detach().numpy()
    p = P.pixel(sd=1.0).build(8, (1, 32, 32), gen())().detach().numpy()
    assert roughness(f) < 0.6 * roughness(p)


def test_a_seed_reproduces_the_start():
    a = P.fourier().build(2, (1, 8, 8, 8), gen(5))().detach()
    b = P.fourier().build(2, (1, 8, 8, 8), gen(5))().detach()
    c = P.fourier().build(2, (1, 8, 8, 8), gen(6))().detach()
    assert torch.equal(a, b) and not torch.equal(a, c)


def _correlated(n, seed=0):
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.3, 0.2]], dtype=np.float32)
    z = rng.normal(size=(n, 3, 6, 6)).astype(np.float32)
    return np.einsum("ij,njhw->nihw", mix, z), mix @ mix.T


def test_decorrelation_is_a_square_root_of_the_channel_covariance():
    x, cov = _correlated(400)
    m = P.channel_decorrelation(x, max_samples=None)
    mmt = m @ m.T
    np.testing.assert_allclose(mmt / mmt[0, 0], cov / cov[0, 0], atol=0.05)
    assert np.linalg.norm(m, axis=0).max() == pytest.approx(1.0)


def test_decorrelation_from_a_real_rgb_image():
    from skimage import data

    img = data.retina()[::8, ::8].astype(np.float32) / 255.0  # (h, w, 3), real fundus photo
    patches = np.stack(
        [
            img[i : i + 16, j : j + 16].transpose(2, 0, 1)
            for i in range(0, 160, 16)
            for j in range(0, 160, 16)
        ]
    )
    m = P.channel_decorrelation(patches)
    pix = patches.transpose(1, 0, 2, 3).reshape(3, -1)
    cov = np.cov(pix)
    mmt = m @ m.T
    np.testing.assert_allclose(mmt / mmt.max(), cov / cov.max(), atol=1e-4)


def test_decorrelation_accepts_loaders_and_tuples():
    x, _ = _correlated(64)
    direct = P.channel_decorrelation(x)
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.zeros(64))
    loader = torch.utils.data.DataLoader(ds, batch_size=10)
    np.testing.assert_allclose(P.channel_decorrelation(loader), direct, atol=1e-5)
    np.testing.assert_allclose(P.channel_decorrelation(ds), direct, atol=1e-5)
    dicts = [{"x": torch.as_tensor(x[i : i + 16])} for i in range(0, 64, 16)]
    np.testing.assert_allclose(P.channel_decorrelation(dicts), direct, atol=1e-5)


def test_single_channel_decorrelation_is_identity():
    x = np.random.default_rng(0).normal(3.0, 100.0, size=(20, 1, 5, 5, 5))
    np.testing.assert_allclose(P.channel_decorrelation(x), [[1.0]], atol=1e-6)


def test_decorrelation_mixes_the_parameterisation_channels():
    m = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    p = P.pixel(decorrelate=m).build(3, (2, 4, 4), gen())
    raw = p.pixels.detach().numpy()
    np.testing.assert_allclose(p().detach().numpy(), np.einsum("ij,bjhw->bihw", m, raw), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        P.pixel(decorrelate=m).build(1, (3, 4, 4), gen())
