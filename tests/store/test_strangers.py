"""Stores from strangers (issue 23, findings 2-4 and 7-10): a store reads only itself, its
recorded shapes and paths are checked before use, resume means the same capture, every damage
is a StoreError naming the file, and a store opens like any HDF5 file.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from inspect_kit.capture import capture
from inspect_kit.cli import main
from inspect_kit.store import StoreError, open_store, schema
from inspect_kit.store.integrity import ATTRS_CHECKSUM
from inspect_kit.store.results import results_path
from inspect_kit.store.trust import MAX_SAMPLE_VALUES, checked_record, recorded_data_refusal
from inspect_kit.workflows.records import load_recorded_inputs, read_inputs_record

from ._faults_data import tiny_data, tiny_model


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("made") / "s.h5"
    capture(tiny_model(), tiny_data(8), ["0", "3"], path, progress=False).close()
    return path


@pytest.fixture
def store(made, tmp_path) -> Path:
    path = tmp_path / "s.h5"
    shutil.copy(made, path)
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "passwd"
    path.write_bytes(b"root:x:0:0:SECRET-LINE:/root:/bin/sh\n" * 4)
    return path


# -- finding 2: a store never reads another file ---------------------------------------------


def _external(store: Path, name: str, secret: Path, rows: int, row: tuple = ()) -> None:
    with h5py.File(store, "r+") as f:
        old = f[name]
        attrs = dict(old.attrs)
        del f[name]
        ds = f.create_dataset(
            name,
            shape=(rows, *row),
            dtype="S8" if not row else "u1",
            external=[(str(secret), 0, h5py.h5f.UNLIMITED)],
        )
        for k, v in attrs.items():
            ds.attrs[k] = v


@pytest.mark.parametrize("name", ["samples/meta/site", "samples/thumbnail", "layers/3"])
def test_external_raw_storage_is_refused_in_every_group(store, secret, name):
    with h5py.File(store, "r") as f:
        row = tuple(f[name].shape[1:])
        rows = f[name].shape[0]
    _external(store, name, secret, rows, row)
    with pytest.raises(StoreError, match=r"another file.*passwd") as err:
        open_store(store)
    assert str(store) in str(err.value) and "SECRET" not in str(err.value)


def test_external_links_are_refused(store, secret, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(8)
    with h5py.File(store, "r+") as f:
        f["samples/meta/extra"] = h5py.ExternalLink(str(other), "x")
    with pytest.raises(StoreError, match="link into another file"):
        open_store(store)


def test_virtual_datasets_over_other_files_are_refused(store, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(store, "r") as f:
        shape, dtype = f["layers/3"].shape, f["layers/3"].dtype
    with h5py.File(other, "w") as f:
        f.create_dataset("layers/3", data=np.ones(shape, dtype))
    with h5py.File(store, "r+") as f:
        attrs = dict(f["layers/3"].attrs)
        del f["layers/3"]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[:] = h5py.VirtualSource(str(other), "layers/3", shape=shape)
        ds = f.create_virtual_dataset("layers/3", layout)
        for k, v in attrs.items():
            ds.attrs[k] = v
    with pytest.raises(StoreError, match="virtual dataset over .*other.h5"):
        open_store(store)
    # a master naming itself a torchrun store does not make a foreign file its part
    with h5py.File(store, "r+") as f:
        f.attrs["distributed"] = json.dumps({"world_size": 1, "parts": ["../other.h5"]})
    with pytest.raises(StoreError):
        open_store(store)


# -- finding 3: recorded shapes and sizes are checked before any allocation --------------------


def test_a_recorded_sample_shape_over_the_limit_is_dropped_with_a_warning(store, caplog):
    with open_store(store) as s:
        s.save_result(
            schema.INPUTS,
            {"sample_shape": np.array([3, 40000, 40000])},
            {
                "sample_shape": [3, 40000, 40000],
                "kind": "images",
            },
        )
        with caplog.at_level(logging.WARNING):
            record = read_inputs_record(s)
    assert "sample_shape" not in record and record["kind"] == "images"
    assert any("over the limit" in r.getMessage() for r in caplog.records)
    assert checked_record({"sample_shape": [1, 512, 512, 512]})["sample_shape"]
    assert 3 * 40000 * 40000 > MAX_SAMPLE_VALUES


def test_rows_the_file_does_not_hold_are_refused_before_reading(store):
    with h5py.File(store, "r+") as f:
        for name in ("samples/index", "samples/label", "layers/0", "layers/3"):
            f[name].resize(10**9, axis=0)
        f["samples/input_crc32"].resize(10**9, axis=0)
        f["samples/prediction"].resize(10**9, axis=0)
        f["samples/logits"].resize(10**9, axis=0)
        f["samples/thumbnail"].resize(10**9, axis=0)
        f["samples/meta/site"].resize(10**9, axis=0)
    with pytest.raises(StoreError, match="declares 1000000000 rows"):
        open_store(store)


# -- finding 4: a recorded data path is never walked ------------------------------------------


def test_a_recorded_system_folder_is_never_opened(store, caplog):
    opened: list[str] = []

    def hook(event, args):
        if event == "open" and isinstance(args[0], str) and args[0].startswith("/etc/"):
            opened.append(args[0])

    sys.addaudithook(hook)
    with open_store(store) as s:
        s.save_result(schema.INPUTS, {"sample_shape": np.array([1, 6, 6])}, {"data": "/etc"})
        with caplog.at_level(logging.WARNING):
            record = read_inputs_record(s)
    before = len(opened)
    assert load_recorded_inputs(record) is None
    assert len(opened) == before, opened[before:]
    assert any("system folder" in r.getMessage() for r in caplog.records)


def test_recorded_paths_must_be_data_a_user_could_pass(tmp_path):
    assert recorded_data_refusal("/") is not None
    assert recorded_data_refusal("/etc/passwd") == "/etc/passwd is a system file"
    assert recorded_data_refusal(str(Path.home())) is not None
    (tmp_path / "notes.txt").write_text("x")
    assert "not an .npz" in recorded_data_refusal(str(tmp_path / "notes.txt"))
    assert "holds no images" in recorded_data_refusal(str(tmp_path))
    (tmp_path / "class_a").mkdir()
    (tmp_path / "class_a" / "a.png").write_bytes(b"")
    assert recorded_data_refusal(str(tmp_path)) is None
    np.savez(tmp_path / "x.npz", x=np.zeros(2))
    assert recorded_data_refusal(f"{tmp_path / 'x.npz'}:x") is None


# -- finding 7: resume means the same capture --------------------------------------------------


def test_resume_of_a_complete_store_refuses_other_data(store):
    before = store.read_bytes()
    with pytest.raises(ValueError, match="sample 0 is not the input"):
        capture(tiny_model(), tiny_data(8, seed=9), ["0", "3"], store, resume=True, progress=False)
    with pytest.raises(ValueError, match="holds 8 samples but the data has 4"):
        capture(tiny_model(), tiny_data(4), ["0", "3"], store, resume=True, progress=False)
    with pytest.raises(ValueError, match="more than 8"):
        capture(tiny_model(), tiny_data(12), ["0", "3"], store, resume=True, progress=False)
    assert store.read_bytes() == before
    capture(tiny_model(), tiny_data(8), ["0", "3"], store, resume=True, progress=False).close()
    assert store.read_bytes() == before


def test_cli_resume_of_a_complete_store_refuses_other_data_and_keeps_the_record(tmp_path, capsys):
    args = {"n_classes": 3, "widths": [4, 8, 8], "random_state": 0}
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.normal(size=(12, 1, 16, 16)).astype(np.float32))
    np.savez(tmp_path / "b.npz", x=rng.normal(size=(12, 1, 16, 16)).astype(np.float32))
    out = tmp_path / "s.h5"

    def run(data: str, *extra: str) -> int:
        return main(
            [
                "capture",
                "inspect_kit.models:SmallCNN",
                "--model-args",
                json.dumps(args),
                data,
                "--out",
                str(out),
                "--layers",
                "fc",
                "-q",
                *extra,
            ]
        )

    assert run(str(tmp_path / "a.npz")) == 0
    capsys.readouterr()
    assert run(str(tmp_path / "b.npz"), "--resume") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not the input the store captured" in err[0]
    with open_store(out) as s:
        assert read_inputs_record(s)["data"].endswith("a.npz")


# -- finding 8: every damage is named; attributes carry a checksum ------------------------------


def test_a_changed_root_or_layer_attribute_is_detected(store):
    for where, key, value in (
        ("/", "created", "2020-01-01T00:00:00+00:00"),
        ("/", "model_class", "evil.Net"),
        ("layers/3", "module_type", "Conv2d"),
    ):
        work = store.with_name(f"w{key}.h5")
        shutil.copy(store, work)
        with h5py.File(work, "r+") as f:
            f[where].attrs[key] = value
        with pytest.raises(StoreError, match=f"{work}.*do not match their checksum"):
            open_store(work)


def test_a_store_without_checksums_opens_with_a_note(store, caplog):
    with h5py.File(store, "r+") as f:
        del f.attrs[ATTRS_CHECKSUM]
    with caplog.at_level(logging.INFO), open_store(store) as s:
        assert s.complete
    assert any("before attribute checksums" in r.getMessage() for r in caplog.records)


def _metadata_bytes(path: Path) -> list[int]:
    """Every byte offset of the file that is not raw data of a chunk, nor inside a run of 16
    or more zero bytes (space HDF5 allocated but never wrote: flipping it is harmless)."""
    size = path.stat().st_size
    data = np.zeros(size, bool)
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.chunks:

                def mark(info):
                    data[info.byte_offset : info.byte_offset + info.size] = True

                obj.id.chunk_iter(mark)
            elif isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
                off = obj.id.get_offset()
                data[off : off + obj.id.get_storage_size()] = True

        f.visititems(visit)
    raw = np.frombuffer(path.read_bytes(), np.uint8)
    padded = np.zeros(size, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (raw == 0).astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=False):
        if stop - start >= 16:
            padded[start:stop] = True
    return [int(i) for i in np.flatnonzero(~data & ~padded)]


def _everything(path: Path) -> dict:
    with open_store(path) as s:
        s.verify()
        out = {
            "prov": s.provenance,
            "layers": s.layers,
            "n": len(s),
            "index": s.index,
            "labels": s.labels,
            "pred": s.predictions,
            "logits": s.logits,
            "thumbs": s.thumbnails,
            "meta": s.metadata,
            "digests": s.input_digests,
            "summary": s.summary().split("\n", 1)[1],
            "results": s.results(),
        }
        for name in s.layers:
            out[f"layer {name}"] = s[name][:]
            out[f"attrs {name}"] = s[name].attrs
        return out


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


STRIDE = 53


def test_every_metadata_bit_flip_is_detected_or_harmless(tmp_path):
    """Each metadata byte of a tiny store flipped alone: a StoreError naming the file, or
    everything reads back as it was (no raw HDF5 error, no silently changed value)."""
    path = tmp_path / "tiny.h5"
    model = nn.Sequential(nn.Linear(2, 2))
    x = torch.arange(4, dtype=torch.float32).reshape(2, 2)
    capture(model, x, ["0"], path, labels=np.array([0, 1]), thumbnails=None, progress=False).close()
    want = _everything(path)
    raw = bytearray(path.read_bytes())
    offsets = _metadata_bytes(path)
    assert len(offsets) > 500
    # bounded run time: every STRIDE-th metadata byte, a different bit each time
    offsets = offsets[::STRIDE]
    work = tmp_path / "flipped.h5"
    silent, raw_errors, detected = [], [], 0
    for i in offsets:
        flipped = bytearray(raw)
        flipped[i] ^= 1 << (i % 8)
        work.write_bytes(flipped)
        try:
            got = _everything(work)
        except StoreError as err:
            assert str(work) in str(err)
            detected += 1
            continue
        except Exception as err:  # noqa: BLE001 - what the test is looking for
            raw_errors.append((i, f"{type(err).__name__}: {err}"[:160]))
            continue
        if not _same(got, want):
            silent.append(i)
    assert not raw_errors, raw_errors[:10]
    assert not silent, silent[:20]
    assert detected > len(offsets) // 4, (detected, len(offsets))


def test_a_damaged_results_file_is_ignored_with_one_line_and_recomputed(store, caplog):
    with open_store(store) as s:
        assert s.save_result("probes/label", {"acc": np.array([0.5])}, {"k": 1})
    sidecar = results_path(store)
    sidecar.write_bytes(sidecar.read_bytes()[:100])
    with caplog.at_level(logging.WARNING), open_store(store) as s:
        assert s.load_result("probes/label") is None
        assert s.save_result("probes/label", {"acc": np.array([0.7])}, {"k": 2})
        assert s.load_result("probes/label")[1]["k"] == 2
        s.verify()
    assert sum("does not read back" in r.getMessage() for r in caplog.records) >= 1


# -- finding 9: opens like any HDF5 file ---------------------------------------------------------


def test_plain_h5py_opens_a_store_the_package_holds_and_the_reverse(store):
    with open_store(store) as s:
        with h5py.File(store, "r") as f:
            assert f["layers/3"].shape[0] == len(s)
        assert len(s["3"][:]) == len(s)
    with h5py.File(store, "r") as f:
        with open_store(store) as s:
            np.testing.assert_array_equal(s["3"][:], f["layers/3"][:])


def test_xarray_and_pandas_open_a_store_the_package_holds(store):
    with open_store(store) as s:
        xr = pytest.importorskip("xarray")
        pytest.importorskip("h5netcdf")
        with xr.open_dataset(store, engine="h5netcdf", group="samples", phony_dims="sort") as ds:
            assert ds.sizes
        pd = pytest.importorskip("pandas")
        pytest.importorskip("tables")
        with pd.HDFStore(store, "r") as hs:
            assert hs is not None
        assert len(s)


# -- finding 10: the smaller items ---------------------------------------------------------------


def test_a_nested_group_under_layers_is_a_store_error(store):
    with h5py.File(store, "r+") as f:
        f.create_group("layers/nested/deeper")
    with pytest.raises(StoreError, match=r"/layers/nested is a group"):
        open_store(store)


def test_the_column_error_states_the_samples_kept(tmp_path):
    batches = [{"x": torch.randn(4, 4)} for _ in range(6)]
    batches.append({"x": torch.randn(4, 4), "y": torch.arange(4)})
    path = tmp_path / "s.h5"
    with pytest.raises(ValueError, match="the 24 samples before it are kept"):
        capture(nn.Sequential(nn.Linear(4, 2)), batches, ["0"], path, progress=False)
    with open_store(path) as s:
        assert len(s) == 24


def test_an_empty_npz_is_one_line(tmp_path, capsys):
    np.savez(tmp_path / "e.npz")
    code = main(
        [
            "capture",
            "inspect_kit.models:SmallCNN",
            str(tmp_path / "e.npz"),
            "--out",
            str(tmp_path / "s.h5"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "holds no arrays" in err[0]


def test_layers_with_an_unknown_type_is_an_error(capsys):
    code = main(["layers", "inspect_kit.models:SmallCNN", "--types", "Bogus"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "Bogus" in err[0] and "Conv2d" in err[0]
