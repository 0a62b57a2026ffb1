"""The realism yardstick's outputs: summary.json, realism.csv, realism.md, realism.png.

:func:`realism_report` runs :func:`vaiseg.realism.measures.compare` and writes, each
atomically (``vaiseg.atomic``), into ``out_dir``:

- ``summary.json``: the headline numbers (plus ``extra_summary``, e.g. the sim-to-real
  scores ``sim_to_real_oa``, ``sim_to_real_avg_f1``, ``sim_to_real_car_f1`` computed
  elsewhere);
- ``realism.csv``: every row of the comparison (measure, class, band, synthetic, real,
  distance, unit);
- ``realism.md``: readable tables with one sentence per measure saying what it is;
- ``realism.png``: the first real sample next to a synthetic area of the same size (IRRG
  false colour and the eroded labels in ISPRS colours), the per-class histograms of the
  three standardised bands and the per-class gradient-magnitude histograms, overlaid.

The figure (and nothing else) contains real ISPRS pixels: keep ``out_dir`` out of version
control when the real reference is ISPRS data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_json, write_text
from ..classes import CLASSES, KEYS, NAMES, SCORED, index_to_rgb
from . import measures as M
from .reference import Sample

SIM_TO_REAL_KEYS = ("sim_to_real_oa", "sim_to_real_avg_f1", "sim_to_real_car_f1")
#: the prefix of the sim-to-real FCNs' scores on the run's own validation areas
#: (vaiseg.realism.run.in_domain_summary)
IN_DOMAIN = "sim_to_real_in_domain"


def _f(v, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _get(df: pd.DataFrame, measure: str, cls: str, band: str = "") -> pd.Series | None:
    sel = df[(df.measure == measure) & (df["class"] == cls) & (df.band == band)]
    return sel.iloc[0] if len(sel) else None


def markdown(rows: pd.DataFrame, summary: dict) -> str:
    """The text of ``realism.md`` from :func:`measures.compare`'s rows and summary."""
    s = summary
    st = s.get("settings", {})
    class_keys = ["all"] + list(KEYS)
    label = {"all": "all labelled", **dict(zip(KEYS, NAMES))}
    out = [
        "# Realism of the synthetic scenes against real ISPRS pixels",
        "",
        f"Synthetic: {', '.join(s.get('synthetic_samples', []))}. Real: {', '.join(s.get('real_samples', []))}.",
        "Both sides are measured on their ERODED ground truth (class boundaries ignored within "
        f"{st.get('erosion_radius', 3)} px) by the same rules; `distance` is a Wasserstein distance for "
        "distributions and synthetic − real for single numbers.",
        "",
        "## Headline",
        "",
    ]
    head = [
        ["band W1, mean over scored classes × bands (real std)", _f(s.get("band_w1_mean")), "", ""],
        [f"band W1, worst ({s.get('band_w1_max_at')})", _f(s.get("band_w1_max")), "", ""],
        ["band W1 of sunlit pixels, mean over scored classes × bands", _f(s.get("band_w1_lit_mean")), "", ""],
        ["texture W1, mean over scored classes (DN/px)", _f(s.get("gradient_w1_mean")), "", ""],
        ["median gradient magnitude (DN/px)", "", _f(s.get("gradient_median_synthetic"), 2),
         _f(s.get("gradient_median_real"), 2)],
        ["eroded-boundary fraction", "", _f(s.get("boundary_fraction_synthetic")), _f(s.get("boundary_fraction_real"))],
        ["eroded-boundary fraction at the synthetic class mix", "", _f(s.get("boundary_fraction_synthetic")),
         _f(s.get("boundary_fraction_real_at_synthetic_mix"))],
        ["car length / width, median (m, eroded)", "",
         f"{_f(s.get('car_length_m_synthetic'), 2)} / {_f(s.get('car_width_m_synthetic'), 2)}",
         f"{_f(s.get('car_length_m_real'), 2)} / {_f(s.get('car_width_m_real'), 2)}"],
        ["building area, median (m², eroded)", "", _f(s.get("building_area_m2_synthetic"), 1),
         _f(s.get("building_area_m2_real"), 1)],
        ["building compactness 4πA/P², median", "", _f(s.get("building_compactness_synthetic")),
         _f(s.get("building_compactness_real"))],
        ["tree-canopy equivalent diameter, median (m)", "", _f(s.get("tree_equivalent_diameter_m_synthetic"), 2),
         _f(s.get("tree_equivalent_diameter_m_real"), 2)],
        ["class separability from the image alone, mean AUC over class pairs", "",
         _f(s.get("separability_auc_mean_synthetic")), _f(s.get("separability_auc_mean_real"))],
        [f"class separability, largest excess over real ({s.get('separability_auc_gap_max_at')})",
         _f(s.get("separability_auc_gap_max")), "", ""],
        ["shadow fraction", "", _f(s.get("shadow_fraction_synthetic")), _f(s.get("shadow_fraction_real"))],
        ["shadow darkness (shadow / lit brightness)", "", _f(s.get("shadow_darkness_synthetic")),
         _f(s.get("shadow_darkness_real"))],
    ]
    n_seeds = len(s.get("sim_to_real_seeds") or [])
    for k in SIM_TO_REAL_KEYS:
        if k in s:
            v = f"{_f(s[k], 2)} ± {_f(s[k + '_std'], 2)}" if k + "_std" in s else _f(s[k])
            head.append([k.replace("_", " ") + (f" (mean ± std, {n_seeds} seeds)" if k + "_std" in s else ""), v, "", ""])
    out += [_table(["measure", "distance / score", "synthetic", "real"], head), ""]
    if n_seeds > 1:
        out += ["Sim-to-real per seed (one IR-R-G FCN each; the prediction rasters are the first seed's): "
                + "; ".join(f"seed {r['seed']}: OA {_f(r.get('sim_to_real_oa'), 2)}, avg F1 "
                            f"{_f(r.get('sim_to_real_avg_f1'), 2)}, car F1 {_f(r.get('sim_to_real_car_f1'), 2)}"
                            for r in s["sim_to_real_seeds"]) + ".", ""]

    out += [
        "## Band distributions",
        "",
        "Per class and band, the 1-D Wasserstein distance between the pixel-value distributions after "
        "standardising both sides with the real reference's per-band mean and std over its labelled pixels, "
        f"so 1.0 is one real-band standard deviation (at most {st.get('cap', M.MAX_VALUES)} seeded-subsampled "
        "values per side); next to it the mean DN of each side.",
        "",
    ]
    hdr = ["class"] + [h for b in M.BANDS for h in (f"W1 {b}", f"mean DN {b} syn / real")]
    for suffix, title in (("", "All pixels:"), ("_lit", "Sunlit pixels only (not shadow by the rule below), "
                                               "the colour of lit surfaces whatever the amount of shadow:")):
        trows = []
        for k in class_keys:
            r = [label[k]]
            for band in M.BANDS:
                w = _get(rows, "band_w1" + suffix, k, band)
                d = _get(rows, "band_mean_dn" + suffix, k, band)
                r.append(_f(w.distance) if w is not None else "–")
                r.append(f"{_f(d.synthetic, 1)} / {_f(d.real, 1)}" if d is not None else "–")
            trows.append(r)
        out += [title, "", _table(hdr, trows), ""]

    out += [
        "## Texture",
        "",
        "Per class, the Sobel gradient magnitude of the brightness (mean of IR, R, G) in DN per pixel at "
        "labelled pixels of the eroded GT (so the 3 × 3 stencil stays inside one class): medians of each side "
        "and the Wasserstein distance between the two distributions (DN/px).",
        "",
    ]
    trows = []
    for k in class_keys:
        g = _get(rows, "gradient_w1", k, "brightness")
        trows.append([label[k], _f(g.synthetic, 2), _f(g.real, 2), _f(g.distance, 2)])
    out += [_table(["class", "median syn", "median real", "W1"], trows), ""]

    out += [
        "## Eroded boundaries",
        "",
        "Share of pixels ignored in the eroded ground truth (a band of radius 3 px around every class "
        f"boundary): synthetic {_f(s.get('boundary_fraction_synthetic'))}, real {_f(s.get('boundary_fraction_real'))}.",
        "More ignored pixels means more class boundary per area (smaller or more fragmented objects).",
        "",
        "Split by class (each ignored pixel given the class of its nearest labelled pixel): the fraction is "
        "the class mix times each class's band rate (the ignored share of its pixels). The real side's rates "
        f"at the synthetic class mix give {_f(s.get('boundary_fraction_real_at_synthetic_mix'))}, the synthetic "
        f"rates at the real mix {_f(s.get('boundary_fraction_synthetic_at_real_mix'))}: a gap that the first "
        "closes is the class mix, one that remains is the shape of the objects.",
        "",
    ]
    trows = []
    for k in KEYS:
        sh, br = _get(rows, "class_share", k), _get(rows, "boundary_rate", k)
        if sh is not None and br is not None:
            trows.append([label[k], f"{_f(sh.synthetic)} / {_f(sh.real)}", f"{_f(br.synthetic)} / {_f(br.real)}"])
    out += [_table(["class", "share syn / real", "band rate syn / real"], trows), ""] if trows else []
    out += [
        "## Objects",
        "",
        "Connected components (4-connectivity) of one class in the eroded labels, without fragments below "
        f"{st.get('min_area_px', {})} px; cars touching the image border are dropped, buildings and tree canopies "
        "kept (tile-truncated, the same on both sides). The erosion shrinks every isolated object by 3 px on "
        "each side on both sides (add about 0.54 m to eroded lengths and widths). Car length and width are the "
        "sides of the rectangle with the same second moments; compactness is 4πA/P² (a square ≈ 0.85); tree "
        "canopies are components of class tree (touching crowns merge). Median [IQR] per side.",
        "",
    ]
    trows = []
    for kind, (cls, props) in M.OBJECTS.items():
        key = KEYS[cls]
        cnt = _get(rows, f"{kind}_count", key)
        dens = _get(rows, f"{kind}_density", key)
        trows.append([kind, "count (objects/ha)", f"{int(cnt.synthetic)} ({_f(dens.synthetic, 1)})",
                      f"{int(cnt.real)} ({_f(dens.real, 1)})", ""])
        for prop, unit in props:
            med = _get(rows, f"{kind}_{prop}", key)
            iqr = _get(rows, f"{kind}_{prop}_iqr", key)
            trows.append([kind, f"{prop} ({unit})", f"{_f(med.synthetic, 2)} [{_f(iqr.synthetic, 2)}]",
                          f"{_f(med.real, 2)} [{_f(iqr.real, 2)}]", _f(med.distance, 2)])
    out += [_table(["object", "property", "synthetic", "real", "syn − real"], trows), ""]

    out += [
        "## Class separability from the image alone",
        "",
        "Per pair of classes, the ROC AUC of a pixel classifier (gradient-boosted trees) on local appearance "
        f"only: IR, R, G, their mean and std in {' and '.join(f'{w} × {w}' for w in st.get('separability_windows', M.SEPARABILITY_WINDOWS))} "
        "windows and the gradient magnitude; no heights, no wider context. Trained on one fold of a "
        f"checkerboard of {st.get('separability_block', M.SEPARABILITY_BLOCK)}-px blocks and scored on the other, "
        f"both ways, at most {st.get('separability_cap', M.SEPARABILITY_CAP)} pixels per class and fold; AUC is "
        "the mean of the two folds, both shown. 0.5: the classes look alike; 1.0: always told apart. A synthetic "
        "AUC above the real one: the synthetic scenes make that pair too easy. On a small reference read the "
        "folds and the pixel count: a pair whose folds differ by tenths rests on a few objects.",
        "",
    ]
    trows = []
    for pair in M.SEPARABILITY_PAIRS:
        key = M.pair_key(*pair)
        auc = _get(rows, "separability_auc", key)
        f0, f1 = _get(rows, "separability_auc_fold0", key), _get(rows, "separability_auc_fold1", key)
        n = _get(rows, "separability_pixels", key)
        if auc is None:
            continue
        trows.append([f"{label[KEYS[pair[0]]]} / {label[KEYS[pair[1]]]}", _f(auc.synthetic), _f(auc.real),
                      _f(auc.distance), f"{_f(f0.synthetic)} / {_f(f1.synthetic)}", f"{_f(f0.real)} / {_f(f1.real)}",
                      f"{int(n.synthetic)} / {int(n.real)}"])
    out += [_table(["classes", "AUC syn", "AUC real", "syn − real", "folds syn", "folds real",
                    "pixels of the rarer class syn / real"], trows), ""] if trows else []

    out += [
        "## Shadows",
        "",
        "Brightness = mean of IR, R, G. Per image, the lit level L is the median brightness of the impervious "
        "pixels above the Otsu threshold of their brightness (sunlit road); a pixel is in shadow when its "
        f"brightness is below {st.get('shadow_fraction', M.SHADOW_FRACTION)} L. Fraction = shadow pixels / pixels "
        "(all = every pixel; per class its eroded-label pixels); darkness = median brightness of shadow pixels / "
        "median brightness of lit pixels of the same class (both relative to L).",
        "",
    ]
    trows = []
    for k in class_keys:
        fr = _get(rows, "shadow_fraction", k)
        dk = _get(rows, "shadow_darkness", k)
        trows.append([label[k] if k != "all" else "all pixels", _f(fr.synthetic), _f(fr.real), _f(dk.synthetic),
                      _f(dk.real)])
    out += [_table(["class", "fraction syn", "fraction real", "darkness syn", "darkness real"], trows), ""]

    out += _sim_to_real_md(s)
    return "\n".join(out)


def _sim_to_real_md(s: dict) -> list[str]:
    """realism.md's section on the sim-to-real numbers of ``s`` (none: no section): the
    scalar ``sim_to_real*`` numbers (each seed's are in the headline) and, with
    ``sim_to_real_cars``, a row per car of the reference."""
    extra = {k: v for k, v in s.items() if k.startswith("sim_to_real")}
    if not extra:
        return []
    scalars = {k: v for k, v in extra.items() if not isinstance(v, (dict, list, tuple)) and not k.startswith(IN_DOMAIN)}
    out = [
        "## Sim-to-real",
        "",
        "A network trained on the synthetic scenes, scored on the real reference (computed by the caller): "
        + ", ".join(f"{k} {_f(v)}" for k, v in scalars.items()) + ".",
        "",
    ]
    if f"{IN_DOMAIN}_oa" in s:
        from .sim_to_real import CAR_MIN_PIXELS

        areas = ", ".join(str(a) for a in s.get(f"{IN_DOMAIN}_areas", []))
        rows = []
        for what, key in (("OA", "oa"), ("average F1", "avg_f1"), ("car F1", "car_f1"), ("cars found", "cars_found")):
            real, own = s.get(f"sim_to_real_{key}"), s.get(f"{IN_DOMAIN}_{key}")
            gap = None if real is None or own is None else own - real
            rows.append([what, _f(real, 2), _f(own, 2), _f(gap, 2)])
        out += [
            f"The same networks on the run's own validation areas ({areas}; IR, R, G only, eroded labels): what "
            "they reach on the kind of scenes they were trained on. The gap (in-domain − real) is what the domain "
            "costs; what the in-domain figure lacks to 100 is the network and its budget (%, mean over the seeds; "
            f"cars found: the share of cars of at least {CAR_MIN_PIXELS} px with at least half of their pixels "
            "called car).",
            "",
            _table(["", "real reference", "validation areas (in-domain)", "gap"], rows),
            "",
        ]
    cars = extra.get("sim_to_real_cars") or []
    if cars:
        recalls = [k for k in cars[0] if k.startswith("recall_seed")]
        out += [
            "Each car of the reference (a connected component of its eroded car label): its brightness (mean of IR, "
            "R, G, DN) and the std of it over the car, the mean brightness of its surroundings (the scored non-car "
            "pixels 3-8 px from its label), and the share of its pixels each seed's model calls car; found = the "
            "share of the seeds with at least half of it. A dark car within a few DN of its surroundings and "
            "without structure is near-invisible in IR-R-G.",
            "",
            _table(["reference", "car", "row, col", "pixels", "brightness ± std", "surroundings", "contrast"]
                   + [k.replace("recall_", "recall ") for k in recalls] + ["found"],
                   [[c["reference"], c["car"], f"{c['row']:.0f}, {c['col']:.0f}", c["pixels"],
                     f"{_f(c['brightness'], 1)} ± {_f(c['brightness_std'], 1)}", _f(c["surroundings"], 1),
                     _f(c["contrast"], 1)] + [_f(c[k], 2) for k in recalls] + [_f(c["found"], 2)] for c in cars]),
            "",
        ]
    return out


def _same_size(samples: Sequence[Sample], shape: tuple[int, int]) -> Sample:
    for s in samples:
        if s.shape == tuple(shape):
            return s
    s = samples[0]
    h, w = min(shape[0], s.shape[0]), min(shape[1], s.shape[1])
    return Sample(s.name + " (crop)", s.irrg[:, :h, :w], s.labels[:h, :w], None if s.full is None else s.full[:h, :w])


def figure(synthetic: Sequence[Sample], real: Sequence[Sample], path: str | Path, *, cap: int = M.MAX_VALUES,
           seed: int = 0) -> Path:
    """Write the side-by-side PNG (see the module docstring) to ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ref = real[0]
    syn = _same_size(synthetic, ref.shape)
    mean, std = M.reference_band_stats(real)
    bands_fn = lambda s: M.standardise(s.irrg, mean, std)  # noqa: E731
    grad_fn = lambda s: M.gradient_magnitude(s.irrg)  # noqa: E731
    vb = (M.pooled_class_values(synthetic, bands_fn, cap=cap, seed=seed),
          M.pooled_class_values(real, bands_fn, cap=cap, seed=seed))
    vg = (M.pooled_class_values(synthetic, grad_fn, cap=cap, seed=seed),
          M.pooled_class_values(real, grad_fn, cap=cap, seed=seed))
    ncol = len(SCORED)
    fig, axes = plt.subplots(3, ncol, figsize=(4 * ncol, 12.5), gridspec_kw=dict(height_ratios=[1.25, 1, 1]))
    imgs = [(ref.irrg.transpose(1, 2, 0), f"real: {ref.name} (IRRG)"), (index_to_rgb(ref.labels), "real: eroded GT"),
            (syn.irrg.transpose(1, 2, 0), f"synthetic: {syn.name} (IRRG)"), (index_to_rgb(syn.labels), "synthetic: eroded GT")]
    for ax, (img, title) in zip(axes[0], imgs):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    axes[0, -1].set_axis_off()
    axes[0, -1].legend(handles=[Patch(facecolor=np.array(c.color) / 255, edgecolor="k", label=c.name) for c in CLASSES]
                       + [Patch(facecolor="k", label="eroded boundary (ignored)")], loc="center", fontsize=9)
    colours = dict(zip(M.BANDS, ("tab:red", "tab:orange", "tab:green")))
    bins_b = np.linspace(-3, 4, 71)
    for j, c in enumerate(SCORED):
        k = KEYS[c]
        ax = axes[1, j]
        for bi, band in enumerate(M.BANDS):
            for side, ls, vals in (("real", "-", vb[1]), ("syn", "--", vb[0])):
                v = vals[k][bi]
                if v.size:
                    ax.hist(np.clip(v, bins_b[0], bins_b[-1]), bins=bins_b, density=True, histtype="step",
                            color=colours[band], ls=ls, label=f"{band} {side}")
        ax.set_title(f"{NAMES[c]}: standardised bands", fontsize=9)
        ax.set_xlabel("(DN − real mean) / real std", fontsize=8)
        if j == 0:
            ax.legend(fontsize=7, ncol=2)
        ax = axes[2, j]
        gmax = max([float(np.percentile(v[k], 99)) for v in vg if v[k].size] + [1.0])
        bins_g = np.linspace(0, gmax, 61)
        for side, colour, vals in (("real", "k", vg[1]), ("synthetic", "tab:blue", vg[0])):
            v = vals[k].ravel()
            if v.size:
                ax.hist(np.clip(v, 0, gmax), bins=bins_g, density=True, histtype="step", color=colour,
                        label=f"{side} (median {np.median(v):.1f})")
        ax.set_title(f"{NAMES[c]}: brightness gradient", fontsize=9)
        ax.set_xlabel("Sobel magnitude (DN/px)", fontsize=8)
        if ax.get_legend_handles_labels()[0]:  # a class absent from both sides has no curve
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return path


def realism_report(
    synthetic: Sequence[Sample],
    real: Sequence[Sample],
    out_dir: str | Path,
    extra_summary: dict | None = None,
    *,
    cap: int = M.MAX_VALUES,
    seed: int = 0,
) -> dict:
    """Compare ``synthetic`` with ``real`` and write summary.json, realism.csv,
    realism.md and realism.png into ``out_dir`` (each atomically).

    ``extra_summary``: numbers computed elsewhere merged into the summary (and shown in
    realism.md), e.g. ``sim_to_real_oa``, ``sim_to_real_avg_f1``, ``sim_to_real_car_f1``;
    a key that collides with a realism key is a ValueError. Returns the merged summary
    with ``files`` ({name: path}) added.
    """
    out_dir = Path(out_dir)
    rows, summary = M.compare(synthetic, real, cap=cap, seed=seed)
    extra = dict(extra_summary or {})
    clash = sorted(set(extra) & set(summary))
    if clash:
        raise ValueError(f"extra_summary keys collide with realism keys: {clash}")
    summary.update(extra)
    files = {
        "summary": out_dir / "summary.json",
        "csv": out_dir / "realism.csv",
        "markdown": out_dir / "realism.md",
        "figure": out_dir / "realism.png",
    }
    with atomic_path(files["csv"]) as tmp:
        rows.to_csv(tmp, index=False, float_format="%.6g")
    write_text(files["markdown"], markdown(rows, summary))
    figure(synthetic, real, files["figure"], cap=cap, seed=seed)
    write_json(files["summary"], _json_ready(summary))
    return {**summary, "files": {k: str(v) for k, v in files.items()}}


def _json_ready(obj):
    """NaN/inf -> None (strict JSON), recursively."""
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
