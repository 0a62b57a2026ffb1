"""ISPRS evaluation: confusion matrix, per-class precision/recall/F1/IoU, avg F1, OA (§3, §5).

Protocol (§3, ISPRS): predictions are compared with the *eroded* ground truth, where
class boundaries (a disk of radius 3) are ``IGNORE`` (255) and not counted; secondary
numbers use the full ground truth. One confusion matrix over the six classes is
accumulated over all validation pixels ("pooled"), and one per area.

Conventions (the paper is silent on these; each is tested in tests/test_metrics.py):

- Confusion matrices are ``(K, K)`` int64, rows = true class, columns = predicted class.
- All scores are *fractions* in [0, 1] (tables multiply by 100).
- ``<class>_acc`` is the per-class recall (producer's accuracy), as in the output contract;
  ``<class>_recall`` holds the same number under its own name.
- ``avg_f1`` is the mean F1 of the five scored classes (clutter is not scored, §5); a
  class that is absent from the ground truth *and* never predicted has an undefined
  F1 (``None`` in JSON) and is left out of the mean (``n_f1_classes`` says how many
  classes entered it).
- ``overall_acc`` = trace / sum over *all* non-ignored pixels, clutter pixels included
  (ISPRS: "percentage of pixels labelled correctly"), so a clutter pixel predicted as
  clutter counts as correct and one predicted as anything else as wrong.
- Predicted value ``IGNORE`` (255) means "unclassified" (the PB's 32-px border when
  ``infer.pb_border: none``, as in the paper's Fig. 3): such pixels are left out of the
  matrix and counted in ``unclassified``. Any other prediction outside 0..K-1, or a
  ground-truth value outside 0..K-1 that is not ``IGNORE``, is a DataError.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .classes import IGNORE, KEYS, N_CLASSES, SCORED
from .errors import DataError

#: pixels per chunk of the vectorised confusion matrix (keeps the int buffer in cache)
_CHUNK = 1 << 18


def joint_histogram(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(256, 256) int64 joint histogram of two uint8 label images (row = true value).

    Vectorised: one ``np.bincount`` over ``true << 8 | pred`` per chunk of 2**18 pixels
    (no Python loop over pixels); > 100 Mpx/s on one core.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shape mismatch: y_true {y_true.shape} vs y_pred {y_pred.shape}")
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.dtype != np.uint8:
            if a.size and (a.min() < 0 or a.max() > 255):
                raise ValueError(f"{name}: values must lie in 0..255, got {a.min()}..{a.max()}")
    t = np.ascontiguousarray(y_true, dtype=np.uint8).reshape(-1)
    p = np.ascontiguousarray(y_pred, dtype=np.uint8).reshape(-1)
    hist = np.zeros(1 << 16, dtype=np.int64)
    buf = np.empty(min(_CHUNK, max(t.size, 1)), dtype=np.intp)
    for s in range(0, t.size, _CHUNK):
        a, b = t[s : s + _CHUNK], p[s : s + _CHUNK]
        bb = buf[: a.size]
        np.left_shift(a, 8, out=bb, dtype=np.intp, casting="unsafe")
        np.bitwise_or(bb, b, out=bb, casting="unsafe")
        hist += np.bincount(bb, minlength=1 << 16)
    return hist.reshape(256, 256)


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int = N_CLASSES,
    ignore: int = IGNORE,
    *,
    return_unclassified: bool = False,
    path: str | Path | None = None,
):
    """Confusion matrix (K, K) int64 of label images ``y_true``, ``y_pred`` (any shape, uint8).

    Rows are true classes, columns predicted classes. Pixels whose true label is
    ``ignore`` are skipped; pixels predicted as ``ignore`` ("unclassified") are skipped
    and, with ``return_unclassified``, counted: returns ``(cm, n_unclassified)``.
    Values outside 0..K-1 other than ``ignore`` raise DataError (``path`` names the file).
    """
    if not 0 < n_classes < 256 or not 0 <= ignore < 256 or ignore < n_classes:
        raise ValueError(f"need 0 < n_classes <= ignore < 256, got {n_classes}, {ignore}")
    try:
        hist = joint_histogram(y_true, y_pred)
    except ValueError as e:
        raise DataError(path, str(e)) from e
    K = n_classes
    bad_true = hist[K:, :].sum() - hist[ignore, :].sum()
    if bad_true:
        vals = sorted(set((np.flatnonzero(hist[K:, :].sum(1)) + K).tolist()) - {ignore})
        raise DataError(path, f"ground truth holds values {vals} outside 0..{K - 1} and {ignore}")
    valid_rows = hist[:K]
    bad_pred = valid_rows[:, K:].sum() - valid_rows[:, ignore].sum()
    if bad_pred:
        vals = sorted(set((np.flatnonzero(valid_rows[:, K:].sum(0)) + K).tolist()) - {ignore})
        raise DataError(path, f"prediction holds values {vals} outside 0..{K - 1} and {ignore}")
    cm = np.ascontiguousarray(valid_rows[:, :K])
    if return_unclassified:
        return cm, int(valid_rows[:, ignore].sum())
    return cm


def _ratio(num: float, den: float):
    return float(num / den) if den > 0 else None


def scores(cm: np.ndarray, keys: tuple[str, ...] = KEYS, scored: tuple[int, ...] = SCORED) -> dict:
    """Per-class and overall scores of a (K, K) confusion matrix (rows true), as fractions.

    Keys per class ``k``: ``k_precision``, ``k_recall``, ``k_acc`` (= recall, the
    contract's "Acc"), ``k_f1`` (= 2 TP / (2 TP + FP + FN)), ``k_iou`` (= TP / (TP + FP + FN)),
    ``k_support`` (true pixels); undefined ratios (0/0) are ``None``. Overall:
    ``avg_f1`` (mean F1 over ``scored``, undefined F1s left out), ``n_f1_classes``,
    ``mean_iou`` (same classes), ``overall_acc`` (trace / total, all classes incl.
    clutter), ``n_pixels``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got {cm.shape}")
    K = cm.shape[0]
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    out: dict = {}
    for i in range(K):
        k = keys[i] if i < len(keys) else f"class{i}"
        out[f"{k}_precision"] = _ratio(tp[i], tp[i] + fp[i])
        out[f"{k}_recall"] = _ratio(tp[i], tp[i] + fn[i])
        out[f"{k}_acc"] = out[f"{k}_recall"]
        out[f"{k}_f1"] = _ratio(2 * tp[i], 2 * tp[i] + fp[i] + fn[i])
        out[f"{k}_iou"] = _ratio(tp[i], tp[i] + fp[i] + fn[i])
        out[f"{k}_support"] = int(tp[i] + fn[i])
    sc = [i for i in scored if i < K]
    f1s = [out[f"{keys[i]}_f1"] for i in sc if out[f"{keys[i]}_f1"] is not None]
    ious = [out[f"{keys[i]}_iou"] for i in sc if out[f"{keys[i]}_iou"] is not None]
    out["avg_f1"] = float(np.mean(f1s)) if f1s else None
    out["n_f1_classes"] = len(f1s)
    out["mean_iou"] = float(np.mean(ious)) if ious else None
    total = int(cm.sum())
    out["overall_acc"] = _ratio(tp.sum(), total)
    out["n_pixels"] = total
    return out


def read_label_raster(path) -> np.ndarray:
    """(H, W) uint8 of a single-band uint8 label raster; DataError naming the file otherwise."""
    from .raster import read_raster

    data, _ = read_raster(path)
    if data.shape[0] != 1:
        raise DataError(path, f"expected a single-band label raster, found {data.shape[0]} bands")
    if data.dtype != np.uint8:
        raise DataError(path, f"expected uint8 labels, found {data.dtype}")
    return data[0]


def evaluate_model(
    pred_paths: list,
    eroded_paths: list,
    full_paths: list,
    areas: list | None = None,
    n_classes: int = N_CLASSES,
) -> dict:
    """Evaluate label rasters against the eroded (primary) and full (secondary) GT (§3).

    ``pred_paths[i]``, ``eroded_paths[i]``, ``full_paths[i]`` belong to area
    ``areas[i]`` (default: 0, 1, ...). Rasters are single-band uint8 class indices of
    equal shape. Returns a JSON-ready dict::

        {"units": "fraction", "classes": [...keys], "areas": [...],
         "eroded": {"pooled": {scores..., "confusion_matrix": [[K x K]], "unclassified": n},
                    "per_area": {"<area>": {...same...}}},
         "full": {...same...}}

    Pooled = one confusion matrix summed over all areas (ISPRS), not a mean of areas.
    """
    if not (len(pred_paths) == len(eroded_paths) == len(full_paths)) or not pred_paths:
        raise ValueError("need equally many (>0) prediction, eroded-GT and full-GT paths")
    areas = list(areas) if areas is not None else list(range(len(pred_paths)))
    if len(areas) != len(pred_paths):
        raise ValueError("areas must match the paths")
    K = n_classes
    result: dict = {"units": "fraction", "classes": list(KEYS[:K]), "areas": [str(a) for a in areas]}
    per: dict = {"eroded": {}, "full": {}}
    pooled = {g: (np.zeros((K, K), np.int64), 0) for g in per}
    for area, pp, ep, fp in zip(areas, pred_paths, eroded_paths, full_paths):
        pred = read_label_raster(pp)
        for gt_kind, gp in (("eroded", ep), ("full", fp)):
            gt = read_label_raster(gp)
            if gt.shape != pred.shape:
                raise DataError(pp, f"prediction shape {pred.shape} differs from ground truth {gp} {gt.shape}")
            try:
                cm, unc = confusion_matrix(gt, pred, K, return_unclassified=True, path=gp)
            except DataError as e:
                raise DataError(e.path, f"{e.problem} (prediction {pp})") from e
            per[gt_kind][str(area)] = dict(scores(cm), confusion_matrix=cm.tolist(), unclassified=unc)
            c0, u0 = pooled[gt_kind]
            pooled[gt_kind] = (c0 + cm, u0 + unc)
    for gt_kind in per:
        cm, unc = pooled[gt_kind]
        result[gt_kind] = {
            "pooled": dict(scores(cm), confusion_matrix=cm.tolist(), unclassified=unc),
            "per_area": per[gt_kind],
        }
    return result


def write_metrics(result: dict, json_path, confusion_csv_path=None) -> None:
    """Write :func:`evaluate_model`'s dict as JSON (and the pooled eroded-GT matrix as CSV)."""
    from .atomic import write_json, write_text

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    write_json(json_path, clean(result))
    if confusion_csv_path is not None:
        keys = result["classes"]
        lines = [",".join(["gt", "true"] + [f"pred_{k}" for k in keys])]
        for gt_kind in ("eroded", "full"):
            cm = result[gt_kind]["pooled"]["confusion_matrix"]
            lines += [",".join([gt_kind, keys[i]] + [str(v) for v in row]) for i, row in enumerate(cm)]
        write_text(confusion_csv_path, "\n".join(lines) + "\n")
