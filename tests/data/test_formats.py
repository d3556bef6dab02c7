"""Reading users' files (inspect_kit.data.formats), checked against PIL, numpy and h5py.

The command-line tests (tests/cli/test_cli.py) go through these readers too; here each reader is
called directly and its values are compared with an independent reading of the same file.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inspect_kit.data.formats import load_data
from inspect_kit.data.labels_files import read_label_csv


def write_png_classes(root, rng, shape=(8, 10), per_class=3):
    """``root/<class>/<i>.png`` uint8 grayscale images; returns {relative path: array}."""
    arrays = {}
    for name in ("tumour", "healthy"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
            arrays[f"{name}/{i}.png"] = arr
    return arrays


def test_png_folder_values_labels_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    arrays = write_png_classes(tmp_path / "png", rng)
    data = load_data(tmp_path / "png")
    assert data.kind == "images" and len(data) == 6 and data.sample_shape == (1, 8, 10)
    assert data.class_names == ["healthy", "tumour"]  # sub-folder names, sorted
    for i, rel in enumerate(data.metadata["filename"]):
        x = np.asarray(data.dataset[i])
        assert x.dtype == np.float32 and x.shape == (1, 8, 10)
        np.testing.assert_array_equal(x[0], arrays[rel].astype(np.float32) / 255.0)
        assert data.class_names[data.labels[i]] == rel.split("/")[0]
    assert data.to_array().shape == (6, 1, 8, 10)


def test_channel_conversion_follows_pil(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "rgb").mkdir()
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb" / "a.png")
    as_rgb = np.asarray(load_data(tmp_path / "rgb").dataset[0])
    np.testing.assert_array_equal(as_rgb, rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
    gray = np.asarray(load_data(tmp_path / "rgb", channels=1).dataset[0])
    expected = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(gray[0], expected)
    (tmp_path / "gray").mkdir()
    g = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / "gray" / "b.png")
    three = np.asarray(load_data(tmp_path / "gray", channels=3).dataset[0])
    assert three.shape == (3, 6, 7)
    np.testing.assert_array_equal(three, np.repeat(g[None] / np.float32(255.0), 3, axis=0))


def test_16_bit_tiff_scales_by_65535_and_resize_matches_pil(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "tif").mkdir()
    arr = rng.integers(0, 65536, (32, 24), dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "tif" / "a.tif")
    x = np.asarray(load_data(tmp_path / "tif").dataset[0])
    np.testing.assert_allclose(x[0], arr / 65535.0, rtol=1e-6)
    # resize: bilinear with antialiasing, as PIL does on the float image
    small = np.asarray(load_data(tmp_path / "tif", size=(16, 12)).dataset[0])
    pil = Image.fromarray((arr / 65535.0).astype(np.float32), mode="F").resize(
        (12, 16), Image.Resampling.BILINEAR
    )
    np.testing.assert_allclose(small[0], np.asarray(pil), atol=2e-3)


def test_window_and_normalisation_of_arrays(tmp_path):
    rng = np.random.default_rng(3)
    hu = rng.uniform(-2000, 2000, (5, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "ct.npz", x=hu, y=np.arange(5) % 2)
    data = load_data(tmp_path / "ct.npz", window=(-1000, 400))
    assert data.sample_shape == (1, 6, 6) and data.labels.tolist() == [0, 1, 0, 1, 0]
    expected = (np.clip(hu, -1000, 400) + 1000) / 1400
    np.testing.assert_allclose(data.to_array()[:, 0], expected, rtol=1e-5, atol=1e-6)
    # per-sample z-score after the window
    z = load_data(tmp_path / "ct.npz", window=(-1000, 400), normalize="zscore").to_array()
    for i in range(5):
        e = expected[i]
        np.testing.assert_allclose(z[i, 0], (e - e.mean()) / e.std(ddof=1), rtol=1e-4, atol=1e-5)
    # ImageNet statistics per channel, and given MEAN,STD
    rgb = rng.random((2, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "rgb.npz", images=rgb)
    net = load_data(tmp_path / "rgb.npz", normalize="imagenet").to_array()
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(net, (rgb - mean) / std, rtol=1e-5, atol=1e-6)
    given = load_data(tmp_path / "rgb.npz", normalize="0.5,0.25").to_array()
    np.testing.assert_allclose(given, (rgb - 0.5) / 0.25, rtol=1e-5, atol=1e-6)


def test_npz_key_hdf5_dataset_and_label_sources(tmp_path):
    import h5py

    rng = np.random.default_rng(4)
    x = rng.random((6, 2, 3, 4, 5)).astype(np.float32)  # volumes with 2 channels
    np.savez(tmp_path / "v.npz", vols=x, site=np.array(["b", "a", "b", "a", "c", "c"]))
    data = load_data(f"{tmp_path / 'v.npz'}:vols", labels=f"{tmp_path / 'v.npz'}:site")
    assert data.is_volume and data.sample_shape == (2, 3, 4, 5)
    assert data.class_names == ["a", "b", "c"] and data.labels.tolist() == [1, 0, 1, 0, 2, 2]
    np.testing.assert_array_equal(data.to_array(), x)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["group/images"] = x[:, 0]  # (N, 3, 4, 5): read as (N, C, H, W)
        f["labels"] = np.array([3, 1, 4, 1, 5, 9])
    h5 = load_data(f"{tmp_path / 'd.h5'}:group/images", labels=f"{tmp_path / 'd.h5'}:labels")
    assert h5.kind == "hdf5" and h5.sample_shape == (3, 4, 5)
    assert h5.labels.tolist() == [3, 1, 4, 1, 5, 9] and h5.class_names is None
    np.testing.assert_array_equal(h5.to_array(), x[:, 0])
    # CSV labels for arrays are index,label rows (header skipped)
    (tmp_path / "l.csv").write_text("index,label\n" + "".join(f"{i},{i * 0.5}\n" for i in range(6)))
    csv_lab = load_data(f"{tmp_path / 'd.h5'}:group/images", labels=tmp_path / "l.csv")
    np.testing.assert_allclose(csv_lab.labels, np.arange(6) * 0.5)


def test_csv_labels_match_files_by_path_name_or_stem(tmp_path):
    rng = np.random.default_rng(5)
    write_png_classes(tmp_path / "png", rng, per_class=1)
    (tmp_path / "labels.csv").write_text("file;label\ntumour/0.png;2\n0;7\n")  # header skipped
    assert read_label_csv(tmp_path / "labels.csv") == {"tumour/0.png": "2", "0": "7"}
    data = load_data(tmp_path / "png", labels=tmp_path / "labels.csv")
    by_file = dict(zip(data.metadata["filename"], data.labels.tolist(), strict=True))
    assert by_file == {"tumour/0.png": 2, "healthy/0.png": 7}


def test_errors_name_what_is_wrong_and_what_would_be_right(tmp_path):
    rng = np.random.default_rng(6)
    with pytest.raises(FileNotFoundError, match="does not exist; give a folder"):
        load_data(tmp_path / "nothing")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(rng.integers(0, 255, (4, 4), dtype=np.uint8)).save(tmp_path / "mixed/a.png")
    Image.fromarray(rng.integers(0, 255, (5, 4), dtype=np.uint8)).save(tmp_path / "mixed/b.png")
    with pytest.raises(ValueError, match="different sizes.*--size"):
        load_data(tmp_path / "mixed")
    assert load_data(tmp_path / "mixed", size=(4, 4)).sample_shape == (1, 4, 4)
    with pytest.raises(ValueError, match="give the folder"):
        load_data(tmp_path / "mixed" / "a.png")
    with pytest.raises(ValueError, match="channels=0; give a positive channel count"):
        load_data(tmp_path / "mixed", channels=0)
    with pytest.raises(ValueError, match="high > low"):
        load_data(tmp_path / "mixed", window=(1, 0))
    with pytest.raises(ValueError, match="normalize='bogus' not understood"):
        load_data(tmp_path / "mixed", normalize="bogus")
    (tmp_path / "l.csv").write_text("a.png,x\n")
    with pytest.raises(ValueError, match=r"no label for 1 of 2 files \(e.g. b.png\)"):
        load_data(tmp_path / "mixed", size=(4, 4), labels=tmp_path / "l.csv")
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 4, 4)), other=np.zeros(2))
    with pytest.raises(KeyError, match="it holds x, other"):
        load_data(f"{tmp_path / 'a.npz'}:nope")
