"""Did each CNN reach its held-out plateau? (issue 12) -> results/tables/convergence.csv/.md

One row per CNN and seed from its ``history.csv`` (:mod:`vaiseg.training` writes
``evals_per_epoch`` held-out evaluations per epoch): the mean held-out OA and loss of the
last 20 % of the evaluations against the 20 % before them
(:func:`vaiseg.training.convergence`). Converged: OA gains < 1 point and loss falls
< 10 %. A single held-out value is too noisy to judge by; window means are not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..errors import DataError
from ..training import convergence

log = logging.getLogger(__name__)

COLUMNS = ("model", "seed", "evaluations", "window", "epochs", "samples", "oa_prev", "oa_last", "oa_gain_points",
           "loss_prev", "loss_last", "loss_fall_pct", "car_f1_gain_points", "converged")


def read_history(path) -> pd.DataFrame:
    """A ``history.csv``; DataError naming the file when it is missing or unreadable."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError as e:
        raise DataError(path, "training history not found (run the train rule)") from e
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise DataError(path, f"cannot read training history ({e})") from e


def _read(path) -> pd.DataFrame:
    df = read_history(path)
    missing = {"val_oa", "val_loss"} - set(df.columns)
    if df.empty or missing:
        raise DataError(path, f"training history needs rows with val_oa and val_loss (missing: {sorted(missing)})")
    return df


def convergence_table(histories: dict) -> pd.DataFrame:
    """``histories``: {(model, seed): history.csv} -> one row per model and seed."""
    rows = []
    for (model, seed), path in histories.items():
        df = _read(path)
        c = convergence(df)
        rows.append({
            "model": model,
            "seed": int(seed),
            "evaluations": c["evaluations"],
            "window": c["window"],
            "epochs": float(df["epoch"].iloc[-1]) if "epoch" in df else float("nan"),
            "samples": int(df["samples"].iloc[-1]) if "samples" in df else -1,
            "oa_prev": round(100 * c["oa_prev"], 2),
            "oa_last": round(100 * c["oa_last"], 2),
            "oa_gain_points": round(c["oa_gain_points"], 2),
            "loss_prev": round(c["loss_prev"], 4),
            "loss_last": round(c["loss_last"], 4),
            "loss_fall_pct": round(100 * c["loss_fall"], 1),
            "car_f1_gain_points": round(c["car_f1_gain_points"], 2),
            "converged": "too few evaluations" if c["converged"] is None else ("yes" if c["converged"] else "no"),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def to_markdown(df: pd.DataFrame) -> str:
    lines = [
        "# Convergence of the CNNs",
        "",
        "Held-out patches (results/patches, `val_fraction`; the FCNs' are disjoint windows whose labels no training patch sees),",
        "evaluated `evals_per_epoch` times per epoch.",
        "Criterion: the mean of the last 20 % of the evaluations against the 20 % before them;",
        "converged when held-out OA gains < 1 point and held-out loss falls < 10 %.",
        "",
        "| model | seed | evaluations | OA before (%) | OA last (%) | OA gain (pts) | loss before | loss last | loss fall (%) | car F1 gain (pts) | converged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples():
        lines.append(f"| {r.model} | {r.seed} | {r.evaluations} | {r.oa_prev:.2f} | {r.oa_last:.2f} | {r.oa_gain_points:+.2f} | "
                     f"{r.loss_prev:.4f} | {r.loss_last:.4f} | {r.loss_fall_pct:+.1f} | {r.car_f1_gain_points:+.2f} | {r.converged} |")
    n_yes = int((df["converged"] == "yes").sum())
    lines += ["", f"{n_yes} of {len(df)} trainings reached their held-out plateau.",
              "The held-out car F1 gain is reported, not judged: cars are ~1 % of the pixels, so OA and loss can",
              "plateau while the car F1 still climbs (on the demo, doubling the epochs still raises some",
              "validation-area car F1 cells by many points; docs/results.md, \"Convergence\")."]
    return "\n".join(lines) + "\n"


def write_convergence(histories: dict, csv_path, md_path) -> pd.DataFrame:
    df = convergence_table(histories)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(to_markdown(df))
    log.info("convergence: %s", df[["model", "seed", "oa_gain_points", "loss_fall_pct", "converged"]].to_dict("records"))
    return df
