"""The one rule of which key holds the inputs and the labels (inspect_kit.input_keys), as
capture's batches and load_data's .npz files both apply it."""

from __future__ import annotations

import numpy as np

from inspect_kit.capture.inputs import parse_batch
from inspect_kit.data.formats import load_data
from inspect_kit.input_keys import X_KEYS, Y_KEYS, first_key


def test_preference_order_not_dict_order():
    assert first_key({"data": 0, "img": 1, "input": 2}, X_KEYS) == "input"
    assert first_key({"targets": 0, "label": 1}, Y_KEYS) == "label"
    assert first_key({"pixels": 0}, X_KEYS) is None


def test_a_batch_and_an_npz_with_the_same_keys_read_the_same_arrays(tmp_path):
    rng = np.random.default_rng(0)
    img, site = rng.random((4, 1, 5, 5)).astype(np.float32), rng.random((4, 1, 5, 5))
    target = np.array([1, 0, 1, 1])
    batch = parse_batch({"volume": site, "img": img, "targets": target}, 0)
    np.testing.assert_array_equal(batch.x.numpy(), img)  # "img" comes before "volume"
    assert batch.y.tolist() == target.tolist()
    np.savez(tmp_path / "d.npz", volume=site, img=img, targets=target)
    data = load_data(tmp_path / "d.npz")
    assert data.source.endswith(":img")
    np.testing.assert_allclose(data.to_array(), img, rtol=1e-6)
    assert data.labels is not None and data.labels.tolist() == target.tolist()
