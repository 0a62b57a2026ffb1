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

Several seeds (config ``seeds``): each seed's tables are written as above under
``results/seeds/<seed>/tables/``; :func:`write_seed_tables` aggregates them into the
tables of ``results/tables/`` with, for every value column ``<col>``, the mean over the
seeds in ``<col>`` and the sample standard deviation (ddof=1; NaN with one seed) in
``<col>_std`` right after it, plus ``n_seeds``. Markdown and LaTeX show "mean ± std".
A cell that is undefined (NaN) in any seed is NaN in the mean (a mixed outcome is not
averaged over the seeds where it happens to be defined).
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
#: name -> (row methods, caption) of the two paper tables
TABLES = {
    "table1": (TABLE1_METHODS, "Table 1: single CNNs on the validation areas (%, eroded GT)."),
    "table2": (TABLE2_METHODS, "Table 2: SVM fusions on the validation areas (%, eroded GT)."),
}
#: suffix of the standard-deviation column of an aggregated (several-seed) table
STD_SUFFIX = "_std"


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


def _latex_table(body: list[list[str]], caption_tex: str, label: str) -> str:
    """The booktabs layout of :func:`to_latex` around rows of ready-made cells
    (method + the 12 value cells); ``caption_tex`` is already LaTeX."""
    classes = [CLASSES[c] for c in SCORED]
    head1 = " & ".join(["Method"] + [rf"\multicolumn{{2}}{{c}}{{{c.name}}}" for c in classes] + [r"Avg F1", r"Overall Acc"])
    head2 = " & ".join([""] + ["F1 & Acc"] * len(classes) + ["", ""])
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
            *(" & ".join(cells) + r" \\" for cells in body),
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{caption_tex}}}",
            rf"\label{{{label}}}",
            r"\end{table}",
            "",
        ]
    )


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs LaTeX table laid out like the paper's (two sub-columns F1/Acc per class)."""
    body = [[_tex_escape(str(r["method"]))] + [_fmt(r[c]) for c in VALUE_COLUMNS] for _, r in df.iterrows()]
    return _latex_table(body, _tex_escape(caption), label)


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
    for name, (methods, caption) in TABLES.items():
        missing = [m for m in methods if m not in metrics]
        if missing:
            raise DataError(None, f"{name}: no metrics for {missing}")
        frames[name] = build_table(
            {m: metrics[m] for m in methods},
            out[f"{name}_csv"], out[f"{name}_md"], out[f"{name}_tex"], out[f"{name}_extended"],
            name=name, caption=caption,
        )
    return frames


# ---- several seeds: mean ± std ------------------------------------------------------


def aggregate_seed_tables(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of one table.

    ``tables``: seed -> that seed's table (a ``method`` column and numeric columns: a
    Table 1/2 CSV or an extended one), in seed order. Every seed must have the same
    rows (methods, in order) and the same columns; DataError naming the seed otherwise.

    Returns the same rows with, for every numeric column ``<col>`` in its order, the
    mean in ``<col>`` and the sample std (ddof=1; NaN with one seed) in ``<col>_std``
    right after it, then ``n_seeds``. NaN in any seed gives NaN (see module docstring).
    Means and stds are rounded to 2 decimals, like the CSV (computed from the seeds'
    tables, which already hold 2 decimals).
    """
    if not tables:
        raise DataError(None, "no per-seed tables to aggregate (config seeds is empty)")
    seeds = list(tables)
    first = seeds[0]
    ref = tables[first]
    if "method" not in ref.columns:
        raise DataError(None, f"seed {first}: table has no 'method' column")
    methods = list(ref["method"])
    columns = list(ref.columns)
    value_cols = [c for c in columns if c != "method"]
    stack = []
    for seed in seeds:
        df = tables[seed]
        if list(df.columns) != columns:
            raise DataError(None, f"seed {seed}: columns {list(df.columns)} differ from seed {first}'s {columns}")
        if list(df["method"]) != methods:
            raise DataError(None, f"seed {seed}: rows {list(df['method'])} differ from seed {first}'s {methods}")
        try:
            vals = df[value_cols].apply(pd.to_numeric).to_numpy(np.float64)
        except (ValueError, TypeError) as e:
            raise DataError(None, f"seed {seed}: non-numeric table value ({e})") from e
        stack.append(vals)
    arr = np.stack(stack)  # (seeds, rows, columns)
    mean = np.round(arr.mean(axis=0), 2)  # NaN propagates
    std = np.round(arr.std(axis=0, ddof=1), 2) if len(seeds) > 1 else np.full_like(mean, np.nan)
    out: dict = {"method": methods}
    for j, c in enumerate(value_cols):
        out[c] = mean[:, j]
        out[c + STD_SUFFIX] = std[:, j]
    out["n_seeds"] = [len(seeds)] * len(methods)
    return pd.DataFrame(out)


def _fmt_pm(mean: float, std: float, pm: str) -> str:
    """``"86.20 ± 1.35"``; the mean alone when the std is undefined (one seed)."""
    if not np.isfinite(mean):
        return "NaN"
    return f"{mean:.2f}" if not np.isfinite(std) else f"{mean:.2f}{pm}{std:.2f}"


def _seed_cells(df: pd.DataFrame, pm: str) -> list[list[str]]:
    """Rows of [method, "mean ± std" x value columns] of an aggregated table."""
    missing = [c for c in VALUE_COLUMNS for c in (c, c + STD_SUFFIX) if c not in df.columns]
    if missing:
        raise DataError(None, f"aggregated table lacks columns {missing}")
    return [[str(r["method"])] + [_fmt_pm(float(r[c]), float(r[c + STD_SUFFIX]), pm) for c in VALUE_COLUMNS]
            for _, r in df.iterrows()]


def seeds_phrase(seeds: list[int]) -> str:
    """``"mean ± std over seeds 0, 1, 2 (n = 3, sample std)"``."""
    s = ", ".join(str(x) for x in seeds)
    if len(seeds) == 1:
        return f"seed {s} only (n = 1: no standard deviation)"
    return f"mean ± std over seeds {s} (n = {len(seeds)}, sample std)"


def to_markdown_seeds(df: pd.DataFrame, title: str) -> str:
    """Markdown of an aggregated table: one "mean ± std" cell per value column."""
    lines = [f"**{title}**", ""] if title else []
    cols = ["method"] + VALUE_COLUMNS
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if c == "method" else "---:" for c in cols) + "|")
    lines += ["| " + " | ".join(cells) + " |" for cells in _seed_cells(df, " ± ")]
    return "\n".join(lines) + "\n"


def to_latex_seeds(df: pd.DataFrame, caption: str, label: str, seeds: list[int]) -> str:
    """LaTeX of an aggregated table (layout of :func:`to_latex`), cells ``mean $\\pm$ std``,
    the caption followed by the seeds it is over."""
    body = [[_tex_escape(cells[0])] + cells[1:] for cells in _seed_cells(df, r" $\pm$ ")]
    caption_tex = _tex_escape(caption.rstrip(".")) + "; " + _tex_escape(seeds_phrase(seeds)).replace("±", r"$\pm$") + "."
    return _latex_table(body, caption_tex, label)


def _read_seed_csv(path: str | Path, seed: int, contract: bool) -> pd.DataFrame:
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError as e:
        raise DataError(path, f"seed {seed}: table not found (run the tables rule for this seed)") from e
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(path, f"seed {seed}: cannot read table CSV ({e})") from e
    if contract and list(df.columns) != TABLE_COLUMNS:
        raise DataError(path, f"seed {seed}: columns {list(df.columns)} differ from the contract's {TABLE_COLUMNS}")
    if "method" not in df.columns:
        raise DataError(path, f"seed {seed}: no 'method' column")
    return df


def _aggregate_files(paths: dict[int, str | Path], contract: bool) -> pd.DataFrame:
    frames = {seed: _read_seed_csv(p, seed, contract) for seed, p in paths.items()}
    try:
        return aggregate_seed_tables(frames)
    except DataError as e:  # name the files too
        raise DataError(None, f"{e.problem} ({', '.join(str(p) for p in paths.values())})") from e


def write_seed_tables(per_seed: dict[int, dict[str, str | Path]], out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Tables 1-2 as mean ± std over seeds, from each seed's table CSVs.

    ``per_seed``: seed -> {``table1``, ``table2``, ``table1_extended``,
    ``table2_extended``: path of that seed's CSV}, in seed order. ``out``: the keys of
    :func:`build_tables` (``table1_csv, table1_md, table1_tex, table1_extended`` and the
    same for ``table2``). Writes (atomically) the aggregated CSVs (numbers, 2 decimals,
    ``<col>`` + ``<col>_std`` + ``n_seeds``), Markdown and LaTeX ("mean ± std", the
    seeds in title and caption). Returns {"table1": frame, "table2": frame}.
    """
    if not per_seed:
        raise DataError(None, "no per-seed tables to aggregate (config seeds is empty)")
    seeds = [int(s) for s in per_seed]
    frames = {}
    for name, (_, caption) in TABLES.items():
        for key in (name, f"{name}_extended"):
            lacking = [s for s, paths in per_seed.items() if key not in paths]
            if lacking:
                raise DataError(None, f"no {key} path for seeds {lacking}")
        df = _aggregate_files({s: paths[name] for s, paths in per_seed.items()}, contract=True)
        ext = _aggregate_files({s: paths[f"{name}_extended"] for s, paths in per_seed.items()}, contract=False)
        title = f"{caption.rstrip('.')}; {seeds_phrase(seeds)}."
        write_csv(df, out[f"{name}_csv"])
        write_text(out[f"{name}_md"], to_markdown_seeds(df, title))
        write_text(out[f"{name}_tex"], to_latex_seeds(df, caption, f"tab:{name}", seeds))
        write_csv(ext, out[f"{name}_extended"])
        log.info("%s over seeds %s -> %s (+ md, tex, extended):\n%s", name, seeds, out[f"{name}_csv"],
                 to_markdown_seeds(df, ""))
        frames[name] = df
    return frames
