"""The paper diff (§5): every cell of Tables 1-2, ours beside the paper's, and the
paper's qualitative findings checked on our numbers.

The paper's numbers come from ``paper_results.csv`` in ``report.paper_dir`` (default:
the project's shipped ``paper/`` folder). Its printed Avg F1 is *recomputed* from the
five class F1 scores (the mean over imp_surf, building, low_veg, tree, car): the paper
prints 86.36 for the FCN, which is the PB's value, while the FCN's five F1s average
81.28. Every row whose printed value differs from the recomputed one by more than
rounding (0.01) is listed in the diff's notes; the ``paper`` column holds the
recomputed value and ``paper_printed`` the printed one.

Qualitative findings, answered yes/no from *our* numbers only (nothing is tuned), each
with an explicit criterion applied strictly (the thresholds are the module constants
below; the markdown prints the criterion beside every verdict):

- MFB raises car F1 (§4.2, Table 1): FCN-MFB car F1 - FCN car F1 >=
  :data:`MFB_MIN_CAR_F1_GAIN` points;
- fusion raises overall accuracy (§4.4, Table 2), one check per fusion: fusion OA -
  best member OA > :data:`FUSION_MIN_OA_MARGIN` points (the margin is printed);
- accuracy falls as the uncertainty threshold rises (§5, Fig. 7), per CNN: over the
  thresholds that keep pixels, Spearman rho(threshold, OA) <=
  :data:`ACC_FALLS_MAX_SPEARMAN` *and* OA at the lowest populated threshold is at
  least :data:`ACC_FALLS_MIN_DROP` points above OA at threshold 1 (all pixels kept);
- uncertainty is higher on errors (§5), per CNN: mean normalised uncertainty of the
  misclassified pixels >= :data:`ERROR_UNCERTAINTY_MIN_RATIO` x that of the correct
  pixels (from ``uncertainty_summary.json``, when given).

A check whose inputs are missing is "n/a". The Fig. 6 section shows both readings of
the paper's coverage numbers (``reading`` in ``uncertainty_coverage.csv``, see
:mod:`vaiseg.reporting.uncertainty`) beside the paper's.

Several seeds: when our table CSVs are the mean ± std tables of
:func:`vaiseg.reporting.tables.write_seed_tables` (columns ``<col>_std``), ``ours`` is the
mean over the seeds and every cell also gets ``ours_std`` and ``within_2std`` (the
paper's value lies within mean ± 2 std: ``|ours - paper| <= 2 ours_std``; NA when the
std is undefined, one seed). The qualitative checks apply to the means.

Reference run: ``reference_dir`` (``report.reference_dir``, the default run's committed
``docs/reference/table{1,2}.csv``) adds ``reference`` and ``ours_minus_reference`` to
every cell and a section with the largest differences and a verdict: reproduced when
every F1/OA cell (the class F1s, ``avg_f1``, ``overall_acc``) is within
:data:`REFERENCE_TOLERANCE` points of the reference. Without a reference the columns
are empty and the section says so (no error).

Several seeds against the reference: the reference is one draw and the seeds measure
how far one draw strays from their mean, so every cell also gets
``reference_within_2std`` (the reference's value lies within our mean ± 2 std, as
``within_2std`` says of the paper's). A cell beyond the tolerance whose
reference lies within mean ± 2 std is a difference the seeds' own spread explains; the
verdict counts those apart, as it counts the unresolved cells of one seed's run below
("consistent with the reference" when every cell beyond the tolerance is one of them).

Intervals against the reference: when the reference folder also holds the reference
run's per-block confusion matrices (:data:`REFERENCE_BLOCKS`, written by the comparisons
rule) and this run is a single-seed run whose own ``block_confusions.csv`` is given,
every F1/OA cell gets the paired block-bootstrap interval of ours − reference
(``reference_ci_low``, ``reference_ci_high``; :mod:`vaiseg.reporting.comparisons`, the
resampling seed :data:`REFERENCE_BOOTSTRAP_SEED`, so the intervals are those of
``python -m vaiseg.reporting.run_diff`` with this run as a and the reference as b). A
cell beyond the tolerance whose interval includes 0 differs by less than the validation
blocks can resolve; the verdict counts those apart ("consistent with the reference"
when every cell beyond the tolerance is one of them). The intervals need the same
validation blocks and eroded ground truth: when the reference's blocks or their
per-class pixel counts differ, or its matrices do not give its tables' cells, the
columns stay empty and the section says why.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_text
from ..classes import KEYS, SCORED
from ..config import FUSIONS
from ..errors import DataError
from .comparisons import BLOCKS_FILE, BOOTSTRAP_DEFAULTS, CELL_METRICS, blocks_mismatch, compare, point_estimate, read_block_confusions
from .tables import STD_SUFFIX, TABLE_COLUMNS, VALUE_COLUMNS

log = logging.getLogger(__name__)

PAPER_RESULTS = "paper_results.csv"
PAPER_COVERAGE = "uncertainty_coverage.csv"
#: printed vs recomputed Avg F1 differences above this are reported as typos
TYPO_TOLERANCE = 0.011
F1_COLUMNS = [f"{KEYS[c]}_f1" for c in SCORED]
#: the cells the reference verdict is about: class F1s, Avg F1, overall accuracy
F1_OA_COLUMNS = F1_COLUMNS + ["avg_f1", "overall_acc"]
#: columns of the cell diff (:func:`diff_cells`); ``ours_std`` and ``within_2std``
#: come between ``delta`` and ``reference`` when our tables have std columns
CELL_COLUMNS = ["table", "method", "column", "ours", "paper", "paper_printed", "delta"]
SEED_COLUMNS = ["ours_std", "within_2std"]
REFERENCE_COLUMNS = ["reference", "ours_minus_reference", "reference_ci_low", "reference_ci_high"]
#: last column of the cell diff when our tables have std columns: the reference's value
#: lies within our mean ± :data:`WITHIN_STD_FACTOR` std
REFERENCE_SEED_COLUMN = "reference_within_2std"
#: the reference tables' file names in ``reference_dir``
REFERENCE_FILES = ("table1.csv", "table2.csv")
#: the reference run's per-block confusion matrices in ``reference_dir`` (optional)
REFERENCE_BLOCKS = BLOCKS_FILE
#: resampling seed of the intervals against the reference (run_diff's default)
REFERENCE_BOOTSTRAP_SEED = 0
#: |point estimate from the blocks - table cell| allowed (the tables hold 2 decimals)
_CELL_SLACK = 0.0051
#: cells listed in the reference section (largest |ours - reference| first)
REFERENCE_TOP = 5

# ---- criteria of the qualitative checks (applied strictly; printed in paper_diff.md) --

MFB_MIN_CAR_F1_GAIN = 1.0
"""MFB check: FCN-MFB's car F1 must exceed the FCN's by at least this many points
(percent). A gain under one point is within the run-to-run spread of a rare class."""

FUSION_MIN_OA_MARGIN = 0.0
"""Fusion check: a fusion's OA minus the best OA among its member CNNs must be strictly
greater than this (points). Table 2's own margins are 0.19-0.38 points, so any
positive margin is what the paper claims; the margin is printed beside the verdict."""

ACC_FALLS_MAX_SPEARMAN = -0.5
"""Accuracy-falls check: the Spearman rank correlation of threshold and OA over the
thresholds that keep pixels must be at most this (a clear monotone decrease, not a
flat or noisy curve; Fig. 7's curves are close to -1)."""

ACC_FALLS_MIN_DROP = 1.0
"""Accuracy-falls check, second condition: OA at the lowest threshold that keeps pixels
must be at least this many points above OA at threshold 1 (all pixels kept)."""

ERROR_UNCERTAINTY_MIN_RATIO = 1.5
"""Uncertainty-on-errors check: the mean normalised uncertainty of misclassified pixels
must be at least this factor times that of correctly classified pixels. A ratio is
unaffected by the scale of the min-max normalisation; 1.5 asks for errors that are
clearly, not marginally, more uncertain."""

REFERENCE_TOLERANCE = 2.0
"""Reference verdict: the run reproduces the committed reference run when every F1/OA
cell differs from the reference by at most this many points (percent). A fixed
tolerance, not derived from a measured run-to-run spread (that is what ``seeds`` and
the ``_std`` columns measure); the cells beyond it are counted and the largest listed."""

WITHIN_STD_FACTOR = 2.0
"""``within_2std``: the paper's value is within mean ± this many sample stds."""


def paper_file(paper_dir: str | Path, name: str) -> Path:
    """Path of one of the paper's CSV files; DataError naming it when it is missing."""
    paper_dir = Path(paper_dir)
    if not paper_dir.is_dir():
        raise DataError(paper_dir, "report.paper_dir does not exist (set report.paper_dir to the folder with paper_results.csv)")
    path = paper_dir / name
    if not path.is_file():
        raise DataError(path, f"missing {name} in report.paper_dir")
    return path


def read_paper_results(path: str | Path) -> pd.DataFrame:
    """The paper's Tables 1-2 as a frame: ``table`` (1|2), the contract columns, and
    ``avg_f1_printed`` (as printed) with ``avg_f1`` recomputed from the five F1s
    (rounded to 2 decimals)."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as e:
        raise DataError(path, f"cannot read CSV ({e})") from e
    missing = [c for c in ["table"] + TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing columns {missing}")
    df = df[["table"] + TABLE_COLUMNS].copy()
    df["avg_f1_printed"] = df["avg_f1"]
    df["avg_f1"] = df[F1_COLUMNS].mean(axis=1).round(2)
    return df


def _read_table(path: str | Path) -> pd.DataFrame:
    """One of our table CSVs indexed by method: the contract's columns, or (several
    seeds) each value column followed by ``<col>_std`` and a final ``n_seeds``."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as e:
        raise DataError(path, f"cannot read table CSV ({e})") from e
    seeded = ["method"] + [c for v in VALUE_COLUMNS for c in (v, v + STD_SUFFIX)] + ["n_seeds"]
    if list(df.columns) not in (TABLE_COLUMNS, seeded):
        raise DataError(path, f"columns {list(df.columns)} differ from the contract's {TABLE_COLUMNS} "
                              f"(or its mean ± std form with <col>{STD_SUFFIX} after every <col> and n_seeds)")
    return df.set_index("method")


def has_std(ours: pd.DataFrame) -> bool:
    """Whether our tables are the several-seed (mean ± std) form."""
    return all(c + STD_SUFFIX in ours.columns for c in VALUE_COLUMNS)


def read_reference(reference_dir: str | Path | None) -> tuple[pd.DataFrame | None, str]:
    """The reference run's Tables 1-2 (indexed by method; the mean columns when they are
    the mean ± std form) and one line saying what was read.

    None and a note when ``reference_dir`` is None or holds none of
    :data:`REFERENCE_FILES`; a file that is present but unreadable is a DataError.
    """
    if reference_dir is None:
        return None, "No reference run to compare with (`report.reference_dir` not set): the reference columns are empty."
    d = Path(reference_dir)
    present = [d / f for f in REFERENCE_FILES if (d / f).is_file()]
    absent = [f for f in REFERENCE_FILES if not (d / f).is_file()]
    if not present:
        return None, (f"No reference tables found in `{_shown(d)}` ({', '.join(REFERENCE_FILES)} absent): "
                      "the reference columns are empty.")
    ref = pd.concat([_read_table(f)[VALUE_COLUMNS] for f in present])
    note = f"Reference: {', '.join(f'`{_shown(f)}`' for f in present)}."
    if absent:
        note += f" Absent: {', '.join(absent)} (those cells have no reference)."
    return ref, note


def reference_intervals(
    ours_blocks: str | Path | None,
    reference_dir: str | Path | None,
    ours: pd.DataFrame,
    reference: pd.DataFrame | None,
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = REFERENCE_BOOTSTRAP_SEED,
) -> tuple[pd.DataFrame | None, str]:
    """The paired block-bootstrap interval of ours − reference for every F1/OA cell that
    both sides have (frame indexed by ``(method, column)`` with ``ci_low``, ``ci_high``),
    and one sentence on what was compared; None and the reason when there are no
    intervals (no reference or no reference blocks, several seeds, no blocks of ours,
    other blocks or other ground truth, block matrices that do not give the tables'
    cells). A malformed ``block_confusions.csv`` is a DataError naming it."""
    if reference is None:
        return None, ""
    if has_std(ours):
        return None, ("No block intervals: the tables are means over several seeds, judged by the seeds' "
                      f"spread instead (`{REFERENCE_SEED_COLUMN}`); compare one seed's run with the reference by "
                      "`python -m vaiseg.reporting.run_diff`.")
    ref_path = Path(reference_dir) / REFERENCE_BLOCKS
    if not ref_path.is_file():
        return None, f"No intervals: the reference has no `{REFERENCE_BLOCKS}` (per-block confusion matrices)."
    if ours_blocks is None:
        return None, "No intervals: this run's per-block confusion matrices were not given."
    ref = read_block_confusions(ref_path)
    our = read_block_confusions(ours_blocks)
    (ref_conf, _, _), (our_conf, our_index, our_block) = ref, our
    methods = [m for m in ours.index if m in reference.index and m in our_conf and m in ref_conf]
    problem = blocks_mismatch(ref, our, methods)
    if problem:
        return None, f"No intervals: this run against the reference: {problem}."
    for side, conf, table in (("this run's", our_conf, ours), ("the reference's", ref_conf, reference)):
        for m in methods:
            for col in CELL_METRICS:
                v, cell = point_estimate(conf[m].sum(0), col), float(table.loc[m, col])
                if np.isfinite(v) != np.isfinite(cell) or (np.isfinite(v) and abs(v - cell) > _CELL_SLACK):
                    return None, (f"No intervals: {side} block matrices give {m} {col} = {v:.2f}, "
                                  f"its table {cell:.2f}: the files are not of one run.")
    conf = {**{f"ours:{m}": our_conf[m] for m in methods}, **{f"reference:{m}": ref_conf[m] for m in methods}}
    specs = [(m, col, f"ours:{m}", (f"reference:{m}",)) for m in methods for col in CELL_METRICS]
    df = compare(conf, samples=samples, confidence=confidence, seed=seed, specs=specs)
    out = df.rename(columns={"claim": "method", "metric": "column"}).set_index(["method", "column"])[["ci_low", "ci_high"]]
    note = (f"Intervals: paired percentile bootstrap ({samples} resamples, seed {seed}, {100 * confidence:g} %) "
            f"over the {len(our_index)} validation blocks of {our_block} px, this run's and the reference's "
            f"per-block confusion matrices (`{_shown(ours_blocks)}`, `{_shown(ref_path)}`).")
    return out, note


def diff_cells(
    ours: pd.DataFrame,
    paper: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    intervals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long frame, one row per paper table cell: ``table, method, column, ours, paper,
    paper_printed, delta`` (delta = ours - paper; NaN where we have no value), then
    ``ours_std, within_2std`` when ``ours`` has std columns (several seeds), then
    ``reference, ours_minus_reference`` (NaN without ``reference``) and
    ``reference_ci_low, reference_ci_high`` (from ``intervals``, :func:`reference_intervals`;
    NaN without), then ``reference_within_2std`` when ``ours`` has std columns.

    ``ours``: our table rows indexed by method (contract columns, optionally with
    ``<col>_std``); ``paper``: from :func:`read_paper_results`; ``reference``: the
    reference run's rows indexed by method (:func:`read_reference`) or None.
    7 methods x 12 value columns = 84 cells. ``within_2std`` is a nullable boolean:
    ``|ours - paper| <= 2 ours_std``, NA where ours or its std is undefined;
    ``reference_within_2std`` likewise with the reference's value in place of the paper's
    (NA without a reference value).
    """
    seeded = has_std(ours)
    rows = []
    for _, p in paper.iterrows():
        method = p["method"]
        for col in VALUE_COLUMNS:
            o = float(ours.loc[method, col]) if method in ours.index else math.nan
            pv = float(p[col])
            printed = float(p["avg_f1_printed"]) if col == "avg_f1" else pv
            row = dict(table=int(p["table"]), method=method, column=col, ours=o, paper=pv,
                       paper_printed=printed, delta=round(o - pv, 2) if np.isfinite(o) else math.nan)
            r = float(reference.loc[method, col]) if reference is not None and method in reference.index else math.nan
            row.update(reference=r, ours_minus_reference=round(o - r, 2) if np.isfinite(o) and np.isfinite(r) else math.nan)
            if seeded:  # the paper's value and the reference's against our mean ± 2 std
                sd = float(ours.loc[method, col + STD_SUFFIX]) if method in ours.index else math.nan
                row.update({"ours_std": sd, "within_2std": _within_std(o, pv, sd),
                            REFERENCE_SEED_COLUMN: _within_std(o, r, sd)})
            ci = intervals.loc[(method, col)] if intervals is not None and (method, col) in intervals.index else None
            row.update(reference_ci_low=float(ci["ci_low"]) if ci is not None else math.nan,
                       reference_ci_high=float(ci["ci_high"]) if ci is not None else math.nan)
            rows.append(row)
    cols = CELL_COLUMNS + (SEED_COLUMNS if seeded else []) + REFERENCE_COLUMNS + ([REFERENCE_SEED_COLUMN] if seeded else [])
    df = pd.DataFrame(rows, columns=cols)
    if seeded:
        for c in ("within_2std", REFERENCE_SEED_COLUMN):
            df[c] = df[c].astype("boolean")
    return df


def _within_std(mean: float, value: float, sd: float):
    """Whether ``value`` lies within ``mean`` ± :data:`WITHIN_STD_FACTOR` ``sd`` (NA where
    any of them is undefined); float slack for the two-decimal values."""
    if not (np.isfinite(mean) and np.isfinite(value) and np.isfinite(sd)):
        return pd.NA
    return bool(abs(mean - value) <= WITHIN_STD_FACTOR * sd + 1e-9)


def _beyond_tolerance(diff):
    """Whether |ours - reference| exceeds :data:`REFERENCE_TOLERANCE` (float slack for the
    two-decimal values); ``diff`` a number or a Series."""
    return abs(diff) > REFERENCE_TOLERANCE + 1e-9


def _resolved(cells: pd.DataFrame) -> pd.Series:
    """Whether a cell's difference from the reference is one the data resolve (NA where
    they cannot say): one seed's run, its interval against the reference excludes 0;
    several seeds' means, the reference lies outside mean ± 2 std."""
    if REFERENCE_SEED_COLUMN in cells.columns:
        return ~cells[REFERENCE_SEED_COLUMN].astype("boolean")
    lo, hi = cells["reference_ci_low"], cells["reference_ci_high"]
    has = np.isfinite(lo) & np.isfinite(hi)
    return ((lo > 0) | (hi < 0)).where(has).astype("boolean")


def reference_verdict(cells: pd.DataFrame) -> tuple[bool | None, str]:
    """Whether this run reproduces the reference run. Returns (ok, sentence); ok is None
    when no cell has a reference. A cell with a value on one side only counts as off.

    - *reproduced* (ok): every F1/OA cell within :data:`REFERENCE_TOLERANCE` points;
    - *consistent with the reference* (ok): some cells are beyond the tolerance, but
      every one of them has an interval against the reference that includes 0 — the
      validation blocks cannot tell the two runs apart on any of them; for the means of
      several seeds: the reference's value lies within mean ± 2 std in every one of them
      (``reference_within_2std``) — the seeds' own spread covers the difference;
    - *not reproduced*: a cell beyond the tolerance whose interval excludes 0 (the blocks
      resolve the difference; several seeds: the reference lies outside mean ± 2 std),
      or one without an interval or std. The sentence counts both."""
    g = cells[cells["column"].isin(F1_OA_COLUMNS)]
    has_o, has_r = np.isfinite(g["ours"]), np.isfinite(g["reference"])
    if not has_r.any():
        return None, "no verdict: no cell has a reference value"
    both = has_o & has_r
    off = both & _beyond_tolerance(g["ours_minus_reference"])
    n_off = int(off.sum())
    one_sided = int((has_o ^ has_r).sum())
    n = int((has_o | has_r).sum())
    tol = f"{REFERENCE_TOLERANCE:g} points"
    if n_off == 0 and one_sided == 0:
        return True, f"reproduced: every F1/OA cell within {tol} of the reference ({n} cells)"
    resolved = _resolved(g)[off]
    n_res, n_unres = int(resolved.fillna(False).sum()), int((~resolved).fillna(False).sum())
    n_none = n_off - n_res - n_unres
    seeded = REFERENCE_SEED_COLUMN in g.columns
    k = f"{WITHIN_STD_FACTOR:g}"
    if one_sided == 0 and n_unres == n_off:
        why = (f"but the reference lies within the seeds' mean ± {k} std in each of them" if seeded else
               "but the validation blocks resolve none of these differences (each interval includes 0)")
        return True, f"consistent with the reference: {n_off} of {n} F1/OA cells differ from it by more than {tol}, {why}"
    text = f"not reproduced: {n_off} of {n} F1/OA cells differ from the reference by more than {tol}"
    if seeded and n_off:
        text += (f" ({n_res} of them with the reference outside the seeds' mean ± {k} std, {n_unres} within it"
                 + (f", {n_none} without a std" if n_none else "") + ")")
    elif n_res or n_unres:
        text += (f" ({n_res} of them by a difference the validation blocks resolve, {n_unres} by one they do not"
                 + (f", {n_none} without an interval" if n_none else "") + ")")
    if one_sided:
        text += f", {one_sided} have a value on one side only"
    return False, text


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory (the project folder under Snakemake)
    when it lies below it, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _reference_section(
    cells: pd.DataFrame, note: str, reference_dir: str | Path | None, have_reference: bool, interval_note: str = ""
) -> list[str]:
    """Markdown lines of the section against the reference run."""
    title = "## Against the reference run" + (f" ({_shown(reference_dir)})" if reference_dir is not None else "")
    md = ["", title, "", note]
    if not have_reference:
        return md
    ok, verdict = reference_verdict(cells)
    with_ci = bool(np.isfinite(cells["reference_ci_low"]).any())
    with_sd = REFERENCE_SEED_COLUMN in cells.columns and bool(cells[REFERENCE_SEED_COLUMN].notna().any())
    k = f"{WITHIN_STD_FACTOR:g}"
    md += ["", f"Verdict: **{verdict}**.", "",
           f"Criterion: |ours - reference| <= {REFERENCE_TOLERANCE:g} points for every class F1, Avg F1 and "
           "overall accuracy of Tables 1-2 (`ours_minus_reference` in the cell tables below)."]
    if interval_note:
        md += ["", interval_note]
    if with_ci:
        md += ["", "A cell beyond the tolerance whose interval (`reference_ci_low`, `reference_ci_high` in "
               "`paper_diff.csv`) includes 0 differs by less than these validation blocks can resolve: the "
               "runs' networks may differ there, but the data do not show it. Blocks of one area are not "
               "independent, so the intervals are optimistic (too narrow): a cell they do not resolve would "
               "not be resolved by honest ones either."]
    if with_sd:
        md += ["", f"The reference is one draw: a cell beyond the tolerance whose reference value lies within the "
               f"seeds' mean ± {k} std (`{REFERENCE_SEED_COLUMN}` in `paper_diff.csv`) differs from the mean by no "
               "more than one draw of this config strays from it; the seeds' spread explains the difference. "
               "Over a few seeds the std is itself uncertain, so this says a difference is not shown, not that "
               "there is none."]
    # the judged cells only (a recall column can move most without touching the verdict):
    # every cell beyond the tolerance, and at least the REFERENCE_TOP largest
    d = cells[np.isfinite(cells["ours_minus_reference"]) & cells["column"].isin(F1_OA_COLUMNS)]
    if len(d):
        d = d.assign(_a=d["ours_minus_reference"].abs()).sort_values("_a", ascending=False, kind="stable")
        top = d.head(max(REFERENCE_TOP, int(_beyond_tolerance(d["_a"]).sum())))
        md += ["", f"Largest differences among the judged F1/OA cells (beyond {REFERENCE_TOLERANCE:g} points in bold; "
               "the `_acc` recall columns are listed in the cell tables, not judged):", "",
               "| table | method | column | ours | reference | ours - reference |" + (" interval |" if with_ci else "")
               + (f" ours std | reference within mean ± {k} std |" if with_sd else ""),
               "|---|---|---|---:|---:|---:|" + ("---|" if with_ci else "") + ("---:|---|" if with_sd else "")]
        for _, r in top.iterrows():
            diff = f"{r['ours_minus_reference']:+.2f}"
            if _beyond_tolerance(r["_a"]):
                diff = f"**{diff}**"
            line = f"| {r['table']} | {r['method']} | {r['column']} | {r['ours']:.2f} | {r['reference']:.2f} | {diff} |"
            if with_ci:
                lo, hi = r["reference_ci_low"], r["reference_ci_high"]
                line += f" [{lo:+.2f}, {hi:+.2f}] |" if np.isfinite(lo) and np.isfinite(hi) else " n/a |"
            if with_sd:
                line += f" {r['ours_std']:.2f} | {_md_cell(REFERENCE_SEED_COLUMN, r[REFERENCE_SEED_COLUMN])} |"
            md.append(line)
    return md


def typo_notes(paper: pd.DataFrame) -> list[str]:
    """One sentence per row whose printed Avg F1 differs from its recomputed value."""
    notes = []
    for _, p in paper.iterrows():
        if abs(p["avg_f1_printed"] - p["avg_f1"]) > TYPO_TOLERANCE:
            notes.append(
                f"{p['method']}: the paper prints Avg F1 {p['avg_f1_printed']:.2f}, but its five class F1 "
                f"scores average {p['avg_f1']:.2f}; the recomputed value is used (a typo in the paper)."
            )
    return notes


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "no")


def _check(check: str, criterion: str, ok: bool | None, measured: str) -> dict:
    return dict(check=check, criterion=criterion, measured=measured, verdict=_verdict(ok), paper="yes")


def check_mfb(ours: pd.DataFrame) -> dict:
    """MFB raises car F1 (see :data:`MFB_MIN_CAR_F1_GAIN`); ``ours`` indexed by method."""
    check = "MFB raises car F1 (§4.2, Table 1)"
    criterion = f"FCN-MFB car F1 - FCN car F1 >= {MFB_MIN_CAR_F1_GAIN:g} point"
    if not {"FCN", "FCN-MFB"} <= set(ours.index):
        return _check(check, criterion, None, "FCN or FCN-MFB missing")
    a, b = float(ours.loc["FCN", "car_f1"]), float(ours.loc["FCN-MFB", "car_f1"])
    gain = round(b - a, 2)
    return _check(check, criterion, bool(gain >= MFB_MIN_CAR_F1_GAIN),
                  f"car F1 {a:.2f} -> {b:.2f} ({gain:+.2f})")


def check_fusions(ours: pd.DataFrame) -> list[dict]:
    """One check per fusion of :data:`vaiseg.config.FUSIONS`: its OA beats the best
    member's (see :data:`FUSION_MIN_OA_MARGIN`)."""
    out = []
    for fusion, members in FUSIONS.items():
        check = f"{fusion}: fusion raises overall accuracy (§4.4, Table 2)"
        criterion = f"OA({fusion}) - max OA({', '.join(members)}) > {FUSION_MIN_OA_MARGIN:.2f} points"
        missing = [m for m in (fusion, *members) if m not in ours.index]
        if missing:
            out.append(_check(check, criterion, None, f"{', '.join(missing)} missing"))
            continue
        best_m = max(members, key=lambda m: float(ours.loc[m, "overall_acc"]))
        best, f = float(ours.loc[best_m, "overall_acc"]), float(ours.loc[fusion, "overall_acc"])
        margin = round(f - best, 2)
        out.append(_check(check, criterion, bool(margin > FUSION_MIN_OA_MARGIN),
                          f"OA {f:.2f} vs {best:.2f} ({best_m}): margin {margin:+.2f}"))
    return out


def check_accuracy_falls(model: str, g: pd.DataFrame) -> dict:
    """Accuracy falls as the threshold rises, for one CNN's curve ``g`` (``threshold,
    kept_fraction, overall_acc``, fractions); see :data:`ACC_FALLS_MAX_SPEARMAN` and
    :data:`ACC_FALLS_MIN_DROP`."""
    check = f"{model}: accuracy falls as the uncertainty threshold rises (§5, Fig. 7)"
    criterion = (f"Spearman rho(threshold, OA) <= {ACC_FALLS_MAX_SPEARMAN:g} over the thresholds that keep pixels, "
                 f"and OA at the lowest of them >= OA at threshold 1 + {ACC_FALLS_MIN_DROP:g} point")
    g = g.sort_values("threshold")
    g = g[np.isfinite(g["overall_acc"]) & (g["kept_fraction"] > 0)]
    if len(g) < 2:
        return _check(check, criterion, None, "fewer than 2 thresholds keep pixels")
    constant = g["overall_acc"].nunique() < 2  # rho undefined (and scipy warns)
    rho = math.nan if constant else float(g["threshold"].corr(g["overall_acc"], method="spearman"))
    first, last = 100 * float(g["overall_acc"].iloc[0]), 100 * float(g["overall_acc"].iloc[-1])
    t_first, t_last = float(g["threshold"].iloc[0]), float(g["threshold"].iloc[-1])
    drop = first - last
    ok = bool(np.isfinite(rho) and rho <= ACC_FALLS_MAX_SPEARMAN + 1e-9 and drop >= ACC_FALLS_MIN_DROP - 1e-9)  # float slack
    rho_s = f"{rho:.3f}" if np.isfinite(rho) else "undefined (constant OA)"
    return _check(check, criterion, ok,
                  f"rho {rho_s}; OA {first:.2f} % at threshold {t_first:g}, {last:.2f} % at threshold {t_last:g} "
                  f"(drop {drop:+.2f})")


def check_error_uncertainty(model: str, s: dict) -> dict:
    """Uncertainty is higher on errors, from one CNN's ``uncertainty_summary.json``
    entry; see :data:`ERROR_UNCERTAINTY_MIN_RATIO`."""
    check = f"{model}: uncertainty is higher on errors (§5)"
    criterion = f"mean normalised uncertainty of errors >= {ERROR_UNCERTAINTY_MIN_RATIO:g} x that of correct pixels"
    uc, ue = s.get("mean_uncertainty_correct"), s.get("mean_uncertainty_error")
    if uc is None or ue is None or not (np.isfinite(uc) and np.isfinite(ue)):
        return _check(check, criterion, None, "no correct or no misclassified pixels")
    ratio = ue / uc if uc > 0 else (math.inf if ue > 0 else math.nan)  # errors uncertain, correct pixels not: inf
    ok = bool(ratio >= ERROR_UNCERTAINTY_MIN_RATIO - 1e-9)  # float slack (0.3 / 0.2 < 1.5); False for NaN
    return _check(check, criterion, ok, f"{ue:.4f} on errors vs {uc:.4f} on correct pixels (ratio {ratio:.2f})")


def qualitative_findings(ours: pd.DataFrame, curve: pd.DataFrame | None, summary: dict | None) -> list[dict]:
    """The paper's qualitative claims, checked on our numbers with the criteria of the
    module constants.

    ``ours``: our Tables 1-2 indexed by method; ``curve``: ``accuracy_vs_uncertainty.csv``
    (or None); ``summary``: ``uncertainty_summary.json`` (or None). Returns a list of
    ``{check, criterion, measured, verdict ("yes"|"no"|"n/a"), paper ("yes")}``.
    """
    out = [check_mfb(ours), *check_fusions(ours)]
    if curve is not None:
        out += [check_accuracy_falls(model, g) for model, g in curve.groupby("model", sort=False)]
    if summary:
        out += [check_error_uncertainty(model, s) for model, s in summary.items()]
    return out


def _md_cell(col: str, v) -> str:
    if col in ("within_2std", REFERENCE_SEED_COLUMN):
        return "n/a" if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)) else ("yes" if v else "no")
    if isinstance(v, (float, np.floating)):
        return "NaN" if not np.isfinite(v) else f"{v:+.2f}" if col in ("delta", "ours_minus_reference", "reference_ci_low", "reference_ci_high") else f"{v:.2f}"
    return str(v)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_md_cell(c, r[c]) for c in cols) + " |")
    return "\n".join(lines)


READING_LABELS = {
    "two_thresholds": "two thresholds",
    "one_threshold": "one threshold",
}


def _fig6_section(cov: pd.DataFrame, lead: str = "two_thresholds") -> list[str]:
    """Markdown lines of the Fig. 6 section: both readings of ``uncertainty_coverage.csv``
    beside the paper's numbers (a file without ``reading`` is the two-threshold one);
    ``lead`` (``report.fig6_reading``) is listed first within each scope and marked."""
    if "reading" not in cov.columns:
        cov = cov.assign(reading="two_thresholds")
    if "scope" not in cov.columns:
        cov = cov.assign(scope="validation")
    md = ["", "## Fig. 6: pixels kept at a target overall accuracy (%)", "",
          "The paper: at 97.5 % OA \"64.85 % of all the pixels in the image were classified, or when "
          "ignoring segmentation of the boundaries (as in the ISPRS contest) 67.65 %\" (its FCN, its "
          "Fig. 6 image). It does not say whether the two numbers share one threshold, so both readings "
          "are shown:", "",
          "- **two thresholds**: *all pixels* = share of all pixels kept at the threshold where OA "
          "scored against the full GT (boundary pixels scored) equals the target; *non-boundary* = share "
          "of the non-boundary pixels kept at the threshold where OA against the eroded GT (boundaries "
          "ignored) equals the target.",
          "- **one threshold**: one threshold, where OA in the ISPRS sense (eroded GT) equals the "
          "target; *all pixels* and *non-boundary* = the shares of all pixels and of the non-boundary "
          "pixels kept at that threshold.", "",
          "Ours over the validation set and over the figure area alone; thresholds are normalised "
          "uncertainties (all pixels / non-boundary).", "",
          "| model | scope | reading | target OA | ours, all pixels | ours, non-boundary | threshold(s) | "
          "paper, all pixels | paper, ignoring boundaries |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    f = lambda v: "NaN" if not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
    t = lambda v: "NaN" if not np.isfinite(v) else f"{v:.4f}"  # noqa: E731
    # the file's order of models, scopes and targets; within a scope, reading by reading
    first = lambda col: cov[col].map({v: i for i, v in enumerate(dict.fromkeys(cov[col]))})  # noqa: E731
    order = [lead] + [r for r in READING_LABELS if r != lead]
    reading = cov["reading"].map({r: i for i, r in enumerate(order)}).fillna(len(order))
    cov = cov.assign(_m=first("model"), _s=first("scope"), _r=reading).sort_values(["_m", "_s", "_r"], kind="stable")
    for _, r in cov.iterrows():
        thr = t(r["threshold"]) if r["reading"] == "one_threshold" else \
            f"{t(r['threshold'])} / {t(r['threshold_ignoring_boundaries'])}"
        label = READING_LABELS.get(r["reading"], r["reading"]) + (" (configured)" if r["reading"] == lead else "")
        md.append(f"| {r['model']} | {r['scope']} | {label} | "
                  f"{r['target_overall_acc']:g} | {f(r['pixels_classified_pct'])} | "
                  f"{f(r['pixels_classified_pct_ignoring_boundaries'])} | {thr} | "
                  f"{f(r['paper_pixels_classified_pct'])} | {f(r['paper_pixels_classified_pct_ignoring_boundaries'])} |")
    return md


def build_paper_diff(
    tables: list[str | Path],
    paper_dir: str | Path,
    out_md: str | Path,
    out_csv: str | Path,
    *,
    source: str,
    curve_csv: str | Path | None = None,
    summary_json: str | Path | None = None,
    coverage_csv: str | Path | None = None,
    fig6_reading: str = "two_thresholds",
    reference_dir: str | Path | None = None,
    blocks_csv: str | Path | None = None,
    bootstrap: dict | None = None,
) -> pd.DataFrame:
    """Write ``paper_diff.csv`` (long format, see :func:`diff_cells`) and ``paper_diff.md``
    (header with the data source, notes, qualitative findings, every cell).

    ``tables``: our table CSVs (table1.csv, table2.csv); ``source``: ``data.source`` of
    the run (``synthetic`` or ``isprs``); ``curve_csv``/``summary_json``/``coverage_csv``
    (optional): the uncertainty analysis' outputs, for the findings and a Fig. 6 section;
    ``reference_dir`` (optional): the folder with the reference run's table1.csv and
    table2.csv (absent folder or files: noted in the md, reference columns empty);
    ``blocks_csv`` (optional): this run's ``block_confusions.csv``, for the intervals
    against the reference's (:func:`reference_intervals`; ``bootstrap``: ``samples`` and
    ``confidence`` of ``report.bootstrap``, the schema's defaults where absent).
    Tables with ``<col>_std`` columns (several seeds) add ``ours_std``/``within_2std``.
    Returns the cell frame.
    """
    paper = read_paper_results(paper_file(paper_dir, PAPER_RESULTS))
    ours = pd.concat([_read_table(t) for t in tables])
    reference, reference_note = read_reference(reference_dir)
    bs = {**BOOTSTRAP_DEFAULTS, **(bootstrap or {})}
    intervals, interval_note = reference_intervals(blocks_csv, reference_dir, ours, reference,
                                                   samples=int(bs["samples"]), confidence=float(bs["confidence"]))
    cells = diff_cells(ours, paper, reference, intervals)
    seeded = has_std(ours)
    curve = pd.read_csv(curve_csv) if curve_csv else None
    summary = json.loads(Path(summary_json).read_text()) if summary_json else None
    findings = qualitative_findings(ours, curve, summary)

    with atomic_path(out_csv) as tmp:
        cells.to_csv(tmp, index=False, float_format="%.2f", na_rep="NaN")

    md = ["# Paper diff: our Tables 1-2 against Kampffmeyer et al. (CVPRW 2016)", ""]
    md.append(f"Data source of this run: **{source}**.")
    md.append("")
    if source != "isprs":
        md += [
            "> **These numbers are NOT comparable to the paper.** This run used synthetic "
            "Vaihingen-like scenes, not the ISPRS Vaihingen archives; the comparison only "
            "checks that every cell is produced and shows the pipeline end to end.",
            "",
        ]
    md += [
        "Notes:",
        "",
        "- Values in percent on the validation areas, eroded ground truth (boundaries ignored). "
        "`delta` = ours - paper.",
        "- `<class>_acc` is our per-class recall (producer's accuracy); the paper does not define "
        "its per-class \"Acc\" (its values match neither recall nor IoU throughout), so compare F1 "
        "and overall accuracy first. Precision, recall and IoU per class are in "
        "`results/tables/table{1,2}_extended.csv`.",
        "- The paper's Avg F1 is recomputed as the mean of its five class F1 scores.",
    ]
    if seeded:
        n = ours["n_seeds"].dropna().unique() if "n_seeds" in ours.columns else []
        n_txt = ", ".join(str(int(x)) for x in n) or "several"
        md += [f"- Ours: the mean over {n_txt} seeds; `ours_std` is the sample standard deviation over the seeds "
               f"and `within_2std` says whether the paper's value lies within mean ± {WITHIN_STD_FACTOR:g} std "
               "(|ours - paper| <= 2 ours_std; n/a with one seed). The findings below use the means."]
    md.append("- `reference`: the reference run's value (see \"Against the reference run\"); "
              "`ours_minus_reference` = ours - reference.")
    md += [f"- {n}" for n in typo_notes(paper)]
    md += ["", "## Qualitative findings (from our numbers)", "",
           "Each check is a claim the paper makes (section in brackets); the verdict applies the "
           "stated criterion strictly to this run's numbers (\"n/a\": inputs missing).", "",
           "| check | criterion | measured | verdict |", "|---|---|---|---|"]
    md += [f"| {f['check']} | {f['criterion']} | {f['measured']} | {f['verdict']} |" for f in findings]
    if coverage_csv:
        md += _fig6_section(pd.read_csv(coverage_csv), fig6_reading)
    md += ["", "## Summary", "", "| table | mean abs delta F1 | mean abs delta overall acc | cells |", "|---|---:|---:|---:|"]
    for t, g in cells.groupby("table"):
        f1 = g[g["column"].str.endswith("_f1")]["delta"].abs().mean()
        oa = g[g["column"] == "overall_acc"]["delta"].abs().mean()
        md.append(f"| {t} | {f1:.2f} | {oa:.2f} | {len(g)} |")
    if seeded:
        w = cells["within_2std"]
        k, n = int(w.fillna(False).sum()), int(w.notna().sum())
        wf = cells[cells["column"].isin(F1_OA_COLUMNS)]["within_2std"]
        md += ["", f"The paper's value lies within our mean ± {WITHIN_STD_FACTOR:g} std in {k} of {n} cells "
                   f"({int(wf.fillna(False).sum())} of {int(wf.notna().sum())} F1/OA cells; cells with an undefined "
                   "std are not counted)."]
    md += _reference_section(cells, reference_note, reference_dir, reference is not None, interval_note)
    for t, g in cells.groupby("table"):
        md += ["", f"## Table {t}", "", _md_table(g.drop(columns=["table"]))]
    write_text(out_md, "\n".join(md) + "\n")
    log.info("paper diff (%s data): %d cells -> %s", source, len(cells), out_csv)
    log.info("reference run: %s", reference_verdict(cells)[1] if reference is not None else reference_note)
    for f in findings:
        log.info("finding: %s: %s (%s; criterion: %s)", f["check"], f["verdict"], f["measured"], f["criterion"])
    return cells
