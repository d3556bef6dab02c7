"""The README's self-contained Python examples run as written and show what they say.

Each chain of blocks runs in order, sharing names; then the results the README prints or
states in a comment (shapes, layer lists, accuracies, DICOM headers) are checked.
"""

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import plotly.io as pio
import pytest

from inspect_kit.analysis.embedding import registry

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)

# Chains of consecutive blocks that run on the shipped data; the others show a user's own
# files ("activations.h5") and are covered by the tests of the functions they call.
CHAINS = {
    "capture-and-h5py": ("import torch, inspect_kit", "import h5py, numpy as np"),
    "embedding-method": (
        "import numpy as np\nfrom inspect_kit.analysis.embedding import BaseEmbedding",
        "import numpy as np\nfrom inspect_kit.analysis.embedding import BaseEmbedding",
    ),
    "featurevis": (
        "from inspect_kit import featurevis as fv",
        "from inspect_kit.figures.featurevis import plot_randomization",
    ),
    "latent-and-probes": (
        "from inspect_kit.data import load_digits_images",
        "from inspect_kit import capture, linear_probe",
    ),
    "dask-scale": (
        "import numpy as np, torch, inspect_kit",
        "import numpy as np, torch, inspect_kit",
    ),
    "similarity": (
        "import inspect_kit as ik\nfrom inspect_kit.data import load_digits_images",
        "import inspect_kit as ik\nfrom inspect_kit.data import load_digits_images",
    ),
    "explore": (
        "import numpy as np\nimport inspect_kit\n",
        "import numpy as np\nimport inspect_kit\n",
    ),
    "medical-volumes": ("import copy, tempfile", "import copy, tempfile"),
    "sklearn-set-output": (
        "import numpy as np\nimport sklearn",
        "import numpy as np\nimport sklearn",
    ),
    "data-and-models": (
        "from sklearn.model_selection import train_test_split",
        "from inspect_kit.data import load_dicom_images",
    ),
    "attribution-trust": (
        "import numpy as np, torch\nimport inspect_kit as ik\nfrom inspect_kit.models import fit_lesion_cnn",
        "import numpy as np, torch\nimport inspect_kit as ik\nfrom inspect_kit.models import fit_lesion_cnn",
    ),
    "trust": (
        "import torch\nfrom torch import nn\nfrom inspect_kit import featurevis as fv",
        "import torch\nfrom torch import nn\nfrom inspect_kit import featurevis as fv",
    ),
}


def _chain(first: str, last: str) -> list[str]:
    starts = [i for i, b in enumerate(BLOCKS) if b.startswith(first)]
    ends = [i for i, b in enumerate(BLOCKS) if b.startswith(last)]
    assert starts and ends, f"README block starting {first!r} or {last!r} not found"
    return BLOCKS[starts[0] : ends[0] + 1]


def _floats(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def check_capture_and_h5py(out: str, ns: dict) -> None:
    import inspect_kit

    assert inspect_kit.list_layers(ns["model"], types="Conv2d") == ["conv1", "conv2", "conv3"]
    for layer in ("conv1", "relu2", "conv3", "fc"):
        assert layer in out  # store.summary() lists every stored layer
    assert "1797" in out
    # read back with plain h5py: every sample, in order, with its label
    assert ns["n"] == 1797 and ns["conv3"].shape[0] == 1797
    np.testing.assert_array_equal(ns["labels"], ns["y"])


def check_featurevis(out: str, ns: dict) -> None:
    assert "channel(conv3, 5) - 0.001 * total_variation() + 0.1 * diversity(conv3)" in out
    assert ns["res"].images.shape == (4, 1, 16, 16)
    assert ns["res"].trajectory.shape == (64, 4)  # the objectives' render: 64 steps, 4 images
    assert (ns["lo"], ns["hi"]) == (-1000, 400)
    assert ns["check"].stages == ["trained", "conv3", "bn2", "conv2", "bn1", "conv1"]
    # randomising the weights makes the pictures less like the trained ones than two seeds
    assert ns["check"].reference.mean() > ns["check"].mean_scores[-1]


def check_latent_and_probes(out: str, ns: dict) -> None:
    probe = ns["probe"]
    assert probe.codes_.shape == (1797, 8) and probe.reconstruction_error_.shape == (1797,)
    assert ns["walk"].images.shape == (3, 9, 1, 16, 16)
    printed = re.search(r"<ProbeResult \w+ ([\d.]+) .*chance ([\d.]+)", out)
    assert printed, out
    assert float(printed.group(1)) > 0.6 and float(printed.group(2)) == pytest.approx(0.1, abs=0.03)
    profile = ns["profile"]  # relu1 ~0.74 ... fc ~0.98, chance 0.10
    assert profile.layers[-1] == "fc" and profile.scores[-1] > 0.9
    assert profile.scores[-1] > profile.scores[0]
    assert ns["r"].score > 0.6 and ns["r"].chance == pytest.approx(0.1, abs=0.03)
    lp = ns["lp"]  # the estimator on relu3 of the store: the profile's relu3 score
    assert lp.score_ == pytest.approx(profile.scores[2], abs=0.02) and lp.chance_ == 0.1


def check_data_and_models(out: str, ns: dict) -> None:
    accuracy = _floats(out.splitlines()[0])[0]
    assert accuracy > 0.85  # "~0.96 (chance 0.33)"
    assert "CT HU (128, 128) (0.661468, 0.661468)" in out
    assert "MR arbitrary (64, 64) (0.3125, 0.3125)" in out


def check_sklearn_set_output(out: str, ns: dict) -> None:
    assert out.splitlines() == ["['pca0', 'pca1']", "DataFrame"]
    assert ns["frame"].shape == (200, 2)


def check_embedding_method(out: str, ns: dict) -> None:
    emb = ns["emb"]
    assert emb.coords.shape == (300, 2) and emb.title == "Random projection of features"
    # the registered estimator computed the map: the projection of the pooled features
    pooled = ns["X"].mean(axis=(2, 3))
    np.testing.assert_allclose(emb.coords, pooled @ emb.estimator.projection_, rtol=1e-4, atol=1e-4)


def check_dask_scale(out: str, ns: dict) -> None:
    import h5py

    assert ns["maps"].shape == (1797, 8, 6, 6)
    with h5py.File("scale.h5", "r") as f:
        plain = f["layers/1"][:]
    printed_mean = _floats(out.splitlines()[0])[-1]
    assert printed_mean == pytest.approx(float(plain.mean(dtype=np.float64)), rel=1e-4)
    ratio = ns["pca"].explained_variance_ratio_
    assert ns["pca"].embedding_.shape == (1797, 2) and ratio[0] >= ratio[1] > 0
    assert ratio.sum() <= 1.0 + 1e-6
    assert "('sample', 'channel', 'y', 'x')" in out and "(10, 8)" in out
    probe = ns["probes"].results[0]
    assert probe.solver == "streaming" and probe.chance == pytest.approx(0.1, abs=0.01)
    assert probe.score > 0.85  # digits' flattened conv maps decode well, streamed too
    pre = ns["tsne"].params["pre_pca"]
    assert pre["solver"] == "dask" and pre["n_components"] == 20
    assert ns["tsne"].coords.shape == (1797, 2)


def check_similarity(out: str, ns: dict) -> None:
    within, across = ns["within"], ns["across"]
    assert within.matrix.shape == (4, 4) and across.matrix.shape == (4, 4)
    np.testing.assert_allclose(np.diag(within.matrix), 1.0, atol=1e-6)
    assert 0.5 < across.diagonal()[0] <= 1.0 + 1e-6  # two seeds agree most in early layers
    assert across.diagonal()[0] > across.diagonal()[-1] - 0.1
    assert ns["rsa"].matrix.shape == (4, 4)


def check_explore(out: str, ns: dict) -> None:
    store, explorer = ns["store"], ns["explorer"]
    wrong = np.flatnonzero(store.labels != store.predictions)
    np.testing.assert_array_equal(np.sort(explorer.selected), wrong)
    assert len(ns["table"]) == len(wrong)
    assert len(ns["nearest"]) >= 8
    from pathlib import Path

    assert Path("explorer.html").stat().st_size > 100_000


def check_medical_volumes(out: str, ns: dict) -> None:
    assert "1 (3, 6, 96, 96) ['GE MEDICAL SYSTEMS']" in out
    assert "sha256:" in out and "[2.5]" in out and "LPS" in out


def check_trust(out: str, ns: dict) -> None:
    res = ns["res"]
    # the dead unit's objective never moved; the live one's did
    assert np.ptp(res.trajectory[:, 0]) == 0.0 and np.ptp(res.trajectory[:, 1]) > 0
    assert "[True, False] ['1#0']" in out
    assert "class_imbalance 6.0 3.0" in out and "val_loss_rise 0.98 0.1" in out


def check_attribution_trust(out: str, ns: dict) -> None:
    # a gradient of the trained lesion detector passes model randomisation and finds lesions
    assert ns["check"].passed and "depend on what the model learned" in out
    means = ns["loc"].means()
    assert means["pointing_game"] > means["centre_baseline"] + 0.5
    assert means["relevance_mass"] > 3 * means["mask_share"]


CHECKS = {
    "embedding-method": check_embedding_method,
    "dask-scale": check_dask_scale,
    "similarity": check_similarity,
    "explore": check_explore,
    "medical-volumes": check_medical_volumes,
    "capture-and-h5py": check_capture_and_h5py,
    "featurevis": check_featurevis,
    "latent-and-probes": check_latent_and_probes,
    "sklearn-set-output": check_sklearn_set_output,
    "data-and-models": check_data_and_models,
    "trust": check_trust,
    "attribution-trust": check_attribution_trust,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHAINS))
def test_readme_examples_run_and_show_what_they_say(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pio.renderers, "default", "json")  # fig.show() must not open a browser
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # methods a block registers stay inside this test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    ns: dict = {}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        for block in _chain(*CHAINS[name]):
            exec(compile(block, f"README:{name}", "exec"), ns)
    CHECKS[name](buf.getvalue(), ns)


def test_every_chain_has_its_checks():
    assert set(CHECKS) == set(CHAINS)
