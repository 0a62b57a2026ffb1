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
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..errors import DataError
from ..raster import read_raster, write_label_raster
from .reference import load_isprs_areas, load_mmseg_crop
from .report import IN_DOMAIN, realism_report
from .sim_to_real import CAR_MIN_PIXELS, car_objects, crop_scores, predict_crop, sim_to_real, standardise_real

log = logging.getLogger(__name__)


def car_columns(seeds) -> list[str]:
    """The columns of ``real_cars.csv`` (:func:`car_table`'s rows) for ``seeds``."""
    return (["reference", "car", "row", "col", "pixels", "brightness", "brightness_std", "surroundings", "contrast"]
            + [f"recall_seed{int(s)}" for s in seeds] + ["recall", "found"])


HEADLINE = ("sim_to_real_oa", "sim_to_real_avg_f1", "sim_to_real_car_f1")
MISSING_REFERENCE = (
    "the realism target needs real ISPRS pixels: set realism.reference.crop.irrg / .labels to an "
    "IR-R-G crop and its eroded GT in mmsegmentation's indices (0 ignored, 1-6 the classes), or "
    "realism.reference.isprs to your ISPRS archives and areas"
)


def seed_summary(per_seed: Sequence[dict], seeds: Sequence[int]) -> dict:
    """Headline of several seeds' :func:`crop_scores`: each ``HEADLINE`` key's mean over
    the seeds (a seed whose value is None, e.g. a car F1 without cars, is left out; None
    when all are), ``<key>_std`` the sample std (ddof 1; only with two or more values),
    ``sim_to_real_seeds`` [{seed, <key>: value}] per seed."""
    out: dict = {}
    for k in HEADLINE:
        v = np.array([r[k] for r in per_seed if r.get(k) is not None], dtype=np.float64)
        out[k] = float(v.mean()) if v.size else None
        if v.size >= 2:
            out[f"{k}_std"] = float(v.std(ddof=1))
    out["sim_to_real_seeds"] = [{"seed": int(sd), **{k: r.get(k) for k in HEADLINE}} for sd, r in zip(seeds, per_seed)]
    return out


def score_areas(models, seeds, samples, stats, *, T: int = 10, tile_size: int = 512, device: str = "auto",
                out_paths=None, path=None) -> tuple[list[dict], list[list[np.ndarray]]]:
    """Every model of ``models`` (one per seed of ``seeds``) on ``samples``, their IR-R-G
    standardised once with ``stats``: (per seed, :func:`crop_scores` pooled over the
    samples; per seed, each sample's prediction). ``out_paths``: a label raster path per
    sample, written with the first seed's predictions; ``path``: what a bad-label
    DataError names."""
    images = [standardise_real(s.irrg, stats) for s in samples]
    truth = np.concatenate([s.labels.ravel() for s in samples])
    per_seed, preds = [], []
    for i, (m, sd) in enumerate(zip(models, seeds)):
        p = [predict_crop(m, image, T=T, seed=sd, tile_size=tile_size, device=device) for image in images]
        if i == 0 and out_paths is not None:
            for out, pred in zip(out_paths, p):
                write_label_raster(out, pred, None)
        preds.append(p)
        per_seed.append(crop_scores(truth, np.concatenate([x.ravel() for x in p]), path=path))
    return per_seed, preds


def car_table(samples, preds, seeds) -> tuple[list[dict], dict]:
    """The cars of every sample (:func:`car_objects`) and their summary.

    ``samples``: e.g. the reference's; ``preds[i][j]``: sample ``j``'s prediction by the
    model of ``seeds[i]``. Returns (rows, summary): rows are car_objects' dicts with
    ``reference`` (the sample's name) first; summary has ``sim_to_real_cars_n`` (the cars
    of at least :data:`CAR_MIN_PIXELS` scored pixels; the rows list every car) and
    ``sim_to_real_cars_found`` (the share of those found, in percent, mean over the
    seeds; None without any).
    """
    rows = []
    for j, sample in enumerate(samples):
        cars = car_objects(sample.labels, sample.irrg, [p[j] for p in preds], seeds)
        rows += [{"reference": sample.name, **c} for c in cars]
    found = [100.0 * float(r["found"]) for r in rows if r["pixels"] >= CAR_MIN_PIXELS]
    return rows, {"sim_to_real_cars_n": len(found), "sim_to_real_cars_found": float(np.mean(found)) if found else None}


def in_domain_summary(per_seed, preds, samples, seeds, areas) -> dict:
    """The sim-to-real FCNs on the run's own validation areas: ``per_seed`` their
    :func:`crop_scores` (pooled over ``samples``), ``preds`` their predictions
    (:func:`score_areas`). :func:`seed_summary`'s keys with ``sim_to_real`` replaced by
    ``sim_to_real_in_domain`` (``_oa``, ``_avg_f1``, ``_car_f1``, their ``_std``, ``_seeds``),
    ``sim_to_real_in_domain_cars_found`` (:func:`car_table`) and ``..._areas``."""
    out = {k.replace("sim_to_real", IN_DOMAIN, 1): v for k, v in seed_summary(per_seed, seeds).items()}
    _, cars = car_table(samples, preds, seeds)
    out[f"{IN_DOMAIN}_cars_found"] = cars["sim_to_real_cars_found"]
    out[f"{IN_DOMAIN}_areas"] = [int(a) for a in areas]
    return out


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
    seeds: Sequence[int] | None = None,
    tile_size: int = 512,
    device: str = "auto",
    validation_areas: Sequence[int] = (),
) -> dict:
    """Write summary.json, realism.csv, realism.md, realism.png and the real prediction(s)
    into ``out_dir``; returns the summary.

    ``manifest``: the run's extracted archives (synthetic areas ``synthetic_areas``);
    ``model``/``stats``: the IR-R-G FCN and the synthetic training statistics. Reference:
    ``crop`` ({irrg, labels} paths; prediction -> ``real_crop_pred.tif``) or
    ``reference_manifest`` + ``reference_areas`` (real ISPRS areas; predictions ->
    ``real_area{N}_pred.tif``, scores pooled over the areas). ``real_cars.csv``: each car of
    the reference, how bright it is against its surroundings and how much of it each
    seed's model calls car (:func:`car_table`). ``validation_areas``: the run's validation
    areas (in ``manifest``), on which the same FCNs are scored too
    (:func:`in_domain_summary`): what they reach on the scenes they were made for, so the
    sim-to-real score reads as that minus the domain gap.

    Seeds: ``model`` is one path, or one path per seed of ``seeds`` (default ``[seed]``;
    each model's MC-dropout masks use its seed). The headline ``sim_to_real_*`` numbers are
    the mean over the seeds, ``sim_to_real_*_std`` their sample standard deviation (two
    or more seeds; one FCN's sim-to-real score moves by several points from seed to seed,
    README), ``sim_to_real_seeds`` each seed's; the prediction rasters and the detailed
    ``sim_to_real`` block are the first seed's.
    """
    out_dir = Path(out_dir)
    models = [model] if isinstance(model, (str, Path)) else list(model)
    seeds = [int(seed)] if seeds is None else [int(s) for s in seeds]
    if not models or len(models) != len(seeds):
        raise ValueError(f"one model per seed: {len(models)} model(s) for seeds {seeds}")
    if reference_manifest is None:
        if not crop:
            raise DataError(None, MISSING_REFERENCE)
        for key in ("irrg", "labels"):
            if not Path(crop[key]).is_file():
                raise DataError(crop[key], f"not found: {MISSING_REFERENCE}")
    synthetic = load_isprs_areas(manifest, synthetic_areas, prefix="synthetic area")
    real = (
        [load_mmseg_crop(crop["irrg"], crop["labels"], name="real crop")]
        if reference_manifest is None
        else load_isprs_areas(reference_manifest, reference_areas, prefix="real area")
    )
    if reference_manifest is None:
        per_seed, preds = [], []
        with tempfile.TemporaryDirectory() as scratch:
            for i, (m, sd) in enumerate(zip(models, seeds)):
                out = (out_dir if i == 0 else Path(scratch)) / "real_crop_pred.tif"  # the first seed's raster
                per_seed.append(sim_to_real(m, stats, crop["irrg"], crop["labels"], out, T=T, seed=sd,
                                            tile_size=tile_size, device=device))
                preds.append([read_raster(out)[0][0]])
    else:
        per_seed, preds = score_areas(models, seeds, real, stats, T=T, tile_size=tile_size, device=device,
                                      out_paths=[out_dir / f"real_area{int(a)}_pred.tif" for a in reference_areas],
                                      path=reference_manifest)
    s2r = per_seed[0]
    extra = seed_summary(per_seed, seeds)
    extra["sim_to_real"] = {k: v for k, v in s2r.items() if k not in HEADLINE}
    cars, car_summary = car_table(real, preds, seeds)
    extra.update(car_summary)
    extra["sim_to_real_cars"] = cars
    if validation_areas:
        # the same FCNs on the run's own validation areas (IR-R-G): what they reach in-domain
        val = load_isprs_areas(manifest, validation_areas, prefix="validation area")
        own, own_preds = score_areas(models, seeds, val, stats, T=T, tile_size=tile_size, device=device, path=manifest)
        extra.update(in_domain_summary(own, own_preds, val, seeds, validation_areas))
    with atomic_path(out_dir / "real_cars.csv") as tmp:
        pd.DataFrame(cars, columns=car_columns(seeds)).to_csv(tmp, index=False, float_format="%.4g")
    summary = realism_report(synthetic, real, out_dir, extra_summary=extra)
    log.info("realism: sim-to-real OA %.1f %%, avg F1 %s, car F1 %s; boundary fraction synthetic %s / real %s "
             "(real at the synthetic class mix %s)",
             summary["sim_to_real_oa"], summary["sim_to_real_avg_f1"], summary["sim_to_real_car_f1"],
             summary.get("boundary_fraction_synthetic"), summary.get("boundary_fraction_real"),
             summary.get("boundary_fraction_real_at_synthetic_mix"))
    return summary
