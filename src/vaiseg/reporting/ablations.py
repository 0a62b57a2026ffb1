"""The ablation table: which unstated choice moves which number (beyond the paper).

The paper leaves several choices open (README, "Choices the paper leaves open";
docs/choices.md). For each switch this module gives the Table 1/2 cells under every
option, on the run's own data, so a reader sees what each choice is worth instead of
taking the pipeline's default on trust. One row per (choice, option, method);
``configured`` marks the option the run itself used (those rows reproduce Tables 1-2
exactly: same functions, same inputs, same seeds).

Switches that need no retraining are always computed, in memory, from the run's
predictions:

- ``fusion_sample`` (§4.4): the SVMs' training pixels class-balanced or in the natural
  class mix; the four fusions are retrained (LIBLINEAR, seconds) and applied to the
  validation areas.
- ``svm_training`` (§4.4): the SVMs learn from the CNNs' predictions on the areas the
  CNNs trained on (``train_areas``, in-sample: the CNNs are overconfident there), from
  held-out training areas (``holdout``, when the run is configured so), or, as a cheap
  out-of-sample check that needs no second set of CNNs, ``val_crossfit``: for each
  validation area, SVMs trained on the *other* validation areas' predictions
  (leave-one-area-out; the evaluated area never trains its SVMs, but this option uses
  validation labels the paper's protocol keeps for evaluation, so it measures the cost
  of in-sample training and is not a candidate for the tables). Needs >= 2 validation
  areas.
- ``pb_border`` (§5, Fig. 3): the PB's 32-px border reflect-padded and classified, or
  left unclassified (``none``, as the paper did). ``none`` is computed from the
  reflect-padded predictions by blanking the border: every interior pixel's 65x65 window
  lies inside the image, so its MC samples are identical (the masks are hashed by
  absolute pixel, §4.3). Fusions with the PB are retrained on the blanked features,
  exactly as a ``none`` run trains them (non-finite features are left out).
- ``fig6_reading`` (§5, Fig. 6): the coverage at 97.5 / 95 / 90 % overall accuracy
  under both readings (see :mod:`vaiseg.reporting.uncertainty`), per CNN; these rows
  fill the ``kept_pct_*`` columns instead of the table columns.

Switches that retrain a CNN (``fcn_dropout``, ``mfb_median``) are added when the config
lists them under ``ablations.retrain``: the other option's CNNs are trained and run on
the validation areas by the workflow, and their label rasters are scored here.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..classes import IGNORE, N_CLASSES
from ..config import FUSIONS
from ..errors import DataError
from ..fusion import apply_fusion, read_probs, train_fusion
from ..metrics import confusion_matrix, read_label_raster
from ..models import PB_PAD
from .tables import TABLE_COLUMNS, to_markdown, table_row, write_csv

log = logging.getLogger(__name__)

#: Fig. 6 accuracy targets (percent) and the coverage columns of the table
FIG6_TARGETS = (97.5, 95.0, 90.0)
COVERAGE_COLUMNS = [f"kept_pct_at_{str(t).replace('.', '_').removesuffix('_0')}" for t in FIG6_TARGETS] + [
    f"kept_pct_nonboundary_at_{str(t).replace('.', '_').removesuffix('_0')}" for t in FIG6_TARGETS
]
COLUMNS = ["choice", "option", "method", "configured"] + TABLE_COLUMNS[1:] + COVERAGE_COLUMNS + ["note"]
#: what each choice is, for the Markdown file (the paper's words are in the README)
CHOICES = {
    "fusion_sample": "SVM training pixels: class-balanced or the natural class mix (§4.4 is silent)",
    "svm_training": "which CNN predictions train the SVMs (§4.4 is silent); val_crossfit is a diagnostic",
    "pb_border": "PB's 32-px border: reflect-padded and classified, or unclassified as in §5 / Fig. 3",
    "fig6_reading": "Fig. 6 coverage: two thresholds (full / eroded GT) or one threshold on the ISPRS OA",
    "fcn_dropout": "FCN dropout: encoder output only, or after each of the last two encoder sets (retrained)",
    "mfb_median": "MFB median (eq. 2) with or without clutter (retrained FCN-MFB)",
}


@dataclass(frozen=True)
class FusionRecipe:
    """How one fusion variant is trained (``fusion.*`` of the config, plus the ablation's
    own two knobs): ``crossfit`` = leave-one-validation-area-out SVMs, ``pb_border_px`` =
    blank this many px of the PB's border (``infer.pb_border: none``)."""

    samples: int
    balanced: bool
    C: float
    solver: int
    seed: int
    crossfit: bool = False
    pb_border_px: int = 0


def blank_border(array: np.ndarray, px: int, fill) -> np.ndarray:
    """A copy of ``array`` (..., H, W) with ``px`` pixels at every edge set to ``fill``."""
    out = np.array(array, copy=True)
    if px > 0:
        out[..., :px, :] = fill
        out[..., -px:, :] = fill
        out[..., :, :px] = fill
        out[..., :, -px:] = fill
    return out


def _reader(pb_border_px: int, rasters: dict | None = None):
    """``read(model, path)`` for :func:`vaiseg.fusion.train_fusion`: the probs.tif, PB's
    border blanked to NaN when ``pb_border_px``; with ``rasters`` (path -> array, shared by
    the ablation's ~30 SVM trainings, which read the same files) each file is read once."""

    def read(model: str, path) -> np.ndarray:
        if rasters is None:
            probs = read_probs(model, path)
        else:
            if path not in rasters:
                rasters[path] = read_probs(model, path)
            probs = rasters[path]  # never written to: blank_border copies
        if model == "PB" and pb_border_px:
            probs = blank_border(probs.astype(np.float32, copy=False), pb_border_px, np.nan)
        return probs

    return read


def label_confusion(pred: dict, eroded: dict, areas, border_px: int = 0) -> np.ndarray:
    """Pooled (6, 6) confusion of the label rasters ``pred[area]`` against the eroded GT
    over ``areas`` (boundaries ignored); ``border_px`` > 0 leaves that border
    unclassified first (``pb_border: none`` from a reflect-padded prediction)."""
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for a in areas:
        p = read_label_raster(pred[a])
        if border_px:
            p = blank_border(p, border_px, IGNORE)
        cm += confusion_matrix(read_label_raster(eroded[a]), p, path=pred[a])
    return cm


def fusion_confusion(members, recipe: FusionRecipe, probs: dict, eroded: dict, svm_areas, val_areas,
                     rasters: dict | None = None) -> np.ndarray:
    """Pooled confusion of one fusion (§4.4) trained and applied in memory.

    ``probs[model][area]``: probs.tif of each member CNN on every area used; ``eroded[area]``:
    eroded GT. Plain recipe: SVMs trained on ``svm_areas``, applied to ``val_areas``.
    ``crossfit``: for each validation area, SVMs trained on the other validation areas.
    ``rasters``: a cache of the probability rasters read (see :func:`_reader`).
    """
    read = _reader(recipe.pb_border_px, rasters)
    if recipe.crossfit:
        if len(val_areas) < 2:
            raise ValueError("val_crossfit needs at least two validation areas")
        folds = [([b for b in val_areas if b != a], [a]) for a in val_areas]
    else:
        folds = [(list(svm_areas), list(val_areas))]
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for train_areas, eval_areas in folds:
        model = train_fusion(
            {m: [probs[m][a] for a in train_areas] for m in members},
            [eroded[a] for a in train_areas],
            n=recipe.samples, balanced=recipe.balanced, C=recipe.C, seed=recipe.seed, solver=recipe.solver, read=read,
        )
        for a in eval_areas:
            _, labels = apply_fusion(model, [read(m, probs[m][a]).astype(np.float32, copy=False) for m in members])
            cm += confusion_matrix(read_label_raster(eroded[a]), labels, path=eroded[a])
    return cm


def _row(choice: str, option: str, method: str, configured: bool, cm: np.ndarray | None = None, note: str = "", **extra) -> dict:
    row = {c: math.nan for c in COLUMNS}
    row.update(choice=choice, option=option, method=method, configured=bool(configured), note=note)
    if cm is not None:
        row.update({k: v for k, v in table_row(method, cm).items() if k != "method"})
    row.update(extra)
    return row


def fusion_rows(choice: str, options: dict[str, FusionRecipe], configured: str, probs, eroded, svm_areas, val_areas,
                fusions: dict = FUSIONS, memo: dict | None = None, rasters: dict | None = None) -> list[dict]:
    """Rows of one fusion switch: every fusion under every option (``options``: name ->
    recipe). An option that cannot run on this data gives NaN cells and a note. ``memo``
    ({(members, recipe): confusion}) shares results between switches: the configured
    recipe recurs in every switch and is trained once."""
    rows = []
    memo = {} if memo is None else memo
    for option, recipe in options.items():
        for name, members in fusions.items():
            key = (tuple(members), recipe)
            if key not in memo:
                memo[key] = _confusion_or_error(key, probs, eroded, svm_areas, val_areas, rasters)
            if isinstance(memo[key], ValueError):
                rows.append(_row(choice, option, name, option == configured, note=str(memo[key])))
            else:
                rows.append(_row(choice, option, name, option == configured, memo[key]))
        log.info("ablation %s=%s: %d fusions", choice, option, len(fusions))
    return rows


def _confusion_or_error(key, probs, eroded, svm_areas, val_areas, rasters=None):
    """:func:`fusion_confusion` of ``key`` = (members, recipe), or the ValueError that says
    why the recipe cannot run on this data (the row's note)."""
    members, recipe = key
    try:
        return fusion_confusion(members, recipe, probs, eroded, svm_areas, val_areas, rasters)
    except ValueError as e:
        return e


#: each worker process's raster cache (:func:`_reader`), filled by its own tasks
_WORKER_RASTERS: dict = {}


def _worker_confusion(key, probs, eroded, svm_areas, val_areas):
    return _confusion_or_error(key, probs, eroded, svm_areas, val_areas, _WORKER_RASTERS)


def precompute_fusions(keys, probs, eroded, svm_areas, val_areas, workers: int, memo: dict) -> None:
    """Fill ``memo`` with the confusion (or the ValueError) of every (members, recipe) in
    ``keys`` not in it yet, in ``workers`` forked processes: the ablation's ~30 SVM
    trainings are independent and LIBLINEAR uses one core. Each result is the one
    :func:`fusion_confusion` gives in this process (every training is seeded by its
    recipe); with ``workers`` <= 1, or where processes cannot be forked, nothing is done
    here and :func:`fusion_rows` computes them one after another."""
    todo = [k for k in dict.fromkeys(keys) if k not in memo]
    if workers <= 1 or len(todo) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return
    # fork, not spawn: a spawned child re-imports __main__, which for a Snakemake script is
    # the script itself (it would run the ablation again)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
        futures = {k: pool.submit(_worker_confusion, k, probs, eroded, svm_areas, val_areas) for k in todo}
        for k, f in futures.items():
            memo[k] = f.result()
    log.info("ablation: %d fusion variants trained in %d processes", len(todo), min(workers, len(todo)))


def fig6_rows(coverage_csv, configured: str, models) -> list[dict]:
    """Rows of ``fig6_reading`` from the uncertainty analysis' coverage table (validation
    scope): per CNN and reading, the kept share of all / non-boundary pixels (percent)
    at each Fig. 6 accuracy target."""
    cov = pd.read_csv(coverage_csv)
    need = {"model", "scope", "reading", "target_overall_acc", "pixels_classified_pct",
            "pixels_classified_pct_ignoring_boundaries"}
    if not need <= set(cov.columns):
        raise DataError(coverage_csv, f"missing columns {sorted(need - set(cov.columns))}")
    cov = cov[cov["scope"] == "validation"]
    rows = []
    for reading in sorted(cov["reading"].unique(), key=lambda r: r != "two_thresholds"):
        for m in models:
            sub = cov[(cov["reading"] == reading) & (cov["model"] == m)]
            extra = {}
            for t, col, col_nb in zip(FIG6_TARGETS, COVERAGE_COLUMNS[:3], COVERAGE_COLUMNS[3:]):
                r = sub[np.isclose(sub["target_overall_acc"], t)]
                extra[col] = float(r["pixels_classified_pct"].iloc[0]) if len(r) else math.nan
                extra[col_nb] = float(r["pixels_classified_pct_ignoring_boundaries"].iloc[0]) if len(r) else math.nan
            rows.append(_row("fig6_reading", reading, m, reading == configured, **extra))
    return rows


def retrain_rows(choice: str, configured: str, other: str, methods, main_labels: dict, other_labels: dict, eroded,
                 val_areas) -> list[dict]:
    """Rows of a switch that retrains CNNs: ``main_labels[model][area]`` are the run's
    label rasters (option ``configured``), ``other_labels[model][area]`` those of the CNNs
    retrained with option ``other``."""
    rows = []
    for option, labels in ((configured, main_labels), (other, other_labels)):
        for m in methods:
            rows.append(_row(choice, option, m, option == configured, label_confusion(labels[m], eroded, val_areas)))
    return rows


def ablations(
    *,
    val_areas,
    svm_areas,
    probs: dict,
    labels: dict,
    eroded: dict,
    fusion: dict,
    seed: int,
    pb_border: str,
    pb_reflect_probs: dict,
    pb_reflect_labels: dict,
    coverage_csv,
    fig6_reading: str,
    retrained: list[dict] = (),
    fusions: dict = FUSIONS,
    workers: int = 1,
) -> pd.DataFrame:
    """The whole ablation table of a run (see the module docstring).

    ``probs[cnn][area]`` / ``labels[model][area]``: the run's probs.tif (CNNs, every area
    used) and labels.tif (CNNs and fusions, validation areas); ``eroded[area]`` the eroded
    GT; ``fusion``: the config's ``fusion`` section; ``pb_reflect_probs`` /
    ``pb_reflect_labels``: the PB's reflect-padded predictions per area (the run's own
    when ``pb_border`` is reflect); ``retrained``: one dict per retrained switch with keys
    ``choice, configured, other, methods, labels`` (``labels[model][area]``); ``workers``:
    processes for the fusion variants' SVM trainings (:func:`precompute_fusions`; the
    table is the same for any number).
    """
    border = PB_PAD if pb_border == "none" else 0
    base = FusionRecipe(samples=fusion["samples"], balanced=fusion["balanced"], C=fusion["C"],
                        solver=fusion.get("solver", 2), seed=seed, pb_border_px=border)
    # the fusion switches read the PB's reflect-padded probabilities (blanked for `none`)
    probs = {**probs, "PB": pb_reflect_probs}
    memo: dict = {}  # the configured recipe recurs in every fusion switch: trained once
    rasters: dict = {}  # every probs.tif read once (~230 MB for the demo's 16 areas)
    train_on = fusion.get("train_on", "train_areas")
    pb_fusions = {k: v for k, v in fusions.items() if "PB" in v}
    switches = [
        ("fusion_sample", {"balanced": replace(base, balanced=True), "natural": replace(base, balanced=False)},
         "balanced" if fusion["balanced"] else "natural", fusions),
        ("svm_training", {train_on: base, "val_crossfit": replace(base, crossfit=True)}, train_on, fusions),
        ("pb_border", {"reflect": replace(base, pb_border_px=0), "none": replace(base, pb_border_px=PB_PAD)},
         pb_border, pb_fusions),
    ]
    precompute_fusions([(tuple(m), r) for _, options, _, fus in switches for r in options.values() for m in fus.values()],
                       probs, eroded, svm_areas, val_areas, workers, memo)
    rows = []
    for choice, options, configured, fus in switches[:2]:
        rows += fusion_rows(choice, options, configured, probs, eroded, svm_areas, val_areas, fus, memo, rasters)
    for option, px in (("reflect", 0), ("none", PB_PAD)):
        rows.append(_row("pb_border", option, "PB", option == pb_border,
                         label_confusion(pb_reflect_labels, eroded, val_areas, border_px=px)))
    choice, options, configured, fus = switches[2]
    rows += fusion_rows(choice, options, configured, probs, eroded, svm_areas, val_areas, fus, memo, rasters)
    rows += fig6_rows(coverage_csv, fig6_reading, [m for m in probs if m in ("PB", "FCN", "FCN-MFB")])
    for r in retrained:
        rows += retrain_rows(r["choice"], r["configured"], r["other"], r["methods"],
                             {m: labels[m] for m in r["methods"]}, r["labels"], eroded, val_areas)
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df


def to_markdown_grouped(df: pd.DataFrame) -> str:
    """The ablation table as Markdown: one section per choice with its non-empty columns."""
    out = ["# Ablations: which unstated choice moves which number", "",
           "Each section varies one choice and keeps the rest as configured; `configured` marks",
           "the option this run used (those rows equal Tables 1-2). Values in percent, eroded GT,",
           "validation areas.", ""]
    for choice in dict.fromkeys(df["choice"]):
        sub = df[df["choice"] == choice].dropna(axis=1, how="all")
        sub = sub.drop(columns=["choice"])
        if "note" in sub and not sub["note"].astype(str).str.len().any():
            sub = sub.drop(columns=["note"])
        sub = sub.assign(configured=sub["configured"].map({True: "yes", False: ""}))
        out += [f"## {choice}", "", CHOICES.get(choice, ""), "", to_markdown(sub).rstrip(), ""]
    return "\n".join(out) + "\n"


def write_ablations(df: pd.DataFrame, out_csv, out_md) -> None:
    """``ablations.csv`` (one row per choice, option, method) and ``ablations.md``."""
    if df.empty:
        raise ValueError("empty ablation table")
    write_csv(df, out_csv)
    write_text(out_md, to_markdown_grouped(df))
    log.info("ablations -> %s:\n%s", out_csv, df.drop(columns=["note"]).to_string(index=False))


def paths_by_area(paths, areas) -> dict:
    """{area: path} from a list of paths in the order of ``areas``."""
    paths = [str(p) for p in paths]
    if len(paths) != len(areas):
        raise ValueError(f"{len(paths)} paths for {len(areas)} areas")
    return {int(a): Path(p) for a, p in zip(areas, paths)}
