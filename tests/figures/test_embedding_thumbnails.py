"""inspect_kit.imaging (thumbnails, volume slices, PNG data URIs, sprite sheets); the theme."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.data import load_mni_patches
from inspect_kit.figures import theme
from inspect_kit.imaging import (
    DEFAULT_PERCENTILES,
    build_atlas,
    decode_data_uri,
    make_thumbnail,
    make_thumbnails,
    thumbnails_from_tensor,
    to_data_uri,
    to_uint8,
)


def test_to_uint8_windows():
    x = np.array([-1000.0, 0.0, 1000.0, np.nan])
    assert to_uint8(x).tolist() == [0, 128, 255, 0]
    assert to_uint8(x, vmin=0, vmax=1000).tolist() == [0, 0, 255, 0]
    assert to_uint8(np.full(4, 3.0)).tolist() == [0, 0, 0, 0]
    same = np.arange(5, dtype=np.uint8)
    assert to_uint8(same) is same


@pytest.fixture(scope="module")
def mni_volumes():
    X, y, names = load_mni_patches(dim=3, patch=12, n_per_class=4, random_state=0)
    return X


def test_volume_thumbnails_are_the_middle_slice_or_projection(mni_volumes):
    vol = mni_volumes[0, 0]  # (12, 12, 12) of the MNI152 T1 template
    window = DEFAULT_PERCENTILES  # each sample's own 0.5-99.5 percentile range
    mid = make_thumbnail(mni_volumes[0], size=None, mode="slice")
    np.testing.assert_array_equal(mid, to_uint8(vol[6], percentiles=window))
    np.testing.assert_array_equal(make_thumbnail(mni_volumes[0], size=None, mode="mid"), mid)
    mip = make_thumbnail(mni_volumes[0], size=None, mode="mip")
    np.testing.assert_array_equal(mip, to_uint8(vol.max(axis=0), percentiles=window))
    ortho = make_thumbnail(mni_volumes[0], size=None, mode="ortho", percentiles=None)
    assert ortho.shape == (12, 36)
    planes = np.stack([vol[6], vol[:, 6, :], vol[:, :, 6]])
    lo, hi = planes.min(), planes.max()
    np.testing.assert_array_equal(
        ortho[:, 12:24], to_uint8(vol[:, 6, :], vmin=lo, vmax=hi)
    )  # coronal middle slice, windowed like the whole panel
    batch = make_thumbnails(mni_volumes, size=8, mode="mip")
    assert batch.shape == (len(mni_volumes), 8, 8) and batch.dtype == np.uint8


def test_thumbnails_shrink_with_a_box_filter_then_window_and_never_enlarge():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(1, 40, 20)).astype(np.float32)
    img[0, 0, 0] = 1e4  # one hot pixel must not wash out the window
    thumb = make_thumbnail(img, size=10, mode="slice")
    assert thumb.shape == (10, 5)
    blocks = img[0].reshape(10, 4, 5, 4).mean(axis=(1, 3))  # 4x4 box average
    np.testing.assert_array_equal(thumb, to_uint8(blocks, percentiles=DEFAULT_PERCENTILES))
    assert np.ptp(thumb) > 200
    small = make_thumbnail(rng.random((1, 6, 4)), size=32)
    assert small.shape == (6, 4)


def test_capture_and_figures_make_the_same_thumbnails(tmp_path, mni_volumes):
    """Capture (a torch batch, at capture) and figures (a numpy array) share one rule."""
    torch = pytest.importorskip("torch")
    from inspect_kit import capture

    rng = np.random.default_rng(1)
    cases = {
        "grey": rng.normal(size=(3, 1, 100, 50)).astype(np.float32) * 400 - 300,
        "rgb": rng.random((3, 3, 20, 30), dtype=np.float32),
        "two_channels": rng.random((3, 2, 16, 16), dtype=np.float32),
        "volume": np.asarray(mni_volumes[:3]),
    }
    model = torch.nn.Sequential(torch.nn.Flatten())
    for name, x in cases.items():
        modes = ("slice", "mip", "ortho") if x.ndim == 5 else ("slice",)
        for mode in modes:
            store = capture(
                model,
                torch.from_numpy(x),
                ["0"],
                tmp_path / f"{name}-{mode}.h5",
                thumbnails=mode,
                progress=False,
            )
            want = make_thumbnails(x, size=64, mode=mode)
            np.testing.assert_array_equal(store.thumbnails, want, err_msg=f"{name} {mode}")
            np.testing.assert_array_equal(
                thumbnails_from_tensor(torch.from_numpy(x), mode=mode, size=64), want
            )
            store.close()
    assert thumbnails_from_tensor(torch.zeros(4, 10)) is None  # feature vectors: no picture


def test_rgb_and_multichannel_images():
    rng = np.random.default_rng(0)
    rgb = make_thumbnail(rng.random((3, 20, 10)), size=10)
    assert rgb.shape == (10, 5, 3)
    two = rng.random((2, 8, 8))
    np.testing.assert_array_equal(
        make_thumbnail(two, size=None, channel=1, percentiles=None), to_uint8(two[1])
    )
    mean = make_thumbnail(two, size=None)  # any count but three: the channel mean
    np.testing.assert_array_equal(mean, to_uint8(two.mean(axis=0), percentiles=DEFAULT_PERCENTILES))
    with pytest.raises(ValueError, match="unknown thumbnail mode"):
        make_thumbnail(two, mode="axial")


def test_png_data_uri_round_trip():
    img = (np.arange(64, dtype=np.uint8).reshape(8, 8)) * 4
    uri = to_data_uri(img)
    assert uri.startswith("data:image/png;base64,")
    np.testing.assert_array_equal(decode_data_uri(uri), img)
    with pytest.raises(TypeError, match="uint8"):
        to_data_uri(img.astype(float))


def test_atlas_dedupes_and_spills_onto_further_sheets():
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, size=(30, 6, 5), dtype=np.uint8)
    thumbs = np.concatenate([distinct, distinct[:10]])  # 10 repeats
    atlas = build_atlas(thumbs, max_side=20)  # 4 x 3 tiles per sheet
    assert atlas.n_tiles == 30
    assert (atlas.columns, atlas.rows) == (4, 3) and len(atlas.sheets) == 3
    np.testing.assert_array_equal(atlas.tile_index[30:], atlas.tile_index[:10])
    for i in range(len(thumbs)):
        np.testing.assert_array_equal(atlas.tile(int(atlas.tile_index[i])), thumbs[i])
    rgb = rng.integers(0, 256, size=(5, 4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(build_atlas(rgb).tile(3), rgb[3])


def test_theme_palettes_and_template():
    assert theme.categorical_colors(3) == theme.OKABE_ITO[:3]
    ten = theme.categorical_colors(10)
    assert len(set(ten)) == 10
    assert theme.categorical_symbols(12)[10:] == ["square", "square"]
    fig = theme.apply_theme(go.Figure())
    assert fig.layout.template.layout.colorway == tuple(theme.OKABE_ITO)
