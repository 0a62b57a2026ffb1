"""Finished runs' networks scored on many more synthetic areas than the demo's five.

Issue 12's thread check and the seeds' spread compare car F1 cells that rest on ~7,000
scored car pixels in the demo's five validation areas; the paired bootstrap over their 20
blocks cannot resolve a car-F1 difference of a few points. This script asks what those
differences become on more data: the very networks of two or more finished runs (every CNN
and fusion SVM as trained, nothing retrained) are scored

- ``orig``: on the runs' own five validation areas (their prediction rasters: the cells of
  their tables, so the first pair's figures reproduce ``run_diff`` on the same runs);
- ``wide``: on those five and the same town's 17 ISPRS test areas (what
  ``config/eval_wide.yaml`` scores), when ``--test-areas`` is given (with area numbers:
  those test areas only);
- ``towns``: on the labelled areas of other towns of the same generator
  (``data.synthetic.seed`` = each ``--town``; the 16 of the paper's split, or
  ``--town-areas``), which no network saw.

The runs must hold the same validation areas and eroded ground truth (checked). The extra
areas are synthesized by the pipeline's own data stage (``snakemake`` on this project's
Snakefile, working in ``--work``, a run name per town), normalised with the first run's
training statistics (the networks' own), inferred with each run's inference settings and
seed, and fused with each run's SVMs. Every pair of runs then gets the cell table of ``vaiseg.reporting.run_diff`` (a − b,
95 % paired block bootstrap) per set of areas.

    .venv/bin/python benchmarks/more_validation.py --work /tmp/mv \\
        --run t2s0=results/t2 --run t1s0=results/s3t1/seeds/0 \\
        --town 2017 --town 2018 --town 2019 --test-areas --out benchmarks/results/more_validation_zen4.csv

Inference is cached under ``--work`` (a rerun scores again without inferring); ~6 min of
2-core CPU per run for three towns (PB's dense inference is most of it).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from vaiseg.atomic import atomic_path
from vaiseg.classes import CAR
from vaiseg.config import ALL_AREAS, ALL_MODELS, FUSIONS, MODELS, TEST_AREAS, all_areas
from vaiseg.data.normalize import normalize_from_manifest
from vaiseg.errors import ConfigError, DataError
from vaiseg.fusion import fuse_areas
from vaiseg.mc_dropout import infer_areas
from vaiseg.reporting.comparisons import CELL_METRICS, compare, load_block_confusions
from vaiseg.reporting.run_diff import run_config, run_folders, run_labels, same_ground_truth, validation_areas

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 256


def run_seed(pred: Path, config: dict) -> int:
    """The seed of a run's networks: ``seeds/<s>`` of a multi-seed run, else its ``seed``."""
    return int(pred.name) if pred.parent.name == "seeds" else int(config["seed"])


def synthesize(town: int, config: dict, areas, tag: str, work: Path) -> Path:
    """The extraction manifest of ``areas`` of town ``town``, made by the pipeline's data
    stage in the folder ``work`` (its ``resources/<tag>/``)."""
    cfg = copy.deepcopy(config)
    cfg["run_name"] = tag
    cfg["seeds"] = None
    cfg["data"]["synthetic"]["seed"] = town
    # the config needs a training area besides them (synthesized too, not scored)
    cfg["data"]["areas"] = {"train": [a for a in ALL_AREAS if a not in areas][:1], "val": list(areas)}
    path = work / f"{tag}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    target = f"resources/{tag}/extracted/manifest.json"
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
                    "--configfile", str(path), "--cores", "1", "--quiet", "all", "--", target], check=True)
    return work / target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", required=True, help="NAME=results folder (or .../seeds/<s>), two or more")
    ap.add_argument("--town", action="append", type=int, default=[], help="another generator seed; its labelled areas are scored")
    ap.add_argument("--town-areas", nargs="+", type=int, help="the areas scored of each --town (default: the 16 labelled areas)")
    ap.add_argument("--test-areas", nargs="*", type=int,
                    help="also score the runs' own town's test areas (the 'wide' set): all 17, or those given")
    ap.add_argument("--work", required=True, type=Path, help="folder for the areas and the predictions (a cache)")
    ap.add_argument("--out", required=True, type=Path, help="CSV of every pair's cells per set of areas")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.run)
    if len(runs) < 2:
        ap.error("give two or more --run NAME=folder")
    torch.set_num_threads(args.threads)
    folders = {name: run_folders(path) for name, path in runs.items()}
    first_results, _ = next(iter(folders.values()))
    config = run_config(first_results)
    val = validation_areas(first_results)
    for res, _ in folders.values():
        if (areas := validation_areas(res)) != val:
            raise DataError(res / "provenance.json", f"validation areas {areas} differ from {val} of {first_results}")
        same_ground_truth(first_results, res, val)
    own_gt = {a: first_results / "data" / str(a) / "labels_eroded.tif" for a in val}
    stats = first_results / "data" / "stats.json"
    town_areas = tuple(args.town_areas or all_areas({"data": {"split": "paper"}}))
    if config["data"]["source"] != "synthetic":
        ap.error(f"{first_results}: a run on {config['data']['source']} data; other towns are synthetic")

    # the extra areas: key "<town>_<area>" (int() reads it as one number: block indices)
    work = args.work.resolve()
    if work.exists() and not work.is_dir():
        ap.error(f"--work {work}: not a folder")
    sources = {t: (synthesize(t, config, town_areas, f"more_validation_{t}", work), town_areas) for t in args.town}
    if args.test_areas is not None:
        town, test_areas = int(config["data"]["synthetic"]["seed"]), tuple(args.test_areas or TEST_AREAS)
        if town in sources:
            ap.error(f"--town {town} is the runs' own town; its test areas come with --test-areas")
        sources[town] = (synthesize(town, config, test_areas, f"more_validation_{town}", work), test_areas)
    keys = [(t, a) for t, (_, areas) in sources.items() for a in areas]
    data = {f"{t}_{a}": work / "data" / f"{t}_{a}" for t, a in keys}
    ndsm = config["data"]["ndsm"]
    for (t, a), d in zip(keys, data.values()):
        if not (d / "labels_eroded.tif").is_file():
            d.mkdir(parents=True, exist_ok=True)
            normalize_from_manifest(sources[t][0], a, stats, d / "image.tif", d / "labels.tif", d / "labels_eroded.tif",
                                    max_nodata_fraction=config["data"]["max_nodata_fraction"],
                                    opening_size_px=ndsm["opening_size_px"], smooth_sigma_px=ndsm["smooth_sigma_px"])

    def missing(name, model):
        """Extra area -> output folder of ``model`` of run ``name``, where not yet made (the cache)."""
        outs = {k: work / "pred" / name / model / k for k in data}
        return {k: v for k, v in outs.items() if not (v / "labels.tif").is_file()}

    # every run's CNNs and fusions on every extra area
    for name, (res, pred) in folders.items():
        run_cfg = run_config(res)
        infer = run_cfg["infer"]
        for cnn in MODELS:
            t0 = time.time()
            if todo := missing(name, cnn):
                infer_areas(pred / "models" / cnn / "model.pt", {k: data[k] / "image.tif" for k in todo}, todo,
                            T=infer["mc_samples"], seed=run_seed(pred, run_cfg), tile_size=infer["tile_size"],
                            device="cpu", pb_border=infer["pb_border"], shared_trunk=infer["shared_trunk"],
                            pb_fft_block=infer["pb_fft_block"])
            print(f"{name} {cnn}: {len(todo)} areas inferred in {time.time() - t0:.0f} s", flush=True)
        for fusion, members in FUSIONS.items():
            if todo := missing(name, fusion):
                fuse_areas(pred / "fusion" / fusion / "svm.json",
                           {k: [work / "pred" / name / m / k / "probs.tif" for m in members] for k in todo}, todo)

    def own(name):
        return run_labels(folders[name][1], name, ALL_MODELS, val)

    def extra(name, ks):
        return {m: {k: work / "pred" / name / m / k / "labels.tif" for k in ks} for m in ALL_MODELS}

    town_keys = [f"{t}_{a}" for t, a in keys if t in args.town]
    test_keys = [f"{t}_{a}" for t, a in keys if t not in args.town]

    def wide(name):
        o, e = own(name), extra(name, test_keys)
        return {m: {**o[m], **e[m]} for m in ALL_MODELS}

    sets = {"orig": (own, own_gt)}
    if test_keys:
        sets["wide"] = (wide, {**own_gt, **{k: data[k] / "labels_eroded.tif" for k in test_keys}})
    if town_keys:
        sets["towns"] = (lambda n: extra(n, town_keys), {k: data[k] / "labels_eroded.tif" for k in town_keys})

    pairs = list(itertools.combinations(runs, 2))
    specs = [(f"{a}-{b}", metric, f"{a}:{m}", (f"{b}:{m}",)) for a, b in pairs for m in ALL_MODELS for metric in CELL_METRICS]
    frames = []
    for where, (labels, gt) in sets.items():
        conf = {f"{n}:{m}": c for n in runs for m, c in load_block_confusions(labels(n), gt, BLOCK).items()}
        df = compare(conf, samples=2000, seed=0, specs=specs).rename(columns={"claim": "pair"})
        any_matrix = next(iter(conf.values()))
        df.insert(0, "areas", where)
        df["car_pixels"] = int(any_matrix.sum(0)[CAR].sum())
        frames.append(df)
        for pair, g in df.groupby("pair", sort=False):
            beyond = g["difference"].abs() > 2
            resolved = beyond & ((g["ci_low"] > 0) | (g["ci_high"] < 0))
            print(f"{where:6s} {pair:12s} {len(any_matrix)} blocks, {df['car_pixels'].iat[0]} car px: "
                  f"{beyond.sum()} of {len(g)} cells beyond 2 points, {resolved.sum()} resolved", flush=True)
    out = pd.concat(frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataError, ConfigError, subprocess.CalledProcessError) as e:
        print(f"more_validation: {e}", file=sys.stderr)
        sys.exit(2)
