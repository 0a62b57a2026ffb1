"""Normalised network inputs and labels per area (§3).

The paper feeds the CNNs five channels per pixel: the IR, R and G bands of the true
orthophoto (TOP) and the DSM plus a normalised DSM (nDSM, height above ground), all
standardised. Per area this module writes

- ``image.tif``: (5, H, W) float32, bands IR, R, G, DSM, nDSM, each standardised as
  ``(x - mean) / std`` with the per-band statistics of the TRAINING areas only
  (:func:`compute_stats`, ``stats.json``), so validation pixels never leak into them;
- ``labels.tif``: (H, W) uint8 class index 0..5 from the full colour GT;
- ``labels_eroded.tif``: (H, W) uint8 0..5 from the eroded GT, ``IGNORE`` (255) where the
  eroded GT is black (class boundaries eroded by a disk of radius 3, ISPRS protocol).

Every output keeps the TOP's geotransform and CRS. Input checks, each a DataError naming
the file: TOP not 3-band uint8; DSM not single-band; any shape disagreement between TOP,
DSM, GT, eroded GT and a supplied nDSM; a GT colour that is none of the six classes (nor
black in the eroded GT), reported with its pixel count; more NaN/nodata DSM pixels than
``max_nodata_fraction`` (smaller holes are filled with the nearest valid value).

Choices where the paper is silent (documented in the README's deviations list):
- nDSM when none is supplied: :func:`derive_ndsm` (grey-scale opening + Gaussian).
- A supplied Gerke nDSM in 8-bit JPEG is used as the raw 0..255 grey value (no metre
  scale is published with it); float GeoTIFF nDSMs are taken as metres. Either way the
  per-band standardisation removes any linear scale.
- A band with zero spread over the training areas (e.g. a flat DSM) is divided by 1
  instead of 0 (it becomes all zeros).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from scipy import ndimage as ndi
from tqdm import tqdm

from ..atomic import write_json
from ..classes import IGNORE, KEYS, N_CLASSES, PALETTE, rgb_to_index
from ..errors import DataError
from ..raster import GeoInfo, read_raster, write_raster
from .archives import load_manifest

log = logging.getLogger(__name__)

BAND_NAMES = ("IR", "R", "G", "DSM", "nDSM")
#: QGIS colour table of the label rasters (index -> ISPRS colour)
COLORMAP = {i: tuple(int(v) for v in PALETTE[i]) + (255,) for i in range(N_CLASSES)}


@dataclass
class Area:
    """The checked rasters of one area, all (H, W) aligned.

    ``top``: (3, H, W) uint8 IR, R, G · ``dsm``/``ndsm``: (H, W) float32 (metres; holes
    filled) · ``labels``/``labels_eroded``: (H, W) uint8 (None unless labels were read)
    · ``geo``: the TOP's georeferencing.
    """

    top: np.ndarray
    dsm: np.ndarray
    ndsm: np.ndarray
    geo: GeoInfo
    labels: np.ndarray | None = None
    labels_eroded: np.ndarray | None = None

    def stack(self) -> np.ndarray:
        """(5, H, W) float32 raw bands IR, R, G, DSM, nDSM (not yet standardised)."""
        return np.concatenate([self.top.astype(np.float32), self.dsm[None], self.ndsm[None]], axis=0)


# ----------------------------------------------------------------------------- readers


def _nodata(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as src:
                return src.nodata
        except RasterioIOError as e:
            raise DataError(path, f"cannot read raster ({e})") from e


def read_top(path: str | Path) -> tuple[np.ndarray, GeoInfo]:
    """TOP orthophoto -> ((3, H, W) uint8 IR, R, G, GeoInfo). DataError if not 3-band uint8."""
    data, geo = read_raster(path)
    if data.shape[0] != 3 or data.dtype != np.uint8:
        raise DataError(path, f"expected a 3-band uint8 IR-R-G image, got {data.shape[0]} band(s) of {data.dtype}")
    return data, geo


def fill_nodata(values: np.ndarray, invalid: np.ndarray, path: str | Path, max_fraction: float, what: str = "DSM"):
    """Fill ``invalid`` pixels of a (H, W) float array with the nearest valid value.

    Fails (DataError naming ``path`` and the fraction) when the invalid share exceeds
    ``max_fraction``. Returns a new float32 array."""
    n_bad = int(invalid.sum())
    if n_bad == 0:
        return values.astype(np.float32, copy=False)
    frac = n_bad / invalid.size
    if frac > max_fraction or n_bad == invalid.size:
        raise DataError(
            path,
            f"{frac:.2%} of the {what} pixels ({n_bad}) are NaN/nodata, more than "
            f"data.max_nodata_fraction = {max_fraction:.2%}",
        )
    _, (iy, ix) = ndi.distance_transform_edt(invalid, return_indices=True)
    log.warning("%s: filled %d NaN/nodata %s pixels (%.3f%%) with the nearest valid value", path, n_bad, what, 100 * frac)
    return values[iy, ix].astype(np.float32)


def read_height(path: str | Path, max_nodata_fraction: float, what: str = "DSM") -> np.ndarray:
    """Single-band height raster (DSM or nDSM) -> (H, W) float32, NaN/nodata filled.

    8-bit rasters (Gerke's nDSM JPEGs) keep their 0..255 grey values (see module doc)."""
    data, _ = read_raster(path)
    if data.shape[0] != 1:
        if data.shape[0] == 3 and what == "nDSM" and (data == data[:1]).all():
            data = data[:1]  # grey JPEG stored as 3 identical channels
        else:
            raise DataError(path, f"expected a single-band {what}, got {data.shape[0]} bands")
    values = data[0].astype(np.float32)
    invalid = ~np.isfinite(values)
    nodata = _nodata(Path(path))
    if nodata is not None and np.isfinite(nodata):
        invalid |= values == np.float32(nodata)
    return fill_nodata(values, invalid, path, max_nodata_fraction, what)


def read_labels(path: str | Path, eroded: bool = False) -> np.ndarray:
    """ISPRS colour GT -> (H, W) uint8 class indices (``IGNORE`` for black in the eroded GT).

    3-band uint8 RGB (an opaque 4th alpha band is dropped).
    DataError naming the file with every unknown colour and its pixel count."""
    data, _ = read_raster(path)
    if data.shape[0] == 4 and data.dtype == np.uint8 and (data[3] == 255).all():
        data = data[:3]  # RGBA with an opaque alpha band: drop it
    if data.shape[0] != 3 or data.dtype != np.uint8:
        raise DataError(path, f"expected a 3-band uint8 colour label image, got {data.shape[0]} band(s) of {data.dtype}")
    labels, unknown = rgb_to_index(data.transpose(1, 2, 0), allow_boundary=eroded)
    if unknown:
        items = sorted(unknown.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"RGB{c} x {n} px" for c, n in items[:10])
        more = f" and {len(items) - 10} more" if len(items) > 10 else ""
        raise DataError(path, f"label colours that are none of the six ISPRS classes: {shown}{more}")
    return labels


def derive_ndsm(dsm: np.ndarray, opening_size_px: int = 301, smooth_sigma_px: float = 25.0) -> np.ndarray:
    """nDSM (height above ground) from a DSM when none is supplied (§3; method our choice).

    ``dsm``: (H, W) float32 metres. Ground = grey-scale morphological opening of the DSM
    with a flat square window of side ``opening_size_px`` (301 px = 27 m at 9 cm/px,
    wider than Vaihingen's buildings, so every object narrower than the window is
    removed while terrain is kept), then a Gaussian of ``smooth_sigma_px`` (25 px =
    2.25 m) to remove the blocky steps of the opening (applied to the ground minus its
    least-squares plane, so a sloped tile is not bent at its borders). nDSM =
    max(DSM - ground, 0), (H, W) float32 metres. The opening uses 'nearest' edge
    extension, which keeps a planar slope exact up to the border. Known bias: on
    sloping terrain a flat window cannot reach under an object, so the ground under it
    is over-estimated by about slope x distance to the object's uphill edge (< 0.1 m for
    a 40 x 50 px box on a 5 % slope; exact on flat ground). scipy's opening with
    ``size=`` is separable (1-D running min/max): ~0.5 s for a 2500 x 2000 tile.
    """
    dsm = np.asarray(dsm, dtype=np.float32)
    # pad explicitly: scipy's erosion and dilation would each extend their own input,
    # which is not the opening of the edge-extended DSM (it cuts slopes at the border)
    r = opening_size_px // 2
    padded = np.pad(dsm, r, mode="edge")
    ground = ndi.grey_opening(padded, size=(opening_size_px, opening_size_px), mode="nearest")[r:-r or None, r:-r or None]
    if smooth_sigma_px > 0:
        plane = _plane_fit(ground)
        ground = ndi.gaussian_filter(ground - plane, smooth_sigma_px, mode="nearest") + plane
    return np.maximum(dsm - ground, 0).astype(np.float32)


def _plane_fit(z: np.ndarray, step: int = 8) -> np.ndarray:
    """Least-squares plane a + b*row + c*col through (H, W) ``z`` (fitted on every
    ``step``-th pixel), as (H, W) float32."""
    rows, cols = np.mgrid[0 : z.shape[0] : step, 0 : z.shape[1] : step]
    design = np.stack([np.ones(rows.size), rows.ravel(), cols.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, z[::step, ::step].ravel().astype(np.float64), rcond=None)
    r = np.arange(z.shape[0], dtype=np.float64)[:, None]
    c = np.arange(z.shape[1], dtype=np.float64)[None, :]
    return (coef[0] + coef[1] * r + coef[2] * c).astype(np.float32)


def _check_shape(path, shape, top_path, top_shape) -> None:
    if tuple(shape) != tuple(top_shape):
        raise DataError(path, f"shape {tuple(shape)} (H, W) differs from the TOP {top_path} shape {tuple(top_shape)}")


def load_area(
    entry: dict,
    *,
    max_nodata_fraction: float = 0.01,
    opening_size_px: int = 301,
    smooth_sigma_px: float = 25.0,
    labels: bool = True,
) -> Area:
    """Read and check one area from a manifest entry {top, dsm, gt, gt_eroded, ndsm|None}.

    The nDSM is read when supplied, else derived with :func:`derive_ndsm`. With
    ``labels=False`` the ground truth is not read (statistics need only the bands)."""
    top_path = Path(entry["top"])
    top, geo = read_top(top_path)
    hw = top.shape[1:]
    dsm = read_height(entry["dsm"], max_nodata_fraction, "DSM")
    _check_shape(entry["dsm"], dsm.shape, top_path, hw)
    lab = lab_e = None
    if labels:
        lab = read_labels(entry["gt"], eroded=False)
        _check_shape(entry["gt"], lab.shape, top_path, hw)
        lab_e = read_labels(entry["gt_eroded"], eroded=True)
        _check_shape(entry["gt_eroded"], lab_e.shape, top_path, hw)
        kept = lab_e != IGNORE
        disagree = int((lab_e[kept] != lab[kept]).sum())
        if disagree:
            log.warning("%s: %d non-boundary pixels disagree with the full GT %s", entry["gt_eroded"], disagree, entry["gt"])
    if entry.get("ndsm"):
        ndsm = read_height(entry["ndsm"], max_nodata_fraction, "nDSM")
        _check_shape(entry["ndsm"], ndsm.shape, top_path, hw)
    else:
        ndsm = derive_ndsm(dsm, opening_size_px, smooth_sigma_px)
    return Area(top=top, dsm=dsm, ndsm=ndsm, geo=geo, labels=lab, labels_eroded=lab_e)


def _manifest(manifest) -> dict[int, dict]:
    if isinstance(manifest, (str, Path)):
        return load_manifest(manifest)
    return {int(a): e for a, e in manifest.items()}


# ----------------------------------------------------------------------------- statistics


def compute_stats(
    manifest,
    train_areas: Iterable[int],
    *,
    out: str | Path | None = None,
    max_nodata_fraction: float = 0.01,
    opening_size_px: int = 301,
    smooth_sigma_px: float = 25.0,
    progress: bool = True,
) -> dict:
    """Per-band mean and std of the raw 5-band stack over the TRAINING areas only (§3).

    ``manifest``: path of manifest.json or its loaded dict. Streams area by area
    (per-area float64 mean / sum of squared deviations merged with Chan et al.'s
    parallel update), so only one area is in memory. Returns (and writes to ``out``,
    atomically) ``{bands, mean, std, areas, pixels, ndsm}``; std is the population std.
    """
    entries = _manifest(manifest)
    train_areas = [int(a) for a in train_areas]
    missing = [a for a in train_areas if a not in entries]
    if missing:
        raise DataError(out or "stats", f"training areas {missing} are not in the manifest")
    n = 0
    mean = np.zeros(len(BAND_NAMES))
    m2 = np.zeros(len(BAND_NAMES))
    for a in tqdm(train_areas, desc="band statistics", unit="area", disable=not progress):
        area = load_area(
            entries[a], max_nodata_fraction=max_nodata_fraction, opening_size_px=opening_size_px,
            smooth_sigma_px=smooth_sigma_px, labels=False,
        )
        x = area.stack().reshape(len(BAND_NAMES), -1).astype(np.float64)
        nb = x.shape[1]
        mb = x.mean(axis=1)
        m2b = ((x - mb[:, None]) ** 2).sum(axis=1)
        delta = mb - mean
        tot = n + nb
        mean = mean + delta * nb / tot
        m2 = m2 + m2b + delta**2 * n * nb / tot
        n = tot
    std = np.sqrt(m2 / n)
    flat = [BAND_NAMES[i] for i in np.flatnonzero(std < 1e-6)]
    if flat:
        log.warning("bands %s are constant over the training areas: their std is set to 1", flat)
    std = np.where(std < 1e-6, 1.0, std)
    stats = {
        "bands": list(BAND_NAMES),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "areas": train_areas,
        "pixels": int(n),
        "ndsm": "supplied" if all(entries[a].get("ndsm") for a in train_areas) else
        {"derived": {"opening_size_px": opening_size_px, "smooth_sigma_px": smooth_sigma_px}},
    }
    for b, m, s in zip(BAND_NAMES, stats["mean"], stats["std"]):
        log.info("band %-4s mean %10.4f std %10.4f", b, m, s)
    if out is not None:
        write_json(out, stats)
    return stats


# ----------------------------------------------------------------------------- normalise


def class_frequencies(labels: np.ndarray) -> dict[str, float]:
    """Share of each class among the non-ignored pixels of (H, W) uint8 labels."""
    counts = np.bincount(labels[labels < N_CLASSES].ravel(), minlength=N_CLASSES)
    total = max(int(counts.sum()), 1)
    return {k: float(c) / total for k, c in zip(KEYS, counts)}


def normalize_area(
    entry: dict,
    stats: dict | str | Path,
    out_image: str | Path,
    out_labels: str | Path,
    out_labels_eroded: str | Path,
    *,
    max_nodata_fraction: float = 0.01,
    opening_size_px: int = 301,
    smooth_sigma_px: float = 25.0,
) -> dict[str, float]:
    """Write the standardised 5-band image and both label rasters of one area (§3).

    ``entry``: manifest entry {top, dsm, gt, gt_eroded, ndsm|None}; ``stats``: the dict
    (or JSON path) of :func:`compute_stats`. Outputs: ``out_image`` (5, H, W) float32
    (IR, R, G, DSM, nDSM), ``out_labels`` (H, W) uint8 0..5, ``out_labels_eroded`` (H, W)
    uint8 0..5 / 255 (nodata=255); all with the TOP's geotransform/CRS. Everything is
    read and checked before the first write; if a write fails the outputs already
    written are removed (all or none). Returns (and logs) the full-GT class frequencies.
    """
    if not isinstance(stats, dict):
        import json

        stats = json.loads(Path(stats).read_text())
    if list(stats.get("bands", [])) != list(BAND_NAMES):
        raise DataError(out_image, f"statistics have bands {stats.get('bands')}, expected {list(BAND_NAMES)}")
    area = load_area(
        entry, max_nodata_fraction=max_nodata_fraction, opening_size_px=opening_size_px, smooth_sigma_px=smooth_sigma_px
    )
    mean = np.asarray(stats["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(stats["std"], dtype=np.float32)[:, None, None]
    image = ((area.stack() - mean) / std).astype(np.float32)
    written: list[Path] = []
    try:
        write_raster(out_image, image, area.geo, band_names=list(BAND_NAMES))
        written.append(Path(out_image))
        write_raster(out_labels, area.labels, area.geo, band_names=["class"], colormap=COLORMAP)
        written.append(Path(out_labels))
        write_raster(out_labels_eroded, area.labels_eroded, area.geo, nodata=IGNORE, band_names=["class"], colormap=COLORMAP)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    freqs = class_frequencies(area.labels)
    ignored = float((area.labels_eroded == IGNORE).mean())
    log.info(
        "%s: %dx%d px, classes %s, eroded boundary %.1f%%",
        entry["top"], area.top.shape[1], area.top.shape[2],
        ", ".join(f"{k} {100 * v:.1f}%" for k, v in freqs.items()), 100 * ignored,
    )
    return freqs


def normalize_from_manifest(manifest: str | Path, area: int, stats: str | Path, out_image, out_labels,
                            out_labels_eroded, **kwargs) -> dict[str, float]:
    """:func:`normalize_area` for ``area`` of a manifest.json (the rule's entry point)."""
    entries = load_manifest(manifest)
    if int(area) not in entries:
        raise DataError(manifest, f"area {area} is not in the manifest (areas: {sorted(entries)})")
    return normalize_area(entries[int(area)], stats, out_image, out_labels, out_labels_eroded, **kwargs)
