"""Paired bootstrap comparisons for the paper's claims (§5), beyond the paper.

The paper states its comparisons as single numbers on the validation areas (FCN-MFB
finds cars better than FCN; the PB finds cars better than the FCN; every fusion beats
its best member). This module attaches a 95 % interval to each difference:

1. Every validation area is cut into square blocks of ``block`` px, row-major from the
   top-left corner; edge blocks are the smaller remainders and are kept. Blocks whose
   eroded ground truth holds no scored pixel (all ``IGNORE``) are dropped; the same
   blocks are used for every method.
2. For each method, one confusion matrix per block (against the eroded GT, ISPRS
   protocol of :mod:`vaiseg.metrics`: ``IGNORE`` truth and unclassified predictions are
   not counted). The blocks' matrices sum to the method's pooled matrix, so the point
   estimates on all blocks (``a_value``, ``b_value``) are exactly the cells of Tables 1-2
   (:func:`vaiseg.reporting.tables.table_row`, percent, 2 decimals).
3. ``samples`` resamples of the block indices with replacement (``numpy``
   ``default_rng(seed)``, drawn once and shared by every comparison, so the two methods
   of a comparison always see the same blocks); the metric of each resample comes from
   the confusion matrix summed over its blocks, and the difference is ``a - b``. A
   resample where either metric is undefined (car F1 with no car pixel true or predicted
   in the resampled blocks) is dropped for that comparison; ``n_boot`` says how many
   were used.
4. The interval is the percentile interval of the differences at ``confidence``,
   rounded *outward* to 2 decimals (so the printed interval contains the computed one);
   ``supports`` reads the printed interval: ``a > b`` when it lies above 0, ``a < b``
   when below, else ``no difference shown``.

The per-block matrices themselves go to ``block_confusions.csv``
(:func:`write_block_confusions`): a run committed as the reference keeps them, so a later
run can be compared with it block by block (:mod:`vaiseg.reporting.paper_diff`,
:mod:`vaiseg.reporting.run_diff`) without the reference's prediction rasters.

Caveat (also in the Markdown): blocks are not independent samples of the world;
neighbouring blocks of one area share buildings, streets and lighting, so the interval
is optimistic (too narrow) when there are few areas.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_text
from ..classes import IGNORE, KEYS, N_CLASSES, SCORED
from ..config import FUSIONS
from ..errors import ConfigError, DataError
from ..metrics import confusion_matrix, read_label_raster
from .tables import table_row

log = logging.getLogger(__name__)

#: the metrics a claim can be about (Table 1/2 column names, percent)
METRICS = ("overall_acc", "car_f1")
#: every F1 and OA cell of Tables 1-2 that :func:`metric_values` scores (the scored
#: classes' F1s, their mean, OA): what :mod:`vaiseg.reporting.run_diff` compares
_F1_CLASS = {f"{KEYS[c]}_f1": c for c in SCORED}
CELL_METRICS = (*_F1_CLASS, "avg_f1", "overall_acc")
#: the output columns, in order
COLUMNS = (
    "claim", "metric", "a", "b", "a_value", "b_value", "difference", "ci_low", "ci_high",
    "confidence", "n_blocks", "n_boot", "supports",
)
SUPPORTS = ("a > b", "a < b", "no difference shown")
#: the config schema's ``report.bootstrap`` defaults
BOOTSTRAP_DEFAULTS = {"block": 256, "samples": 2000, "confidence": 0.95}
CLAIM_MFB = "MFB vs no MFB"
CLAIM_PB = "PB vs FCN"
CLAIM_FUSION = "fusion vs best member"


# --------------------------------------------------------------------------- blocks
def block_grid(shape: tuple[int, int], block: int) -> list[tuple[slice, slice]]:
    """The blocks of an (H, W) image as (row slice, column slice), row-major from the
    top-left; the last row/column of blocks holds the remainders (smaller, kept)."""
    _check_block(block)
    h, w = (int(s) for s in shape)
    return [
        (slice(r, min(r + block, h)), slice(c, min(c + block, w)))
        for r in range(0, h, block)
        for c in range(0, w, block)
    ]


def block_ids(shape: tuple[int, int], block: int) -> tuple[np.ndarray, int]:
    """(H, W) intp map of each pixel's block index (the order of :func:`block_grid`) and
    the number of blocks."""
    _check_block(block)
    h, w = (int(s) for s in shape)
    ncols = -(-w // block)
    nrows = -(-h // block)
    ids = (np.arange(h, dtype=np.intp) // block)[:, None] * ncols + (np.arange(w, dtype=np.intp) // block)[None, :]
    return ids, nrows * ncols


def _check_block(block) -> None:
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ConfigError(f"report.bootstrap.block must be a positive integer (px), got {block!r}")


def _per_block(gt: np.ndarray, pred: np.ndarray, ids: np.ndarray, n_blocks: int, n_classes: int) -> np.ndarray:
    """(n_blocks, K, K) confusion matrices by one bincount (values already validated)."""
    K = n_classes
    valid = (gt < K) & (pred < K)
    code = ids[valid] * (K * K) + gt[valid].astype(np.intp) * K + pred[valid].astype(np.intp)
    return np.bincount(code, minlength=n_blocks * K * K).reshape(n_blocks, K, K).astype(np.int64)


def block_confusions(
    gt: np.ndarray,
    pred: np.ndarray,
    block: int,
    n_classes: int = N_CLASSES,
    *,
    pred_path: str | Path | None = None,
    gt_path: str | Path | None = None,
) -> np.ndarray:
    """(n_blocks, K, K) int64 confusion matrices (rows true) of every block of
    :func:`block_grid`, empty blocks included, under the ISPRS protocol of
    :func:`vaiseg.metrics.confusion_matrix` (their sum is that function's matrix of the
    whole image). DataError naming the files when the shapes differ or a value is out
    of range."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise DataError(pred_path, f"prediction shape {pred.shape} differs from ground truth {gt_path} {gt.shape}")
    ids, n = block_ids(gt.shape, block)
    return _validated_blocks(gt, pred, ids, n, n_classes, pred_path, gt_path)


def _validated_blocks(gt, pred, ids, n, n_classes, pred_path, gt_path) -> np.ndarray:
    try:
        total = confusion_matrix(gt, pred, n_classes, path=gt_path)
    except DataError as e:
        raise DataError(e.path, f"{e.problem} (prediction {pred_path})") from e
    cms = _per_block(gt, pred, ids, n, n_classes)
    if not np.array_equal(cms.sum(0), total):  # pragma: no cover - internal consistency
        raise AssertionError("block confusion matrices do not sum to the image's matrix")
    return cms


def load_blocks(
    labels: Mapping[str, Mapping[int, str | Path]],
    eroded: Mapping[int, str | Path],
    block: int,
    n_classes: int = N_CLASSES,
) -> tuple[dict[str, np.ndarray], list[tuple[int, int, int]]]:
    """:func:`load_block_confusions` and the blocks' index: one ``(area, block_row,
    block_col)`` per kept block, in the matrices' order."""
    if not labels:
        raise DataError(None, "comparisons: no methods given")
    if not eroded:
        raise DataError(None, "comparisons: no validation areas given")
    out: dict[str, list[np.ndarray]] = {m: [] for m in labels}
    index: list[tuple[int, int, int]] = []
    for area, gt_path in eroded.items():
        gt = read_label_raster(gt_path)
        ids, n = block_ids(gt.shape, block)
        scored = gt != IGNORE
        keep = np.bincount(ids[scored], minlength=n) > 0
        ncols = -(-gt.shape[1] // block)
        index += [(int(area), int(k) // ncols, int(k) % ncols) for k in np.flatnonzero(keep)]
        for method, per_area in labels.items():
            if area not in per_area:
                raise DataError(None, f"comparisons: no prediction of {method} for area {area}")
            pp = per_area[area]
            pred = read_label_raster(pp)
            if pred.shape != gt.shape:
                raise DataError(pp, f"prediction shape {pred.shape} differs from ground truth {gt_path} {gt.shape}")
            out[method].append(_validated_blocks(gt, pred, ids, n, n_classes, pp, gt_path)[keep])
        log.info("area %s: %d blocks of %d px, %d kept", area, n, block, int(keep.sum()))
    conf = {m: np.concatenate(v) for m, v in out.items()}
    if not len(next(iter(conf.values()))):
        raise DataError(None, "comparisons: no block holds a scored pixel (eroded GT entirely ignored)")
    return conf, index


def load_block_confusions(
    labels: Mapping[str, Mapping[int, str | Path]],
    eroded: Mapping[int, str | Path],
    block: int,
    n_classes: int = N_CLASSES,
) -> dict[str, np.ndarray]:
    """Per-block confusion matrices of every method over all areas.

    ``labels``: method -> {area: prediction label raster}; ``eroded``: area -> eroded GT
    raster (the areas compared, in this order). Returns method -> (n_blocks, K, K) int64,
    the blocks of all areas concatenated (areas in ``eroded``'s order, blocks row-major),
    without the blocks whose eroded GT is entirely ``IGNORE`` (the same for every method).
    DataError naming the file when a raster is missing from ``labels``, unreadable, not a
    single-band uint8 raster, or of another shape than its GT.
    """
    return load_blocks(labels, eroded, block, n_classes)[0]


# ------------------------------------------------------------------ block_confusions.csv
#: the file name the comparisons rule writes (``results/tables/``) and a reference folder keeps
BLOCKS_FILE = "block_confusions.csv"
#: ``block_confusions.csv``: one row per method, block and true class; the ``pred_<key>``
#: columns count that block's pixels of the true class predicted as each class (every
#: class of :data:`vaiseg.classes.KEYS`, zeros included, so every kept block is listed)
BLOCK_INDEX_COLUMNS = ("method", "block_px", "area", "block_row", "block_col", "true")
BLOCK_COLUMNS = (*BLOCK_INDEX_COLUMNS, *(f"pred_{k}" for k in KEYS))


def block_frame(conf: Mapping[str, np.ndarray], index: Sequence[tuple[int, int, int]], block: int) -> pd.DataFrame:
    """The per-block confusion matrices of :func:`load_blocks` as the long table of
    ``block_confusions.csv`` (columns :data:`BLOCK_COLUMNS`)."""
    K = len(KEYS)
    rows = []
    for method, cms in conf.items():
        cms = np.asarray(cms)
        if cms.shape != (len(index), K, K):
            raise ValueError(f"{method}: matrices {cms.shape} for {len(index)} blocks of {K} classes")
        for (area, r, c), cm in zip(index, cms):
            for t in range(K):
                rows.append((method, int(block), int(area), int(r), int(c), KEYS[t], *(int(v) for v in cm[t])))
    return pd.DataFrame(rows, columns=list(BLOCK_COLUMNS))


def write_block_confusions(conf: Mapping[str, np.ndarray], index: Sequence[tuple[int, int, int]], block: int, path: str | Path) -> None:
    """Write ``block_confusions.csv`` atomically: what the paired bootstrap resamples, so
    that a run committed as the reference (``docs/reference``) can be compared with
    later runs block by block without its prediction rasters."""
    with atomic_path(path) as tmp:
        block_frame(conf, index, block).to_csv(tmp, index=False)


def read_block_confusions(path: str | Path) -> tuple[dict[str, np.ndarray], list[tuple[int, int, int]], int]:
    """(method -> (n_blocks, K, K) int64, the blocks' index, block size in px) from a
    ``block_confusions.csv``; the blocks in the order in which the file first lists them
    (the writer's: areas as compared, blocks row-major). DataError naming the file when it is unreadable, lacks a
    column, holds a negative or non-integer count, an unknown class, several block sizes,
    or methods listed over different blocks or without every true class per block."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot read the per-block confusion matrices: {e}") from e
    missing = [c for c in BLOCK_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing columns {missing} (expected {list(BLOCK_COLUMNS)})")
    if df.empty:
        raise DataError(path, "no rows")
    numeric = ["block_px", "area", "block_row", "block_col", *BLOCK_COLUMNS[len(BLOCK_INDEX_COLUMNS):]]
    values = df[numeric].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or (values < 0).any().any() or (values % 1 != 0).any().any():
        raise DataError(path, "block positions and counts must be non-negative integers")
    df[numeric] = values.astype(np.int64)
    unknown = sorted(set(df["true"]) - set(KEYS))
    if unknown:
        raise DataError(path, f"unknown classes in column true: {unknown} (expected {list(KEYS)})")
    sizes = sorted(df["block_px"].unique())
    if len(sizes) != 1:
        raise DataError(path, f"several block sizes {sizes}")
    K = len(KEYS)
    conf, index = {}, None
    for method, g in df.groupby("method", sort=False):
        blocks = list(dict.fromkeys(zip(g["area"], g["block_row"], g["block_col"])))
        if index is None:  # the blocks in the order the file lists them first
            index, pos = blocks, {b: i for i, b in enumerate(blocks)}
        elif set(blocks) != set(index):
            raise DataError(path, f"{method} is listed over other blocks than {next(iter(conf))}")
        b = np.array([pos[x] for x in zip(g["area"], g["block_row"], g["block_col"])], dtype=np.intp)
        t = g["true"].map({k: i for i, k in enumerate(KEYS)}).to_numpy(dtype=np.intp)
        if len(g) != len(blocks) * K or len(set(zip(b.tolist(), t.tolist()))) != len(g):
            raise DataError(path, f"{method}: every block needs exactly one row per true class ({K})")
        cms = np.zeros((len(index), K, K), dtype=np.int64)
        cms[b, t] = g[[f"pred_{k}" for k in KEYS]].to_numpy(dtype=np.int64)
        conf[str(method)] = cms
    return conf, [tuple(int(v) for v in b) for b in index], int(sizes[0])


def blocks_mismatch(a: tuple, b: tuple, methods: Sequence[str]) -> str | None:
    """Why two sides' per-block matrices cannot be compared block by block, or None.
    ``a``, ``b``: (method -> matrices, index, block px) as :func:`read_block_confusions`
    returns them. The same data means the same blocks of the same size and, per method,
    the same scored pixels per block and true class (the eroded ground truth)."""
    (ca, ia, pa), (cb, ib, pb) = a, b
    if (pa, ia) != (pb, ib):
        return f"other validation blocks ({len(ib)} of {pb} px against {len(ia)} of {pa} px): other areas or block size"
    for m in methods:
        if not np.array_equal(np.asarray(ca[m]).sum(axis=2), np.asarray(cb[m]).sum(axis=2)):
            return f"{m}: scored pixels per block and true class differ: the runs were not made on the same data"
    return None


# --------------------------------------------------------------------------- metrics
def metric_values(cms: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` in percent (unrounded) of confusion matrices (..., K, K), NaN where
    undefined: any F1/OA cell of Tables 1-2 (:data:`CELL_METRICS`), by the formulas of
    :func:`vaiseg.metrics.scores`: ``overall_acc`` = trace / total, ``<class>_f1`` =
    2 TP / (2 TP + FP + FN) of that class, ``avg_f1`` the mean of the scored classes'
    F1s that are defined (NaN when none is)."""
    cms = np.asarray(cms, dtype=np.float64)
    if metric == "overall_acc":
        return _ratio_pct(np.trace(cms, axis1=-2, axis2=-1), cms.sum(axis=(-2, -1)))
    if metric == "avg_f1":
        f1s = np.stack([_class_f1(cms, c) for c in SCORED], axis=-1)
        with warnings.catch_warnings():  # all-NaN rows: NaN, as scores() gives None
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(f1s, axis=-1)
    if metric in _F1_CLASS:
        return _class_f1(cms, _F1_CLASS[metric])
    raise ConfigError(f"unknown comparison metric {metric!r} (one of {CELL_METRICS})")


def _ratio_pct(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1) * 100.0, np.nan)


def _class_f1(cms: np.ndarray, c: int) -> np.ndarray:
    tp = cms[..., c, c]
    return _ratio_pct(2 * tp, cms[..., c, :].sum(-1) + cms[..., :, c].sum(-1))  # den = 2 TP + FN + FP


def point_estimate(cm: np.ndarray, metric: str) -> float:
    """The Table 1/2 cell of ``metric`` for a pooled (K, K) matrix (percent, 2 decimals,
    NaN when undefined): :func:`vaiseg.reporting.tables.table_row`."""
    if metric not in CELL_METRICS:
        raise ConfigError(f"unknown comparison metric {metric!r} (one of {CELL_METRICS})")
    return float(table_row("", np.asarray(cm))[metric])


def best_member(conf: Mapping[str, np.ndarray], members: Sequence[str], metric: str) -> str:
    """The member with the higher ``metric`` on all blocks (unrounded; the first listed
    on a tie; an undefined value counts as lowest)."""
    if not members:
        raise ValueError("no members")
    values = [metric_values(np.asarray(conf[m]).sum(0), metric) for m in members]
    keyed = [(-math.inf if not np.isfinite(v) else float(v)) for v in values]
    return members[int(np.argmax(keyed))]


# --------------------------------------------------------------------------- bootstrap
def resample_counts(n_blocks: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n_blocks) int64: how often each block is drawn in each resample of
    ``n_blocks`` block indices drawn with replacement (``default_rng(seed).integers``)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ConfigError(f"report.bootstrap.samples must be a positive integer, got {samples!r}")
    if n_blocks < 1:
        raise DataError(None, "comparisons: no blocks to resample")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(samples, n_blocks))
    flat = idx + (np.arange(samples, dtype=np.int64) * n_blocks)[:, None]
    return np.bincount(flat.ravel(), minlength=samples * n_blocks).reshape(samples, n_blocks)


def resampled_confusions(conf: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, K, K) confusion matrices summed over the blocks of each resample: one matrix
    product of the (B, n_blocks) counts with the (n_blocks, K*K) block matrices (float64,
    exact for counts below 2**53)."""
    conf = np.asarray(conf)
    n, K, _ = conf.shape
    if counts.shape[1] != n:
        raise ValueError(f"counts for {counts.shape[1]} blocks, confusions of {n}")
    return (counts.astype(np.float64) @ conf.reshape(n, K * K).astype(np.float64)).reshape(-1, K, K)


def _check_confidence(confidence) -> float:
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        c = math.nan
    if not 0 < c < 1:
        raise ConfigError(f"report.bootstrap.confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


def _floor2(x: float) -> float:
    return math.floor(round(x * 100, 6)) / 100


def _ceil2(x: float) -> float:
    return math.ceil(round(x * 100, 6)) / 100


def percentile_interval(differences: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """(low, high, n_used): the two-sided percentile interval of the finite
    ``differences`` (NaN, NaN, 0 when none is finite), unrounded."""
    c = _check_confidence(confidence)
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not d.size:
        return math.nan, math.nan, 0
    lo, hi = np.percentile(d, [100 * (1 - c) / 2, 100 * (1 + c) / 2])
    return float(lo), float(hi), int(d.size)


def supports(ci_low: float, ci_high: float) -> str:
    """``a > b`` / ``a < b`` when the interval excludes 0, else ``no difference shown``."""
    if np.isfinite(ci_low) and ci_low > 0:
        return "a > b"
    if np.isfinite(ci_high) and ci_high < 0:
        return "a < b"
    return "no difference shown"


def claim_specs(fusions: Mapping[str, Sequence[str]] = FUSIONS) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The paper's claims (§5) as (claim, metric, a, candidates for b): FCN-MFB vs FCN
    and PB vs FCN on car F1; each fusion vs its best member on OA and car F1."""
    specs = [(CLAIM_MFB, "car_f1", "FCN-MFB", ("FCN",)), (CLAIM_PB, "car_f1", "PB", ("FCN",))]
    for fusion, members in fusions.items():
        for metric in METRICS:
            specs.append((CLAIM_FUSION, metric, fusion, tuple(members)))
    return specs


def compare(
    conf: Mapping[str, np.ndarray],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    specs: Sequence[tuple[str, str, str, Sequence[str]]] | None = None,
) -> pd.DataFrame:
    """The comparison table (columns :data:`COLUMNS`) from per-block confusion matrices.

    ``conf``: method -> (n_blocks, K, K), the same blocks in the same order for every
    method (:func:`load_block_confusions`). ``specs``: :func:`claim_specs` by default;
    a spec with several candidates for ``b`` compares with the best of them
    (:func:`best_member`). One set of resamples (``seed``) serves every row.
    """
    confidence = _check_confidence(confidence)
    specs = claim_specs() if specs is None else specs
    needed = sorted({m for _, _, a, bs in specs for m in (a, *bs)} - set(conf))
    if needed:
        raise DataError(None, f"comparisons: no predictions for {needed}")
    sizes = {m: np.asarray(c).shape for m, c in conf.items()}
    shape = next(iter(sizes.values()))
    if len(shape) != 3 or shape[1] != shape[2] or any(s != shape for s in sizes.values()):
        raise ValueError(f"per-block confusion matrices must share one (n_blocks, K, K) shape, got {sizes}")
    n_blocks = shape[0]
    counts = resample_counts(n_blocks, samples, seed)
    cache: dict[tuple[str, str], np.ndarray] = {}
    resampled: dict[str, np.ndarray] = {}

    def boot(method: str, metric: str) -> np.ndarray:
        if (method, metric) not in cache:
            if method not in resampled:
                resampled[method] = resampled_confusions(conf[method], counts)
            cache[method, metric] = metric_values(resampled[method], metric)
        return cache[method, metric]

    rows = []
    for claim, metric, a, candidates in specs:
        b = candidates[0] if len(candidates) == 1 else best_member(conf, list(candidates), metric)
        a_value = point_estimate(np.asarray(conf[a]).sum(0), metric)
        b_value = point_estimate(np.asarray(conf[b]).sum(0), metric)
        lo, hi, used = percentile_interval(boot(a, metric) - boot(b, metric), confidence)
        ci_low = _floor2(lo) if np.isfinite(lo) else math.nan
        ci_high = _ceil2(hi) if np.isfinite(hi) else math.nan
        rows.append(dict(
            claim=claim, metric=metric, a=a, b=b, a_value=a_value, b_value=b_value,
            difference=round(a_value - b_value, 2) if np.isfinite(a_value - b_value) else math.nan,
            ci_low=ci_low, ci_high=ci_high, confidence=confidence, n_blocks=int(n_blocks),
            n_boot=used, supports=supports(ci_low, ci_high),
        ))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def comparisons(
    labels: Mapping[str, Mapping[int, str | Path]],
    eroded: Mapping[int, str | Path],
    *,
    block: int = 256,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    blocks_csv: str | Path | None = None,
) -> pd.DataFrame:
    """The paired bootstrap table of the paper's claims from the prediction label
    rasters (``labels``: method -> {area: path}) and the eroded GT (``eroded``: area ->
    path) of the validation areas: :func:`load_blocks` then :func:`compare`.
    ``blocks_csv``: also write the per-block matrices there (:func:`write_block_confusions`)."""
    _check_block(block)
    _check_confidence(confidence)
    conf, index = load_blocks(labels, eroded, block)
    df = compare(conf, samples=samples, confidence=confidence, seed=seed)
    if blocks_csv is not None:
        write_block_confusions(conf, index, block, blocks_csv)
    return df


# --------------------------------------------------------------------------- output
_METRIC_NAMES = {"overall_acc": "overall accuracy", "car_f1": "car F1"}


def _cell(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "NaN" if not np.isfinite(v) else f"{v:.2f}"


def to_markdown(df: pd.DataFrame, *, block: int, samples: int | None = None, seed: int | None = None) -> str:
    """``comparisons.md``: a short account of the method, its caveat and the table."""
    n_blocks = int(df["n_blocks"].iloc[0]) if len(df) else 0
    conf = float(df["confidence"].iloc[0]) if len(df) else math.nan
    pct = f"{100 * conf:g} %"
    drawn = f"Each of {samples} resamples" if samples is not None else "Each resample"
    seeded = f" (seed {seed})" if seed is not None else ""
    lines = [
        "# Paired bootstrap comparisons of the paper's claims (§5)",
        "",
        f"Method: every validation area is cut into square blocks of {block} px (edge blocks are "
        f"the smaller remainders; blocks whose eroded ground truth is entirely ignored are dropped), "
        f"{n_blocks} blocks in all. {drawn}{seeded} draws {n_blocks} blocks with "
        "replacement; both methods of a comparison are scored on the *same* resampled blocks "
        "(paired), each from the confusion matrix summed over them (eroded ground truth, ISPRS "
        "protocol), and the difference is a − b in percentage points. The interval is the "
        f"{pct} percentile interval of those differences, rounded outward to 2 decimals. "
        "`a_value`, `b_value` and `difference` are on all blocks, i.e. the cells of Tables 1-2. "
        "Resamples in which a metric is undefined (car F1 with no car pixel true or predicted) "
        "are left out of that row; `n_boot` is the number used. For *fusion vs best member*, "
        "`b` is the member with the higher value of that metric on all blocks.",
        "",
        "Reading: an interval that lies above 0 supports a > b, one below 0 supports a < b. "
        "An interval that includes 0 means these data do not show a difference at this "
        "confidence; it does not show that the methods are equal.",
        "",
        "Caveat: blocks are not independent samples of the world. Neighbouring blocks of one "
        "area share buildings, streets, vegetation and lighting, so the block-to-block spread "
        "understates the area-to-area spread: the intervals are optimistic (too narrow), "
        "most so when there are few validation areas.",
        "",
    ]
    cols = list(COLUMNS)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if c in ("claim", "metric", "a", "b", "supports") else "---:" for c in cols) + "|")
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c == "metric":
                v = _METRIC_NAMES.get(v, v)
            elif c in ("n_blocks", "n_boot"):
                v = int(v)
            cells.append(_cell(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparisons(
    df: pd.DataFrame,
    out_csv: str | Path,
    out_md: str | Path,
    *,
    block: int,
    samples: int | None = None,
    seed: int | None = None,
) -> None:
    """Write ``comparisons.csv`` (columns :data:`COLUMNS`, NaN spelled ``NaN``) and
    ``comparisons.md``, each atomically."""
    if list(df.columns) != list(COLUMNS):
        raise ValueError(f"unexpected columns {list(df.columns)}")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, na_rep="NaN")
    write_text(out_md, to_markdown(df, block=block, samples=samples, seed=seed))
    log.info("comparisons -> %s:\n%s", out_csv, df.to_string(index=False))
