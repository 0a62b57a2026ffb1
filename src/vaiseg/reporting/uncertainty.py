"""Accuracy versus uncertainty (§5, Figs. 6-7).

For each CNN, the MC-dropout uncertainty (mean over classes of the per-class standard
deviation of the softmax samples, §4.3; ``uncertainty.tif``) is normalised to [0, 1]
by min-max over *all* validation pixels of that model ("normalized to the range
[0, 1] for all three models", §5). Pixels whose normalised uncertainty is <= a threshold
are kept; the curve gives, per threshold, the kept fraction and the overall accuracy
of the kept pixels (Fig. 7).

Choices where the paper is silent:
- Accuracy is scored against the eroded GT (boundaries ignored, as in Tables 1-2); the
  kept fraction is the share of the *scored* pixels that are kept.
- A threshold that keeps no pixel has ``overall_acc`` NaN.
- If all uncertainties are equal (e.g. dropout off), every pixel normalises to 0.
- Pixels with a non-finite uncertainty or a prediction outside 0..5 (e.g. an
  unclassified PB border) are excluded like ignored pixels.
- Coverage (Fig. 6 numbers): the kept fraction at which overall accuracy equals a
  target (97.5/95/90 %) is the *largest* kept fraction whose accuracy is still
  >= target, linearly interpolated between the two neighbouring cut points of a fine
  histogram (``fine_bins`` >= 65 536 bins). A target that no threshold reaches gives
  NaN. The paper gives two numbers per target ("64.85 % of all the pixels in the image
  were classified, or when ignoring segmentation of the boundaries (as in the ISPRS
  contest) 67.65 %") without saying whether they come from one threshold or two, so
  both readings are written (column ``reading``):

  * ``two_thresholds``: two thresholds per target. ``pixels_classified_pct``: the
    kept share of all pixels at the threshold where the OA of the kept pixels scored
    against the *full* GT (boundary pixels scored) equals the target (``threshold``);
    ``pixels_classified_pct_ignoring_boundaries``: the kept share of the non-boundary
    pixels at the threshold where the OA against the *eroded* GT equals the target
    (``threshold_ignoring_boundaries``).
  * ``one_threshold``: one threshold per target, the one where the OA in the ISPRS
    sense (eroded GT, boundary pixels ignored) of the kept pixels equals the target;
    at that threshold ``pixels_classified_pct`` is the kept share of *all* pixels
    (boundary pixels included) and ``pixels_classified_pct_ignoring_boundaries`` the
    kept share of the non-boundary pixels (the same value as in ``two_thresholds``).
    ``threshold`` = ``threshold_ignoring_boundaries`` = that threshold. The all-pixel
    share is interpolated with the same weight between the same two cut points as the
    non-boundary share (and the threshold).

  "All pixels" are the pixels with a valid full-GT label and a valid prediction
  (``count_full``); "non-boundary pixels" those not ignored by the eroded GT
  (``count``). Without boundary pixels the two readings coincide. The paper reports
  these numbers for its Fig. 6 image; here they are computed over the whole validation
  set (``scope`` ``validation``) and, for a closer comparison, over the figure area
  alone (``scope`` ``area N``, same validation-set normalisation).

Everything is streamed one area at a time and vectorised: a first pass finds the
min/max, a second accumulates per-bin pixel and correct counts with ``np.bincount``
(no Python loop over pixels, memory bounded by one area).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..classes import IGNORE, N_CLASSES
from ..errors import DataError
from ..raster import read_raster

log = logging.getLogger(__name__)

#: accuracy targets of Fig. 6 (percent)
TARGETS = (97.5, 95.0, 90.0)
#: the two readings of the paper's Fig. 6 numbers (module docstring), in output order
READINGS = ("two_thresholds", "one_threshold")
MIN_FINE_BINS = 65536


def by_model_area(paths, models, areas) -> dict[tuple[str, int], Path]:
    """``{(model, area): path}`` from a list built by Snakemake's
    ``expand(".../{model}/{area}/...", model=models, area=areas)`` (models outer, areas
    inner). ValueError when the counts differ or a path does not hold ``/{model}/{area}/``."""
    keys = [(m, int(a)) for m in models for a in areas]
    paths = [Path(p) for p in paths]
    if len(paths) != len(keys):
        raise ValueError(f"{len(paths)} paths for {len(keys)} (model, area) pairs")
    for (m, a), p in zip(keys, paths):
        if f"/{m}/{a}/" not in "/" + p.as_posix():
            raise ValueError(f"{p} is not the file of model {m}, area {a} (expand order: model outer, area inner)")
    return dict(zip(keys, paths))


def by_area(paths, areas) -> dict[int, Path]:
    """``{area: path}`` from a list built by ``expand(".../{area}/...", area=areas)``;
    ValueError when the counts differ or a path does not hold ``/{area}/``."""
    paths = [Path(p) for p in paths]
    if len(paths) != len(areas):
        raise ValueError(f"{len(paths)} paths for {len(areas)} areas")
    for a, p in zip(areas, paths):
        if f"/{int(a)}/" not in "/" + p.as_posix():
            raise ValueError(f"{p} is not the file of area {a}")
    return {int(a): p for a, p in zip(areas, paths)}


def read_band(path: str | Path, dtype=None) -> np.ndarray:
    """The single band of ``path`` as (H, W); DataError when it has more than one band."""
    data, _ = read_raster(path)
    if data.shape[0] != 1:
        raise DataError(path, f"expected 1 band, found {data.shape[0]}")
    return data[0] if dtype is None else data[0].astype(dtype, copy=False)


def check_same_shape(arrays: dict[str | Path, np.ndarray]) -> None:
    """DataError naming the first file whose (H, W) differs from the first array's."""
    items = list(arrays.items())
    ref_path, ref = items[0]
    for path, a in items[1:]:
        if a.shape[-2:] != ref.shape[-2:]:
            raise DataError(path, f"size {a.shape[-2:]} differs from {ref_path} {ref.shape[-2:]}")


def fine_bin_count(n_thresholds: int) -> int:
    """Number of fine histogram bins: a multiple of ``n_thresholds - 1`` (so every curve
    threshold is a bin edge) and at least 65 536."""
    step = n_thresholds - 1
    return step * math.ceil(MIN_FINE_BINS / step)


def bin_index(u_norm: np.ndarray, n_bins: int) -> np.ndarray:
    """Fine bin of each normalised uncertainty: bin 0 holds u == 0, bin b holds
    ((b-1)/n_bins, b/n_bins], so the pixels kept at threshold b/n_bins are bins 0..b."""
    return np.clip(np.ceil(u_norm * n_bins), 0, n_bins).astype(np.int64)


@dataclass
class UncertaintyHistogram:
    """Per-bin counts of one model over the validation set (fine bins, see :func:`bin_index`).

    ``count``/``correct``: scored pixels against the eroded GT (the non-boundary
    pixels); ``count_full``/``correct_full``: against the full GT (every pixel with a
    class label, boundary pixels included; all zero when no full GT was given). Pixels
    with an invalid prediction or uncertainty are in neither. Since the eroded GT is the
    full GT with the boundary pixels set to IGNORE, ``count_full - count`` is the number
    of boundary pixels per bin. (n_bins + 1,) int64.
    """

    u_min: float
    u_max: float
    n_bins: int
    count: np.ndarray = field(init=False)
    correct: np.ndarray = field(init=False)
    count_full: np.ndarray = field(init=False)
    correct_full: np.ndarray = field(init=False)
    sum_u_correct: float = 0.0
    sum_u_error: float = 0.0

    def __post_init__(self):
        z = lambda: np.zeros(self.n_bins + 1, dtype=np.int64)  # noqa: E731
        self.count, self.correct, self.count_full, self.correct_full = z(), z(), z(), z()

    def normalise(self, u: np.ndarray) -> np.ndarray:
        """Min-max normalisation to [0, 1] (all 0 when the range is empty)."""
        span = self.u_max - self.u_min
        if not span > 0:
            return np.zeros_like(u, dtype=np.float64)
        return np.clip((u.astype(np.float64) - self.u_min) / span, 0.0, 1.0)

    def add(self, u: np.ndarray, pred: np.ndarray, gt_eroded: np.ndarray, gt_full: np.ndarray | None = None) -> None:
        """Accumulate one area: ``u`` (H, W) float raw uncertainty, ``pred`` (H, W) class
        indices, ``gt_eroded`` (H, W) uint8 with IGNORE, ``gt_full`` (H, W) uint8 or None."""
        valid = np.isfinite(u) & (pred >= 0) & (pred < N_CLASSES)
        un = self.normalise(np.where(valid, u, self.u_min))
        b = bin_index(un, self.n_bins)
        m = valid & (gt_eroded != IGNORE)
        ok = m & (pred == gt_eroded)
        n = self.n_bins + 1
        self.count += np.bincount(b[m], minlength=n)
        self.correct += np.bincount(b[ok], minlength=n)
        self.sum_u_correct += float(un[ok].sum())
        self.sum_u_error += float(un[m & ~ok].sum())
        if gt_full is not None:
            mf = valid & (gt_full < N_CLASSES)
            okf = mf & (pred == gt_full)
            self.count_full += np.bincount(b[mf], minlength=n)
            self.correct_full += np.bincount(b[okf], minlength=n)

    def summary(self) -> dict:
        n_ok, n = int(self.correct.sum()), int(self.count.sum())
        return dict(
            u_min=self.u_min,
            u_max=self.u_max,
            n_scored=n,
            overall_acc=n_ok / n if n else math.nan,
            mean_uncertainty_correct=self.sum_u_correct / n_ok if n_ok else math.nan,
            mean_uncertainty_error=self.sum_u_error / (n - n_ok) if n - n_ok else math.nan,
        )


def curve(count: np.ndarray, correct: np.ndarray, n_thresholds: int) -> pd.DataFrame:
    """Fig. 7 curve from fine-bin counts: thresholds ``linspace(0, 1, n_thresholds)``,
    kept fraction (of scored pixels) and overall accuracy of the kept pixels (fraction;
    NaN where nothing is kept). ``len(count) - 1`` must be a multiple of ``n_thresholds - 1``."""
    n_bins = len(count) - 1
    if n_bins % (n_thresholds - 1):
        raise ValueError(f"{n_bins} fine bins is not a multiple of {n_thresholds - 1}")
    idx = np.arange(n_thresholds) * (n_bins // (n_thresholds - 1))
    ck, cc = np.cumsum(count)[idx], np.cumsum(correct)[idx]
    total = count.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = ck / total if total else np.full(n_thresholds, math.nan)
        acc = np.where(ck > 0, cc / np.maximum(ck, 1), np.nan)
    return pd.DataFrame(dict(threshold=np.linspace(0.0, 1.0, n_thresholds), kept_fraction=kept, overall_acc=acc))


def _crossing(kept: np.ndarray, acc: np.ndarray, target: float) -> tuple[int, int | None, float] | None:
    """Where the accuracy curve last is >= ``target``: ``(i, j, w)`` with ``i`` the last
    cut point at/above the target, ``j`` the next cut point that keeps more pixels
    (None when there is none) and ``w`` in [0, 1) the linear interpolation weight of the
    target between ``acc[i]`` and ``acc[j]`` (0 when ``j`` is None). None when no cut
    point reaches the target."""
    ok = np.flatnonzero(np.isfinite(acc) & (acc >= target))
    if ok.size == 0:
        return None
    i = int(ok[-1])
    nxt = np.flatnonzero(np.isfinite(acc[i + 1 :]) & (kept[i + 1 :] > kept[i]))
    if nxt.size == 0:
        return i, None, 0.0
    j = i + 1 + int(nxt[0])
    return i, j, float((acc[i] - target) / (acc[i] - acc[j]))


def _interp(x: np.ndarray, cross: tuple[int, int | None, float]) -> float:
    i, j, w = cross
    return float(x[i]) if j is None else float(x[i] + w * (x[j] - x[i]))


def coverage_at(kept: np.ndarray, acc: np.ndarray, target: float, thresholds: np.ndarray | None = None) -> tuple[float, float]:
    """Largest kept fraction whose overall accuracy is still >= ``target`` (fractions),
    interpolated linearly between the last cut point at/above the target and the next one.

    ``kept``, ``acc``: (K,) cumulative kept fraction (non-decreasing) and accuracy of
    the kept pixels at K cut points (NaN = nothing kept). ``thresholds``: (K,) the
    threshold of each cut point, interpolated the same way. Returns
    ``(kept_fraction, threshold)``; ``(nan, nan)`` when no cut point reaches the target.
    """
    kept, acc = np.asarray(kept, float), np.asarray(acc, float)
    thr = np.asarray(thresholds, float) if thresholds is not None else np.full_like(kept, math.nan)
    cross = _crossing(kept, acc, target)
    if cross is None:
        return math.nan, math.nan
    return _interp(kept, cross), _interp(thr, cross)


def _cumulative(count: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kept fraction and accuracy of the kept pixels at every fine-bin edge (NaN where
    nothing is kept; kept fraction NaN everywhere when ``count`` is all zero)."""
    total = count.sum()
    ck, cc = np.cumsum(count), np.cumsum(correct)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(ck > 0, cc / np.maximum(ck, 1), np.nan)
        kept = ck / total if total else np.full(len(count), math.nan)
    return kept, acc


def coverage(hist: UncertaintyHistogram, targets=TARGETS, readings=READINGS) -> list[dict]:
    """Fig. 6 numbers of one model: per reading (see the module docstring) and target
    (percent) the kept share of all pixels and of the non-boundary pixels (percent) and
    the normalised uncertainty threshold(s) that give them. Rows ordered by reading,
    then target."""
    unknown = set(readings) - set(READINGS)
    if unknown:
        raise ValueError(f"unknown coverage readings {sorted(unknown)}; known: {READINGS}")
    thr = np.arange(hist.n_bins + 1) / hist.n_bins
    kept_e, acc_e = _cumulative(hist.count, hist.correct)
    kept_f, acc_f = _cumulative(hist.count_full, hist.correct_full)

    def at(kept, acc, target):
        """(kept share in percent, threshold) where ``acc`` crosses ``target`` (percent)."""
        if not np.isfinite(kept).any():
            return math.nan, math.nan, None
        cross = _crossing(kept, acc, target / 100.0)
        if cross is None:
            return math.nan, math.nan, None
        return 100.0 * _interp(kept, cross), _interp(thr, cross), cross

    rows = []
    for reading in READINGS:
        if reading not in readings:
            continue
        for target in targets:
            ke, te, cross_e = at(kept_e, acc_e, target)
            if reading == "two_thresholds":
                kf, tf, _ = at(kept_f, acc_f, target)
            else:  # one threshold (the eroded-GT one); the share of all pixels kept there
                kf = 100.0 * _interp(kept_f, cross_e) if cross_e is not None else math.nan
                tf = te
            rows.append(
                dict(reading=reading, target_overall_acc=float(target), pixels_classified_pct=kf,
                     pixels_classified_pct_ignoring_boundaries=ke, threshold=tf, threshold_ignoring_boundaries=te)
            )
    return rows


def uncertainty_range(paths: list[str | Path]) -> tuple[float, float]:
    """(min, max) of the finite values over all ``paths`` (single-band rasters), streamed."""
    lo, hi = math.inf, -math.inf
    for p in paths:
        u = read_band(p, np.float32)
        f = u[np.isfinite(u)]
        if f.size:
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    if not np.isfinite(lo):
        raise DataError(paths[0] if paths else None, "no finite uncertainty value in any validation area")
    return lo, hi


def model_histogram(
    model: str,
    areas: list,
    uncertainty: dict,
    labels: dict,
    eroded: dict,
    full: dict,
    n_thresholds: int,
    value_range: tuple[float, float] | None = None,
) -> UncertaintyHistogram:
    """Two streaming passes over the validation ``areas`` of one CNN -> its histogram.

    ``uncertainty``/``labels``: {(model, area): path} of ``uncertainty.tif`` (1 band,
    float) and ``labels.tif`` (1 band, class index); ``eroded``/``full``: {area: path}
    of the eroded and full ground truth (1 band uint8). ``value_range``: (min, max) for
    the normalisation; default: min-max over ``areas`` (a first streaming pass)."""
    areas = [int(a) for a in areas]
    upaths = [uncertainty[(model, a)] for a in areas]
    lo, hi = value_range if value_range is not None else uncertainty_range(upaths)
    h = UncertaintyHistogram(lo, hi, fine_bin_count(n_thresholds))
    for a, up in zip(areas, tqdm(upaths, desc=f"uncertainty {model}", unit="area")):
        lp, ep, fp = labels[(model, a)], eroded[a], full[a]
        u, pred = read_band(up, np.float32), read_band(lp)
        ge, gf = read_band(ep), read_band(fp)
        check_same_shape({up: u, lp: pred, ep: ge, fp: gf})
        h.add(u, pred.astype(np.int64), ge, gf)
    return h


def save_png(fig, path: str | Path, dpi: int = 120) -> None:
    """Write a matplotlib figure as PNG atomically (no partial file on a crash) and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)


def plot_curve(df: pd.DataFrame, out_png: str | Path) -> None:
    """Fig. 7: overall accuracy (left) and kept fraction (right) against the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # plain matplotlib: seaborn's import (+ scipy.stats) costs ~4 s per job

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model, g in df.groupby("model", sort=False):
        axes[0].plot(g["threshold"], 100 * g["overall_acc"], label=model)
        axes[1].plot(g["threshold"], 100 * g["kept_fraction"], label=model)
    axes[0].set(xlabel="normalised uncertainty threshold", ylabel="overall accuracy of kept pixels (%)",
                title="Accuracy vs. uncertainty threshold (Fig. 7)")
    axes[1].set(xlabel="normalised uncertainty threshold", ylabel="pixels kept (%)", title="Kept pixels")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(title="model")
    fig.tight_layout()
    save_png(fig, out_png)


def read_paper_coverage(path: str | Path) -> pd.DataFrame:
    """The paper's Fig. 6 numbers (``uncertainty_coverage.csv``)."""
    df = pd.read_csv(path)
    need = {"model", "target_overall_acc", "pixels_classified_pct", "pixels_classified_pct_ignoring_boundaries"}
    if not need <= set(df.columns):
        raise DataError(path, f"missing columns {sorted(need - set(df.columns))}")
    return df


def uncertainty_analysis(
    models: list[str],
    areas: list,
    uncertainty: dict,
    labels: dict,
    eroded: dict,
    full: dict,
    paper_dir: str | Path,
    out_curve_csv: str | Path,
    out_curve_png: str | Path,
    out_coverage_csv: str | Path,
    out_summary_json: str | Path,
    *,
    n_thresholds: int = 101,
    targets=TARGETS,
    figure_area: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole §5 uncertainty analysis for the CNNs ``models`` on the validation ``areas``
    (input mappings as in :func:`model_histogram`; see :func:`by_model_area`).

    Writes the curve (``model,threshold,kept_fraction,overall_acc``; fractions), its
    plot, the coverage table (``model, scope, reading, target_overall_acc,
    pixels_classified_pct, pixels_classified_pct_ignoring_boundaries, threshold,
    threshold_ignoring_boundaries, paper_pixels_classified_pct,
    paper_pixels_classified_pct_ignoring_boundaries``; percent; both readings of
    :func:`coverage`; the paper's numbers beside ours, NaN for models the paper does
    not report; read from ``paper_dir``/uncertainty_coverage.csv, a
    DataError when it is missing) and a JSON summary per model (normalisation range, mean
    normalised uncertainty of correct and misclassified pixels). With ``figure_area`` (a
    validation area) the coverage also has rows for that area alone (``scope``).
    Returns (curve, coverage).
    """
    if n_thresholds < 101:
        raise ValueError("n_thresholds must be >= 101")
    from .paper_diff import PAPER_COVERAGE, paper_file

    paper = read_paper_coverage(paper_file(paper_dir, PAPER_COVERAGE))
    curves, covs, summary = [], [], {}
    for model in models:
        h = model_histogram(model, areas, uncertainty, labels, eroded, full, n_thresholds)
        c = curve(h.count, h.correct, n_thresholds)
        c.insert(0, "model", model)
        curves.append(c)
        scopes = [("validation", h)]
        if figure_area is not None and int(figure_area) in [int(a) for a in areas]:
            ha = model_histogram(model, [figure_area], uncertainty, labels, eroded, full, n_thresholds, (h.u_min, h.u_max))
            scopes.append((f"area {int(figure_area)}", ha))
        for scope, hs in scopes:
            for row in coverage(hs, targets):
                p = paper[(paper["model"] == model) & np.isclose(paper["target_overall_acc"], row["target_overall_acc"])]
                row["paper_pixels_classified_pct"] = float(p["pixels_classified_pct"].iloc[0]) if len(p) else math.nan
                row["paper_pixels_classified_pct_ignoring_boundaries"] = (
                    float(p["pixels_classified_pct_ignoring_boundaries"].iloc[0]) if len(p) else math.nan
                )
                covs.append(dict(model=model, scope=scope, **row))
        summary[model] = h.summary()
        log.info("%s: uncertainty range [%.4g, %.4g], %d scored pixels, OA %.4f, mean normalised "
                 "uncertainty correct %.4f / errors %.4f", model, h.u_min, h.u_max, summary[model]["n_scored"],
                 summary[model]["overall_acc"], summary[model]["mean_uncertainty_correct"],
                 summary[model]["mean_uncertainty_error"])
    cdf = pd.concat(curves, ignore_index=True)
    cov = pd.DataFrame(covs)
    with atomic_path(out_curve_csv) as tmp:
        cdf.to_csv(tmp, index=False, float_format="%.6g", na_rep="NaN")
    with atomic_path(out_coverage_csv) as tmp:
        cov.to_csv(tmp, index=False, float_format="%.4f", na_rep="NaN")
    plot_curve(cdf, out_curve_png)
    write_json(out_summary_json, summary)
    log.info("coverage (%% of pixels kept at a target OA):\n%s", cov.to_string(index=False))
    return cdf, cov


def load_summary(path: str | Path) -> dict:
    """The per-model summary written by :func:`uncertainty_analysis`."""
    return json.loads(Path(path).read_text())
