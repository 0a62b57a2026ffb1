"""Tiny fake ISPRS Vaihingen archives with known pixel values (torchgeo style).

Independent of the synthetic scene generator: every area is a small (H, W) tile
(default 64 x 80) with one rectangle per class on an impervious background, so tests
can predict every pixel. Written in the real archive layout (vaiseg.data.layout):

- ``top``: ``ISPRS_semantic_labeling_Vaihingen/top/top_mosaic_09cm_area{N}.tif`` (3 bands
  IR, R, G uint8), ``.../dsm/dsm_09cm_matching_area{N}.tif`` (float32 metres), and
  ``.../gts_for_participants/top_mosaic_09cm_area{N}.tif`` for ``participants`` areas;
- ``gt`` (unless ``with_gt=False``, the users who download only the main and the
  eroded archives): ``top_mosaic_09cm_area{N}.tif`` (colour GT) for every area not in
  ``gt_missing``;
- ``gt_eroded``: ``top_mosaic_09cm_area{N}_noBoundary.tif`` (black = boundary, computed
  here by brute-force Euclidean neighbourhood shifts, radius 3);
- ``ndsm`` (optional): ``dsm_09cm_matching_area{N}_normalized.tif`` (float32 heights).

Plus ``md5.json`` ``{key: md5}`` (the contract of ``synthetic.write_archives``).

Usable as a script: ``python tests/fake_isprs.py OUT_DIR 1 3 11`` .
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from vaiseg.classes import index_to_rgb
from vaiseg.data.layout import (
    ARCHIVES,
    DSM_MEMBER,
    GT_ERODED_MEMBER,
    GT_MEMBER,
    GT_PARTICIPANTS_MEMBER,
    NDSM_MEMBER,
    TOP_MEMBER,
)

#: per-class (IR, R, G) base values; vegetation bright in IR
BASE_IRRG = np.array(
    [[120, 110, 105], [90, 140, 130], [200, 90, 100], [170, 60, 70], [60, 200, 40], [30, 30, 30]], dtype=np.int32
)
#: per-class object height above ground (metres)
HEIGHT = np.array([0.0, 8.0, 0.2, 6.0, 1.5, 0.5], dtype=np.float32)
CRS = "EPSG:32632"
TOP_FOLDER = "ISPRS_semantic_labeling_Vaihingen/"


def fake_labels(area: int, height: int = 64, width: int = 80) -> np.ndarray:
    """(H, W) uint8 class indices: impervious background + one rectangle per class.

    Rectangles shift with ``area`` so areas differ."""
    lab = np.zeros((height, width), dtype=np.uint8)
    s = area % 5
    lab[4 + s : 24 + s, 4 : 28] = 1  # building
    lab[30 : 60, 2 + s : 30 + s] = 2  # low vegetation
    lab[34 : 54, 40 + s : 62 + s] = 3  # tree
    lab[8 + s : 14 + s, 40 : 56] = 4  # car (6 x 16)
    lab[20 : 25, 66 : 71] = 5  # clutter
    return lab


def fake_area(area: int, height: int = 64, width: int = 80) -> dict[str, np.ndarray]:
    """Known arrays of one area: ``labels`` (H, W) uint8, ``top`` (3, H, W) uint8,
    ``dsm`` (H, W) float32 metres (terrain slope + object heights), ``ndsm`` (H, W)."""
    lab = fake_labels(area, height, width)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    top = BASE_IRRG[lab].transpose(2, 0, 1).copy()
    top[0] += area  # IR depends on the area
    top[2] += (rows % 4).astype(np.int32)  # G has a little texture
    ndsm = HEIGHT[lab]
    dsm = (250.0 + 0.05 * area * cols + 0.02 * rows + ndsm).astype(np.float32)
    return dict(labels=lab, top=top.astype(np.uint8), dsm=dsm, ndsm=ndsm.astype(np.float32))


def erode_boundary(lab: np.ndarray, radius: int = 3) -> np.ndarray:
    """(H, W) bool: pixels with a different label within Euclidean distance ``radius``."""
    h, w = lab.shape
    boundary = np.zeros((h, w), dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx > radius * radius:
                continue
            src = lab[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            dst = lab[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            boundary[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)] |= src != dst
    return boundary


def tif_bytes(data: np.ndarray, area: int = 1, nodata=None) -> bytes:
    """(bands, H, W) or (H, W) array -> GeoTIFF bytes (UTM 32N, 9 cm pixels)."""
    if data.ndim == 2:
        data = data[None]
    transform = Affine(0.09, 0, 497000.0 + 100 * area, 0, -0.09, 5420000.0)
    with rasterio.MemoryFile() as mem:
        with mem.open(
            driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
            dtype=data.dtype.name, transform=transform, crs=CRS, nodata=nodata,
        ) as dst:
            dst.write(data)
        return mem.read()


def colour_gt(lab: np.ndarray, boundary: np.ndarray | None = None) -> np.ndarray:
    """(H, W) indices -> (3, H, W) uint8 ISPRS colours (black where ``boundary``)."""
    rgb = index_to_rgb(lab)
    if boundary is not None:
        rgb[boundary] = 0
    return rgb.transpose(2, 0, 1).copy()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_fake_archives(
    out_dir: str | Path,
    areas=(1, 3, 11),
    height: int = 64,
    width: int = 80,
    *,
    with_ndsm: bool = False,
    with_gt: bool = True,
    participants=(),
    gt_missing=(),
    dsm_override: dict[int, np.ndarray] | None = None,
    gt_override: dict[int, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write the fake archives into ``out_dir``; return ``{key: zip path}`` (+ md5.json).

    ``participants``: areas whose GT also goes to ``gts_for_participants/`` of the top
    archive; ``with_gt=False``: no full-GT archive at all (not in the dict nor md5.json);
    ``gt_missing``: areas left out of the full-GT archive; ``dsm_override`` /
    ``gt_override`` replace an area's DSM (H, W) float32 / colour GT (3, H, W) uint8.
    """
    out = Path(out_dir)
    top, gt, ero, nd = {}, {}, {}, {}
    for a in areas:
        arr = fake_area(a, height, width)
        dsm = (dsm_override or {}).get(a, arr["dsm"])
        rgb = (gt_override or {}).get(a, colour_gt(arr["labels"]))
        top[TOP_FOLDER + TOP_MEMBER.format(area=a)] = tif_bytes(arr["top"], a)
        top[TOP_FOLDER + DSM_MEMBER.format(area=a)] = tif_bytes(dsm, a)
        if a in participants:
            top[TOP_FOLDER + GT_PARTICIPANTS_MEMBER.format(area=a)] = tif_bytes(rgb, a)
        if a not in gt_missing:
            gt[GT_MEMBER.format(area=a)] = tif_bytes(rgb, a)
        ero[GT_ERODED_MEMBER.format(area=a)] = tif_bytes(colour_gt(arr["labels"], erode_boundary(arr["labels"])), a)
        nd[NDSM_MEMBER.format(area=a)] = tif_bytes(arr["ndsm"], a)
    paths = {"top": write_zip(out / ARCHIVES["top"], top)}
    if with_gt:
        paths["gt"] = write_zip(out / ARCHIVES["gt"], gt)
    paths["gt_eroded"] = write_zip(out / ARCHIVES["gt_eroded"], ero)
    if with_ndsm:
        paths["ndsm"] = write_zip(out / ARCHIVES["ndsm"], nd)
    (out / "md5.json").write_text(json.dumps({k: md5(p) for k, p in paths.items()}, indent=2))
    return paths


if __name__ == "__main__":  # pragma: no cover
    written = write_fake_archives(sys.argv[1], [int(a) for a in sys.argv[2:]] or (1, 3, 11), with_ndsm=True)
    print(json.dumps({k: str(v) for k, v in written.items()}, indent=2))
