"""Bad input gets a clear error, and nothing already written is lost."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.capture import capture
from inspect_kit.store import StoreError, open_store


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_unknown_layer_lists_close_matches_and_writes_nothing(model, tmp_path):
    with pytest.raises(KeyError, match=r"available: '0', '1', '2'") as err:
        capture(model, torch.randn(4, 4), ["3"], tmp_path / "x.h5", progress=False)
    assert "list_layers" in str(err.value)
    deep = nn.Sequential()
    deep.add_module("encoder", nn.Sequential())
    deep.encoder.add_module("conv1", nn.Linear(4, 4))
    with pytest.raises(KeyError, match="encoder.conv1"):
        capture(deep, torch.randn(4, 4), ["encoder.conv_1"], tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_layer_that_never_fires(tmp_path):
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match="'unused' never ran"):
        capture(Branchy(), torch.randn(4, 4), ["used", "unused"], tmp_path / "b.h5", progress=False)


def test_empty_data_leaves_no_file(model, tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        capture(model, torch.empty(0, 4), ["0"], tmp_path / "e.h5", progress=False)
    with pytest.raises(ValueError, match="no samples"):
        capture(model, [], ["0"], tmp_path / "e.h5", progress=False)
    assert not (tmp_path / "e.h5").exists()


def test_mismatched_labels(model, tmp_path):
    with pytest.raises(ValueError, match="5 entries but data has 6"):
        capture(
            model, torch.randn(6, 4), ["0"], tmp_path / "l.h5", labels=np.arange(5), progress=False
        )
    batches = [(torch.randn(3, 4), torch.arange(3)), (torch.randn(3, 4), torch.arange(2))]
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        capture(model, batches, ["0"], tmp_path / "m.h5", progress=False)
    # the first batch was written and is still readable
    s = open_store(tmp_path / "m.h5")
    assert len(s) == 3 and not s.complete


def test_nonfinite_activations_warn_with_counts_and_are_stored(model, tmp_path):
    x = torch.randn(6, 4)
    x[2, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match=r"'0' produced 8 non-finite"):
        s = capture(model, x, ["0"], tmp_path / "n.h5", progress=False)
    assert np.isnan(s["0"][2]).all() and np.isfinite(s["0"][[0, 1, 3, 4, 5]]).all()
    assert s["0"].attrs["nonfinite_count"] == 8


def test_existing_file_is_refused_unless_overwrite(model, tmp_path):
    p = tmp_path / "s.h5"
    capture(model, torch.randn(4, 4), ["0"], p, progress=False)
    before = open_store(p)["0"][:]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        capture(model, torch.randn(4, 4), ["0"], p, progress=False)
    np.testing.assert_array_equal(open_store(p)["0"][:], before)
    s = capture(model, torch.randn(9, 4), ["0"], p, overwrite=True, progress=False)
    assert len(s) == 9


def test_resume_with_other_layers_is_refused_without_touching_the_store(model, tmp_path):
    p = tmp_path / "s.h5"
    capture(model, torch.randn(4, 4), ["0"], p, progress=False)
    with pytest.raises(ValueError, match="layers="):
        capture(model, torch.randn(4, 4), ["2"], p, resume=True, progress=False)
    assert open_store(p).complete


def test_not_a_store_and_newer_schema(tmp_path):
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        open_store(tmp_path / "t.txt")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(StoreError, match="not an inspect_kit store"):
        open_store(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "new.h5", "w", libver="latest") as f:
        f.attrs["schema_version"] = 99
        f.create_group("samples")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(tmp_path / "new.h5")
    with pytest.raises(FileNotFoundError):
        open_store(tmp_path / "missing.h5")


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="unknown reduce='avg'"):
        capture(model, torch.randn(4, 4), ["0"], tmp_path / "a.h5", reduce="avg", progress=False)
    with pytest.raises(ValueError, match="dtype"):
        capture(model, torch.randn(4, 4), ["0"], tmp_path / "a.h5", dtype="int8", progress=False)
    with pytest.raises(TypeError, match="not supported"):
        capture(model, 42, ["0"], tmp_path / "a.h5", progress=False)
    with pytest.raises(ValueError, match="no layers given"):
        capture(model, torch.randn(4, 4), [], tmp_path / "a.h5", progress=False)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(4, 5)  # (T, B, H): not batch-first

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(RuntimeError, match="not the batch axis"):
        capture(Seq(), torch.randn(3, 2, 4), ["rnn"], tmp_path / "g.h5", progress=False)
