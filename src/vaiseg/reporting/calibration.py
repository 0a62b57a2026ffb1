"""Calibration of the CNNs' softmax (beyond the paper): MC-dropout mean (§4.3,
``probs.tif``) against a single deterministic pass (``probs_deterministic.tif``).

Per model and kind, over all scored pixels of the validation areas (eroded GT,
boundaries ignored; predictions = argmax of the probabilities):
- ECE, expected calibration error (Guo et al. 2017): confidence = max class
  probability, ``n_bins`` (15) equal-width bins on [0, 1], bin b = (b/n, (b+1)/n]
  (bin 0 includes 0); ECE = sum_b (n_b / N) |acc_b - conf_b|; MCE = max_b over
  non-empty bins;
- NLL, mean of -log p(true class), p clipped at 1e-12;
- Brier score, mean over pixels of sum_c (p_c - 1[c = truth])^2.
A 5-band probability raster (no clutter band) is accepted: clutter pixels then have
p(true) = 0. Pixels with a non-finite probability (the PB's unclassified border when
``infer.pb_border: none``) are left out, like ignored pixels. Streamed one area at a time, vectorised with ``np.bincount``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_path
from ..classes import IGNORE, N_CLASSES
from ..errors import DataError
from ..raster import read_raster
from .uncertainty import check_same_shape, read_band, save_png

log = logging.getLogger(__name__)

EPS = 1e-12
KINDS = {"mc": "probs", "deterministic": "probs_deterministic"}


@dataclass
class CalibrationAccumulator:
    """Per-bin sums for the reliability diagram: ``count``, ``sum_conf``, ``sum_correct``
    (n_bins,), plus NLL and Brier sums over all scored pixels."""

    n_bins: int = 15
    count: np.ndarray = field(init=False)
    sum_conf: np.ndarray = field(init=False)
    sum_correct: np.ndarray = field(init=False)
    sum_nll: float = 0.0
    sum_brier: float = 0.0

    def __post_init__(self):
        self.count = np.zeros(self.n_bins, np.int64)
        self.sum_conf = np.zeros(self.n_bins, np.float64)
        self.sum_correct = np.zeros(self.n_bins, np.float64)

    def add(self, probs: np.ndarray, truth: np.ndarray) -> None:
        """``probs``: (C, H, W) float class probabilities, C in {5, 6} (NaN = unclassified);
        ``truth``: (H, W) uint8 class indices with IGNORE for unscored pixels."""
        c = probs.shape[0]
        m = (truth != IGNORE) & np.isfinite(probs).all(axis=0)  # NaN = unclassified (PB border)
        p = probs[:, m].astype(np.float64).T  # (N, C)
        t = truth[m].astype(np.int64)
        if p.size == 0:
            return
        conf = p.max(axis=1)
        correct = p.argmax(axis=1) == t
        b = np.clip(np.ceil(conf * self.n_bins).astype(np.int64) - 1, 0, self.n_bins - 1)
        self.count += np.bincount(b, minlength=self.n_bins)
        self.sum_conf += np.bincount(b, weights=conf, minlength=self.n_bins)
        self.sum_correct += np.bincount(b, weights=correct.astype(np.float64), minlength=self.n_bins)
        inside = t < c
        pt = np.zeros(len(t))
        pt[inside] = p[np.flatnonzero(inside), t[inside]]
        self.sum_nll += float(-np.log(np.clip(pt, EPS, 1.0)).sum())
        sq = (p**2).sum(axis=1) - 2 * pt + 1.0  # sum_c (p_c - onehot_c)^2
        self.sum_brier += float(sq.sum())

    def bins(self) -> pd.DataFrame:
        """One row per bin: lower/upper edge, count, mean confidence, accuracy (NaN if empty)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            conf = np.where(self.count > 0, self.sum_conf / self.count, np.nan)
            acc = np.where(self.count > 0, self.sum_correct / self.count, np.nan)
        edges = np.linspace(0, 1, self.n_bins + 1)
        return pd.DataFrame(dict(bin_lower=edges[:-1], bin_upper=edges[1:], count=self.count, confidence=conf, accuracy=acc))

    def metrics(self) -> dict:
        n = int(self.count.sum())
        if n == 0:
            return dict(ece=math.nan, mce=math.nan, nll=math.nan, brier=math.nan, overall_acc=math.nan, mean_confidence=math.nan, n_pixels=0)
        b = self.bins()
        gap = (b["accuracy"] - b["confidence"]).abs()
        return dict(
            ece=float((b["count"] / n * gap).sum()),
            mce=float(gap.max()),
            nll=self.sum_nll / n,
            brier=self.sum_brier / n,
            overall_acc=float(self.sum_correct.sum() / n),
            mean_confidence=float(self.sum_conf.sum() / n),
            n_pixels=n,
        )


def read_probs(path: str | Path) -> np.ndarray:
    """(C, H, W) float32 probabilities, C in {5, 6}; DataError otherwise."""
    p, _ = read_raster(path)
    if p.shape[0] not in (N_CLASSES - 1, N_CLASSES):
        raise DataError(path, f"expected {N_CLASSES} (or {N_CLASSES - 1}) probability bands, found {p.shape[0]}")
    return p.astype(np.float32, copy=False)


def plot_reliability(bins: pd.DataFrame, metrics: pd.DataFrame, out_png: str | Path) -> None:
    """Reliability diagrams: one panel per model, accuracy per confidence bin for the MC
    mean and the deterministic pass, the diagonal = perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(bins["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect")
        for kind, color in (("mc", "tab:blue"), ("deterministic", "tab:orange")):
            b = bins[(bins["model"] == model) & (bins["kind"] == kind)]
            if b.empty:
                continue
            mid = (b["bin_lower"] + b["bin_upper"]) / 2
            w = float((b["bin_upper"] - b["bin_lower"]).iloc[0])
            off = -w / 4 if kind == "mc" else w / 4
            ece = metrics[(metrics["model"] == model) & (metrics["kind"] == kind)]["ece"].iloc[0]
            ax.bar(mid + off, b["accuracy"].fillna(0), width=w / 2, color=color, alpha=0.8, label=f"{kind} (ECE {100 * ece:.2f} %)")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max softmax)", ylabel="accuracy", title=model)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_png(fig, out_png)


def calibration_analysis(
    models: list[str],
    areas: list,
    probs: dict,
    probs_deterministic: dict,
    eroded: dict,
    out_csv: str | Path,
    out_bins_csv: str | Path,
    out_png: str | Path,
    *,
    n_bins: int = 15,
) -> pd.DataFrame:
    """ECE/MCE/NLL/Brier per model and kind (``mc`` | ``deterministic``) over the
    validation ``areas``. ``probs``/``probs_deterministic``: {(model, area): path} of
    ``probs.tif``/``probs_deterministic.tif`` ((5|6, H, W) float); ``eroded``: {area:
    path} of the eroded GT. Writes ``out_csv`` (columns model, kind, ece, mce, nll, brier,
    overall_acc, mean_confidence, n_pixels; fractions), the per-bin table and the
    reliability diagrams. Returns the metrics frame."""
    rows, all_bins = [], []
    sources = {"mc": probs, "deterministic": probs_deterministic}
    for model in models:
        for kind in KINDS:
            acc = CalibrationAccumulator(n_bins)
            for a in tqdm([int(a) for a in areas], desc=f"calibration {model} {kind}", unit="area"):
                pp, tp = sources[kind][(model, a)], eroded[a]
                probs, truth = read_probs(pp), read_band(tp)
                check_same_shape({pp: probs, tp: truth})
                acc.add(probs, truth)
            rows.append(dict(model=model, kind=kind, **acc.metrics()))
            b = acc.bins()
            b.insert(0, "kind", kind)
            b.insert(0, "model", model)
            all_bins.append(b)
    df, bins = pd.DataFrame(rows), pd.concat(all_bins, ignore_index=True)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", na_rep="NaN")
    with atomic_path(out_bins_csv) as tmp:
        bins.to_csv(tmp, index=False, float_format="%.6g", na_rep="NaN")
    plot_reliability(bins, df, out_png)
    log.info("calibration (%d bins):\n%s", n_bins, df.to_string(index=False))
    return df
