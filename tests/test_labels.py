"""Labels that are not the model's classes: no accuracy, no "misclassified" rings, and a note."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from inspect_kit import capture, embed
from inspect_kit.figures.embedding import plot_embedding
from inspect_kit.labels import NOT_CLASSES, label_class_mismatch
from inspect_kit.workflows.records import record_inputs


def test_label_class_mismatch_cases():
    y = np.array([0, 1, 2, 3] * 5)
    assert label_class_mismatch(y, y, n_outputs=4, class_names=list("abcd")) is None
    # a 10-class model on a subset with 4 of its classes: still its classes
    assert label_class_mismatch(y, np.r_[y[:-2], 7, 9], n_outputs=10) is None
    assert "outside the model's 3 classes" in label_class_mismatch(y, y % 3, n_outputs=3)
    assert "4 classes (a, b, c, d) but the model has 1000 outputs" in label_class_mismatch(
        y, y, n_outputs=1000, class_names=list("abcd")
    )
    imagenet = np.array([281, 285, 409, 2] * 5)
    assert "75% of the predictions (15 of 20)" in label_class_mismatch(y, imagenet)
    assert "names" in label_class_mismatch(np.array(["cat", "dog"]), np.array([0, 1]))
    assert "differ from the model's" in label_class_mismatch(
        y, y, class_names=["cat", "dog", "x", "y"], model_class_names=["dog", "cat", "x", "y"]
    )


def _folder_store(tmp_path, n_outputs, name):
    """Real digits 0-3 as four 'folder classes', run through a model with n_outputs logits."""
    d = load_digits()
    keep = d.target < 4
    X = torch.tensor(d.images[keep][:200, None] / 16.0, dtype=torch.float32)
    y = d.target[keep][:200]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_outputs))
    store = capture(
        model.eval(), X, ["2", "3"], tmp_path / name, labels=y, overwrite=True, progress=False
    )
    record_inputs(store, {"class_names": ["zero", "one", "two", "three"]})
    return store


def test_imagenet_style_model_on_four_folder_classes_shows_no_accuracy(tmp_path):
    store = _folder_store(tmp_path, 1000, "imagenet.h5")
    try:
        assert store.n_outputs == 1000
        assert (
            "4 classes (zero, one, two, three) but the model has 1000 outputs"
            in store.label_mismatch
        )
        assert "accuracy   not shown: the labels are not the model's classes" in store.summary()
        emb = embed(store, "2", "pca", progress=False)
        assert not emb.labels_are_classes and emb.correct is None
        assert "1000 outputs" in emb.metrics["label_mismatch"]
        fig = plot_embedding(emb, thumbnails=False)
        assert not any("misclassified" in (t.name or "") for t in fig.data)
        assert NOT_CLASSES in fig.layout.title.subtitle.text
        with pytest.raises((KeyError, ValueError), match="correct|options|colour"):
            plot_embedding(emb, color="correct", thumbnails=False)
    finally:
        store.close()


def test_model_with_the_data_classes_keeps_accuracy_and_rings(tmp_path):
    store = _folder_store(tmp_path, 4, "four.h5")
    try:
        assert store.label_mismatch is None
        assert "(prediction vs label)" in store.summary()
        emb = embed(store, "2", "pca", progress=False)
        assert emb.labels_are_classes and emb.correct is not None
        np.testing.assert_array_equal(emb.correct, store.labels == store.predictions)
        fig = plot_embedding(emb, thumbnails=False)
        wrong = int((~emb.correct).sum())
        assert wrong > 0  # an untrained model errs; its errors are ringed
        assert any(t.name == f"misclassified ({wrong})" for t in fig.data)
    finally:
        store.close()
