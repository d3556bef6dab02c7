"""The README's self-contained Python examples run as written (in order, sharing names)."""

import re
from pathlib import Path

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
    "dask-scale": ("import numpy as np, torch, inspect_kit", "import numpy as np, torch, inspect_kit"),
    "similarity": (
        "import inspect_kit as ik\nfrom inspect_kit.data import load_digits_images",
        "import inspect_kit as ik\nfrom inspect_kit.data import load_digits_images",
    ),
    "explore": (
        "import numpy as np\nimport inspect_kit\n",
        "import numpy as np\nimport inspect_kit\n",
    ),
    "medical-volumes": ("import copy, tempfile", "import copy, tempfile"),
    "sklearn-set-output": ("import numpy as np\nimport sklearn", "import numpy as np\nimport sklearn"),
    "data-and-models": (
        "from sklearn.model_selection import train_test_split",
        "from inspect_kit.data import load_dicom_images",
    ),
}


def _chain(first: str, last: str) -> list[str]:
    starts = [i for i, b in enumerate(BLOCKS) if b.startswith(first)]
    ends = [i for i, b in enumerate(BLOCKS) if b.startswith(last)]
    assert starts and ends, f"README block starting {first!r} or {last!r} not found"
    return BLOCKS[starts[0] : ends[0] + 1]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHAINS))
def test_readme_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pio.renderers, "default", "json")  # fig.show() must not open a browser
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # methods a block registers stay inside this test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    ns: dict = {}
    for block in _chain(*CHAINS[name]):
        exec(compile(block, f"README:{name}", "exec"), ns)
