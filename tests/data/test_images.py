"""Image files (inspect_kit.data.images) read against PIL's own pixel values."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inspect_kit.data.images import FileDataset, image_shape, read_image
from inspect_kit.data.transforms import SampleTransform


def test_rgb_png_reads_channels_first_in_unit_range(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png", None)
    np.testing.assert_allclose(arr, rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert image_shape(tmp_path / "a.png", None) == (3, 5, 7)
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255.0
    np.testing.assert_allclose(read_image(tmp_path / "a.png", 1)[0], gray, rtol=1e-6)
    assert image_shape(tmp_path / "a.png", 1) == (1, 5, 7)


def test_16_bit_png_scales_by_65535(tmp_path):
    v = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "d.png")
    np.testing.assert_allclose(read_image(tmp_path / "d.png", None)[0], v / 65535.0, rtol=1e-6)


def test_file_dataset_reads_on_access_and_names_a_broken_file(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    ds = FileDataset(
        [tmp_path / "ok.png", tmp_path / "bad.png"],
        lambda p: read_image(p, None),
        SampleTransform(size=(2, 2)),
    )
    assert tuple(ds[0].shape) == (1, 2, 2)
    with pytest.raises(ValueError, match="bad.png"):
        ds[1]
