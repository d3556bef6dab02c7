"""The one input-key rule (inspect_kit.capture.inputs): a dict batch that capture reads is
read alike by autoencoder training and by feature visualization."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from inspect_kit.analysis.featurevis.exemplars import top_exemplars
from inspect_kit.analysis.featurevis.param import channel_decorrelation
from inspect_kit.capture import capture
from inspect_kit.capture.inputs import batch_input, input_key, parse_batch
from inspect_kit.input_keys import X_KEYS
from inspect_kit.models import ConvAutoencoder, SmallCNN, fit_autoencoder


def _images(n: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 12, 12, generator=g)


def test_first_matching_key_wins_and_a_missing_one_lists_the_rule():
    assert input_key({"label": 0, "img": 1, "x": 2}) == "x"  # X_KEYS order, not dict order
    assert input_key({"volume": 0}) == "volume"
    assert batch_input(([1], [2])) == [1]
    with pytest.raises(KeyError, match="img"):  # the message lists the accepted keys
        input_key({"pixels": 0, "y": 1})
    assert parse_batch({"img": np.zeros((2, 1)), "y": [0, 1]}, 0).y.tolist() == [0, 1]
    assert "img" in X_KEYS


class _DictImages(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"img": self.x[i], "label": torch.tensor(0)}


def test_img_batches_train_an_autoencoder_like_plain_tensors():
    x = _images()
    # what a user's Dataset of dicts gives through a DataLoader (reiterated every epoch)
    img_batches = DataLoader(_DictImages(x), batch_size=16)
    plain_batches = DataLoader(TensorDataset(x), batch_size=16)
    assert set(next(iter(img_batches))) == {"img", "label"}
    runs = []
    for data in (img_batches, plain_batches):
        model = ConvAutoencoder((3, 12, 12), latent_dim=4, widths=(8,), random_state=0)
        hist = fit_autoencoder(model, data, epochs=3, lr=1e-2, random_state=0, progress=False)
        runs.append((model, hist))
    (m_img, h_img), (m_plain, h_plain) = runs
    assert h_img["train_loss"][-1] < h_img["train_loss"][0]  # it learned
    np.testing.assert_allclose(h_img["train_loss"], h_plain["train_loss"], rtol=1e-5)
    for a, b in zip(m_img.parameters(), m_plain.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_img_batches_feed_feature_visualization_like_plain_tensors(tmp_path):
    x = _images()
    img_batches = [{"img": x[i : i + 16]} for i in range(0, 48, 16)]
    np.testing.assert_allclose(
        channel_decorrelation(img_batches), channel_decorrelation(x), rtol=1e-5, atol=1e-6
    )
    # dataset exemplars: a store captured from {"img": x} batches ranks the same samples
    model = SmallCNN(in_channels=3, n_classes=2, widths=(4,), random_state=0).eval()
    store = capture(model, img_batches, "relu1", tmp_path / "img.h5", progress=False)
    with torch.no_grad():  # the oracle: the layer computed by hand, averaged over space
        ref = model.relu1(model.bn1(model.conv1(x))).mean(dim=(2, 3)).numpy()
    ex = top_exemplars(store, "relu1", k=3, progress=False)
    for unit in range(4):
        expected = np.argsort(-ref[:, unit], kind="stable")[:3]
        assert sorted(ex.for_unit(unit)["index"]) == sorted(expected.tolist())
