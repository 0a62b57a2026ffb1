"""Synthetic areas written as the four ISPRS archives (``vaiseg.data.layout``).

One code path for both data sources: the zips hold the members the real archives hold,
under the same names, so ingestion cannot tell them apart. Members are stored (the
GeoTIFFs are deflate-compressed already) with a fixed timestamp and mode, so the md5s
depend only on (areas, height, width, seed).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import tempfile
import zipfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ...atomic import atomic_path, write_json
from ...classes import CLASSES, N_CLASSES, index_to_rgb
from ...config import LABELLED_AREAS
from ...raster import write_raster
from .. import layout
from ..erosion import erode_boundaries
from .labels import class_frequencies
from .scene import generate_scene

log = logging.getLogger(__name__)

#: fixed timestamp of every zip member (the zip format's epoch), for stable md5s
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _add_member(zf: zipfile.ZipFile, name: str, path: Path) -> None:
    """Store ``path`` as ``name`` with a fixed timestamp and mode. Stored, not deflated:
    the GeoTIFFs are deflate-compressed inside already."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_archives(out_dir, areas, height: int, width: int, seed: int, *, progress: bool = True) -> dict[str, Path]:
    """Write synthetic areas as the four ISPRS archives of ``layout.ARCHIVES``.

    out_dir/<ISPRS archive name> for keys top (``top/…``, ``dsm/…`` and
    ``gts_for_participants/…`` for labelled areas only), gt (colour GT), gt_eroded
    (colour GT with black boundaries, ``erode_boundaries`` radius 3) and ndsm (float32
    nDSM GeoTIFFs); plus out_dir/md5.json {key: md5} and out_dir/class_frequencies.csv
    (one row per area and a pooled row, columns area + class keys). Members are named
    by layout's *_MEMBER templates. Every zip is written to a temporary file and renamed;
    members carry a fixed timestamp, so the md5s depend only on the inputs.
    Returns {key: archive path}.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    areas = sorted(int(a) for a in areas)
    if not areas:
        raise ValueError("write_archives: no areas given")
    paths = {key: out_dir / name for key, name in layout.ARCHIVES.items()}
    rows = []
    pooled = np.zeros(N_CLASSES, np.int64)
    with ExitStack() as stack, tempfile.TemporaryDirectory(dir=out_dir, prefix=".synth-") as tmpdir:
        tmp = Path(tmpdir)
        zips = {}
        for key, path in paths.items():
            part = stack.enter_context(atomic_path(path))
            zips[key] = stack.enter_context(zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED))
        for area in tqdm(areas, desc="synthetic areas", unit="area", disable=not progress):
            scene = generate_scene(area, height, width, seed)
            colour_gt = np.moveaxis(index_to_rgb(scene.labels), -1, 0)
            eroded = np.moveaxis(index_to_rgb(erode_boundaries(scene.labels, 3)), -1, 0)
            members = [
                ("top", layout.TOP_MEMBER, scene.irrg),
                ("top", layout.DSM_MEMBER, scene.dsm),
            ]
            if area in LABELLED_AREAS:
                members.append(("top", layout.GT_PARTICIPANTS_MEMBER, colour_gt))
            members += [
                ("gt", layout.GT_MEMBER, colour_gt),
                ("gt_eroded", layout.GT_ERODED_MEMBER, eroded),
                ("ndsm", layout.NDSM_MEMBER, scene.ndsm),
            ]
            for key, template, data in members:
                name = template.format(area=area)
                f = tmp / f"{key}_{Path(name).name}"
                write_raster(f, data, scene.geo)
                _add_member(zips[key], name, f)
                f.unlink()
            freq = class_frequencies(scene.labels)
            counts = np.bincount(scene.labels.ravel(), minlength=256)[:N_CLASSES]
            pooled += counts
            rows.append([str(area)] + [f"{freq[c.name]:.4f}" for c in CLASSES])
            log.info("area %d: %s", area, ", ".join(f"{c.key} {100 * freq[c.name]:.1f} %" for c in CLASSES))
        for zf in zips.values():
            zf.close()
    total = pooled.sum()
    rows.append(["pooled"] + [f"{pooled[c.index] / total:.4f}" for c in CLASSES])
    log.info("pooled: %s", ", ".join(f"{c.key} {100 * pooled[c.index] / total:.1f} %" for c in CLASSES))
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["area"] + [c.key for c in CLASSES])
    wr.writerows(rows)
    with atomic_path(out_dir / "class_frequencies.csv") as t:
        t.write_text(buf.getvalue())
    write_json(out_dir / "md5.json", {key: _md5(p) for key, p in paths.items()})
    return paths
