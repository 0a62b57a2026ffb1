"""Map figures (Figs. 3-6) and training-history plots.

For one validation area (``report.figure_area``; area 30 in the paper): the IRRG image,
the ground truth, every model's prediction in ISPRS colours (Figs. 3-5), every CNN's
uncertainty map scaled to [0, 1] (dark blue = low, light = high; matplotlib's
``cividis``) and the FCN's predictions thresholded at 97.5/95/90 % accuracy with the
rejected pixels black (Fig. 6).

Choices where the paper is silent:
- IRRG display: bands IR, R, G of the standardised image, each stretched linearly
  between its 2nd and 98th percentile over the area (no de-standardisation needed).
- Uncertainty scaling: the same validation-set min-max normalisation as the
  accuracy-vs-uncertainty curve (``uncertainty_summary.json``), so the colours and the
  thresholds of Fig. 6 mean the same thing in every figure.
- Fig. 6 thresholds: the validation-set thresholds at which OA reaches each target, of
  the reading ``report.fig6_reading`` selects (``uncertainty_coverage.csv``, column
  ``threshold``): ``two_thresholds`` (default) = OA *with* boundary pixels (full GT; the
  paper's headline 64.85/75.81/94.06 %), ``one_threshold`` = OA in the ISPRS sense
  (eroded GT). A target no threshold reaches is drawn all black and labelled "not reached".
- If the requested area is not a validation area, the first validation area is used
  and the log and the figure title say so.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..classes import CLASSES
from ..errors import DataError
from ..raster import read_raster
from .uncertainty import TARGETS, check_same_shape, read_band, save_png

log = logging.getLogger(__name__)
UNCERTAINTY_CMAP = "cividis"
THRESHOLD_MODEL = "FCN"


def choose_figure_area(requested: int, val_areas) -> tuple[int, str | None]:
    """(area to draw, note or None): ``requested`` when it is a validation area, else the
    first validation area with a note saying so."""
    val_areas = list(val_areas)
    if int(requested) in val_areas:
        return int(requested), None
    area = int(val_areas[0])
    return area, f"report.figure_area {requested} is not a validation area; showing validation area {area} instead"


def _safe(model: str) -> str:
    return model.replace("+", "_plus_")


def _key(kind: str, name) -> str:
    """A Python-identifier key (Snakemake named output) for one map."""
    return f"{kind}_{_safe(str(name)).replace('-', '_').replace('.', '_')}"


def figure_files(out_dir: str | Path, area: int, models, cnns, targets=TARGETS) -> dict[str, str]:
    """Every PNG :func:`map_figures` writes, name -> path (for the Snakemake rule)."""
    d = Path(out_dir)
    files = {"composite": d / f"maps_area{area}.png", "irrg": d / f"area{area}_irrg.png", "gt": d / f"area{area}_gt.png"}
    for m in models:
        files[_key("pred", m)] = d / f"area{area}_pred_{_safe(m)}.png"
    for m in cnns:
        files[_key("uncertainty", m)] = d / f"area{area}_uncertainty_{_safe(m)}.png"
    for t in targets:
        files[_key("threshold", f"{t:g}")] = d / f"area{area}_{THRESHOLD_MODEL}_acc{t:g}.png"
    return {k: str(v) for k, v in files.items()}


def irrg(image: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """(>=3, H, W) image with bands IR, R, G first -> (H, W, 3) uint8, each band
    stretched between its ``lo`` and ``hi`` percentiles (non-finite pixels black)."""
    if image.ndim != 3 or image.shape[0] < 3:
        raise ValueError(f"expected (bands>=3, H, W), got {image.shape}")
    out = np.zeros(image.shape[1:] + (3,), np.uint8)
    for i in range(3):
        b = image[i].astype(np.float64)
        f = b[np.isfinite(b)]
        if f.size == 0:
            continue
        p0, p1 = np.percentile(f, [lo, hi])
        s = np.clip((b - p0) / (p1 - p0) if p1 > p0 else np.zeros_like(b), 0, 1)
        out[..., i] = np.where(np.isfinite(b), np.round(255 * s), 0).astype(np.uint8)
    return out


def thresholded(labels: np.ndarray, u_norm: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W, 3) uint8 ISPRS colours of ``labels`` where ``u_norm <= threshold``, black
    elsewhere (Fig. 6); all black for a NaN threshold."""
    rgb = colour(labels)
    keep = (u_norm <= threshold) if np.isfinite(threshold) else np.zeros(labels.shape, bool)
    rgb[~keep] = 0
    return rgb


#: 256-entry colour look-up table: class index -> ISPRS colour, anything else black
#: (same colours as :func:`vaiseg.classes.index_to_rgb`, one fancy-index, ~20x faster)
_LUT = np.zeros((256, 3), np.uint8)
_LUT[: len(CLASSES)] = [c.color for c in CLASSES]


def colour(labels: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class indices -> (H, W, 3) uint8 ISPRS colours (IGNORE/unclassified black)."""
    return _LUT[np.asarray(labels, dtype=np.uint8)]


def _save_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """(H, W, 3) uint8 -> PNG, full resolution (fast zlib level: Vaihingen tiles are ~5 Mpx)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG", compress_level=1)


def _save_labels(path: str | Path, labels: np.ndarray) -> None:
    """(H, W) uint8 class indices -> palette PNG in ISPRS colours (values outside the
    class table black); 1 byte per pixel, so ~3x faster to encode than RGB."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P")
    im.putpalette(_LUT.ravel().tolist())
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", compress_level=1)


def _display(a: np.ndarray, max_side: int = 900) -> np.ndarray:
    """Nearest-neighbour subsample of an (H, W[, 3]) array to at most ``max_side`` pixels
    per side for the composite (panels are a few hundred pixels wide)."""
    step = max(1, int(np.ceil(max(a.shape[:2]) / max_side)))
    return a[::step, ::step]


def _cmap():
    import matplotlib

    return matplotlib.colormaps[UNCERTAINTY_CMAP].with_extremes(bad="black")


def _save_scalar(path: str | Path, x: np.ndarray) -> None:
    """(H, W) values in [0, 1] (NaN = black) -> PNG in the uncertainty colour map."""
    rgba = _cmap()(np.ma.masked_invalid(np.clip(x, 0, 1)), bytes=True)
    _save_rgb(path, rgba[..., :3])


def map_figures(
    area: int,
    image: str | Path,
    labels: str | Path,
    predictions: dict,
    uncertainty: dict,
    summary_json: str | Path,
    coverage_csv: str | Path,
    files: dict[str, str],
    *,
    note: str | None = None,
    targets=TARGETS,
    reading: str = "two_thresholds",
) -> None:
    """Write the individual maps and the composite of ``area`` to ``files`` (from
    :func:`figure_files`). ``image``: the area's 5-band image.tif; ``labels``: its full
    GT; ``predictions``: {model: labels.tif} (CNNs and fusions, drawing order);
    ``uncertainty``: {cnn: uncertainty.tif}. ``summary_json``: model -> {u_min, u_max} (validation-set
    normalisation, from the uncertainty analysis); ``coverage_csv``: thresholds per
    model and target (``uncertainty_coverage.csv``; rows of ``reading``). ``note`` (area fallback) goes to
    the log and the composite's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if note:
        log.warning(note)
    summary = json.loads(Path(summary_json).read_text())
    models, cnns = list(predictions), list(uncertainty)
    ip, gp = image, labels
    image, _ = read_raster(ip)
    gt = read_band(gp)
    shapes = {ip: image, gp: gt}
    preds, uncs = {}, {}
    for m in models:
        p = predictions[m]
        preds[m] = read_band(p)
        shapes[p] = preds[m]
    for m in cnns:
        p = uncertainty[m]
        if m not in summary:
            raise DataError(p, f"no normalisation range for {m} in the uncertainty summary")
        u = read_band(p, np.float64)
        shapes[p] = u
        lo, hi = summary[m]["u_min"], summary[m]["u_max"]
        un = np.clip((u - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(u)
        uncs[m] = np.where(np.isfinite(u), un, np.nan)  # NaN (unclassified) is drawn black
    check_same_shape(shapes)
    cov = pd.read_csv(coverage_csv)
    if "scope" in cov.columns:
        cov = cov[cov["scope"] == "validation"]
    if "reading" in cov.columns:
        cov = cov[cov["reading"] == reading]
        if cov.empty:
            raise DataError(coverage_csv, f"no rows of the Fig. 6 reading {reading!r}")

    img = irrg(image)
    _save_rgb(files["irrg"], img)
    _save_labels(files["gt"], gt)
    for m in models:
        _save_labels(files[_key("pred", m)], preds[m])
    for m in cnns:
        _save_scalar(files[_key("uncertainty", m)], uncs[m])
    thr_maps = []
    for t in targets:
        row = cov[(cov["model"] == THRESHOLD_MODEL) & np.isclose(cov["target_overall_acc"], t)]
        thr = float(row["threshold"].iloc[0]) if len(row) else math.nan
        rgb = thresholded(preds[THRESHOLD_MODEL], uncs[THRESHOLD_MODEL], thr)
        keep = uncs[THRESHOLD_MODEL] <= thr if np.isfinite(thr) else np.zeros(gt.shape, bool)
        kept = float(keep.mean()) if np.isfinite(thr) else math.nan
        _save_labels(files[_key("threshold", f"{t:g}")], np.where(keep, preds[THRESHOLD_MODEL], 255))
        thr_maps.append((t, thr, kept, rgb))

    # composite: row 0 image + GT + legend; row 1 CNN predictions; row 2 CNN uncertainty;
    # row 3 fusions; row 4 FCN thresholded at the target accuracies
    fusions = [m for m in models if m not in cnns]
    ncol = max(4, len(cnns), len(fusions), len(targets))
    h, w = gt.shape
    cell = 3.2
    fig, axes = plt.subplots(5, ncol, figsize=(ncol * cell, 5 * cell * h / w + 1.0), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")

    def show(ax, x, title, **kw):
        ax.imshow(_display(x), interpolation="nearest", **kw)
        ax.set_title(title, fontsize=9)

    show(axes[0, 0], img, f"IRRG, area {area}")
    show(axes[0, 1], colour(gt), "ground truth")
    handles = [Patch(facecolor=np.array(c.color) / 255, edgecolor="k", label=c.name) for c in CLASSES]
    handles.append(Patch(facecolor="k", label="rejected (Fig. 6)"))
    axes[0, 2].legend(handles=handles, loc="center", fontsize=8, frameon=False)
    for j, m in enumerate(cnns):
        show(axes[1, j], colour(preds[m]), f"{m} prediction")
        im = axes[2, j].imshow(np.ma.masked_invalid(_display(uncs[m])), cmap=_cmap(), vmin=0, vmax=1, interpolation="nearest")
        axes[2, j].set_title(f"{m} uncertainty [0, 1]", fontsize=9)
    if cnns and len(cnns) < ncol:
        cax = axes[2, len(cnns)].inset_axes([0.05, 0.05, 0.08, 0.9])
        fig.colorbar(im, cax=cax, label="normalised uncertainty")
    elif cnns:
        fig.colorbar(im, ax=list(axes[2, : len(cnns)]), fraction=0.03, label="normalised uncertainty")
    for j, m in enumerate(fusions):
        show(axes[3, j], colour(preds[m]), f"{m} (SVM fusion)")
    for j, (t, thr, kept, rgb) in enumerate(thr_maps):
        label = f"{THRESHOLD_MODEL} @ {t:g} % OA: " + (f"u <= {thr:.3f}, {100 * kept:.1f} % kept" if np.isfinite(thr) else "not reached")
        show(axes[4, j], rgb, label)
    title = f"Maps of validation area {area} (Figs. 3-6)"
    if note:
        title += f"\n{note}"
    fig.suptitle(title, fontsize=11)
    save_png(fig, files["composite"], dpi=110)
    for t, thr, kept, _ in thr_maps:
        log.info("%s at %g %% OA: threshold %.4f keeps %.2f %% of area %s", THRESHOLD_MODEL, t, thr, 100 * kept, area)
    log.info("area %s: %d maps written, composite %s", area, len(files), files["composite"])


def history_plots(histories: dict, outputs: dict) -> None:
    """:func:`history_plot` for every model: ``histories``/``outputs``: {model: path}."""
    for model, path in histories.items():
        history_plot(path, outputs[model], model)


def history_plot(history_csv: str | Path, out_png: str | Path, model: str) -> None:
    """Training curves of one model from its ``history.csv`` (one row per held-out evaluation).

    With ``val_oa`` and ``val_loss`` columns the two windows of the convergence check
    (:func:`vaiseg.training.convergence`) are shaded and its verdict is in the title.

    x axis: the ``epoch`` column if present, else the row number (1-based). Left panel:
    every numeric column whose name contains ``loss``; right panel: every column with a
    ``_``-separated part ``acc``/``accuracy``/``oa``/``f1``/``iou`` (e.g. ``val_oa``,
    ``val_car_f1`` of :mod:`vaiseg.training`); other columns (lr, seconds) are not drawn. DataError when the file is missing, empty or has no loss/accuracy column.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .convergence import read_history

    df = read_history(history_csv)
    if df.empty:
        raise DataError(history_csv, "training history has no rows")
    x = df["epoch"] if "epoch" in df.columns else pd.Series(np.arange(1, len(df) + 1), name="epoch")
    num = [c for c in df.columns if c != "epoch" and pd.api.types.is_numeric_dtype(df[c])]
    losses = [c for c in num if "loss" in c.lower()]
    score_parts = {"acc", "accuracy", "oa", "f1", "iou", "miou"}
    scores = [c for c in num if set(c.lower().split("_")) & score_parts and c not in losses]
    if not losses and not scores:
        raise DataError(history_csv, f"no loss/accuracy column among {list(df.columns)}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, cols, ylabel in ((axes[0], losses, "loss"), (axes[1], scores, "score")):
        for c in cols:
            ax.plot(x, df[c], marker="o", ms=3, label=c)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if cols:
            ax.legend(fontsize=8)
    title = f"{model}: training history"
    if {"val_oa", "val_loss"} <= set(df.columns):
        from ..training import convergence

        c = convergence(df)
        if c["converged"] is not None:
            # the two windows the convergence check compares (issue 12's criterion)
            n, w = len(df), c["window"]
            for ax in axes:
                ax.axvspan(x.iloc[n - 2 * w], x.iloc[n - w - 1], color="tab:orange", alpha=0.12, lw=0)
                ax.axvspan(x.iloc[n - w], x.iloc[n - 1], color="tab:green", alpha=0.15, lw=0)
            verdict = "plateau reached" if c["converged"] else "NOT converged"
            title += (f" - {verdict}: last {w} evaluations vs the {w} before: held-out OA "
                      f"{c['oa_gain_points']:+.2f} pts, loss {-100 * c['loss_fall']:+.1f} %")
    log.info("%s: %d history rows; plotted %s", model, len(df), losses + scores)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)

