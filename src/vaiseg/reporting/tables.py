"""Tables 1 and 2 of the paper (§5) from ISPRS confusion matrices (§3).

The table rows are recomputed from the pooled confusion matrix of each model
(``results/metrics/{model}.json`` -> ``eroded.pooled.confusion_matrix``: 6x6 counts, rows =
truth, columns = prediction, accumulated over all validation pixels, eroded-GT
boundaries ignored), so every number in a table is traceable to pixel counts.

Column conventions (ARCHITECTURE.md output contract):
- all values in percent, 2 decimals;
- ``<class>_f1``: per-class F1 score;
- ``<class>_acc``: per-class *recall* (producer's accuracy). The paper does not define
  its "Acc" (see ``paper/README.md``); the extended tables therefore also
  give precision, recall and IoU per class;
- ``avg_f1``: mean of the five scored classes' F1 (clutter is not scored, §5/ISPRS),
  averaged before rounding;
- ``overall_acc``: trace / total over all non-ignored pixels (clutter included).

Scores come from :func:`vaiseg.metrics.scores` (the one implementation): an undefined
ratio (0/0, a class absent from both truth and prediction) is written as NaN, and
``avg_f1`` is the mean of the defined F1s (``vaiseg.metrics`` convention).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_text
from ..classes import CLASSES, KEYS, N_CLASSES, SCORED
from ..errors import DataError
from ..metrics import scores

#: Table 1 rows (single CNNs, §4.1-4.2) and Table 2 rows (SVM fusions, §4.4)
log = logging.getLogger(__name__)

TABLE1_METHODS = ("PB", "FCN", "FCN-MFB")
TABLE2_METHODS = ("PB+FCN", "PB+FCN-MFB", "FCN+FCN-MFB", "ALL")
#: the contract's table columns (= paper_results.csv without ``table``)
TABLE_COLUMNS = (
    ["method"]
    + [f"{KEYS[c]}_{m}" for c in SCORED for m in ("f1", "acc")]
    + ["avg_f1", "overall_acc"]
)
VALUE_COLUMNS = TABLE_COLUMNS[1:]


def _scores(cm: np.ndarray) -> dict:
    """:func:`vaiseg.metrics.scores` (fractions) with undefined ratios as NaN."""
    return {k: (math.nan if v is None else v) for k, v in scores(cm).items()}


def load_confusion(path: str | Path, gt: str = "eroded") -> np.ndarray:
    """Read the pooled confusion matrix of one model from its metrics JSON
    (``{gt}.pooled.confusion_matrix``, written by :func:`vaiseg.metrics.evaluate_model`).

    ``gt``: ``"eroded"`` (ISPRS protocol, boundaries ignored) or ``"full"``.
    Returns (6, 6) int64 counts. Raises DataError naming the file when the key is
    missing or the matrix is not a 6x6 array of non-negative counts.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DataError(path, "metrics file not found (run the evaluate rule)") from e
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from e
    try:
        raw = doc[gt]["pooled"]["confusion_matrix"]  # vaiseg.metrics.evaluate_model layout
    except (KeyError, TypeError) as e:
        raise DataError(path, f"missing key {gt}.pooled.confusion_matrix") from e
    cm = np.asarray(raw, dtype=np.float64)
    if cm.shape != (N_CLASSES, N_CLASSES):
        raise DataError(path, f"{gt}.pooled.confusion_matrix has shape {cm.shape}, expected ({N_CLASSES}, {N_CLASSES})")
    if not np.all(np.isfinite(cm)) or (cm < 0).any() or (cm != np.round(cm)).any():
        raise DataError(path, f"{gt}.pooled.confusion_matrix must hold non-negative integer counts")
    if cm.sum() == 0:
        raise DataError(path, f"{gt}.pooled.confusion_matrix is all zeros (no scored pixels)")
    return cm.astype(np.int64)


def _pct(x: float) -> float:
    return round(float(x) * 100.0, 2) if np.isfinite(x) else math.nan


def table_row(method: str, cm: np.ndarray) -> dict:
    """One row of Table 1/2 (contract columns, percent, 2 decimals) from a 6x6 matrix."""
    s = _scores(cm)
    row: dict = {"method": method}
    for c in SCORED:
        row[f"{KEYS[c]}_f1"] = _pct(s[f"{KEYS[c]}_f1"])
        row[f"{KEYS[c]}_acc"] = _pct(s[f"{KEYS[c]}_recall"])
    row["avg_f1"] = _pct(s["avg_f1"])
    row["overall_acc"] = _pct(s["overall_acc"])
    return row


def extended_row(method: str, cm: np.ndarray, cm_full: np.ndarray | None = None) -> dict:
    """Precision, recall, F1 and IoU (percent) of all six classes (clutter included,
    marked by its key; it is not part of ``avg_f1``), ``avg_f1``, ``overall_acc``, and
    ``overall_acc_full`` (against the full GT, boundaries scored) when ``cm_full`` is given."""
    s = _scores(cm)
    row: dict = {"method": method}
    for c in range(N_CLASSES):
        for m in ("precision", "recall", "f1", "iou"):
            row[f"{KEYS[c]}_{m}"] = _pct(s[f"{KEYS[c]}_{m}"])
    row["avg_f1"] = _pct(s["avg_f1"])
    row["overall_acc"] = _pct(s["overall_acc"])
    if cm_full is not None:
        sf = _scores(cm_full)
        row["avg_f1_full"] = _pct(sf["avg_f1"])
        row["overall_acc_full"] = _pct(sf["overall_acc"])
    return row


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    return "NaN" if not np.isfinite(v) else f"{v:.2f}"


def to_markdown(df: pd.DataFrame, title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (numbers with 2 decimals)."""
    lines = [f"**{title}**", ""] if title else []
    cols = list(df.columns)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if c == "method" else "---:" for c in cols) + "|")
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for ch in ("\\", "%", "&", "_", "#", "$"):
        text = text.replace(ch, "\\" + ch if ch != "\\" else r"\textbackslash{}")
    return text


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs LaTeX table laid out like the paper's (two sub-columns F1/Acc per class)."""
    classes = [CLASSES[c] for c in SCORED]
    head1 = " & ".join(["Method"] + [rf"\multicolumn{{2}}{{c}}{{{c.name}}}" for c in classes] + [r"Avg F1", r"Overall Acc"])
    head2 = " & ".join([""] + ["F1 & Acc"] * len(classes) + ["", ""])
    body = []
    for _, r in df.iterrows():
        cells = [_tex_escape(str(r["method"]))] + [_fmt(r[c]) for c in VALUE_COLUMNS]
        body.append(" & ".join(cells) + r" \\")
    ncol = len(TABLE_COLUMNS)
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\begin{{tabular}}{{l{'r' * (ncol - 1)}}}",
            r"\toprule",
            head1 + r" \\",
            head2 + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{_tex_escape(caption)}}}",
            rf"\label{{{label}}}",
            r"\end{table}",
            "",
        ]
    )


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table CSV atomically (2 decimals, NaN spelled ``NaN``)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.2f", na_rep="NaN")


def build_table(
    metrics: dict[str, str | Path],
    out_csv: str | Path,
    out_md: str | Path,
    out_tex: str | Path,
    out_extended: str | Path,
    *,
    name: str,
    caption: str,
) -> pd.DataFrame:
    """Write one paper table (CSV, Markdown, LaTeX) and its extended CSV.

    ``metrics``: method -> path of its metrics JSON, in row order. ``name`` is the
    table's short name (``table1``) used as LaTeX label. Returns the table frame.
    """
    rows, ext = [], []
    for method, path in metrics.items():
        cm = load_confusion(path, "eroded")
        try:
            cm_full = load_confusion(path, "full")
        except DataError:
            cm_full = None
        rows.append(table_row(method, cm))
        ext.append(extended_row(method, cm, cm_full))
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    write_csv(df, out_csv)
    write_text(out_md, to_markdown(df, caption))
    write_text(out_tex, to_latex(df, caption, f"tab:{name}"))
    write_csv(pd.DataFrame(ext), out_extended)
    log.info("%s -> %s (+ md, tex, extended):\n%s", name, out_csv, df.to_string(index=False))
    return df


def build_tables(metrics: dict[str, str | Path], out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Tables 1 and 2 from the metrics JSONs of all models (method -> path; the CNNs
    of Table 1 and the fusions of Table 2 must all be present).

    ``out`` keys: ``table1_csv, table1_md, table1_tex, table1_extended`` and the same
    for ``table2``. Returns {"table1": frame, "table2": frame}.
    """
    frames = {}
    for name, methods, caption in (
        ("table1", TABLE1_METHODS, "Table 1: single CNNs on the validation areas (%, eroded GT)."),
        ("table2", TABLE2_METHODS, "Table 2: SVM fusions on the validation areas (%, eroded GT)."),
    ):
        missing = [m for m in methods if m not in metrics]
        if missing:
            raise DataError(None, f"{name}: no metrics for {missing}")
        frames[name] = build_table(
            {m: metrics[m] for m in methods},
            out[f"{name}_csv"], out[f"{name}_md"], out[f"{name}_tex"], out[f"{name}_extended"],
            name=name, caption=caption,
        )
    return frames
