"""Small previews of inputs and PNG data URIs: the one place that turns pixels into pictures.

Capture writes a thumbnail of every input into the store; figures and the report make them
from arrays and embed pictures in HTML. Both use this module, so a sample looks the same
wherever it is shown. It depends on numpy and Pillow only; :func:`thumbnails_from_tensor`
imports torch when called, picks the shown plane on the tensor's device and converts once.

The rule, for one sample:

1. the plane: an image ``(C, H, W)`` is itself; a volume ``(C, D, H, W)`` gives its middle
   axial slice (``"slice"``), its maximum-intensity projection over depth (``"mip"``) or its
   three orthogonal middle slices side by side (``"ortho"``);
2. the colour: three channels stay RGB; any other count becomes grey, the channel mean
   (or the one ``channel`` asked for);
3. the size: the longest side at most ``size`` pixels, aspect ratio kept (box filter, on
   the float values); nothing is enlarged;
4. the window: the sample's own 0.5-99.5 percentile range (robust to a few bright voxels,
   and CT in HU and [0, 1] images both show), scaled to uint8.

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
from typing import Any

import numpy as np
from PIL import Image

#: how a volume becomes a picture: middle axial slice, maximum-intensity projection, or the
#: three orthogonal middle slices side by side
THUMBNAIL_MODES = ("slice", "mip", "ortho")
#: the default intensity window: percentiles of each sample's own values
DEFAULT_PERCENTILES = (0.5, 99.5)
_ALIASES = {"mid": "slice"}


def check_mode(mode: str) -> str:
    """The canonical name of a thumbnail mode (``"mid"`` is accepted for ``"slice"``).

    Examples
    --------
    >>> check_mode("mid")
    'slice'
    """
    canonical = _ALIASES.get(mode, mode)
    if canonical not in THUMBNAIL_MODES:
        raise ValueError(f"unknown thumbnail mode {mode!r}; use one of {THUMBNAIL_MODES}")
    return canonical


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
        Window at these percentiles of the finite values of ``x`` instead of min/max
        (robust to outliers, e.g. ``(0.5, 99.5)`` for CT with metal).

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


def _ortho(vol: np.ndarray) -> np.ndarray:
    """Axial, coronal and sagittal middle slices of ``(..., D, H, W)`` side by side (NaN gaps)."""
    d, h, w = vol.shape[-3:]
    planes = [vol[..., d // 2, :, :], vol[..., :, h // 2, :], vol[..., :, :, w // 2]]
    side = max(max(p.shape[-2:]) for p in planes)
    out = np.full(vol.shape[:-3] + (side, 3 * side), np.nan, dtype=np.float64)
    for k, p in enumerate(planes):
        out[..., : p.shape[-2], k * side : k * side + p.shape[-1]] = p
    return out


def select_plane(x: Any, mode: str = "slice") -> Any:
    """The plane a batch ``(N, C, H, W)`` or ``(N, C, D, H, W)`` is shown by: ``(N, C, h, w)``.

    Works on numpy arrays and torch tensors alike (indexing and maxima are exact in both),
    so capture can pick the plane on the device before copying to the host.

    Examples
    --------
    >>> select_plane(np.zeros((2, 1, 8, 6, 4)), "ortho").shape
    (2, 1, 8, 24)
    """
    mode = check_mode(mode)
    if x.ndim != 5:
        return x
    if mode == "slice":
        return x[:, :, x.shape[2] // 2]
    if mode == "mip":
        return x.amax(2) if hasattr(x, "amax") else x.max(axis=2)
    return _ortho(np.asarray(x))


def _plane(x: np.ndarray, channel: int | None, mode: str) -> np.ndarray:
    """One sample -> a float 2D plane (h, w) or RGB (h, w, 3)."""
    x = np.asarray(x)
    if x.ndim == 2:  # (H, W)
        return x
    if x.ndim == 3 and x.shape[-1] == 3 and x.shape[0] != 3:  # (H, W, 3) already RGB
        return x
    if x.ndim == 4:  # (C, D, H, W)
        x = select_plane(x[None], mode)[0]
    if x.ndim == 3:  # (C, h, w)
        plane: np.ndarray
        if channel is not None:
            plane = x[channel]
        elif x.shape[0] == 3:
            plane = np.moveaxis(x, 0, -1)
        else:
            plane = x[0] if x.shape[0] == 1 else x.astype(np.float64).mean(axis=0)
        return plane
    raise ValueError(
        f"a sample must be (H, W), (C, H, W) or a volume (C, D, H, W); got shape {x.shape}"
    )


def _fit(h: int, w: int, size: int | None) -> tuple[int, int] | None:
    """(width, height) that fits ``size`` keeping the aspect ratio, or None to keep (h, w)."""
    if size is None or max(h, w) <= size:
        return None
    scale = size / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _shrink(plane: np.ndarray, size: int | None) -> np.ndarray:
    """Box-filter a float (h, w[, 3]) plane so its longest side is at most ``size``."""
    new = _fit(plane.shape[0], plane.shape[1], size)
    if new is None:
        return plane
    plane = plane.astype(np.float32)
    finite = np.isfinite(plane)
    if not finite.all():  # the gaps of an ortho panel: shown as the darkest value
        plane = np.where(finite, plane, plane[finite].min() if finite.any() else 0.0)
    channels = [plane] if plane.ndim == 2 else [plane[..., c] for c in range(plane.shape[-1])]
    out = [
        np.asarray(Image.fromarray(np.ascontiguousarray(c)).resize(new, Image.Resampling.BOX))
        for c in channels
    ]
    return out[0] if plane.ndim == 2 else np.stack(out, axis=-1)


def _physical(plane: np.ndarray, spacing: Any, size: int | None) -> np.ndarray:
    """Resample a float (h, w[, 3]) plane to its physical aspect, centred in a square box.

    ``spacing`` is the (row, column) pixel size in mm; the box side is the longer of h and
    w (at most ``size``) and the margins take the plane's darkest value.
    """
    sh, sw = (float(v) for v in np.asarray(spacing, dtype=np.float64).reshape(2))
    if not (np.isfinite(sh) and np.isfinite(sw) and sh > 0 and sw > 0):
        return plane
    h, w = plane.shape[:2]
    side = max(h, w) if size is None else min(size, max(h, w))
    h_mm, w_mm = h * sh, w * sw
    scale = side / max(h_mm, w_mm)
    new = (max(1, round(w_mm * scale)), max(1, round(h_mm * scale)))
    plane = plane.astype(np.float32)
    finite = np.isfinite(plane)
    fill = float(plane[finite].min()) if finite.any() else 0.0
    plane = np.where(finite, plane, fill)
    channels = [plane] if plane.ndim == 2 else [plane[..., c] for c in range(plane.shape[-1])]
    resized = [
        np.asarray(Image.fromarray(np.ascontiguousarray(c)).resize(new, Image.Resampling.BILINEAR))
        for c in channels
    ]
    img = resized[0] if plane.ndim == 2 else np.stack(resized, axis=-1)
    out = np.full((side, side) + plane.shape[2:], fill, dtype=np.float32)
    top, left = (side - new[1]) // 2, (side - new[0]) // 2
    out[top : top + new[1], left : left + new[0]] = img
    return out


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    """Fit a uint8 (h, w[, 3]) image into ``size`` x ``size`` keeping its aspect ratio."""
    new = _fit(img.shape[0], img.shape[1], size)
    if new is None:
        return img
    return np.asarray(Image.fromarray(img).resize(new, resample=Image.Resampling.BOX))


def make_thumbnail(
    x: np.ndarray,
    size: int | None = 32,
    mode: str = "slice",
    channel: int | None = None,
    percentiles: tuple[float, float] | None = DEFAULT_PERCENTILES,
    spacing: Any = None,
) -> np.ndarray:
    """Make a uint8 thumbnail of one sample.

    Parameters
    ----------
    x : ndarray
        One image ``(H, W)``, ``(C, H, W)`` or ``(H, W, 3)``, or one volume ``(C, D, H, W)``.
    size : int or None
        Longest side of the thumbnail at most this many pixels (aspect ratio kept, never
        enlarged); None keeps the size.
    mode : {'slice', 'mip', 'ortho'}
        For volumes: the middle slice along D, the maximum-intensity projection along D, or
        the three orthogonal middle slices side by side (``'mid'`` means ``'slice'``).
    channel : int, optional
        Channel to show; by default three channels are shown as RGB, any other count as
        their mean.
    percentiles : (low, high) or None
        Intensity window at these percentiles of the shown plane (see :func:`to_uint8`);
        None uses its min/max.
    spacing : (row, column) in mm, optional
        Pixel size of the shown plane (H and W). The thumbnail then keeps the physical
        aspect ratio (a stack of 5 mm slices is not squashed), centred in a square box whose
        side is the longer of H and W (at most ``size``). Ignored for ``'ortho'``, whose
        three planes have different spacings.

    Returns
    -------
    ndarray of uint8, (h, w) or (h, w, 3)

    Examples
    --------
    >>> make_thumbnail(np.zeros((1, 8, 32, 32)), size=16, mode="ortho").shape
    (5, 16)
    >>> make_thumbnail(np.zeros((1, 40, 8)), spacing=(1.0, 5.0)).shape   # 40 x 40 mm
    (32, 32)
    """
    mode = check_mode(mode)
    plane = np.asarray(_plane(x, channel, mode), dtype=np.float32)
    if spacing is not None and not (mode == "ortho" and np.asarray(x).ndim == 4):
        plane = _physical(plane, spacing, size)
    return to_uint8(_shrink(plane, size), percentiles=percentiles)


def make_thumbnails(
    x: np.ndarray,
    size: int | None = 32,
    mode: str = "slice",
    channel: int | None = None,
    percentiles: tuple[float, float] | None = DEFAULT_PERCENTILES,
    spacing: Any = None,
) -> np.ndarray:
    """Make thumbnails of a batch ``(N, ...)``; see :func:`make_thumbnail`.

    ``spacing``, when given, is ``(N, 2)``: each sample's row and column spacing in mm.

    Returns
    -------
    ndarray of uint8, (N, h, w) or (N, h, w, 3)

    Examples
    --------
    >>> make_thumbnails(np.zeros((2, 3, 10, 20)), size=8).shape
    (2, 4, 8, 3)
    """
    mode = check_mode(mode)
    x = np.asarray(x) if not hasattr(x, "shape") else x
    sp = None if spacing is None else np.asarray(spacing, dtype=np.float64).reshape(len(x), 2)
    thumbs = [
        make_thumbnail(
            np.asarray(x[i]), size, mode, channel, percentiles, None if sp is None else sp[i]
        )
        for i in range(len(x))
    ]
    if not thumbs:
        return np.zeros((0, size or 1, size or 1), dtype=np.uint8)
    return np.stack(thumbs)


def thumbnails_from_tensor(
    x: Any, *, mode: str = "slice", size: int | None = 64, spacing: Any = None
) -> np.ndarray | None:
    """Thumbnails of a batch tensor, as capture writes them; None for non-image inputs.

    The shown plane is picked on the tensor's device (a volume's slice or projection, so only
    that crosses to the host), then :func:`make_thumbnails` does the rest: the result equals
    ``make_thumbnails(x.cpu().numpy(), size, mode)`` exactly.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` images or ``(N, C, D, H, W)`` volumes, floating point or uint8;
        anything else (token ids, feature vectors) gives None.
    mode : {'slice', 'mip', 'ortho'}
    size : int or None
        Longest side at most this many pixels.
    spacing : array-like (N, 2), optional
        Row and column spacing (mm) of each sample's H and W axes: physical aspect kept.

    Examples
    --------
    >>> import torch
    >>> thumbnails_from_tensor(torch.rand(2, 1, 6, 40, 20), size=16).shape
    (2, 16, 8)
    """
    import torch

    mode = check_mode(mode)
    if not isinstance(x, torch.Tensor) or not (x.is_floating_point() or x.dtype == torch.uint8):
        return None
    if x.ndim not in (4, 5):
        return None
    if x.ndim == 5 and mode != "ortho":
        x = select_plane(x.detach(), mode)
    x = x.detach()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return make_thumbnails(x.cpu().numpy(), size=size, mode=mode, spacing=spacing)


def resize_thumbnails(thumbs: np.ndarray, size: int | None) -> np.ndarray:
    """Shrink a batch of uint8 thumbnails so their longest side is at most ``size``.

    Examples
    --------
    >>> resize_thumbnails(np.zeros((3, 20, 10), np.uint8), 8).shape
    (3, 8, 4)
    """
    thumbs = np.asarray(thumbs)
    if size is None or max(thumbs.shape[1:3]) <= size:
        return thumbs
    return np.stack([_resize(t, size) for t in thumbs])


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(h, w)`` grey or ``(h, w, 3)`` / ``(h, w, 4)`` colour image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 arrays or PNG bytes (see to_uint8), got {image.dtype}"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise ValueError(f"an image is (h, w), (h, w, 3) or (h, w, 4); got shape {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def to_data_uri(image: np.ndarray | bytes) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 image or of PNG bytes (for ``<img src>``).

    Examples
    --------
    >>> to_data_uri(np.zeros((2, 2), np.uint8))[:22]
    'data:image/png;base64,'
    """
    raw = bytes(image) if isinstance(image, bytes | bytearray) else encode_png(image)
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """Pixels of a PNG data URI (the inverse of :func:`to_data_uri`), as uint8.

    Examples
    --------
    >>> img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    >>> decode_data_uri(to_data_uri(img)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
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

    def to_json(self) -> dict[str, Any]:
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
        for j, tile in enumerate(chunk):
            r, c = divmod(j, columns)
            sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
        sheets.append(to_data_uri(sheet))
    return ThumbnailAtlas(sheets, (h, w), columns, rows, tile_index)
