"""Samples for the realism yardstick: synthetic areas and real ISPRS pixels, one structure.

Every loader returns :class:`Sample` objects: the IR-R-G image, its ERODED ground truth
in the project's class indices (``vaiseg.classes``; ``IGNORE`` = 255 on the eroded class
boundaries) and, when available, the full ground truth. The measures compare eroded
labels with eroded labels, so both sides lose the same boundary band.

Sources:

- :func:`load_mmseg_crop`: a crop kept by open-mmlab/mmsegmentation as a test fixture
  (IR-R-G PNG + eroded GT PNG in mmseg's index convention: 0 = eroded boundary, 1
  impervious, 2 building, 3 low vegetation, 4 tree, 5 car, 6 clutter). The crop is ISPRS
  data: it is read from where the user keeps it and never copied into the project.
- :func:`load_isprs_areas`: areas of an extracted ISPRS-layout archive set (the
  pipeline's ``resources/extracted/manifest.json``), synthetic or real, read with the
  pipeline's own TOP and colour-GT readers (``vaiseg.data.normalize``).
- :func:`sample_from_arrays` / :func:`synthetic_samples`: in-memory arrays, e.g. scenes
  of ``vaiseg.data.synthetic.generate_scene`` (eroded here with
  ``vaiseg.data.erosion.erode_boundaries``, radius 3, as the archives are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..classes import IGNORE, N_CLASSES
from ..data.archives import load_manifest
from ..data.erosion import erode_boundaries
from ..data.normalize import read_labels, read_top
from ..errors import DataError
from ..raster import read_raster

#: mmseg index -> our index (0 = eroded boundary -> IGNORE; 1..6 -> 0..5)
MMSEG_TO_OURS = np.array([IGNORE, 0, 1, 2, 3, 4, 5], dtype=np.uint8)


@dataclass
class Sample:
    """One image with its labels.

    name: a short label for tables and figures · irrg: (3, H, W) uint8 bands IR, R, G ·
    labels: (H, W) uint8 ERODED ground truth, classes 0..5 and ``IGNORE`` (255) on the
    eroded boundaries · full: (H, W) uint8 full ground truth 0..5, or None when the
    source has none (the mmseg crops)."""

    name: str
    irrg: np.ndarray
    labels: np.ndarray
    full: np.ndarray | None = None

    def __post_init__(self):
        if self.irrg.ndim != 3 or self.irrg.shape[0] != 3 or self.irrg.dtype != np.uint8:
            raise ValueError(f"{self.name}: irrg must be (3, H, W) uint8, got {self.irrg.shape} {self.irrg.dtype}")
        if self.labels.shape != self.irrg.shape[1:] or self.labels.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: labels must be (H, W) uint8 matching irrg {self.irrg.shape[1:]}, "
                f"got {self.labels.shape} {self.labels.dtype}"
            )
        if self.full is not None and self.full.shape != self.labels.shape:
            raise ValueError(f"{self.name}: full labels {self.full.shape} differ from labels {self.labels.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape


def _read(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    return read_raster(path)[0]


def load_mmseg_crop(irrg_png: str | Path, label_png: str | Path, name: str | None = None) -> Sample:
    """An mmseg-style crop -> :class:`Sample` (labels mapped to our indices, full=None).

    ``irrg_png``: 3-band uint8 IR-R-G image (an opaque 4th alpha band is dropped);
    ``label_png``: single-band uint8 eroded GT in mmseg's convention (0 = boundary ->
    ``IGNORE``; 1..6 -> 0..5). ``name`` defaults to the image file's stem.

    Raises DataError naming the file for: a missing file, a wrong band count or dtype,
    label and image sizes that differ, a label index above 6.
    """
    irrg_png, label_png = Path(irrg_png), Path(label_png)
    img = _read(irrg_png, "image")
    if img.shape[0] == 4 and img.dtype == np.uint8 and (img[3] == 255).all():
        img = img[:3]
    if img.shape[0] != 3 or img.dtype != np.uint8:
        raise DataError(irrg_png, f"expected a 3-band uint8 IR-R-G image, got {img.shape[0]} band(s) of {img.dtype}")
    lab = _read(label_png, "label image")
    if lab.shape[0] == 3 and (lab == lab[:1]).all():
        lab = lab[:1]  # grey PNG stored as RGB
    if lab.shape[0] != 1 or lab.dtype != np.uint8:
        raise DataError(label_png, f"expected a single-band uint8 index image, got {lab.shape[0]} band(s) of {lab.dtype}")
    lab = lab[0]
    if lab.shape != img.shape[1:]:
        raise DataError(label_png, f"size {lab.shape} (H, W) differs from the image {irrg_png} {img.shape[1:]}")
    bad = lab >= len(MMSEG_TO_OURS)
    if bad.any():
        values, counts = np.unique(lab[bad], return_counts=True)
        shown = ", ".join(f"{v} x {n} px" for v, n in zip(values.tolist(), counts.tolist()))
        raise DataError(label_png, f"label indices above 6 (mmseg convention is 0 boundary, 1..6 classes): {shown}")
    return Sample(name or irrg_png.stem, img, MMSEG_TO_OURS[lab], None)


def load_isprs_areas(manifest_json: str | Path | dict, areas: Iterable[int], prefix: str = "area") -> list[Sample]:
    """Areas of an extracted ISPRS-layout archive set -> list of :class:`Sample`.

    ``manifest_json``: the ``manifest.json`` written by
    ``vaiseg.data.archives.extract_archives`` (or its :func:`load_manifest` dict);
    ``areas``: area numbers. Reads each area's TOP (``normalize.read_top``), eroded GT
    (``labels``) and full GT (``full``) with ``normalize.read_labels``; names are
    ``f"{prefix}{area}"``. DataError for an area not in the manifest (and whatever the
    readers raise: wrong bands, unknown colours, each naming the file) or a GT whose
    size differs from the TOP.
    """
    entries = load_manifest(manifest_json) if isinstance(manifest_json, (str, Path)) else {
        int(a): e for a, e in manifest_json.items()
    }
    out = []
    for area in areas:
        area = int(area)
        if area not in entries:
            raise DataError(
                manifest_json if isinstance(manifest_json, (str, Path)) else "manifest",
                f"area {area} is not in the manifest (has {sorted(entries)})",
            )
        e = entries[area]
        top, _ = read_top(e["top"])
        eroded = read_labels(e["gt_eroded"], eroded=True)
        full = read_labels(e["gt"])
        for p, lab in ((e["gt_eroded"], eroded), (e["gt"], full)):
            if lab.shape != top.shape[1:]:
                raise DataError(p, f"size {lab.shape} (H, W) differs from the TOP {e['top']} {top.shape[1:]}")
        out.append(Sample(f"{prefix}{area}", top, eroded, full))
    return out


def sample_from_arrays(name: str, irrg: np.ndarray, full: np.ndarray, radius: int = 3) -> Sample:
    """:class:`Sample` from an image and its FULL labels (0..5): the eroded labels are
    computed with ``erode_boundaries(full, radius)`` (ISPRS: disc of radius 3)."""
    full = np.asarray(full, dtype=np.uint8)
    if full.size and full.max() >= N_CLASSES:
        raise ValueError(f"{name}: full labels must be 0..{N_CLASSES - 1}, got max {full.max()}")
    return Sample(name, np.asarray(irrg), erode_boundaries(full, radius), full)


def synthetic_samples(areas: Iterable[int], height: int = 512, width: int = 512, seed: int = 2016) -> list[Sample]:
    """Scenes of ``vaiseg.data.synthetic.generate_scene(area, height, width, seed)`` as
    samples named ``synthetic{area}`` (eroded labels with radius 3)."""
    from ..data.synthetic import generate_scene

    out = []
    for area in areas:
        scene = generate_scene(int(area), height, width, seed)
        out.append(sample_from_arrays(f"synthetic{int(area)}", scene.irrg, scene.labels))
    return out
