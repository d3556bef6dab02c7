"""Small previews of inputs: uint8 conversion, volume slices, PNG data URIs and sprite sheets.

Thumbnails are what a figure shows when the mouse rests on a sample. A 2D image becomes a
small grey (or RGB) picture; a volume its middle slice, its maximum-intensity projection, or
its three orthogonal middle slices side by side.

Examples
--------
>>> x = np.random.default_rng(0).random((4, 1, 64, 64), dtype=np.float32)
>>> thumbs = make_thumbnails(x, size=16)
>>> thumbs.shape, thumbs.dtype
((4, 16, 16), dtype('uint8'))
>>> to_data_uri(thumbs[0])[:22]
'data:image/png;base64,'
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

VOLUME_MODES = ("mid", "mip", "ortho")


def to_uint8(
    x: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] | None = None,
) -> np.ndarray:
    """Scale an array to uint8 (0-255) for display.

    Parameters
    ----------
    x : ndarray
        Any shape. uint8 input is returned unchanged unless a window is given.
    vmin, vmax : float, optional
        Display window; by default the array's own min/max (or the ``percentiles``).
    percentiles : (low, high), optional
        Window at these percentiles of ``x`` instead of min/max (robust to outliers, e.g.
        ``(0.5, 99.5)`` for CT with metal).

    Returns
    -------
    ndarray of uint8, same shape; a constant or non-finite-only array becomes zeros.

    Examples
    --------
    >>> to_uint8(np.array([0.0, 0.5, 1.0])).tolist()
    [0, 128, 255]
    """
    x = np.asarray(x)
    if x.dtype == np.uint8 and vmin is None and vmax is None and percentiles is None:
        return x
    xf = x.astype(np.float64, copy=False)
    finite = np.isfinite(xf)
    if not finite.any():
        return np.zeros(x.shape, dtype=np.uint8)
    vals = xf[finite]
    if percentiles is not None:
        lo, hi = np.percentile(vals, percentiles)
    else:
        lo, hi = vals.min(), vals.max()
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    if not hi > lo:
        return np.zeros(x.shape, dtype=np.uint8)
    scaled = np.clip((np.where(finite, xf, lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.round(scaled * 255.0).astype(np.uint8)


def _plane(x: np.ndarray, channel: int | None, mode: str) -> np.ndarray:
    """One sample -> a float 2D plane (h, w) or RGB (h, w, 3)."""
    x = np.asarray(x)
    if x.ndim == 2:  # (H, W)
        return x
    if x.ndim == 3 and x.shape[-1] == 3 and x.shape[0] != 3:  # (H, W, 3) already RGB
        return x
    if x.ndim == 3:  # (C, H, W)
        if channel is None and x.shape[0] == 3:
            return np.moveaxis(x, 0, -1)
        return x[channel or 0]
    if x.ndim == 4:  # (C, D, H, W)
        vol = x[channel or 0]
        if mode == "mid":
            return vol[vol.shape[0] // 2]
        if mode == "mip":
            return vol.max(axis=0)
        if mode == "ortho":
            d, h, w = vol.shape
            planes = [vol[d // 2], vol[:, h // 2, :], vol[:, :, w // 2]]
            side = max(max(p.shape) for p in planes)
            out = np.full((side, 3 * side), np.nan, dtype=np.float64)
            for k, p in enumerate(planes):
                out[: p.shape[0], k * side : k * side + p.shape[1]] = p
            return out
        raise ValueError(f"unknown volume mode {mode!r}; use one of {VOLUME_MODES}")
    raise ValueError(
        f"a sample must be (H, W), (C, H, W) or a volume (C, D, H, W); got shape {x.shape}"
    )


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    """Fit a uint8 (h, w[, 3]) image into ``size`` x ``size`` keeping its aspect ratio."""
    if size is None:
        return img
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale == 1:
        return img
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(img).resize(new, resample=resample))


def make_thumbnail(
    x: np.ndarray,
    size: int | None = 32,
    mode: str = "mid",
    channel: int | None = None,
    percentiles: tuple[float, float] | None = None,
) -> np.ndarray:
    """Make a uint8 thumbnail of one sample.

    Parameters
    ----------
    x : ndarray
        One image ``(H, W)``, ``(C, H, W)`` or ``(H, W, 3)``, or one volume ``(C, D, H, W)``.
    size : int or None
        Longest side of the thumbnail in pixels (aspect ratio kept); None keeps the size.
    mode : {'mid', 'mip', 'ortho'}
        For volumes: the middle slice along D, the maximum-intensity projection along D, or
        the three orthogonal middle slices side by side.
    channel : int, optional
        Channel to show; by default a 3-channel image is shown as RGB, otherwise channel 0.
    percentiles : (low, high), optional
        Intensity window (see :func:`to_uint8`); default min/max of the shown plane.

    Returns
    -------
    ndarray of uint8, (h, w) or (h, w, 3)

    Examples
    --------
    >>> make_thumbnail(np.zeros((1, 8, 32, 32)), size=16, mode="ortho").shape
    (5, 16)
    """
    if mode not in VOLUME_MODES:
        raise ValueError(f"unknown thumbnail mode {mode!r}; use one of {VOLUME_MODES}")
    return _resize(to_uint8(_plane(x, channel, mode), percentiles=percentiles), size)


def make_thumbnails(
    x: np.ndarray,
    size: int | None = 32,
    mode: str = "mid",
    channel: int | None = None,
    percentiles: tuple[float, float] | None = None,
) -> np.ndarray:
    """Make thumbnails of a batch ``(N, ...)``; see :func:`make_thumbnail`.

    Returns
    -------
    ndarray of uint8, (N, h, w) or (N, h, w, 3)

    Examples
    --------
    >>> make_thumbnails(np.zeros((2, 3, 10, 20)), size=8).shape
    (2, 4, 8, 3)
    """
    x = np.asarray(x) if not hasattr(x, "shape") else x
    thumbs = [
        make_thumbnail(np.asarray(x[i]), size, mode, channel, percentiles) for i in range(len(x))
    ]
    if not thumbs:
        return np.zeros((0, size or 1, size or 1), dtype=np.uint8)
    return np.stack(thumbs)


def resize_thumbnails(thumbs: np.ndarray, size: int | None) -> np.ndarray:
    """Shrink a batch of uint8 thumbnails so their longest side is at most ``size``."""
    thumbs = np.asarray(thumbs)
    if size is None or max(thumbs.shape[1:3]) <= size:
        return thumbs
    return np.stack([_resize(t, size) for t in thumbs])


def encode_png(thumb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(h, w)`` grey or ``(h, w, 3)`` RGB image."""
    thumb = np.asarray(thumb)
    if thumb.dtype != np.uint8:
        raise TypeError(f"thumbnails must be uint8 (see to_uint8), got {thumb.dtype}")
    if not (thumb.ndim == 2 or (thumb.ndim == 3 and thumb.shape[-1] == 3)):
        raise ValueError(f"a thumbnail is (h, w) or (h, w, 3); got shape {thumb.shape}")
    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def to_data_uri(thumb: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 thumbnail (for <img src=...>)."""
    return "data:image/png;base64," + base64.b64encode(encode_png(thumb)).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """Pixels of a PNG data URI (the inverse of :func:`to_data_uri`), as uint8."""
    prefix = "base64,"
    if not uri.startswith("data:image/") or prefix not in uri:
        raise ValueError(f"not a base64 image data URI: {uri[:40]!r}...")
    raw = base64.b64decode(uri.split(prefix, 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)))


@dataclass(frozen=True)
class ThumbnailAtlas:
    """Thumbnails packed into sprite sheets: one PNG per sheet instead of one per sample.

    A browser decodes a few large PNGs much faster than 50,000 small ones, and PNG compresses
    neighbouring tiles together, so the HTML stays small.

    Attributes
    ----------
    sheets : list of str
        PNG data URIs, each holding up to ``columns * rows`` tiles, row-major.
    tile_shape : (int, int)
        Height and width of every tile in pixels.
    columns, rows : int
        Tiles per sheet row and sheet rows.
    tile_index : ndarray of int32, (N,)
        Tile of each input thumbnail (identical thumbnails share one tile).
    """

    sheets: list[str]
    tile_shape: tuple[int, int]
    columns: int
    rows: int
    tile_index: np.ndarray

    @property
    def n_tiles(self) -> int:
        return int(self.tile_index.max()) + 1 if self.tile_index.size else 0

    def tile(self, i: int) -> np.ndarray:
        """Pixels of tile ``i`` (decoded from its sheet; for tests and debugging)."""
        per_sheet = self.columns * self.rows
        sheet = decode_data_uri(self.sheets[i // per_sheet])
        r, c = divmod(i % per_sheet, self.columns)
        h, w = self.tile_shape
        return sheet[r * h : (r + 1) * h, c * w : (c + 1) * w]

    def to_json(self) -> dict:
        """What the browser-side hover script needs (goes into ``layout.meta``)."""
        return {
            "sheets": list(self.sheets),
            "tile": [int(self.tile_shape[0]), int(self.tile_shape[1])],
            "columns": int(self.columns),
            "rows": int(self.rows),
        }


def build_atlas(thumbs: np.ndarray, max_side: int = 4096, dedupe: bool = True) -> ThumbnailAtlas:
    """Pack uint8 thumbnails ``(N, h, w[, 3])`` into PNG sprite sheets.

    Parameters
    ----------
    thumbs : ndarray of uint8
        Same-shape thumbnails (see :func:`make_thumbnails`).
    max_side : int
        Largest sheet side in pixels; more tiles spill onto further sheets (browsers cap the
        size of a decoded image).
    dedupe : bool
        Store identical thumbnails once.

    Examples
    --------
    >>> atlas = build_atlas(np.zeros((5, 8, 8), np.uint8))
    >>> atlas.n_tiles, atlas.tile_index.tolist()
    (1, [0, 0, 0, 0, 0])
    """
    thumbs = np.asarray(thumbs)
    if thumbs.dtype != np.uint8:
        raise TypeError(f"thumbnails must be uint8 (see make_thumbnails), got {thumbs.dtype}")
    if not (thumbs.ndim == 3 or (thumbs.ndim == 4 and thumbs.shape[-1] == 3)):
        raise ValueError(f"thumbnails must be (N, h, w) or (N, h, w, 3); got {thumbs.shape}")
    n, h, w = thumbs.shape[:3]
    if dedupe and n:
        flat = np.ascontiguousarray(thumbs).reshape(n, -1)
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]
        first: dict[bytes, int] = {}
        tile_index = np.empty(n, dtype=np.int32)
        order: list[int] = []
        for i, k in enumerate(keys):
            j = first.get(k)
            if j is None:
                j = first[k] = len(order)
                order.append(i)
            tile_index[i] = j
        tiles = thumbs[order]
    else:
        tile_index = np.arange(n, dtype=np.int32)
        tiles = thumbs
    m = len(tiles)
    columns = max(1, min(max_side // w, math.ceil(math.sqrt(max(m, 1) * h / w))))
    rows_needed = math.ceil(m / columns) if m else 1
    rows = max(1, min(max_side // h, rows_needed))
    per_sheet = columns * rows
    sheets = []
    for s in range(0, max(m, 1), per_sheet):
        chunk = tiles[s : s + per_sheet]
        r_used = math.ceil(len(chunk) / columns) if len(chunk) else 1
        sheet = np.zeros((r_used * h, columns * w) + thumbs.shape[3:], dtype=np.uint8)
        for k, t in enumerate(chunk):
            r, c = divmod(k, columns)
            sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = t
        sheets.append(to_data_uri(sheet))
    return ThumbnailAtlas(sheets, (h, w), columns, rows, tile_index)
