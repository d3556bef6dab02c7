"""Capture of networks trained on real shipped data: the store agrees with the model's measured quality."""

import numpy as np
import torch

from inspect_kit.capture import capture
from inspect_kit.models import evaluate_classifier
from tests.numeric import assert_close


def test_digits_store_records_the_models_measured_accuracy(digits_cnn, digits, tmp_path):
    ev = evaluate_classifier(digits_cnn, digits.X_test, digits.y_test)
    store = capture(
        digits_cnn,
        digits.X_test,
        ["relu1", "relu3", "fc"],
        tmp_path / "d.h5",
        labels=digits.y_test,
        reduce="mean",
        batch_size=50,
        progress=False,
    )
    assert ev["accuracy"] > 0.9
    np.testing.assert_array_equal(store.predictions, ev["predictions"])
    assert np.mean(store.predictions == store.labels) == ev["accuracy"]
    # fc captured by a hook equals the model's logits, which the store also recorded
    assert_close(store["fc"][:], store.logits, terms=store["relu3"].shape[1])
    # pooled ReLU features are non-negative, and deep features separate the classes better
    feats = store["relu3"][:]
    assert feats.min() >= 0

    def class_sep(f):
        mu = np.stack([f[store.labels == c].mean(0) for c in range(10)])
        within = np.mean([f[store.labels == c].var(0).sum() for c in range(10)])
        return ((mu - mu.mean(0)) ** 2).sum(1).mean() / within

    assert class_sep(feats) > class_sep(store["relu1"][:])
    assert store.thumbnails.shape == (len(digits.X_test), 16, 16)


def test_mni3d_full_maps_match_a_direct_forward(mni3d_cnn, mni3d, tmp_path):
    x = torch.as_tensor(mni3d.X_test[:40])
    store = capture(
        mni3d_cnn,
        x,
        ["conv2", "relu3"],
        tmp_path / "v.h5",
        dtype="bfloat16",
        batch_size=16,
        progress=False,
    )
    with torch.no_grad():
        h = mni3d_cnn.conv2(mni3d_cnn.pool1(mni3d_cnn.relu1(mni3d_cnn.bn1(mni3d_cnn.conv1(x)))))
    got = store["conv2"][:]
    assert got.shape == tuple(h.shape)
    # bfloat16 keeps 8 bits of mantissa: relative error below 2**-8
    np.testing.assert_allclose(got, h.numpy(), rtol=2**-8, atol=1e-2)
    assert store["conv2"].stored_dtype == "bfloat16"
