"""Learning-rate range test (Smith 2017, "Cyclical learning rates for training neural
networks", §3.3; fastai's ``lr_find``): how a CNN's training loss answers its learning rate.

From the training's own initial weights (same seed, same optimiser, parameter groups,
loss, batches and gradient clipping as :func:`vaiseg.training.train`), ``steps`` optimiser
steps with the base learning rate rising geometrically from ``lr_min`` to ``lr_max``
(PB's FC1 keeps its fan-in factor, :func:`vaiseg.training.param_groups`); each step's
training loss is recorded with its exponential moving average (``ema_loss``: ``beta``,
bias-corrected as fastai's). The test stops early once that average exceeds
``stop_factor`` x its minimum (the rate has made training diverge). The curve that is read
(``smoothed_loss``) is a centred running mean over ``window_decades`` of rate: the causal
average lags — at beta 0.98 it trails the raw loss by ~50 steps, more than a decade of
rate over 200 steps, which would move the minimum a decade too high. Nothing is written
to the training's checkpoints or model files: the range test is a measurement beside the
pipeline (target ``lr_range``), not part of it.

Reading it (:func:`summarise`): ``lr_min_loss`` is the rate at the smoothed loss's
minimum, ``lr_steepest`` where the smoothed loss falls fastest per decade of rate (before
the minimum); ``lr_suggested`` = ``lr_min_loss / 10``, fastai's rule of thumb ("an order
of magnitude below the minimum"; Smith's own advice for cyclical rates is a third to a
quarter of the minimum's rate). These are heuristics about the first few hundred steps at
a rising rate, not about where a cosine schedule over many epochs ends: the demo's rates
were chosen on held-out patches over whole trainings (docs/results.md "Convergence"), and the range
test is reported beside them.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from tqdm import tqdm

from .atomic import atomic_path, write_json, write_text
from .errors import ConfigError, DataError
from .config import MODELS
from .training import (
    MEMORY_FORMAT,
    TrainSettings,
    _build,
    _optimizer,
    batch_loss,
    datasets,
    deterministic_on_cpu,
    epoch_loader,
    loss_weights,
    optimiser_step,
    resolve_device,
    steps_per_epoch,
)

log = logging.getLogger(__name__)

#: one row per optimiser step
COLUMNS = ("step", "lr", "loss", "ema_loss", "smoothed_loss")
#: :func:`summarise`'s keys (besides model and the settings)
SUMMARY_KEYS = ("lr_min_loss", "lr_steepest", "lr_suggested", "diverged_at_lr", "min_smoothed_loss", "steps_done")


def rates(lr_min: float, lr_max: float, steps: int) -> np.ndarray:
    """The base learning rate of each of ``steps`` steps: geometric from lr_min to lr_max."""
    if not (0 < lr_min < lr_max) or steps < 2:
        raise ConfigError(f"lr range test needs 0 < lr_min < lr_max and steps >= 2, got {lr_min!r}, {lr_max!r}, {steps!r}")
    return np.geomspace(lr_min, lr_max, int(steps))


def centred_mean(values, window: int) -> np.ndarray:
    """Running mean over ``window`` values centred on each (edges: the nearest value repeated)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    return ndimage.uniform_filter1d(v, size=max(1, int(window)), mode="nearest")


def summarise(lrs, smoothed, diverged_at: float | None = None) -> dict:
    """The rates the curve suggests (module docstring): ``lr_min_loss``, ``lr_steepest``
    (most negative d smoothed / d log10 lr at or before the minimum, after the first tenth of
    the steps: the curve's noisy edge), ``lr_suggested`` =
    lr_min_loss / 10."""
    lrs = np.asarray(lrs, dtype=np.float64)
    sm = np.asarray(smoothed, dtype=np.float64)
    if len(lrs) != len(sm) or len(lrs) < 2:
        raise ValueError(f"need >= 2 steps of rates and losses, got {len(lrs)} and {len(sm)}")
    i_min = int(np.nanargmin(sm))
    slope = np.gradient(sm, np.log10(lrs))
    # the first tenth of the steps (a few noisy losses at the curve's edge) is not read as a slope
    skip = min(len(lrs) // 10, i_min)
    i_steep = skip + int(np.nanargmin(slope[skip : i_min + 1]))
    return {
        "lr_min_loss": float(lrs[i_min]),
        "lr_steepest": float(lrs[i_steep]),
        "lr_suggested": float(lrs[i_min] / 10),
        "diverged_at_lr": None if diverged_at is None else float(diverged_at),
        "min_smoothed_loss": float(sm[i_min]),
        "steps_done": int(len(lrs)),
    }


def lr_range_test(
    model: str,
    index_path: str | Path,
    data_dir: str | Path,
    settings: TrainSettings,
    *,
    cache_dir: str | Path = "results/cache",
    mfb_weights: str | Path | None = None,
    device: str = "auto",
    workers: int = 0,
    lr_min: float = 1e-5,
    lr_max: float = 1.0,
    steps: int = 200,
    beta: float = 0.98,
    stop_factor: float = 4.0,
    window_decades: float = 0.25,
) -> tuple[list[dict], dict]:
    """Run the range test for ``model`` ("PB", "FCN", "FCN-MFB"; module docstring).

    Returns (rows with :data:`COLUMNS`, summary: :func:`summarise` plus the model, its
    configured rate and the test's settings). Batches follow the training's epoch order
    (epoch 1, then 2, ... if ``steps`` exceeds an epoch).
    """
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r} (choose from {MODELS})")
    if not stop_factor > 1:
        raise ConfigError(f"stop_factor must be > 1, got {stop_factor!r}")
    s = settings
    lrs = rates(lr_min, lr_max, steps)
    dev = resolve_device(device)
    weights = loss_weights(model, mfb_weights, dev)
    _, train_ds, _ = datasets(model, s, index_path, data_dir, cache_dir, workers)
    _, nb = steps_per_epoch(s, len(train_ds))
    pin = dev.type == "cuda"

    rows: list[dict] = []
    diverged_at = None
    with deterministic_on_cpu(dev):
        torch.manual_seed(s.seed)
        net = _build(model, s).to(dev, memory_format=MEMORY_FORMAT)
        opt = _optimizer(net, s)
        # each group's rate relative to the base rate (PB's FC1: its fan-in factor)
        factors = [g["lr"] / s.lr for g in opt.param_groups]
        net.train()
        ema, best = 0.0, math.inf
        bar = tqdm(total=len(lrs), desc=f"{model} lr range {lr_min:g}..{lr_max:g}", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)
        epoch = 0
        while len(rows) < len(lrs) and diverged_at is None:
            epoch += 1
            for batch in epoch_loader(train_ds, s, epoch, nb, workers, pin):
                k = len(rows)
                if k >= len(lrs):
                    break
                for g, f in zip(opt.param_groups, factors):
                    g["lr"] = float(lrs[k]) * f
                loss, _ = batch_loss(net, batch, model, s, dev, weights, pin)
                optimiser_step(net, opt, loss, s.clip_grad_norm)
                v = float(loss.detach())
                # exponential moving average, bias-corrected (the first steps not pulled to 0)
                ema = beta * ema + (1 - beta) * v
                sm = ema / (1 - beta ** (k + 1)) if math.isfinite(v) else math.inf
                rows.append({"step": k + 1, "lr": float(lrs[k]), "loss": v, "ema_loss": float(sm)})
                bar.update(1)
                bar.set_postfix(lr=f"{lrs[k]:.2e}", loss=f"{sm:.4f}")
                best = min(best, sm)
                if not math.isfinite(sm) or (k >= 1 and sm > stop_factor * best):
                    diverged_at = float(lrs[k])
                    log.info("%s: averaged loss %.4g > %g x its minimum %.4g at lr %.3g: stopped (diverged)", model, sm, stop_factor, best, lrs[k])
                    break
        bar.close()
    window = max(3, round(window_decades * (len(lrs) - 1) / math.log10(lr_max / lr_min)))
    finite = [r for r in rows if math.isfinite(r["loss"])]
    if len(finite) < 2:
        raise ConfigError(f"{model}: the training loss was not finite from step {len(finite) + 1} on (lr {lrs[len(finite)]:.3g}); lower lr_range.lr_min")
    centred = centred_mean([r["loss"] for r in finite], window)
    for r in rows:
        r["smoothed_loss"] = math.nan
    for r, v in zip(finite, centred):
        r["smoothed_loss"] = float(v)
    summary = summarise([r["lr"] for r in finite], centred, diverged_at)
    summary.update(model=model, configured_lr=float(s.lr), optimizer=s.optimizer, batch_size=s.batch_size,
                   lr_min=float(lr_min), lr_max=float(lr_max), steps=int(steps), beta=float(beta), window_steps=int(window),
                   stop_factor=float(stop_factor), seed=s.seed, device=str(dev))
    log.info("%s: %s", model, {k: summary[k] for k in ("configured_lr", *SUMMARY_KEYS)})
    return rows, summary


def plot(rows: list[dict], summary: dict, out: str | Path) -> None:
    """Loss against the rate (log axis): raw and smoothed, the configured and suggested
    rates marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lr = [r["lr"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    ax.plot(lr, [r["loss"] for r in rows], color="0.75", lw=0.8, label="loss per step")
    ax.plot(lr, [r["smoothed_loss"] for r in rows], color="C0", lw=1.8, label=f"centred mean ({summary['window_steps']} steps)")
    marks = (("configured_lr", "C3", "configured"), ("lr_suggested", "C2", "min / 10"), ("lr_steepest", "C1", "steepest"))
    for key, color, name in marks:
        ax.axvline(summary[key], color=color, ls="--", lw=1, label=f"{name} {summary[key]:.2g}")
    smoothed = [r["smoothed_loss"] for r in rows if math.isfinite(r["smoothed_loss"])]
    if smoothed:  # from the lowest loss to a little above the start: the divergence runs off the top
        lo = min(smoothed + [r["loss"] for r in rows if math.isfinite(r["loss"])])
        hi = max(smoothed[0], lo) * 1.6 + 1e-9
        ax.set_ylim(lo - 0.05 * (hi - lo), hi)
    ax.set_xscale("log")
    ax.set_xlabel("base learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"{summary['model']}: learning-rate range test ({summary['optimizer']}, batch {summary['batch_size']})")
    ax.legend(fontsize=8)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


#: results/lr_range/summary.csv, one row per CNN and seed
TABLE_COLUMNS = ("model", "seed", "optimizer", "batch_size", "configured_lr", "lr_suggested", "lr_min_loss", "lr_steepest",
                 "diverged_at_lr", "steps_done")


def write_outputs(rows: list[dict], summary: dict, curve_csv, summary_json, plot_png) -> None:
    """One range test's curve (CSV, :data:`COLUMNS`), summary (JSON) and plot, each atomic."""
    with atomic_path(curve_csv) as tmp:
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(tmp, index=False)
    write_json(summary_json, summary)
    plot(rows, summary, plot_png)


def read_summary(path) -> dict:
    """A range test's summary JSON; DataError naming the file when unreadable or incomplete."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(path, f"cannot read learning-rate range summary ({e})") from e
    missing = [k for k in TABLE_COLUMNS if k not in d]
    if missing:
        raise DataError(path, f"learning-rate range summary lacks {', '.join(missing)}")
    return d


def table(summaries: list[dict]) -> pd.DataFrame:
    """The summaries as one table (:data:`TABLE_COLUMNS`), by model then seed."""
    df = pd.DataFrame([{k: d[k] for k in TABLE_COLUMNS} for d in summaries], columns=list(TABLE_COLUMNS))
    order = {m: i for i, m in enumerate(MODELS)}
    return df.sort_values(["model", "seed"], key=lambda c: c.map(order) if c.name == "model" else c).reset_index(drop=True)


def to_markdown(df: pd.DataFrame) -> str:
    def g(v):
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2g}"

    lines = [
        "# Learning-rate range tests",
        "",
        "Each CNN's first training steps with the base rate rising geometrically (Smith 2017; `vaiseg.lr_range`):",
        "`minimum` is the rate at the minimum of the loss's centred running mean, `min / 10` an order of magnitude below",
        "it (fastai's rule of thumb; Smith's own advice is a third to a quarter of the minimum's rate), `steepest` where",
        "that mean falls fastest. Heuristics about a few hundred steps at a rising rate: the configured rates were",
        "chosen on held-out patches over whole trainings (docs/results.md \"Convergence\").",
        "",
        "| model | seed | optimizer | batch | configured | min / 10 | minimum | steepest | diverged at |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples():
        lines.append(f"| {r.model} | {r.seed} | {r.optimizer} | {r.batch_size} | {g(r.configured_lr)} | {g(r.lr_suggested)} | "
                     f"{g(r.lr_min_loss)} | {g(r.lr_steepest)} | {g(r.diverged_at_lr)} |")
    lines.append("")
    for model, sub in df.groupby("model", sort=False):
        ratio = sub["lr_suggested"] / sub["configured_lr"]
        share = sub["configured_lr"] / sub["lr_min_loss"]
        lines.append(f"- {model}: `min / 10` is {ratio.min():.2g}–{ratio.max():.2g}x the configured rate, the configured rate "
                     f"{share.min():.2g}–{share.max():.2g} of the minimum's, over {len(sub)} seed(s).")
    return "\n".join(lines) + "\n"


def write_table(summary_paths, csv_out, md_out) -> pd.DataFrame:
    df = table([read_summary(p) for p in summary_paths])
    with atomic_path(csv_out) as tmp:
        df.to_csv(tmp, index=False)
    write_text(md_out, to_markdown(df))
    return df
