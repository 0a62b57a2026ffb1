"""Which input bands cost the plain FCN its cars? A finished run's FCN retrained on subsets
of its five bands (IR, R, G, DSM, nDSM: 0..4), scored on the run's validation areas.

Each band set trains the run's own FCN (its config's ``train.FCN`` and ``models`` settings,
its seed, its FCN patch index and normalised data; :func:`vaiseg.training.train` as rule
``train_fcn`` calls it, with ``TrainSettings.bands``), infers the validation areas with
the run's MC-dropout settings (``infer.mc_samples``, ``infer.tile_size``, the seed) and
scores them against the eroded ground truth, pooled over the areas (the pipeline's
``metrics/FCN.json`` ``eroded.pooled``). With all five bands and the run's thread count it
retrains the run's FCN (the reference run's cells to the digit on the Zen 4 VM).

    .venv/bin/python benchmarks/fcn_bands.py --run results/s3t1/seeds/0 --threads 2 \\
        --bands 0,1,2,3,4 0,1,2 0,1,2,4 0,1,2,3 --work /tmp/fcn_bands \\
        --out benchmarks/results/fcn_bands_zen4.csv

About 4 min of 2-core CPU per band set on the default config. Models are kept in
``--work`` (a rerun scores again without training). One row per band set:
``bands, seed, threads, overall_acc, avg_f1, <class>_f1, car_precision, car_recall,
train_s`` (empty for a kept model), figures in percent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaiseg.atomic import atomic_path
from vaiseg.classes import KEYS, N_CLASSES
from vaiseg.errors import ConfigError
from vaiseg.metrics import confusion_matrix, read_label_raster, scores
from vaiseg.raster import read_raster
from vaiseg.realism.sim_to_real import predict_crop
from vaiseg.reporting.run_diff import run_config, run_folders, validation_areas
from vaiseg.training import TrainSettings, train

BANDS = ("IR", "R", "G", "DSM", "nDSM")


def parse_bands(text: str) -> tuple[int, ...]:
    """"0,1,2,4" -> (0, 1, 2, 4); ConfigError for anything but distinct, increasing 0..4."""
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ConfigError(f"--bands {text!r}: comma-separated band indices 0..4 ({', '.join(BANDS)})") from None
    if not bands or list(bands) != sorted(set(bands)) or bands[0] < 0 or bands[-1] >= len(BANDS):
        raise ConfigError(f"--bands {text!r}: distinct increasing band indices 0..4 ({', '.join(BANDS)})")
    return bands


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run as this script needs it: its folders, config and seed, and its
    validation areas' normalised images and eroded ground truth (read once)."""

    results: Path
    own: Path
    config: dict
    seed: int
    areas: list  # [(image (5, H, W), eroded GT (H, W), its path)]


def load_run(run) -> Run:
    """The run at ``run`` (a results folder or ``.../seeds/<seed>``) with its validation areas."""
    results, own = run_folders(run)
    config = run_config(results)
    seed = int(own.name) if own != results else int(config["seed"])
    areas = []
    for area in validation_areas(results):
        truth_path = results / "data" / str(area) / "labels_eroded.tif"
        areas.append((read_raster(results / "data" / str(area) / "image.tif")[0], read_label_raster(truth_path),
                      truth_path))
    return Run(results, own, config, seed, areas)


def band_row(run: Run, bands: tuple[int, ...], work: Path) -> dict:
    """Train (or reuse) the run's FCN on ``bands`` under ``work`` and score it."""
    settings = dataclasses.replace(TrainSettings.from_config(run.config, "FCN"), seed=run.seed, bands=bands)
    out = work / f"bands{''.join(map(str, bands))}_seed{run.seed}"
    train_s = None  # a model kept in --work from an earlier call: not timed
    if not (out / "model.pt").is_file():
        t0 = time.time()
        train("FCN", run.own / "patches" / "fcn.npz", run.results / "data", out / "model.pt", out / "history.csv",
              out / "checkpoint", settings, cache_dir=out / "cache",
              stats=str(run.results / "data" / "stats.json"), device="cpu")
        train_s = round(time.time() - t0, 1)
    infer = run.config.get("infer", {})
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for image, truth, truth_path in run.areas:
        pred = predict_crop(out / "model.pt", image, T=int(infer.get("mc_samples", 10)), seed=run.seed,
                            tile_size=int(infer.get("tile_size", 512)), device="cpu")
        cm += confusion_matrix(truth, pred, N_CLASSES, path=truth_path)
    sc = scores(cm)
    pct = {k: None if v is None else 100.0 * float(v) for k, v in sc.items()}
    return {"bands": "+".join(BANDS[b] for b in bands), "seed": run.seed, "threads": torch.get_num_threads(),
            "overall_acc": pct["overall_acc"], "avg_f1": pct["avg_f1"],
            **{f"{k}_f1": pct[f"{k}_f1"] for k in KEYS[:5]},
            "car_precision": pct["car_precision"], "car_recall": pct["car_recall"], "train_s": train_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished run's results folder, or one seed's .../seeds/<seed>")
    ap.add_argument("--bands", nargs="+", required=True, type=parse_bands, help="band sets, e.g. 0,1,2,3,4 0,1,2,4")
    ap.add_argument("--work", required=True, type=Path, help="where the models are trained and kept")
    ap.add_argument("--out", required=True, type=Path, help="the CSV, a row per band set")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the run's, to retrain its FCN exactly)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    rows = [band_row(run, b, args.work) for b in args.bands]
    for r in rows:
        print(f"{r['bands']:<20} OA {r['overall_acc']:.2f}  avg F1 {r['avg_f1']:.2f}  car F1 {r['car_f1']:.2f} "
              f"(P {r['car_precision']:.1f}, R {r['car_recall']:.1f})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.2f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
