"""The one raster reader/writer of the project (rasterio / GeoTIFF).

Arrays are band-first: (bands, H, W). Georeferencing travels in a small ``GeoInfo``
(transform + CRS) so outputs open in QGIS exactly on top of their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine

from .atomic import atomic_path
from .errors import DataError


@dataclass(frozen=True)
class GeoInfo:
    """Georeferencing of a raster: affine transform and CRS (may be None)."""

    transform: Affine = Affine.identity()
    crs: object = None


def read_raster(path: str | Path, window=None) -> tuple[np.ndarray, GeoInfo]:
    """Read all bands of ``path`` -> ((bands, H, W) array, GeoInfo).

    ``window`` is a rasterio Window (row/col offsets and sizes) for a partial read.
    Raises DataError naming the file when it cannot be opened or decoded.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read(window=window)
                geo = GeoInfo(src.transform if window is None else src.window_transform(window), src.crs)
    except RasterioIOError as e:
        raise DataError(path, f"cannot read raster ({e})") from e
    return data, geo


def raster_shape(path: str | Path) -> tuple[int, int, int]:
    """(bands, H, W) of a raster without reading its pixels."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.count, src.height, src.width
    except RasterioIOError as e:
        raise DataError(path, f"cannot read raster ({e})") from e


def write_raster(
    path: str | Path,
    data: np.ndarray,
    geo: GeoInfo | None = None,
    *,
    nodata=None,
    band_names: list[str] | None = None,
    colormap: dict | None = None,
    compress: str = "deflate",
) -> None:
    """Write a (bands, H, W) or (H, W) array as a tiled GeoTIFF, atomically.

    ``band_names`` become band descriptions (shown by QGIS); ``colormap`` (index ->
    RGB(A)) is attached to band 1 of a uint8 raster so class maps open coloured.
    """
    import warnings

    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"expected (bands, H, W), got {data.shape}")
    geo = geo or GeoInfo()
    count, height, width = data.shape
    profile = dict(
        driver="GTiff",
        height=height,
        width=width,
        count=count,
        dtype=data.dtype.name,
        transform=geo.transform,
        crs=geo.crs,
        compress=compress,
        BIGTIFF="IF_SAFER",
    )
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if data.dtype.kind == "f":
        profile["predictor"] = 3
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                if band_names:
                    for i, name in enumerate(band_names, start=1):
                        dst.set_band_description(i, name)
                if colormap is not None:
                    dst.write_colormap(1, colormap)


def write_label_raster(path: str | Path, labels: np.ndarray, geo: GeoInfo | None = None, rgb_path: str | Path | None = None) -> None:
    """A predicted class map: (H, W) uint8 class indices with the ISPRS colour table
    embedded (``IGNORE`` = 255 = unclassified -> black, and nodata when present); with
    ``rgb_path`` also a 3-band uint8 RGB rendering (opens coloured anywhere). Atomic."""
    from .classes import IGNORE, N_CLASSES, PALETTE, index_to_rgb

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"expected (H, W) uint8 labels, got {labels.shape} {labels.dtype}")
    cmap = {i: (*(int(v) for v in PALETTE[i]), 255) for i in range(N_CLASSES)}
    cmap[IGNORE] = (0, 0, 0, 255)
    nodata = IGNORE if (labels == IGNORE).any() else None
    write_raster(path, labels, geo, nodata=nodata, band_names=["class"], colormap=cmap)
    if rgb_path is not None:
        write_raster(rgb_path, np.moveaxis(index_to_rgb(labels), -1, 0), geo, band_names=["red", "green", "blue"])
