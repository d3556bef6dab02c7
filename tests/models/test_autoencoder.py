"""Reference autoencoder and VAE: shapes for 2D/3D and any C, loss oracle, and trained quality
on real shipped data (sklearn digits, MNI152 patches) against the mean-image baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from inspect_kit.models import ConvAutoencoder, fit_autoencoder
from inspect_kit.models.autoencoder import autoencoder_loss
from tests._threads import one_thread
from tests.numeric import tolerance


def held_out_mse(model, X):
    """Oracle: plain torch forward in eval mode, mean squared error over all test values."""
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(X)
        return float(((model(x) - x) ** 2).mean())


def mean_image_mse(X_train, X_test):
    """The baseline an autoencoder must beat: predict the training set's mean image."""
    return float(((X_test - X_train.mean(axis=0)) ** 2).mean())


@pytest.mark.parametrize(
    "shape", [(1, 16, 16), (3, 15, 17), (2, 8, 9, 10), (1, 12, 12, 12)], ids=str
)
@pytest.mark.parametrize("variational", [False, True], ids=["ae", "vae"])
def test_shapes_any_channels_2d_and_3d(shape, variational):
    ae = ConvAutoencoder(shape, latent_dim=5, variational=variational, widths=(4, 8))
    x = torch.rand(3, *shape)
    code = ae.encode(x)
    if variational:
        mu, logvar = code
        assert mu.shape == logvar.shape == (3, 5)
        code = mu
    assert code.shape == (3, 5)
    assert ae.decode(code).shape == x.shape
    assert ae(x).shape == x.shape
    assert ae.spatial_dims == len(shape) - 1


def test_vae_forward_samples_in_training_and_decodes_the_mean_in_eval():
    vae = ConvAutoencoder((1, 8, 8), latent_dim=3, variational=True)
    x = torch.rand(4, 1, 8, 8)
    vae.eval()
    mu, _ = vae.encode(x)
    assert torch.equal(vae(x), vae.decode(mu))
    vae.train()
    assert not torch.allclose(vae(x), vae(x))


def test_bad_arguments_name_the_expected_form():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        ConvAutoencoder((16, 16), latent_dim=4)
    with pytest.raises(ValueError, match="latent_dim"):
        ConvAutoencoder((1, 16, 16), latent_dim=0)
    with pytest.raises(ValueError, match="output_activation"):
        ConvAutoencoder((1, 16, 16), output_activation="tanh")
    ae = ConvAutoencoder((1, 16, 16), latent_dim=4)
    with pytest.raises(ValueError, match=r"\(N, 1, 16, 16\)"):
        ae.encode(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        ae.decode(torch.zeros(2, 5))


def test_loss_oracle_mse_and_kl():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 4, 4, generator=gen)
    recon = torch.rand(2, 1, 4, 4, generator=gen)
    # float32 means of 32 squares, summed in whatever order each path takes
    tol = tolerance(recon, recon, terms=32)["rtol"]
    assert float(autoencoder_loss(recon, x)) == pytest.approx(
        float(((recon - x) ** 2).mean()), rel=tol
    )
    # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2 per dimension; 3 dims with mu = 1 -> 1.5 per sample
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    loss = autoencoder_loss((recon, mu, logvar), x, beta=2.0)
    per_sample_sq = float(((recon - x) ** 2).sum()) / 2
    assert float(loss) == pytest.approx((per_sample_sq + 2.0 * 1.5) / 16, rel=1e-5)


@pytest.fixture(scope="module")
def digits_split(digits):
    return digits.X_train, digits.X_test


@pytest.mark.slow
def test_autoencoder_beats_mean_image_on_digits(digits_split):
    X_tr, X_te = digits_split
    ae = ConvAutoencoder((1, 16, 16), latent_dim=8)
    with one_thread():
        hist = fit_autoencoder(ae, X_tr, epochs=15, lr=3e-3, val_data=X_te, progress=False)
    mse, base = held_out_mse(ae, X_te), mean_image_mse(X_tr, X_te)
    # measured ~0.20x of the baseline; we require at most 0.35x
    assert mse <= 0.35 * base, (mse, base)
    assert hist["val_loss"][-1] < 0.5 * hist["val_loss"][0]
    assert hist["config"]["epochs"] == 15 and len(hist["train_loss"]) == 15


@pytest.mark.slow
def test_vae_beats_mean_image_on_digits(digits_split):
    X_tr, X_te = digits_split
    vae = ConvAutoencoder((1, 16, 16), latent_dim=8, variational=True)
    with one_thread():
        fit_autoencoder(vae, X_tr, epochs=10, lr=3e-3, val_data=X_te, progress=False)
    mse, base = held_out_mse(vae, X_te), mean_image_mse(X_tr, X_te)
    # the KL term costs detail: measured ~0.42x; we require at most 0.6x
    assert mse <= 0.6 * base, (mse, base)
    vae.eval()
    with torch.no_grad():
        _, logvar = vae.encode(torch.from_numpy(X_te))
    # informative dimensions have posteriors much narrower than the prior's unit variance
    per_dim = logvar.exp().mean(dim=0)
    assert int((per_dim < 0.5).sum()) >= 2, per_dim


@pytest.mark.slow
def test_autoencoder_beats_mean_image_on_mni_2d_patches(mni2d):
    ae = ConvAutoencoder(mni2d.X_train.shape[1:], latent_dim=8)
    with one_thread():
        fit_autoencoder(ae, mni2d.X_train, epochs=12, lr=3e-3, progress=False)
    mse, base = held_out_mse(ae, mni2d.X_test), mean_image_mse(mni2d.X_train, mni2d.X_test)
    # measured ~0.10x
    assert mse <= 0.3 * base, (mse, base)


@pytest.mark.slow
def test_autoencoder_beats_mean_image_on_mni_3d_cubes_from_a_loader(mni3d):
    X_tr = mni3d.X_train[:400]
    # labels in (x, y) batches are ignored; a DataLoader is used as it is
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(mni3d.y_train[:400])),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    ae = ConvAutoencoder(X_tr.shape[1:], latent_dim=8, widths=(8, 16))
    with one_thread():
        hist = fit_autoencoder(
            ae, loader, epochs=8, lr=3e-3, val_data=mni3d.X_test, patience=3, progress=False
        )
    mse, base = held_out_mse(ae, mni3d.X_test), mean_image_mse(X_tr, mni3d.X_test)
    # measured ~0.29x
    assert mse <= 0.5 * base, (mse, base)
    # with val_data the best epoch's weights are restored
    assert held_out_mse(ae, mni3d.X_test) == pytest.approx(hist["best_val_loss"], rel=1e-3)


def test_fit_autoencoder_accepts_dict_batches_and_restores_training_flags():
    X = torch.rand(32, 1, 8, 8)
    loader = DataLoader([{"image": x, "site": 0} for x in X], batch_size=8)
    ae = ConvAutoencoder((1, 8, 8), latent_dim=2, widths=(4,))
    ae.eval()
    ae.encoder[1].train()  # a mixed state must come back as it was
    flags = [m.training for m in ae.modules()]
    with one_thread():
        hist = fit_autoencoder(ae, loader, epochs=1, progress=False)
    assert np.isfinite(hist["train_loss"][0])
    assert [m.training for m in ae.modules()] == flags
    with pytest.raises(ValueError, match="beta"):
        fit_autoencoder(ae, X, epochs=1, beta=-1.0, progress=False)


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    # Whatever ran before (other tests seed the global generator), the same seed gives the
    # same weights, so results do not depend on test order.
    a = ConvAutoencoder((1, 16, 16), latent_dim=4)
    torch.manual_seed(123)
    torch.rand(7)
    state = torch.random.get_rng_state()
    b = ConvAutoencoder((1, 16, 16), latent_dim=4)
    assert torch.equal(state, torch.random.get_rng_state())
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    c = ConvAutoencoder((1, 16, 16), latent_dim=4, random_state=1)
    assert not torch.equal(a.head.weight, c.head.weight)
