"""LatentProbe on autoencoders trained on real shipped data (sklearn digits, MNI152 patches).

Oracles: a plain torch forward of the same model, sklearn's PCA and linear regression, the
codes captured by inspect_kit.capture's hooks, and numpy's quantiles and correlations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from inspect_kit.analysis.latent import LatentProbe, correlation_ratio, slerp
from inspect_kit.models import ConvAutoencoder, fit_autoencoder
from tests._threads import one_thread
from tests.numeric import assert_close

# codes come out of a float32 encoder whose layers sum up to ~16*16 inputs each; two paths
# (batch sizes, hooks, bound methods) sum in their own order
ENC_TERMS = 256


def torch_encode(model, X):
    model.eval()
    with torch.no_grad():
        out = model.encode(torch.from_numpy(np.asarray(X, dtype=np.float32)))
    return out


def torch_decode(model, codes):
    model.eval()
    with torch.no_grad():
        return model.decode(torch.as_tensor(codes, dtype=torch.float32)).numpy()


def state(model):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def scramble(model):
    """A mixed state that must survive every call: train mode, one eval block, one frozen param."""
    model.train()
    model.encoder[1].eval()
    next(model.decoder.parameters()).requires_grad_(False)
    return state(model)


def unscramble(model):
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()


@pytest.fixture(scope="module")
def ae(digits):
    model = ConvAutoencoder((1, 16, 16), latent_dim=8)
    with one_thread():
        fit_autoencoder(model, digits.X_train, epochs=10, lr=3e-3, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def ink(digits):
    return digits.X_test.reshape(len(digits.X_test), -1).sum(axis=1).astype(np.float64)


@pytest.fixture(scope="module")
def probe(ae, digits, ink):
    with one_thread():
        return LatentProbe(ae, progress=False, n_worst=6).fit(
            digits.X_test, labels=digits.y_test, metadata={"ink": ink}
        )


@pytest.fixture(scope="module")
def ae3d(mni3d):
    model = ConvAutoencoder(mni3d.X_train.shape[1:], latent_dim=4, widths=(4, 8))
    with one_thread():
        fit_autoencoder(model, mni3d.X_train[:256], epochs=2, lr=3e-3, progress=False)
    return model.eval()


# -- fit -------------------------------------------------------------------------------------


def test_codes_and_errors_match_a_plain_forward(probe, ae, digits):
    X = digits.X_test
    codes = torch_encode(ae, X).numpy()
    assert_close(probe.codes_, codes, terms=ENC_TERMS)
    recon = torch_decode(ae, codes)
    err = ((recon - X) ** 2).reshape(len(X), -1).mean(axis=1)
    np.testing.assert_allclose(probe.reconstruction_error_, err, rtol=1e-4, atol=1e-7)
    assert probe.codes_.shape == (len(X), 8) and probe.latent_shape_ == (8,)
    assert probe.input_shape_ == (1, 16, 16) and probe.n_samples_ == len(X)
    np.testing.assert_array_equal(probe.labels_, digits.y_test)
    np.testing.assert_array_equal(probe.index_, np.arange(len(X)))
    assert probe.logvar_ is None and not probe.variational_


def test_trained_codes_reconstruct_better_than_the_mean_image(probe, digits):
    base = ((digits.X_test - digits.X_train.mean(axis=0)) ** 2).mean()
    # measured ~0.2x after 10 epochs; at most 0.4x required
    assert probe.reconstruction_error_.mean() <= 0.4 * base


def test_linear_probe_from_latent_beats_chance_on_digits(probe):
    r = probe.probe("label", cv=5)
    # measured ~0.89 against the balanced chance of 0.10
    assert r.score >= r.chance + 0.6, (r.score, r.chance)
    ink = probe.probe("ink")
    assert ink.metric == "r2" and ink.score > 0.5  # total ink is linear in the code


@pytest.mark.slow
def test_linear_probe_from_latent_beats_chance_on_mni_patches(mni2d):
    model = ConvAutoencoder(mni2d.X_train.shape[1:], latent_dim=8)
    with one_thread():
        fit_autoencoder(model, mni2d.X_train, epochs=12, lr=3e-3, progress=False)
        p = LatentProbe(model, progress=False).fit(mni2d.X_test, labels=mni2d.y_test)
    r = p.probe()
    # tissue class at the patch centre; measured ~0.84 against 0.33
    assert r.score >= r.chance + 0.3, (r.score, r.chance)


def test_vae_codes_are_posterior_means(digits):
    vae = ConvAutoencoder((1, 16, 16), latent_dim=4, variational=True)
    with one_thread():
        fit_autoencoder(vae, digits.X_train[:512], epochs=2, progress=False)
        p = LatentProbe(vae, progress=False).fit(digits.X_test[:200])
        again = LatentProbe(vae, progress=False).fit(digits.X_test[:200])
    mu, logvar = torch_encode(vae, digits.X_test[:200])
    assert_close(p.codes_, mu.numpy(), terms=ENC_TERMS)
    assert_close(p.logvar_, logvar.numpy(), terms=ENC_TERMS)
    assert p.variational_
    np.testing.assert_array_equal(p.codes_, again.codes_)  # never a random sample
    recon = torch_decode(vae, mu.numpy())
    err = ((recon - digits.X_test[:200]) ** 2).reshape(200, -1).mean(axis=1)
    np.testing.assert_allclose(p.reconstruction_error_, err, rtol=1e-4, atol=1e-7)


def test_labels_and_metadata_are_carried_from_batches(ae, digits):
    X, y = digits.X_test[:100], digits.y_test[:100]
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    p = LatentProbe(ae, progress=False, batch_size=32).fit(ds)
    np.testing.assert_array_equal(p.labels_, y)
    site = np.array(["A", "B"] * 50)
    loader = DataLoader(
        [{"image": X[i], "label": int(y[i]), "site": site[i]} for i in range(100)], batch_size=16
    )
    q = LatentProbe(ae, progress=False).fit(loader)
    np.testing.assert_array_equal(q.labels_, y)
    np.testing.assert_array_equal(q.metadata_["site"], site)
    assert_close(q.codes_, p.codes_, terms=ENC_TERMS)
    assert q.correlation_kinds_ == {"label": "eta", "site": "eta"}


def test_correlations_match_independent_oracles(probe, ink):
    # eta^2 is the R^2 of a regression on class indicators
    onehot = np.eye(10)[probe.labels_]
    for d in range(probe.codes_.shape[1]):
        r2 = LinearRegression().fit(onehot, probe.codes_[:, d]).score(onehot, probe.codes_[:, d])
        assert probe.correlations_["label"][d] == pytest.approx(np.sqrt(r2), abs=1e-6)
        pearson = np.corrcoef(probe.codes_[:, d], ink)[0, 1]
        assert probe.correlations_["ink"][d] == pytest.approx(pearson, abs=1e-6)
    assert probe.correlation_kinds_ == {"label": "eta", "ink": "pearson"}
    # the digit class is strongly reflected in at least one code dimension
    assert probe.correlations_["label"].max() > 0.6
    assert correlation_ratio(np.ones((4, 1)), np.array([0, 0, 1, 1]))[0] == 0.0


def test_worst_samples(probe, ae, digits):
    order = np.argsort(-probe.reconstruction_error_)
    np.testing.assert_array_equal(probe.worst(5), order[:5])
    np.testing.assert_array_equal(probe.worst_indices_, order[:6])
    np.testing.assert_array_equal(probe.worst_inputs_, digits.X_test[order[:6]])
    recon = torch_decode(ae, probe.codes_[order[:6]])
    np.testing.assert_allclose(probe.worst_reconstructions_, recon, rtol=1e-4, atol=1e-5)
    # the worst are clearly worse than typical
    assert probe.reconstruction_error_[order[0]] > 3 * np.median(probe.reconstruction_error_)


def test_thumbnails_show_input_beside_reconstruction(probe, digits):
    t = probe.thumbnails_
    assert t.dtype == np.uint8 and t.shape == (len(digits.X_test), 16, 32)
    i = int(np.argmax(digits.X_test.reshape(len(t), -1).sum(1)))
    left = t[i, :, :16].astype(float).ravel()
    assert np.corrcoef(left, digits.X_test[i, 0].ravel())[0, 1] > 0.95


def test_embedding_uses_the_shared_embed(probe):
    from inspect_kit.analysis.embedding import Embedding

    emb = probe.embed("pca")
    assert isinstance(emb, Embedding) and emb.coords.shape == (probe.n_samples_, 2)
    ref = PCA(2).fit_transform(probe.codes_)
    for k in range(2):
        assert abs(np.corrcoef(emb.coords[:, k], ref[:, k])[0, 1]) > 0.999
    np.testing.assert_array_equal(emb.labels, probe.labels_)
    assert emb.thumbnails.shape == probe.thumbnails_.shape
    np.testing.assert_allclose(emb.metadata["reconstruction_error"], probe.reconstruction_error_)


# -- traversal and interpolation --------------------------------------------------------------


def test_traverse_axes_over_observed_quantiles(probe, ae):
    t = probe.traverse([1, 4], steps=7)
    assert t.images.shape == (2, 7, 1, 16, 16) and t.dims == [1, 4]
    for i, d in enumerate(t.dims):
        lo, hi = np.quantile(probe.codes_[:, d], [0.05, 0.95])
        assert_close(t.values[i], np.linspace(lo, hi, 7))
        others = np.delete(t.codes[i], d, axis=1)
        assert_close(others, np.delete(np.tile(probe.code_mean_, (7, 1)), d, 1))
    np.testing.assert_allclose(
        t.images.reshape(14, 1, 16, 16), torch_decode(ae, t.codes.reshape(14, 8)), atol=1e-5
    )
    # decoded images change along the walk
    assert np.abs(t.images[0, -1] - t.images[0, 0]).mean() > 0.01
    sd = probe.traverse(0, steps=3, span=2.0, base=5)
    m, s = probe.codes_[:, 0].mean(), probe.codes_[:, 0].std()
    # float32 mean and std over the codes, each side summing in its own order
    assert_close(sd.values[0], [m - 2 * s, m, m + 2 * s], terms=probe.n_samples_)
    np.testing.assert_allclose(sd.codes[0, :, 1], probe.codes_[5, 1])
    assert probe.traverse(steps=2).images.shape[0] == 8  # all dims


def test_traverse_principal_directions(probe):
    ref = PCA().fit(probe.codes_)
    for k in range(3):
        assert abs(probe.components_[k] @ ref.components_[k]) > 0.999
    np.testing.assert_allclose(
        probe.explained_variance_ratio_, ref.explained_variance_ratio_, atol=1e-5
    )
    t = probe.traverse([0, 2], steps=5, direction="pca")
    for i, d in enumerate([0, 2]):
        steps = np.diff(t.codes[i], axis=0)
        unit = steps / np.linalg.norm(steps, axis=1, keepdims=True)
        assert_close(np.abs(unit @ probe.components_[d]), np.ones(len(unit)), terms=8)
        proj = (probe.codes_ - probe.code_mean_) @ probe.components_[d]
        assert_close(t.values[i, [0, -1]], np.quantile(proj, [0.05, 0.95]), terms=8)
    assert t.images.shape == (2, 5, 1, 16, 16)


def test_interpolation_linear_and_slerp(probe, ae, digits):
    xa, xb = digits.X_test[3], digits.X_test[10]
    za, zb = torch_encode(ae, np.stack([xa, xb])).numpy()
    lin = probe.interpolate(xa, xb, steps=5)
    assert lin.images.shape == (5, 1, 16, 16) and lin.mode == "linear"
    assert_close(lin.codes[2], (za + zb) / 2, terms=ENC_TERMS)
    sl = probe.interpolate(xa, xb, steps=5, mode="slerp")
    assert_close(sl.codes[0], za, terms=ENC_TERMS)
    assert_close(sl.codes[-1], zb, terms=ENC_TERMS)
    np.testing.assert_allclose(sl.images[0], torch_decode(ae, za[None])[0], atol=1e-5)
    # slerp stays off the chord: its midpoint is longer than the linear one
    assert np.linalg.norm(sl.codes[2]) > np.linalg.norm(lin.codes[2])
    by_index = probe.interpolate(3, 10, steps=5, mode="slerp")
    np.testing.assert_allclose(by_index.codes, sl.codes, rtol=1e-4, atol=1e-5)


def test_slerp_function():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    path = slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 2.0)  # equal norms: on the circle
    angles = np.degrees(np.arctan2(path[:, 1], path[:, 0]))
    np.testing.assert_allclose(angles, [0, 22.5, 45, 67.5, 90], atol=1e-9)
    parallel = slerp(a, 3 * a, np.array([0.5]))
    np.testing.assert_allclose(parallel[0], 2 * a)  # falls back to linear


def test_3d_traversal_and_interpolation_decode_to_the_volume_shape(ae3d, mni3d):
    X = mni3d.X_test[:120]
    p = LatentProbe(ae3d, progress=False).fit(X, labels=mni3d.y_test[:120])
    shape = X.shape[1:]
    assert p.input_shape_ == shape
    assert p.traverse([0, 3], steps=4).images.shape == (2, 4, *shape)
    assert p.traverse(1, steps=3, direction="pca").images.shape == (1, 3, *shape)
    for mode in ("linear", "slerp"):
        path = p.interpolate(X[0], X[1], steps=6, mode=mode)
        assert path.images.shape == (6, *shape)
    assert p.thumbnails_.shape[0] == 120  # volumes: middle slice, input | reconstruction


def test_spatial_latents_and_encoder_decoder_pairs(digits):
    enc = nn.Conv2d(1, 2, 4, stride=4)  # codes of shape (2, 4, 4) per sample
    dec = nn.ConvTranspose2d(2, 1, 4, stride=4)
    p = LatentProbe((enc, dec), progress=False).fit(digits.X_test[:50])
    assert p.latent_shape_ == (2, 4, 4) and p.codes_.shape == (50, 32)
    with torch.no_grad():
        ref = enc(torch.from_numpy(digits.X_test[:50])).reshape(50, -1).numpy()
    assert_close(p.codes_, ref, terms=ENC_TERMS)
    assert p.traverse([0, 31], steps=3).images.shape == (2, 3, 1, 16, 16)
    assert p.interpolate(0, 1, steps=4).images.shape == (4, 1, 16, 16)


def test_a_decoder_with_several_outputs_is_refused_not_guessed(digits):
    # the package's one rule for tuple outputs: never take out[0] silently
    enc = nn.Conv2d(1, 2, 4, stride=4)
    dec = nn.ConvTranspose2d(2, 1, 4, stride=4)
    x = digits.X_test[:8]
    with pytest.raises(TypeError, match=r"decode\(z\)\[0\] \(8, 1, 16, 16\), decode\(z\)\[1\]"):
        LatentProbe((enc, lambda z: (dec(z), z)), progress=False).fit(x)
    p = LatentProbe((enc, lambda z: (dec(z), z)[0]), progress=False).fit(x)
    ref = LatentProbe((enc, dec), progress=False).fit(x)
    np.testing.assert_array_equal(p.reconstruction_error_, ref.reconstruction_error_)


def test_pair_with_bound_methods_puts_the_owner_in_eval_mode(ae, digits, probe):
    flags = scramble(ae)
    try:
        p = LatentProbe((ae.encode, ae.decode), progress=False).fit(digits.X_test)
        # BatchNorm in eval mode: identical to the module-based probe
        assert_close(p.codes_, probe.codes_, terms=ENC_TERMS)
        assert state(ae) == flags
    finally:
        unscramble(ae)


# -- the model comes back as it went in ------------------------------------------------------


def test_model_state_is_restored_after_every_call(ae, digits, probe):
    flags = scramble(ae)
    try:
        p = LatentProbe(ae, progress=False, device="cpu")
        calls = [
            lambda: p.fit(digits.X_test[:64], labels=digits.y_test[:64]),
            lambda: p.encode(digits.X_test[:8]),
            lambda: p.decode(np.zeros((2, 8))),
            lambda: p.reconstruct(digits.X_test[:4]),
            lambda: p.traverse([0, 1], steps=3),
            lambda: p.traverse(0, steps=3, direction="pca"),
            lambda: p.interpolate(digits.X_test[0], digits.X_test[1], steps=3, mode="slerp"),
        ]
        for call in calls:
            call()
            assert state(ae) == flags
        # eval mode was used inside: equal codes to the eval-mode probe
        assert_close(p.codes_, probe.codes_[:64], terms=ENC_TERMS)
    finally:
        unscramble(ae)


def test_model_state_is_restored_after_an_exception(ae, digits):
    flags = scramble(ae)
    try:
        with pytest.raises(ValueError, match=r"\(N, 1, 16, 16\)"):
            LatentProbe(ae, progress=False).fit(np.zeros((4, 1, 8, 8), np.float32))
        assert state(ae) == flags

        def broken_decoder(z):
            raise RuntimeError("decoder failed")

        with pytest.raises(RuntimeError, match="decoder failed"):
            LatentProbe((ae.encoder, broken_decoder), progress=False).fit(digits.X_test[:8])
        assert state(ae) == flags
        with pytest.raises(KeyboardInterrupt):
            LatentProbe((ae.encode, _interrupt), progress=False).fit(digits.X_test[:8])
        assert state(ae) == flags
    finally:
        unscramble(ae)


def _interrupt(z):
    raise KeyboardInterrupt


# -- store and errors --------------------------------------------------------------------------


def test_to_store_matches_codes_captured_by_hooks(ae, probe, digits, tmp_path):
    from inspect_kit.capture import capture

    store = capture(
        ae, digits.X_test, ["to_latent"], tmp_path / "ae.h5", labels=digits.y_test, progress=False
    )
    try:
        probe.to_store(store)
        data, attrs = store.load_result("latent")
        np.testing.assert_allclose(data["codes"], probe.codes_)
        # independent oracle: the store's own hook-captured output of the latent layer
        assert_close(data["codes"], store.to_numpy("to_latent"), terms=ENC_TERMS)
        np.testing.assert_allclose(data["reconstruction_error"], probe.reconstruction_error_)
        assert attrs["latent_shape"] == [8] and attrs["variational"] is False
        corr, cattrs = store.load_result("latent/correlations")
        assert cattrs["targets"] == ["label", "ink"]
        np.testing.assert_allclose(corr["values"][0], probe.correlations_["label"])
        assert "latent" in store.results("latent")
    finally:
        store.close()
    probe.to_store(str(tmp_path / "ae.h5"), group="latent_again")  # a path works too
    small = capture(ae, digits.X_test[:10], ["to_latent"], tmp_path / "small.h5", progress=False)
    try:
        with pytest.raises(ValueError, match="10 samples"):
            probe.to_store(small)
    finally:
        small.close()


def test_errors_name_what_is_wrong(ae, probe):
    with pytest.raises(TypeError, match="encode"):
        LatentProbe(nn.Linear(2, 2)).fit(np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match="fit"):
        LatentProbe(ae).traverse(0)
    with pytest.raises(ValueError, match="0-7"):
        probe.traverse(8)
    with pytest.raises(ValueError, match="steps"):
        probe.interpolate(0, 1, steps=1)
    with pytest.raises(ValueError, match="'linear' or 'slerp'"):
        probe.interpolate(0, 1, mode="cubic")
    with pytest.raises(ValueError, match="quantiles"):
        probe.traverse(0, span=(0.9, 0.1))
    with pytest.raises(KeyError, match="available"):
        probe.probe("age")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_requested_device_and_moves_the_model_back(ae, probe, digits):
    p = LatentProbe(ae, progress=False, device="cuda").fit(digits.X_test, labels=digits.y_test)
    assert next(ae.parameters()).device.type == "cpu"
    np.testing.assert_allclose(p.codes_, probe.codes_, rtol=1e-3, atol=1e-4)
    assert p.traverse(0, steps=3).images.shape == (1, 3, 1, 16, 16)
    assert next(ae.parameters()).device.type == "cpu"
