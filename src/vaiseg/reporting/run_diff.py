"""Two runs' Tables 1-2 cell by cell, each difference with a paired bootstrap interval.

Issue 12 asks that two runs of one config and seed with different thread counts give
tables within 2 points in every F1 and OA cell, and the seeds' spread, the doubling check
and a user's rerun raise the same question: is a difference between two tables a
difference of the models, or one that the validation areas cannot resolve? A car F1
rests on a few dozen cars in the demo's five validation areas; two networks that are
equally good but miss different cars can differ by points. This module answers it for
two finished runs on the same validation data:

- every F1 and OA cell of Tables 1-2 (:data:`vaiseg.reporting.comparisons.CELL_METRICS`
  for each of the seven methods: 49 cells) is recomputed from the two runs' prediction
  rasters (``predictions/{method}/{area}/labels.tif``) against the eroded ground truth,
  so ``a_value`` / ``b_value`` are the runs' table cells;
- the difference a − b gets the paired block bootstrap of
  :mod:`vaiseg.reporting.comparisons`: the validation areas cut into blocks, both runs
  scored on the same resampled blocks, the percentile interval of the differences. An
  interval that excludes 0 says the blocks show the two runs' networks differ on that
  cell; one that includes 0 says these validation data cannot tell them apart (not that
  they are equal). Blocks of one area are not independent, so the intervals are
  optimistic (the caveat of the comparisons table);
- ``beyond_tolerance``: |difference| > ``tolerance`` (issue 12's 2 points).

A run is a results folder (``results`` or ``results/<run_name>``, holding
``provenance.json``) or one seed's folder of a multi-seed run
(``results[/<run_name>]/seeds/<seed>``). The validation areas are those of the first run's
config as run (``provenance.json``); both runs must hold the same eroded ground truth.
Either side may instead be a reference folder holding a ``block_confusions.csv`` (the
comparisons rule's per-block matrices; ``docs/reference`` keeps the demo's): its matrices
are read, the other run's are computed over the same blocks, and the same data means the
same blocks and the same scored pixels per block and true class.

    .venv/bin/python -m vaiseg.reporting.run_diff results/t2 results/t1 --out results/t2_vs_t1

writes ``<out>.csv`` and ``<out>.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_text
from ..config import ALL_MODELS, split_areas
from ..errors import ConfigError, DataError
from ..metrics import read_label_raster
from .comparisons import (
    BLOCKS_FILE,
    BOOTSTRAP_DEFAULTS,
    CELL_METRICS,
    blocks_mismatch,
    compare,
    load_block_confusions,
    load_blocks,
    read_block_confusions,
)
from .tables import _fmt

#: the output columns, in order
COLUMNS = (
    "method", "metric", "a_value", "b_value", "difference", "ci_low", "ci_high", "confidence",
    "beyond_tolerance", "supports", "n_blocks", "n_boot",
)
#: issue 12's thread check: every F1 and OA cell within 2 points
TOLERANCE = 2.0


def run_folders(path: str | Path) -> tuple[Path, Path]:
    """(results folder holding ``provenance.json``, folder holding ``predictions/``) of a
    run given as its results folder or as one seed's folder ``.../seeds/<seed>``.
    DataError naming the path when neither is one."""
    p = Path(path)
    if (p / "provenance.json").is_file():
        return p, p
    if p.parent.name == "seeds" and (p.parent.parent / "provenance.json").is_file():
        return p.parent.parent, p
    raise DataError(p, "not a finished run: no provenance.json here (a results folder) or two levels up (results/.../seeds/<seed>)")


def run_config(results: Path) -> dict:
    """The config a run ran with (its ``provenance.json``)."""
    path = results / "provenance.json"
    try:
        config = json.loads(path.read_text())["config"]
        split_areas(config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(path, f"cannot read the run's config: {e}") from e
    return config


def validation_areas(results: Path) -> tuple[int, ...]:
    """The validation areas of the config a run ran with."""
    return tuple(int(a) for a in split_areas(run_config(results))[1])


def bootstrap_settings(results: Path) -> dict:
    """``report.bootstrap`` of the run's config (block, samples, confidence: those of its
    comparisons table), the schema's defaults where absent."""
    given = (run_config(results).get("report") or {}).get("bootstrap") or {}
    return {k: given.get(k, v) for k, v in BOOTSTRAP_DEFAULTS.items()}


def same_ground_truth(a: Path, b: Path, areas) -> dict[int, Path]:
    """Area -> run a's eroded GT path, after checking run b holds the same labels."""
    out = {}
    for area in areas:
        pa, pb = (r / "data" / str(area) / "labels_eroded.tif" for r in (a, b))
        for p in (pa, pb):
            if not p.is_file():
                raise DataError(p, "missing: the eroded ground truth of a validation area")
        if not np.array_equal(read_label_raster(pa), read_label_raster(pb)):
            raise DataError(pb, f"eroded ground truth differs from {pa}: the runs were not made on the same data")
        out[area] = pa
    return out


def is_reference(path: str | Path) -> bool:
    """A folder of per-block matrices (``block_confusions.csv``), not a run's results."""
    p = Path(path)
    return (p / BLOCKS_FILE).is_file() and not (p / "provenance.json").is_file()


def run_labels(pred: Path, tag: str, methods, areas) -> dict[str, dict[int, Path]]:
    """Method -> {area: prediction raster} of run ``tag``; DataError naming a missing one."""
    labels = {}
    for m in methods:
        per_area = {area: pred / "predictions" / m / str(area) / "labels.tif" for area in areas}
        for p in per_area.values():
            if not p.is_file():
                raise DataError(p, f"missing: run {tag}'s prediction of {m}")
        labels[m] = per_area
    return labels


def _tagged(tag: str, per_method: dict) -> dict:
    return {f"{tag}:{m}": v for m, v in per_method.items()}


def _reference_blocks(path: Path, methods):
    """(method -> matrices, index, block px, file) read from a reference folder."""
    f = path / BLOCKS_FILE
    conf, index, px = read_block_confusions(f)
    missing = [m for m in methods if m not in conf]
    if missing:
        raise DataError(f, f"no block matrices of {missing}")
    return {m: conf[m] for m in methods}, index, px, f


def _run_blocks(path: Path, tag: str, methods, block: int):
    """(method -> matrices, index, block px, results folder) from a run's rasters over its
    validation areas."""
    res, pred = run_folders(path)
    areas = validation_areas(res)
    eroded = {area: res / "data" / str(area) / "labels_eroded.tif" for area in areas}
    for p in eroded.values():
        if not p.is_file():
            raise DataError(p, "missing: the eroded ground truth of a validation area")
    conf, index = load_blocks(run_labels(pred, tag, methods, areas), eroded, block)
    return conf, index, block, res


def _with_reference(a: Path, b: Path, block: int, methods) -> dict[str, np.ndarray]:
    """Both sides' matrices when one (or both) is a reference folder: the run's blocks of
    the reference's size, checked to be the same blocks of the same data."""
    read = {p: _reference_blocks(p, methods) for p in (a, b) if is_reference(p)}
    _, _, ref_px, ref_file = next(iter(read.values()))
    if block != ref_px:
        raise DataError(ref_file, f"blocks of {ref_px} px, but {block} px asked for (--block)")
    (ca, ia, pa, wa), (cb, ib, pb, wb) = (read[p] if p in read else _run_blocks(p, t, methods, block)
                                          for p, t in ((a, "a"), (b, "b")))
    problem = blocks_mismatch((ca, ia, pa), (cb, ib, pb), methods)
    if problem:
        raise DataError(wb, f"against {wa}: {problem}")
    return {**_tagged("a", ca), **_tagged("b", cb)}


def run_diff(
    a: str | Path,
    b: str | Path,
    *,
    block: int = 256,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    tolerance: float = TOLERANCE,
    methods: tuple[str, ...] = ALL_MODELS,
) -> pd.DataFrame:
    """The cell table (columns :data:`COLUMNS`, one row per method and F1/OA metric) of
    run ``a`` against run ``b`` (paths as :func:`run_folders` takes them)."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if is_reference(a) or is_reference(b):
        conf = _with_reference(Path(a), Path(b), block, methods)
    else:
        (res_a, pred_a), (res_b, pred_b) = run_folders(a), run_folders(b)
        areas, areas_b = validation_areas(res_a), validation_areas(res_b)
        if areas_b != areas:
            raise DataError(res_b / "provenance.json", f"validation areas {areas_b} differ from {areas} of {res_a}")
        eroded = same_ground_truth(res_a, res_b, areas)
        labels = {**_tagged("a", run_labels(pred_a, "a", methods, areas)),
                  **_tagged("b", run_labels(pred_b, "b", methods, areas))}
        conf = load_block_confusions(labels, eroded, block)
    specs = [(m, metric, f"a:{m}", (f"b:{m}",)) for m in methods for metric in CELL_METRICS]
    df = compare(conf, samples=samples, confidence=confidence, seed=seed, specs=specs)
    df = df.rename(columns={"claim": "method"})
    df["beyond_tolerance"] = df["difference"].abs() > tolerance
    return df[list(COLUMNS)]


def summary(df: pd.DataFrame, tolerance: float = TOLERANCE) -> dict:
    """Counts: cells, cells beyond the tolerance, and of those the ones whose interval
    excludes 0 (the blocks show the networks differ) and the ones whose does not."""
    beyond = df[df["beyond_tolerance"]]
    shown = beyond["supports"] != "no difference shown"
    return {
        "cells": int(len(df)),
        "tolerance": float(tolerance),
        "beyond_tolerance": int(len(beyond)),
        "beyond_and_shown": int(shown.sum()),
        "beyond_not_shown": int((~shown).sum()),
        "shown_anywhere": int((df["supports"] != "no difference shown").sum()),
    }


def to_markdown(df: pd.DataFrame, a: str, b: str, *, tolerance: float = TOLERANCE, block: int, samples: int, seed: int) -> str:
    """``<out>.md``: the verdict, how to read it, and the cells (beyond the tolerance in bold)."""
    s = summary(df, tolerance)
    conf = float(df["confidence"].iloc[0]) if len(df) else math.nan
    n_blocks = int(df["n_blocks"].iloc[0]) if len(df) else 0
    lines = [
        f"# Run a (`{a}`) against run b (`{b}`): Tables 1-2 cell by cell",
        "",
        f"**{s['beyond_tolerance']} of {s['cells']} F1/OA cells differ by more than {tolerance:g} points**; "
        f"of those, the validation blocks show a difference for {s['beyond_and_shown']} "
        f"(their {100 * conf:g} % interval excludes 0) and cannot tell the runs apart for {s['beyond_not_shown']}. "
        f"Over all cells, {s['shown_anywhere']} intervals exclude 0.",
        "",
        f"Method: a − b in percentage points on the validation areas (eroded ground truth), each "
        f"interval the paired percentile bootstrap of {samples} resamples (seed {seed}) of the "
        f"{n_blocks} blocks of {block} px (vaiseg.reporting.comparisons). An interval that includes 0 "
        "does not show the runs are equal, only that these blocks cannot tell them apart; blocks of "
        "one area share its streets and lighting, so the intervals are optimistic (too narrow).",
        "",
        "| method | metric | a | b | a − b | interval | supports |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for _, r in df.iterrows():
        d = _fmt(r["difference"])
        if r["beyond_tolerance"]:
            d = f"**{d}**"
        lines.append(
            f"| {r['method']} | {r['metric']} | {_fmt(r['a_value'])} | {_fmt(r['b_value'])} | {d} | "
            f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {r['supports']} |"
        )
    return "\n".join(lines) + "\n"


def write_run_diff(df: pd.DataFrame, out: str | Path, markdown: str) -> tuple[Path, Path]:
    """``<out>.csv`` and ``<out>.md``, each written atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv, md = out.with_name(out.name + ".csv"), out.with_name(out.name + ".md")
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False, na_rep="NaN")
    write_text(md, markdown)
    return csv, md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vaiseg.reporting.run_diff",
        description="Two runs' Tables 1-2 cell by cell, each difference with a paired block-bootstrap interval.",
    )
    ap.add_argument("a", help="run a: results[/<run_name>] or results[/<run_name>]/seeds/<seed>, "
                    "or a folder with block_confusions.csv (docs/reference)")
    ap.add_argument("b", help="run b, the same")
    ap.add_argument("--out", help="write <out>.csv and <out>.md (default: print the Markdown only)")
    ap.add_argument("--block", type=int, help="block size in px (default: run a's report.bootstrap.block, 256)")
    ap.add_argument("--samples", type=int, help="bootstrap resamples (default: run a's report.bootstrap.samples, 2000)")
    ap.add_argument("--confidence", type=float, help="interval level (default: run a's report.bootstrap.confidence, 0.95)")
    ap.add_argument("--seed", type=int, default=0, help="resampling seed (default 0)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help="points a cell may move (default 2)")
    args = ap.parse_args(argv)
    try:
        given = {k: getattr(args, k) for k in BOOTSTRAP_DEFAULTS}
        run = next((p for p in (args.a, args.b) if not is_reference(p)), None)  # whose report.bootstrap
        defaults = bootstrap_settings(run_folders(run)[0]) if run is not None else dict(BOOTSTRAP_DEFAULTS)
        bs = {**defaults, **{k: v for k, v in given.items() if v is not None}}
        df = run_diff(args.a, args.b, **bs, seed=args.seed, tolerance=args.tolerance)
    except (DataError, ConfigError) as e:
        print(f"run_diff: {e}", file=sys.stderr)
        return 2
    md = to_markdown(df, args.a, args.b, tolerance=args.tolerance, block=bs["block"], samples=bs["samples"], seed=args.seed)
    if args.out:
        write_run_diff(df, args.out, md)
    print(md, end="")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through the CLI in the tests
    sys.exit(main())
