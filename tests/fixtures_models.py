"""Session-scoped demo data and trained reference models shared by the whole test suite.

Registered from tests/conftest.py with ``pytest_plugins = ["tests.fixtures_models"]``.

The trained models are shared by every test of a session: treat them as read-only (they come
in eval mode). A test that trains, re-wraps or otherwise modifies one should work on
``copy.deepcopy(model)``.

=============  ==========================================================================
fixture        what
=============  ==========================================================================
digits         DataSplit of sklearn digits, (N, 1, 16, 16) in [0, 1], 10 classes
digits_cnn     SmallCNN(n_classes=10) trained on digits.X_train
mni2d          DataSplit of axial 16x16 MNI152 patches, 3 tissue classes (400 per class)
mni2d_cnn      SmallCNN(n_classes=3, dim=2, pool_size=3) trained on mni2d.X_train
mni3d          DataSplit of 12x12x12 MNI152 cubes, 3 tissue classes (300 per class)
mni3d_cnn      SmallCNN(n_classes=3, dim=3, pool_size=3) trained on mni3d.X_train
=============  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from inspect_kit.data import DIGIT_CLASSES, load_digits_images, load_mni_patches
from inspect_kit.models import SmallCNN, fit_classifier
from tests._threads import one_thread


@dataclass(frozen=True)
class DataSplit:
    """A stratified train/test split of one demo dataset."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _split(X: np.ndarray, y: np.ndarray, class_names) -> DataSplit:
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return DataSplit(X_tr, y_tr, X_te, y_te, tuple(class_names))


def _train(model: SmallCNN, data: DataSplit, epochs: int) -> SmallCNN:
    with one_thread():
        fit_classifier(
            model,
            data.X_train,
            data.y_train,
            epochs=epochs,
            lr=3e-3,
            random_state=0,
            progress=False,
        )
    return model.eval()


@pytest.fixture(scope="session")
def digits() -> DataSplit:
    X, y = load_digits_images(size=16)
    return _split(X, y, DIGIT_CLASSES)


@pytest.fixture(scope="session")
def digits_cnn(digits: DataSplit) -> SmallCNN:
    return _train(SmallCNN(in_channels=1, n_classes=10, dim=2, random_state=0), digits, epochs=10)


@pytest.fixture(scope="session")
def mni2d() -> DataSplit:
    X, y, names = load_mni_patches(dim=2, patch=16, n_per_class=400, random_state=0)
    return _split(X, y, names)


@pytest.fixture(scope="session")
def mni2d_cnn(mni2d: DataSplit) -> SmallCNN:
    # pool_size=3 keeps where features are: the label is the tissue at the patch centre.
    net = SmallCNN(in_channels=1, n_classes=3, dim=2, pool_size=3, random_state=0)
    return _train(net, mni2d, epochs=15)


@pytest.fixture(scope="session")
def mni3d() -> DataSplit:
    X, y, names = load_mni_patches(dim=3, patch=12, n_per_class=300, random_state=0)
    return _split(X, y, names)


@pytest.fixture(scope="session")
def mni3d_cnn(mni3d: DataSplit) -> SmallCNN:
    net = SmallCNN(in_channels=1, n_classes=3, dim=3, pool_size=3, random_state=0)
    return _train(net, mni3d, epochs=15)
