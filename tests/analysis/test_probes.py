"""Linear probes: planted signals are found, shuffled labels are at chance, profiles rise with depth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from inspect_kit.analysis.probes import ProbeProfile, linear_probe, probe_profile


@pytest.fixture(scope="module")
def planted():
    """600 samples, 40 Gaussian features, binary label = sign of a fixed linear read-out + noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 40))
    w = rng.normal(size=40)
    score = X @ w / np.linalg.norm(w)
    y = (score + 0.2 * rng.normal(size=600) > 0).astype(np.int64)
    return X, y, rng


def test_planted_binary_signal_is_recovered(planted):
    X, y, _ = planted
    r = linear_probe(X, y, cv=5, random_state=0)
    assert r.task == "classification" and r.metric == "balanced_accuracy"
    assert r.chance == 0.5 and r.chance_method == "balanced"  # two classes
    # label noise of 0.2 std on a unit-variance read-out caps accuracy near 0.94
    assert r.score > 0.85
    assert r.score - r.chance > 0.3
    assert len(r.fold_scores) == 5 and r.score == pytest.approx(r.fold_scores.mean())


def test_shuffled_labels_are_at_chance(planted):
    X, y, _ = planted
    y_shuffled = np.random.default_rng(1).permutation(y)
    r = linear_probe(X, y_shuffled, cv=5, random_state=0)
    assert abs(r.score - 0.5) < 0.08
    assert r.score - r.chance < 0.08


def test_permutation_chance_and_p_value(planted):
    X, y, _ = planted
    real = linear_probe(X, y, chance="permutation", n_permutations=19, random_state=0)
    shuffled = linear_probe(
        X,
        np.random.default_rng(2).permutation(y),
        chance="permutation",
        n_permutations=19,
        random_state=0,
    )
    assert real.chance_method == "permutation" and len(real.permutation_scores) == 19
    assert abs(real.chance - 0.5) < 0.06  # the probe on permuted labels is at 50 %
    assert real.p_value == pytest.approx(1 / 20)  # no permutation beats the real labels
    assert shuffled.p_value > 0.05


def test_multiclass_signal_and_balanced_chance_on_imbalanced_classes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 30))
    W = rng.normal(size=(30, 4))
    y = (X @ W).argmax(axis=1)
    keep = (y != 3) | (rng.random(800) < 0.3)  # make class 3 rare
    X, y = X[keep], y[keep]
    r = linear_probe(X, y, cv=4, random_state=0)
    assert r.n_classes == 4 and r.cv == 4
    # balanced accuracy: chance is 1/4 however rare class 3 is (the majority class is ~0.3)
    assert r.chance == 0.25
    assert r.score > 0.75


def test_regression_r2_matches_the_theoretical_value():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1000, 20))
    w = rng.normal(size=20)
    signal = X @ w
    noise_sd = 0.5 * signal.std()
    y = signal + noise_sd * rng.normal(size=1000)
    r = linear_probe(X, y, cv=5, random_state=0)
    assert r.task == "regression" and r.metric == "r2"
    expected = 1.0 / (1.0 + 0.5**2)  # var(signal) / (var(signal) + var(noise)) = 0.8
    assert r.score == pytest.approx(expected, abs=0.04)
    assert -0.05 < r.chance <= 0.0  # the training mean predicts nothing on held-out folds
    shuffled = linear_probe(X, rng.permutation(y), cv=5, random_state=0)
    assert shuffled.score < 0.03
    # the refitted probe's coefficients point along the planted weights
    coef = r.estimator[-1].coef_ / r.estimator[0].scale_
    assert np.corrcoef(coef, w)[0, 1] > 0.99


def test_standardisation_inside_the_pipeline_rescues_tiny_features():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 10))
    y = (X[:, 0] > 0).astype(int)
    X[:, 0] *= 1e-4  # without standardisation, C=1 would regularise this feature away
    X[:, 1:] *= 1e3
    r = linear_probe(X, y, random_state=0)
    assert r.score > 0.9
    assert isinstance(r.estimator, Pipeline) and isinstance(r.estimator[0], StandardScaler)


def test_task_inference_and_overrides():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(120, 5))
    names = np.array(["a", "b", "c"])[rng.integers(0, 3, 120)]
    assert linear_probe(X, names, cv=3).task == "classification"
    assert linear_probe(X, X[:, 0] * 2.0, cv=3).task == "regression"
    assert linear_probe(X, (X[:, 0] > 0), cv=3).task == "classification"
    as_reg = linear_probe(X, (X[:, 0] > 0).astype(int), cv=3, task="regression")
    assert as_reg.metric == "r2"
    # spatial features are flattened
    r = linear_probe(rng.normal(size=(120, 2, 3, 3)), names, cv=3, refit=False)
    assert r.n_features == 18 and r.estimator is None


def test_probe_input_errors_name_the_fix():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="10 rows but targets have 9"):
        linear_probe(X, np.arange(9))
    with pytest.raises(ValueError, match="fewer than cv=5"):
        linear_probe(np.random.default_rng(0).normal(size=(12, 3)), np.array([0] * 9 + [1] * 3))
    with pytest.raises(ValueError, match="cv must be an integer >= 2"):
        linear_probe(X, np.arange(10) % 2, cv=1)
    with pytest.raises(ValueError, match=">= 2 classes"):
        linear_probe(X, np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(np.full((10, 3), np.nan), np.arange(10) % 2)
    with pytest.raises(ValueError, match="task="):
        linear_probe(X, np.arange(10) % 2, task="ordinal")


class FakeStore:
    """The attributes of an ActivationStore that the analysis base reads."""

    path = "fake.h5"
    thumbnails = None

    def __init__(self, layers: dict[str, np.ndarray], labels, metadata=None):
        self._layers = layers
        self.labels = labels
        self.predictions = None
        self.metadata = metadata or {}
        self.index = np.arange(len(labels))
        self.saved: dict[str, tuple] = {}

    def __getitem__(self, layer):
        return self._layers[layer]

    def load_result(self, group):
        return self.saved.get(group)

    @property
    def layers(self):
        return list(self._layers)

    def __len__(self):
        return len(self.labels)

    def iter_chunks(self, layer, batch_size=None):
        rows = self._layers[layer]
        for s in range(0, len(rows), 100):
            yield s, rows[s : s + 100]

    def save_result(self, group, data, attrs):
        self.saved[group] = (data, attrs)


@pytest.fixture(scope="module")
def fake_store():
    """Three 'layers' (N, 4, 3, 3) whose channel means carry the label ever more clearly."""
    rng = np.random.default_rng(7)
    n = 400
    y = rng.integers(0, 4, n)
    onehot = np.eye(4)[y]
    site = np.where(rng.random(n) < 0.5, "A", "B")

    def layer(signal):
        means = signal * onehot + rng.normal(size=(n, 4))
        return means[:, :, None, None] + 0.1 * rng.normal(size=(n, 4, 3, 3))

    layers = {"noise": layer(0.0), "weak": layer(0.8), "strong": layer(4.0)}
    return FakeStore(layers, y, {"site": site})


def test_probe_profile_rises_with_signal_on_a_fake_store(fake_store):
    prof = probe_profile(fake_store, target="label", progress=False)
    assert isinstance(prof, ProbeProfile)
    assert prof.layers == ["noise", "weak", "strong"] and prof.reduce == "mean"
    s = prof.scores
    assert s[0] < prof.chance[0] + 0.08  # no signal: at chance (~0.25-0.3)
    assert s[1] > s[0] + 0.1 and s[2] > s[1] + 0.2
    assert s[2] > 0.95 and prof.best_layer == "strong"
    # reduce='mean' pools 3x3 maps into one feature per channel
    assert prof.results[0].n_features == 4
    flat = probe_profile(fake_store, layers=["weak"], reduce="flatten", progress=False)
    assert flat.results[0].n_features == 36


def test_probe_profile_targets_metadata_arrays_and_saves(fake_store):
    prof = probe_profile(fake_store, layers=["strong"], target="site", save=True, progress=False)
    assert prof.target == "site" and abs(prof.scores[0] - 0.5) < 0.1  # site is unrelated
    data, attrs = fake_store.saved["probes/site"]
    assert attrs["layers"] == ["strong"] and data["score"].shape == (1,)
    arr = probe_profile(fake_store, layers=["strong"], target=fake_store.labels, progress=False)
    assert arr.scores[0] > 0.95


def test_probe_profile_errors_list_close_matches(fake_store):
    with pytest.raises(KeyError, match="strong"):
        probe_profile(fake_store, layers=["strang"], progress=False)
    with pytest.raises(KeyError, match="site"):
        probe_profile(fake_store, target="sites", progress=False)
    with pytest.raises(ValueError, match="400 samples"):
        probe_profile(fake_store, target=np.zeros(10), progress=False)


@pytest.mark.slow
def test_probe_profile_on_a_real_capture_shows_digit_class_emerging_with_depth(
    digits, digits_cnn, tmp_path
):
    from inspect_kit.capture import capture

    layers = ["relu1", "relu2", "relu3", "fc"]
    store = capture(
        digits_cnn,
        digits.X_test,
        layers,
        tmp_path / "digits.h5",
        reduce="mean",
        labels=digits.y_test,
        progress=False,
    )
    try:
        prof = probe_profile(store, target="label", progress=False, save=True)
        assert prof.layers == layers
        s = dict(zip(prof.layers, prof.scores, strict=True))
        chance = prof.chance[0]
        assert chance == pytest.approx(
            np.bincount(digits.y_test).max() / len(digits.y_test), abs=0.02
        )
        # measured: relu1 0.74, relu2 0.96, relu3 0.98, fc 0.98 (chance 0.10). The 8 pooled
        # channels of the first block carry part of the class; deeper layers nearly all of it.
        assert chance + 0.3 < s["relu1"] < 0.85
        assert s["relu2"] > s["relu1"] + 0.1
        assert min(s["relu3"], s["fc"]) > 0.9
        assert s["fc"] > s["relu1"] + 0.15
        # independent oracle for one layer: the same pooled features, probed directly
        direct = linear_probe(store.to_numpy("relu2"), digits.y_test, cv=5, random_state=0)
        assert s["relu2"] == pytest.approx(direct.score)
        saved = store.load_result("probes/label")
        assert saved is not None and np.allclose(saved[0]["score"], prof.scores)
    finally:
        store.close()


def test_regression_probe_score_equals_sklearn_oracle_without_cv_noise():
    # With a single very informative feature the probe must match an ordinary least squares fit.
    rng = np.random.default_rng(8)
    x = rng.normal(size=(500, 1))
    y = 3 * x[:, 0] + 0.1 * rng.normal(size=500)
    r = linear_probe(x, y, alphas=(1e-6,), random_state=0)
    ols = LinearRegression().fit(x, y).score(x, y)
    assert r.score == pytest.approx(ols, abs=0.005)


@pytest.mark.slow
def test_pooling_in_the_probe_equals_pooling_at_capture(digits, digits_cnn, tmp_path):
    from inspect_kit.capture import capture

    X, y = digits.X_test, digits.y_test
    full = capture(
        digits_cnn, X, ["relu1", "relu3"], tmp_path / "full.h5", labels=y, progress=False
    )
    pooled = capture(
        digits_cnn,
        X,
        ["relu1", "relu3"],
        tmp_path / "pooled.h5",
        labels=y,
        reduce="mean",
        progress=False,
    )
    try:
        a = probe_profile(full, reduce="mean", progress=False)
        b = probe_profile(pooled, progress=False)
        # the pooled features agree to float32 rounding, which can flip the prediction of a
        # sample on the decision boundary: one flip moves a cross-validated accuracy by 1/N
        np.testing.assert_allclose(a.scores, b.scores, atol=2 / len(y))
        flat = probe_profile(full, layers=["relu3"], reduce="flatten", progress=False)
        assert flat.results[0].n_features == int(np.prod(full["relu3"].shape[1:]))
        assert flat.scores[0] > b.scores[0] - 0.05  # keeping the spatial layout loses nothing
    finally:
        full.close()
        pooled.close()


def _patients_digits(offset_scale):
    """Real digits (classes 0-3), 4 images per 'patient', each patient one class, plus a
    per-patient random offset on every pixel: patient identity leaks the label."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < 4
    X, y = d.data[keep], d.target[keep]
    rng = np.random.default_rng(11)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:96] for c in range(4)])
    X, y = X[order], y[order]
    X = X + rng.normal(0.0, 6.0, size=X.shape)  # noisy images: the digit alone is hard
    patients = np.repeat(np.arange(len(y) // 4), 4)  # 4 consecutive images of one class
    X = X + offset_scale * rng.normal(size=(patients.max() + 1, X.shape[1]))[patients]
    return X, y, patients


def test_grouped_cv_measures_the_patient_leak():
    X, y, patients = _patients_digits(offset_scale=8.0)
    leaky = linear_probe(X, y, cv=4, random_state=0, refit=False)
    grouped = linear_probe(X, y, cv=4, random_state=0, refit=False, groups=patients)
    assert grouped.n_groups == 96 and leaky.n_groups is None
    # every test fold is patient-disjoint from its training folds
    assert grouped.chance == 0.25 and leaky.chance == 0.25
    # the patient offset (shared by the 4 images of one class) lets the ungrouped probe
    # recognise patients seen in training: measured 0.78 ungrouped vs 0.56 grouped (without
    # the offset both read 0.84)
    assert leaky.score > grouped.score + 0.12
    assert grouped.score > 0.4  # the digit itself is still decodable across patients


def test_grouped_folds_never_split_a_group():
    from sklearn.model_selection import StratifiedGroupKFold

    X, y, patients = _patients_digits(offset_scale=0.0)
    splitter = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
    for train, test in splitter.split(X, y, patients):
        assert not set(patients[train]) & set(patients[test])
    r = linear_probe(X, y, cv=4, groups=patients, refit=False)
    assert r.to_dict()["n_groups"] == 96


def test_grouped_permutation_chance_is_seeded_and_near_balanced_chance():
    X, y, patients = _patients_digits(offset_scale=0.0)
    a = linear_probe(
        X,
        y,
        cv=3,
        groups=patients,
        chance="permutation",
        n_permutations=8,
        random_state=1,
        refit=False,
    )
    b = linear_probe(
        X,
        y,
        cv=3,
        groups=patients,
        chance="permutation",
        n_permutations=8,
        random_state=1,
        refit=False,
    )
    np.testing.assert_array_equal(a.permutation_scores, b.permutation_scores)
    assert abs(a.chance - 0.25) < 0.08  # permuted patients' labels: the probe is at 1/4
    assert a.p_value == pytest.approx(1 / 9)  # no permutation beats the real labels


def test_too_few_groups_or_samples_are_refused_or_flagged():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 5))
    y = np.tile([0, 1, 2, 3], 6)
    with pytest.raises(ValueError, match="3 distinct values but cv=5"):
        linear_probe(X, y, cv=5, groups=np.arange(24) % 3)
    r = linear_probe(X, y, cv=3, refit=False)
    assert any("smallest test fold has 8 samples" in w for w in r.warnings)
    assert "fragile" in r.to_dict()["warnings"][0]


def test_probe_profile_groups_by_a_metadata_key():
    X, y, patients = _patients_digits(offset_scale=8.0)
    store = FakeStore({"pix": X}, y, {"patient_id": patients.astype(str)})
    leaky = probe_profile(store, target="label", cv=4, progress=False)
    grouped = probe_profile(
        store, target="label", cv=4, progress=False, groups="patient_id", save=True
    )
    assert grouped.results[0].n_groups == 96
    assert leaky.scores[0] > grouped.scores[0] + 0.12
    assert store.saved["probes/label"][1]["groups"] == "patient_id"
    with pytest.raises(KeyError, match="patient_id"):
        probe_profile(store, cv=4, progress=False, groups="patient")


def test_default_groups_picks_a_repeated_patient_key():
    from inspect_kit.analysis.probes import default_groups

    y = np.arange(12) % 2
    X = np.zeros((12, 2))
    assert (
        default_groups(FakeStore({"a": X}, y, {"PatientID": np.repeat(list("abcd"), 3)}))
        == "PatientID"
    )
    # one value per sample (nothing shared) or a single value: no grouping
    assert default_groups(FakeStore({"a": X}, y, {"PatientID": np.arange(12)})) is None
    assert default_groups(FakeStore({"a": X}, y, {"site": np.zeros(12)})) is None
