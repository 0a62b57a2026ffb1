"""Uncertainty as failure detection (beyond the paper's accuracy-vs-uncertainty curve).

The paper (§5, Figs. 6-7) shows that keeping only the pixels with a low MC-dropout
uncertainty raises the overall accuracy. This module asks the complementary question
with the standard failure-detection metrics: how well does each uncertainty measure
*rank* the misclassified pixels?

For each CNN and each measure of :data:`MEASURES`, over the scored pixels of all
validation areas (eroded ground truth, boundary pixels = ``IGNORE`` not counted, as in
Tables 1-2), a pixel is an *error* when its predicted label (``labels.tif``) differs
from the ground truth, and the measure is the score (higher = more uncertain):

- ``mean_std``: the paper's uncertainty, mean over classes of the per-class std of the
  T softmax samples (``uncertainty.tif``, §4.3);
- ``entropy``: predictive entropy of the MC-mean softmax (``entropy.tif``);
- ``mutual_info``: BALD mutual information (``mutual_info.tif``);
- ``one_minus_max_softmax``: 1 - max over classes of the MC-mean softmax
  (``probs.tif``; a 5-band raster without clutter is accepted, the max is over its bands).

Metrics (errors are the positive class):

- ``auroc``, ``aupr``: scikit-learn's ``roc_auc_score`` / ``average_precision_score``
  with the measure as the score. ``auroc`` is NaN when all scored pixels are right or
  all wrong (one class only); ``aupr`` is NaN when no pixel is wrong.
- ``aurc``: area under the risk-coverage curve (Geifman et al., ICLR 2019). Pixels are
  sorted by the measure ascending (most confident first); the risk at coverage k/N is
  the share of errors among the first k pixels; AURC = (1/N) sum_{k=1..N} risk(k).
  **Ties**: pixels with equal scores have no order, so the risk at a k inside a group of
  tied pixels is its *expectation under a uniformly random order within the group*:
  with ``s`` pixels before the group, ``E_before`` errors among them and a group of
  ``n_g`` pixels holding ``e_g`` errors, risk(k) = (E_before + (k - s) e_g / n_g) / k.
  This is deterministic, does not depend on the input order, equals the plain
  definition without ties, gives AURC = error rate for a constant score, and gives the
  optimal AURC when every error scores above every correct pixel (ties among the
  errors, or among the correct pixels, do not matter). It is the same convention as
  the AUROC's (a tied positive/negative pair counts 1/2).
- ``e_aurc``: AURC - AURC of the optimal ranking (all correct pixels first), whose risk
  is max(0, k - n_correct) / k; AURC* = (n_err - n_correct (H_N - H_{n_correct})) / N
  with H the harmonic numbers. 0 for a perfect ranking.
- ``pavpu``: patch accuracy versus patch uncertainty of Mukhoti & Gal (2018) at the
  pixel level, (n_accurate_certain + n_inaccurate_uncertain) / N, where a pixel is
  *uncertain* when its score is > ``pavpu_threshold`` and *certain* otherwise.
  **Threshold** (the paper gives none for this setting): the (1 - error rate) quantile
  of the measure over the scored pixels, in the inverted-CDF sense, i.e. the
  n_correct-th smallest score (-inf when every pixel is wrong). The share of pixels
  flagged uncertain then equals the model's error rate (less when pixels tie at the
  threshold: tied pixels are all *certain*), so a perfect ranking gives PAvPU = 1 and
  PAvPU is the accuracy of the "flag the error-rate share of most uncertain pixels"
  error detector.
- ``error_rate``: errors / scored pixels (1 - overall accuracy of the eroded-GT scoring).

Pixel selection: a pixel is scored when its eroded GT is not ``IGNORE``, its prediction
is a class (the value ``IGNORE`` = unclassified, the PB's border when
``infer.pb_border: none``, is left out as in vaiseg.metrics) and *all four* measures are
finite there, so every measure of a CNN is scored on the same pixels. Other values
outside 0..5 in the GT or the prediction are a DataError.

Memory: one CNN at a time; the per-area masks, one bool error vector and one float32
score vector of the scored pixels at a time (measures are handled one after another;
each measure raster is read twice, once for the mask and once for its values). With
``max_pixels`` set and more scored pixels than that, the metrics use a seeded uniform
subsample of exactly ``max_pixels`` scored pixels without replacement (the same pixels
for every measure of a CNN): the column ``pixels`` gives the pixels used and
``pixels_scored`` all scored pixels (equal unless subsampled), ``subsample_seed`` the
seed (NaN when no subsample was taken).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_path
from ..classes import IGNORE, N_CLASSES
from ..errors import DataError
from ..metrics import read_label_raster
from .calibration import read_probs
from .uncertainty import check_same_shape, read_band, save_png

log = logging.getLogger(__name__)

#: the uncertainty measures, in output order
MEASURES = ("mean_std", "entropy", "mutual_info", "one_minus_max_softmax")
#: output columns of the metrics table
COLUMNS = ("model", "measure", "auroc", "aupr", "aurc", "e_aurc", "pavpu", "pavpu_threshold", "error_rate", "pixels",
           "pixels_scored", "subsample_seed")
#: positions per chunk of the AURC sum (bounds the float64 temporaries)
_CHUNK = 1 << 22


# ---- metrics on score/error vectors -------------------------------------------------


def _as_vectors(scores, errors) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores).reshape(-1)
    e = np.asarray(errors).reshape(-1)
    if s.shape != e.shape:
        raise ValueError(f"scores {s.shape} and errors {e.shape} differ in size")
    if s.size == 0:
        raise ValueError("no pixels to score")
    if not np.isfinite(s).all():
        raise ValueError("scores hold non-finite values")
    if e.dtype != bool:
        if not np.isin(e, (0, 1)).all():
            raise ValueError("errors must be boolean (or 0/1)")
        e = e.astype(bool)
    return s, e


@dataclass
class Ranking:
    """Pixels sorted by score ascending (most confident first), grouped by equal score.

    ``sorted_scores`` (N,); ``cum_errors`` (N + 1,) int64, errors among the first k
    sorted pixels at index k; ``starts``/``sizes``/``group_errors`` (G,) per group of
    tied scores: first sorted position, pixel count, error count."""

    sorted_scores: np.ndarray
    cum_errors: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    group_errors: np.ndarray

    @classmethod
    def of(cls, scores, errors) -> "Ranking":
        s, e = _as_vectors(scores, errors)
        order = np.argsort(s, kind="stable")
        ss = s[order]
        cum = np.zeros(s.size + 1, np.int64)
        np.cumsum(e[order], out=cum[1:])
        del order
        starts = np.concatenate([[0], np.flatnonzero(ss[1:] != ss[:-1]) + 1]).astype(np.int64)
        ends = np.append(starts[1:], s.size)
        return cls(ss, cum, starts, ends - starts, cum[ends] - cum[starts])

    @property
    def n(self) -> int:
        return int(self.sorted_scores.size)

    @property
    def n_errors(self) -> int:
        return int(self.cum_errors[-1])

    def risk_at(self, k: np.ndarray) -> np.ndarray:
        """Risk (error share) of the k most confident pixels, k in 1..N (array), with the
        tie convention of the module docstring (expectation over orders within a group)."""
        k = np.asarray(k, np.int64)
        g = np.searchsorted(self.starts, k - 1, side="right") - 1  # group of sorted position k - 1
        s = self.starts[g]
        num = self.cum_errors[s] + (k - s) * (self.group_errors[g] / self.sizes[g])
        return num / k

    def aurc(self) -> float:
        """(1/N) sum_{k=1..N} risk(k), summed in chunks of positions."""
        total = 0.0
        for a in range(1, self.n + 1, _CHUNK):
            total += float(self.risk_at(np.arange(a, min(a + _CHUNK, self.n + 1))).sum())
        return total / self.n

    def pavpu(self) -> tuple[float, float]:
        """(PAvPU, threshold), threshold = n_correct-th smallest score (-inf if none correct)."""
        n, n_err = self.n, self.n_errors
        n_ok = n - n_err
        if n_ok == 0:
            return 1.0, -math.inf  # every pixel wrong and flagged uncertain
        thr = float(self.sorted_scores[n_ok - 1])
        m = int(np.searchsorted(self.sorted_scores, self.sorted_scores[n_ok - 1], side="right"))  # certain: score <= thr
        err_certain = int(self.cum_errors[m])
        accurate_certain = m - err_certain
        inaccurate_uncertain = n_err - err_certain
        return (accurate_certain + inaccurate_uncertain) / n, thr


def optimal_aurc(n: int, n_errors: int) -> float:
    """AURC of the optimal ranking (every correct pixel first) of ``n`` pixels with
    ``n_errors`` errors: (1/n) sum_{k > n_ok} (k - n_ok) / k
    = (n_errors - n_ok (H_n - H_{n_ok})) / n, H the harmonic numbers."""
    if n <= 0 or not 0 <= n_errors <= n:
        raise ValueError(f"need 0 <= n_errors <= n, n > 0; got n={n}, n_errors={n_errors}")
    n_ok = n - n_errors
    if n_errors == 0:
        return 0.0
    if n_ok == 0:
        return 1.0
    if n <= _CHUNK:  # exact sum for small n (tests), digamma beyond
        k = np.arange(n_ok + 1, n + 1, dtype=np.float64)
        return float(((k - n_ok) / k).sum() / n)
    from scipy.special import digamma

    harmonic = float(digamma(n + 1) - digamma(n_ok + 1))  # H_n - H_{n_ok}
    return (n_errors - n_ok * harmonic) / n


def aurc(scores, errors) -> float:
    """Area under the risk-coverage curve (ties: module docstring)."""
    return Ranking.of(scores, errors).aurc()


def e_aurc(scores, errors) -> float:
    """Excess AURC: :func:`aurc` minus :func:`optimal_aurc`."""
    r = Ranking.of(scores, errors)
    return r.aurc() - optimal_aurc(r.n, r.n_errors)


def pavpu(scores, errors) -> tuple[float, float]:
    """(PAvPU, threshold) at the (1 - error rate) quantile threshold (module docstring)."""
    return Ranking.of(scores, errors).pavpu()


def risk_coverage(scores, errors, n_points: int = 200) -> pd.DataFrame:
    """Risk-coverage curve at (up to) ``n_points`` coverages k/N, k = ceil(j N / n_points),
    j = 1..n_points: columns coverage, risk, optimal_risk."""
    return _curve(Ranking.of(scores, errors), n_points)


def _curve(r: Ranking, n_points: int) -> pd.DataFrame:
    k = np.unique(np.ceil(np.arange(1, n_points + 1) * r.n / n_points).astype(np.int64))
    k = k[k >= 1]
    n_ok = r.n - r.n_errors
    return pd.DataFrame(dict(coverage=k / r.n, risk=r.risk_at(k), optimal_risk=np.maximum(k - n_ok, 0) / k))


def auroc_aupr(scores, errors) -> tuple[float, float]:
    """scikit-learn's ROC AUC and average precision of error detection (errors positive);
    NaN where undefined (module docstring)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, e = _as_vectors(scores, errors)
    n_err = int(e.sum())
    auroc = float(roc_auc_score(e, s)) if 0 < n_err < e.size else math.nan
    aupr = float(average_precision_score(e, s)) if n_err > 0 else math.nan
    return auroc, aupr


def error_detection_metrics(scores, errors, n_points: int = 200) -> tuple[dict, pd.DataFrame]:
    """All metrics of one score vector (one sort): ({auroc, aupr, aurc, e_aurc, pavpu,
    pavpu_threshold, error_rate, pixels}, risk-coverage curve of :func:`risk_coverage`)."""
    s, e = _as_vectors(scores, errors)
    auroc, aupr = auroc_aupr(s, e)
    r = Ranking.of(s, e)
    a = r.aurc()
    pv, thr = r.pavpu()
    row = dict(auroc=auroc, aupr=aupr, aurc=a, e_aurc=a - optimal_aurc(r.n, r.n_errors), pavpu=pv,
               pavpu_threshold=thr, error_rate=r.n_errors / r.n, pixels=r.n)
    return row, _curve(r, n_points)


# ---- rasters -> score/error vectors -------------------------------------------------


def read_measure(measure: str, path: str | Path) -> np.ndarray:
    """(H, W) float32 of ``measure`` from its raster (``probs.tif`` for
    ``one_minus_max_softmax``, NaN where any band is NaN; else a 1-band raster)."""
    if measure == "one_minus_max_softmax":
        p = read_probs(path)
        out = 1.0 - p.max(axis=0)
        out[~np.isfinite(p).all(axis=0)] = np.nan
        return out.astype(np.float32, copy=False)
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; known: {MEASURES}")
    return read_band(path, np.float32)


def _check_labels(path, a: np.ndarray, what: str) -> None:
    bad = (a >= N_CLASSES) & (a != IGNORE)
    if bad.any():
        raise DataError(path, f"{what} holds values {sorted(set(np.unique(a[bad]).tolist()))} outside 0..{N_CLASSES - 1} and {IGNORE}")


def model_errors(model: str, areas: list, sources: dict, labels: dict, eroded: dict) -> tuple[dict, np.ndarray]:
    """Pass 1 for one CNN: ({area: (H, W) bool mask of the scored pixels}, (N,) bool errors
    of the scored pixels, areas concatenated in order, row-major within an area).

    ``sources``: {measure: {(model, area): path}}; ``labels``: {(model, area): path};
    ``eroded``: {area: path}."""
    masks, errs = {}, []
    for a in tqdm([int(a) for a in areas], desc=f"failure detection {model}", unit="area"):
        lp, ep = labels[(model, a)], eroded[a]
        pred, truth = read_label_raster(lp), read_label_raster(ep)
        _check_labels(lp, pred, "prediction")
        _check_labels(ep, truth, "ground truth")
        arrays = {lp: pred, ep: truth}
        m = (truth != IGNORE) & (pred != IGNORE)
        for measure in MEASURES:
            path = sources[measure][(model, a)]
            v = read_measure(measure, path)
            arrays[path] = v
            check_same_shape(arrays)
            m &= np.isfinite(v)
            del arrays[path]
        masks[a] = m
        errs.append(pred[m] != truth[m])
    return masks, np.concatenate(errs) if errs else np.zeros(0, bool)


def model_scores(model: str, measure: str, masks: dict, sources: dict) -> np.ndarray:
    """(N,) float32 values of ``measure`` on the scored pixels (order of :func:`model_errors`)."""
    return np.concatenate([read_measure(measure, sources[measure][(model, a)])[m] for a, m in masks.items()])


def subsample_index(n: int, max_pixels: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded uniform subsample of ``max_pixels`` of ``n`` items
    without replacement; None when ``max_pixels`` is None or >= n (use all)."""
    if max_pixels is None or max_pixels >= n:
        return None
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    return np.sort(np.random.default_rng(seed).choice(n, size=max_pixels, replace=False))


# ---- outputs ------------------------------------------------------------------------


def plot_risk_coverage(curves: pd.DataFrame, table: pd.DataFrame, out_png: str | Path) -> None:
    """Risk-coverage curves: one panel per CNN, one line per measure (AURC in the legend)
    plus the optimal ranking (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(curves["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        c = curves[curves["model"] == model]
        for measure in dict.fromkeys(c["measure"]):
            g = c[c["measure"] == measure]
            if measure == "optimal":
                ax.plot(g["coverage"], 100 * g["risk"], color="grey", ls="--", lw=1, label="optimal ranking")
                continue
            t = table[(table["model"] == model) & (table["measure"] == measure)]
            label = f"{measure} (AURC {100 * t['aurc'].iloc[0]:.2f} %)" if len(t) else measure
            ax.plot(g["coverage"], 100 * g["risk"], label=label)
        ax.set(xlim=(0, 1), ylim=(0, None), xlabel="coverage (share of pixels kept, most certain first)",
               ylabel="risk: error rate of kept pixels (%)", title=model)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    save_png(fig, out_png)


def failure_detection_analysis(
    models: list[str],
    areas: list,
    probs: dict,
    uncertainty: dict,
    entropy: dict,
    mutual_info: dict,
    labels: dict,
    eroded: dict,
    out_csv: str | Path,
    out_curve_csv: str | Path,
    out_png: str | Path,
    *,
    max_pixels: int | None = None,
    seed: int = 0,
    n_points: int = 200,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Failure-detection metrics of every uncertainty measure of the CNNs ``models`` over
    the validation ``areas`` (module docstring).

    ``probs``/``uncertainty``/``entropy``/``mutual_info``/``labels``: {(model, area): path}
    of the MC-dropout rasters (see :func:`vaiseg.reporting.uncertainty.by_model_area`);
    ``eroded``: {area: path} of the eroded GT. ``max_pixels``: None = every scored pixel,
    else a seeded (``seed``) uniform subsample of that many scored pixels per CNN.

    Writes ``out_csv`` (columns :data:`COLUMNS`; fractions), ``out_curve_csv`` (model,
    measure, coverage, risk at ~``n_points`` coverages; measure ``optimal`` = the optimal
    ranking) and the risk-coverage plot ``out_png``. Returns (table, curves)."""
    sources = dict(mean_std=uncertainty, entropy=entropy, mutual_info=mutual_info, one_minus_max_softmax=probs)
    rows, curves = [], []
    for model in models:
        masks, errors = model_errors(model, areas, sources, labels, eroded)
        n_scored = int(errors.size)
        if n_scored == 0:
            raise DataError(labels[(model, int(areas[0]))] if areas else None, f"{model}: no scored pixel in any validation area")
        idx = subsample_index(n_scored, max_pixels, seed)
        if idx is not None:
            errors = errors[idx]
            log.info("%s: uniform subsample of %d of %d scored pixels (seed %d)", model, idx.size, n_scored, seed)
        opt = None
        for measure in MEASURES:
            scores = model_scores(model, measure, masks, sources)
            if idx is not None:
                scores = scores[idx]
            row, curve = error_detection_metrics(scores, errors, n_points)
            del scores
            rows.append(dict(model=model, measure=measure, **row, pixels_scored=n_scored,
                             subsample_seed=seed if idx is not None else None))
            curves.append(pd.DataFrame(dict(model=model, measure=measure, coverage=curve["coverage"], risk=curve["risk"])))
            opt = curve
            log.info("%s %s: AUROC %.4f, AUPR %.4f, AURC %.4f, E-AURC %.4f, PAvPU %.4f (threshold %.4g), "
                     "error rate %.4f, %d pixels", model, measure, row["auroc"], row["aupr"], row["aurc"],
                     row["e_aurc"], row["pavpu"], row["pavpu_threshold"], row["error_rate"], row["pixels"])
        curves.append(pd.DataFrame(dict(model=model, measure="optimal", coverage=opt["coverage"], risk=opt["optimal_risk"])))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["subsample_seed"] = table["subsample_seed"].astype("Int64")
    curve_df = pd.concat(curves, ignore_index=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", na_rep="NaN")
    with atomic_path(out_curve_csv) as tmp:
        curve_df.to_csv(tmp, index=False, float_format="%.6g", na_rep="NaN")
    plot_risk_coverage(curve_df, table, out_png)
    log.info("failure detection:\n%s", table.to_string(index=False))
    return table, curve_df
