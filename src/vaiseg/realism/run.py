"""The ``realism`` target in one call: yardstick + sim-to-real on the run's own data.

:func:`realism_target` measures the run's synthetic areas (read from the extracted
ISPRS-layout archives, the same files the pipeline normalises) against a real reference
and scores the IR-R-G FCN the workflow trained on the synthetic training areas
(:mod:`vaiseg.realism.sim_to_real`) on the real pixels. The reference is either an
mmseg-style crop (the default: the Vaihingen crop kept beside the project in
``../shared/real_samples``, which a user's clone does not have) or areas of real ISPRS
archives (``realism.reference.isprs``); a missing reference is one DataError saying
what to configure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..raster import write_label_raster
from .reference import load_isprs_areas, load_mmseg_crop
from .report import realism_report
from .sim_to_real import crop_scores, predict_crop, sim_to_real, standardise_real

log = logging.getLogger(__name__)

HEADLINE = ("sim_to_real_oa", "sim_to_real_avg_f1", "sim_to_real_car_f1")
MISSING_REFERENCE = (
    "the realism target needs real ISPRS pixels: set realism.reference.crop.irrg / .labels to an "
    "IR-R-G crop and its eroded GT in mmsegmentation's indices (0 ignored, 1-6 the classes), or "
    "realism.reference.isprs to your ISPRS archives and areas"
)


def realism_target(
    *,
    manifest,
    synthetic_areas,
    model,
    stats,
    out_dir,
    crop: dict | None = None,
    reference_manifest=None,
    reference_areas=(),
    T: int = 10,
    seed: int = 0,
    tile_size: int = 512,
    device: str = "auto",
) -> dict:
    """Write summary.json, realism.csv, realism.md, realism.png and the real prediction(s)
    into ``out_dir``; returns the summary.

    ``manifest``: the run's extracted archives (synthetic areas ``synthetic_areas``);
    ``model``/``stats``: the IR-R-G FCN and the synthetic training statistics. Reference:
    ``crop`` ({irrg, labels} paths; prediction -> ``real_crop_pred.tif``) or
    ``reference_manifest`` + ``reference_areas`` (real ISPRS areas; predictions ->
    ``real_area{N}_pred.tif``, scores pooled over the areas).
    """
    out_dir = Path(out_dir)
    if reference_manifest is None:
        if not crop:
            raise DataError(None, MISSING_REFERENCE)
        for key in ("irrg", "labels"):
            if not Path(crop[key]).is_file():
                raise DataError(crop[key], f"not found: {MISSING_REFERENCE}")
    synthetic = load_isprs_areas(manifest, synthetic_areas, prefix="synthetic area")
    if reference_manifest is None:
        real = [load_mmseg_crop(crop["irrg"], crop["labels"], name="real crop")]
        s2r = sim_to_real(model, stats, crop["irrg"], crop["labels"], out_dir / "real_crop_pred.tif", T=T, seed=seed,
                          tile_size=tile_size, device=device)
    else:
        real = load_isprs_areas(reference_manifest, reference_areas, prefix="real area")
        truths, preds = [], []
        for area, s in zip(reference_areas, real):
            pred = predict_crop(model, standardise_real(s.irrg, stats), T=T, seed=seed, tile_size=tile_size, device=device)
            write_label_raster(out_dir / f"real_area{int(area)}_pred.tif", pred, None)
            truths.append(s.labels.ravel())
            preds.append(pred.ravel())
        s2r = crop_scores(np.concatenate(truths), np.concatenate(preds), path=reference_manifest)
    extra = {k: s2r[k] for k in HEADLINE}
    extra["sim_to_real"] = {k: v for k, v in s2r.items() if k not in HEADLINE}
    summary = realism_report(synthetic, real, out_dir, extra_summary=extra)
    log.info("realism: sim-to-real OA %.1f %%, avg F1 %s, car F1 %s; boundary fraction synthetic %s / real %s",
             summary["sim_to_real_oa"], summary["sim_to_real_avg_f1"], summary["sim_to_real_car_f1"],
             summary.get("boundary_fraction_synthetic"), summary.get("boundary_fraction_real"))
    return summary
