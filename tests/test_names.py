"""One unknown-name error, one close-match rule, everywhere."""

import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit._names import close_matches, unknown_name_error
from inspect_kit.capture import capture


def test_close_matches_rule():
    known = ["features.conv1", "features.conv2", "features.relu", "classifier"]
    assert close_matches("features.conv_1", known)[0] == "features.conv1"
    assert close_matches("conv1", known) == ["features.conv1"]  # last dotted component
    assert close_matches("Classifier", known)[0] == "classifier"  # case
    assert close_matches("zzz", known) == []
    err = unknown_name_error("zzz", [f"l{i}" for i in range(20)], see="list_layers(model)")
    assert isinstance(err, KeyError) and "available" not in str(err)
    assert "list_layers(model) lists all 20" in str(err)
    assert isinstance(unknown_name_error("a", ["b"], error=TypeError), TypeError)


def test_model_and_store_give_the_same_error(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("encoder", nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    net.add_module("head", nn.Linear(4, 2))
    with pytest.raises(KeyError, match=r"did you mean 'encoder\.1'") as in_model:
        capture(net, torch.randn(6, 4), ["encoder.l"], tmp_path / "x.h5", progress=False)
    store = capture(
        net, torch.randn(6, 4), ["encoder.1", "head"], tmp_path / "s.h5", progress=False
    )
    with pytest.raises(KeyError, match=r"did you mean 'encoder\.1'") as in_store:
        store["encoder.l"]
    assert "no layer named 'encoder.l' in store s.h5" in str(in_store.value)
    assert "no layer named 'encoder.l' in the model" in str(in_model.value)

    from inspect_kit.analysis.embedding import embed
    from inspect_kit.analysis.probes import probe_profile

    for call in (
        lambda: embed(store, "encoder.l", method="pca"),
        lambda: probe_profile(store, layers=["encoder.l"], target=np.arange(6) % 2, progress=False),
    ):
        with pytest.raises(
            KeyError, match=r"no layer named 'encoder.l' .*did you mean 'encoder\.1'"
        ):
            call()
