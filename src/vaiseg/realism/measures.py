"""Realism measures: synthetic samples against real ISPRS pixels.

All functions are pure (no I/O) and work on :class:`vaiseg.realism.reference.Sample`
lists or plain arrays. Both sides are treated by exactly the same rules; every measure
uses the ERODED ground truth (``IGNORE`` = 255 on a band of radius 3 around each class
boundary, ISPRS protocol) on both sides.

Definitions (see each function for details):

- **Band distributions** (:func:`class_band_distances`): per class and band, the 1-D
  Wasserstein distance (earth mover's distance, ``scipy.stats.wasserstein_distance``)
  between the pixel-value distributions after standardising BOTH sides with the REAL
  reference's per-band mean and std over all its labelled pixels: distances are in units
  of the real band's std ("std_real"). Each side is capped at ``cap`` values per class by
  a seeded uniform subsample. The same again on sunlit pixels only (``band_w1_lit``),
  which separates the colour of lit surfaces from the amount of shadow.
- **Texture** (:func:`gradient_magnitude`): the Sobel gradient magnitude of the
  brightness (mean of the three bands), in DN per pixel; per class its distribution is
  compared with the same Wasserstein distance (DN/px) and its medians are reported. Only
  labelled pixels of the eroded GT are used, so the 3 x 3 Sobel stencil never straddles a
  class boundary: it is the texture inside objects, not their edges.
- **Eroded-boundary fraction** (:func:`boundary_fraction`): share of ``IGNORE`` pixels;
  split by class (:func:`boundary_rates`): every ignored pixel is given the class of the
  nearest labelled pixel, the class's *band rate* is the ignored share of the pixels so
  given to it. The fraction is the class mix times these rates, so the rates of one side
  weighted by the other side's class mix (:func:`boundary_fraction_at_mix`) tell how much
  of a gap is the class mix and how much the shape of the objects. A reference of
  another pixel size (Potsdam's 5 cm) is compared at Vaihingen's 9 cm by
  :func:`boundary_fraction_at_pixel_size`: its labels refilled, resampled and eroded
  again with this module's rule.
- **Objects** (:func:`object_table`): 4-connected components of one class in the eroded
  labels, without tiny fragments (``MIN_AREA_PX``); cars touching the image border are
  dropped (truncated), buildings and crowns are kept (``EXCLUDE_BORDER``). The erosion shrinks every isolated object by ``EROSION_RADIUS``
  = 3 px on each side (a 50 x 20 px car appears as about 44 x 14 px; neighbouring objects
  of one class separated by less than 6 px of another class are cut apart by the boundary
  band); this applies identically to both sides, and the sizes are reported as measured
  on the eroded labels (add about 6 px = 0.54 m to lengths and widths for the unshrunk
  size).
- **Class separability from the image alone** (:func:`class_separability`): per pair of
  scored classes, the ROC AUC with which a pixel classifier (scikit-learn's
  ``HistGradientBoostingClassifier``) on local appearance only -- IR, R, G, their mean and
  std over 5 x 5 and 11 x 11 windows and the gradient magnitude (:func:`appearance_features`),
  no heights, no wider context -- tells the two classes apart on pixels it was not
  trained on. The pixels are split into two folds by a checkerboard of
  ``SEPARABILITY_BLOCK`` (64) px blocks (neighbouring pixels are alike, so a random split
  would score memory, not appearance); each fold is trained on with at most
  ``SEPARABILITY_CAP`` pixels per class and scored on the other, and the two AUCs are
  averaged (both are reported: their gap shows how much the number depends on which
  objects fall in which fold). The classes are balanced in training and AUC ignores the
  class mix, so the number is comparable between sides with different mixes. 0.5: the
  two classes look alike, 1.0: any pixel's neighbourhood tells them apart. A synthetic AUC
  well above the real one marks a pair the synthetic scenes make too easy.
- **Shadows** (:func:`shadow_analysis`): brightness (band mean) below ``SHADOW_FRACTION``
  (0.5) of the image's lit-impervious median brightness (lit = above the Otsu threshold
  of the impervious brightness).

The comparison :func:`compare` returns one row per (measure, class, band) with the
synthetic value, the real value, a ``distance`` and its unit: for distribution measures
(``*_w1``) the Wasserstein distance (and the two columns carry the side's mean or
median, same unit); for scalar measures the signed difference synthetic - real.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.stats import wasserstein_distance
from skimage.filters import threshold_otsu
from skimage.measure import label as cc_label
from skimage.measure import regionprops
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from ..classes import CAR, IGNORE, KEYS, N_CLASSES, SCORED
from ..data.erosion import erode_boundaries
from .reference import Sample

#: ground sampling distance of Vaihingen (metres per pixel)
PIXEL_SIZE_M = 0.09
BANDS = ("IR", "R", "G")
#: at most this many values per side enter one Wasserstein distance (seeded subsample)
MAX_VALUES = 200_000
#: shadow = brightness below this fraction of the image's lit-impervious median
SHADOW_FRACTION = 0.5
#: radius of the ISPRS boundary erosion (px) that shrinks every object on both sides
EROSION_RADIUS = 3
BUILDING, TREE = 1, 3
#: smallest component (px, on the eroded labels) counted as an object: cars 100 px
#: (0.8 m^2; an eroded car is ~600 px), buildings 500 px (4 m^2), tree crowns 200 px (1.6 m^2)
MIN_AREA_PX = {CAR: 100, BUILDING: 500, TREE: 200}
#: rectangle side / second-moment ellipse axis (a solid L x W rectangle has the same
#: second moments as an ellipse with axes 2/sqrt(3) * (L, W))
RECT_FROM_ELLIPSE = math.sqrt(3) / 2
#: objects summarised by :func:`object_stats`: kind -> (class, [(property, unit), ...])
#: (see EXCLUDE_BORDER for which kinds drop components touching the image border)
OBJECTS = {
    "car": (CAR, [("length_m", "m"), ("width_m", "m"), ("length_px", "px"), ("width_px", "px")]),
    "building": (BUILDING, [("area_m2", "m2"), ("compactness", "4piA/P2")]),
    "tree": (TREE, [("area_m2", "m2"), ("equivalent_diameter_m", "m")]),
}
#: drop components touching the image border? Cars yes (a truncated car has a wrong
#: length; cars are small, few touch it). Buildings and tree canopies no: in a 512 px
#: (46 m) tile nearly every building touches the border (the real area-1 crop has none
#: inside), so their sizes are tile-truncated -- comparable only between tiles of the
#: same size, which the yardstick uses on both sides.
EXCLUDE_BORDER = {"car": True, "building": False, "tree": False}


# ----------------------------------------------------------------------------- basics


def reference_band_stats(real: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and (population) std of the REAL samples over all their labelled
    pixels (eroded labels != IGNORE), pooled. Returns two (3,) float64 arrays in DN."""
    n = 0
    s = np.zeros(3)
    s2 = np.zeros(3)
    for smp in real:
        m = smp.labels != IGNORE
        x = smp.irrg[:, m].astype(np.float64)
        n += x.shape[1]
        s += x.sum(axis=1)
        s2 += (x**2).sum(axis=1)
    if n == 0:
        raise ValueError("the real reference has no labelled pixels")
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0))
    return mean, np.where(std < 1e-9, 1.0, std)


def standardise(irrg: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(3, H, W) image -> (3, H, W) float32 ``(x - mean) / std`` per band."""
    return ((irrg.astype(np.float32) - np.asarray(mean, np.float32)[:, None, None])
            / np.asarray(std, np.float32)[:, None, None])


def wasserstein(a: np.ndarray, b: np.ndarray, *, cap: int = MAX_VALUES, seed: int = 0) -> float:
    """1-D Wasserstein-1 distance ``integral |F_a(x) - F_b(x)| dx`` between the empirical
    distributions of the values ``a`` and ``b`` (same unit as the values).

    A side with more than ``cap`` values is replaced by a uniform subsample of ``cap``
    values drawn with ``numpy.random.default_rng(seed)``. NaN when either side is empty.
    Identical samples give 0; ``b = a + c`` gives exactly ``|c|``.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    if a.size > cap:
        a = rng.choice(a, cap, replace=False)
    if b.size > cap:
        b = rng.choice(b, cap, replace=False)
    return float(wasserstein_distance(a, b))


def brightness(irrg: np.ndarray) -> np.ndarray:
    """(3, H, W) image -> (H, W) float32 mean of the three bands (DN)."""
    return irrg.astype(np.float32).mean(axis=0)


def gradient_magnitude(irrg: np.ndarray) -> np.ndarray:
    """(H, W) float32 Sobel gradient magnitude of :func:`brightness`, in DN per pixel.

    ``sqrt(gx^2 + gy^2)`` with ``gx = ndimage.sobel(b, axis=1) / 8`` (and gy along
    rows): the Sobel kernel's weights sum to 4 over a 2-px difference, so dividing by 8
    gives a smoothed central difference (a ramp of 1 DN/px reads 1). Edges: 'nearest'."""
    b = brightness(irrg)
    gx = ndi.sobel(b, axis=1, mode="nearest") / 8.0
    gy = ndi.sobel(b, axis=0, mode="nearest") / 8.0
    return np.hypot(gx, gy).astype(np.float32)


def pooled_class_values(
    samples: Sequence[Sample],
    values: Callable[[Sample], np.ndarray],
    *,
    cap: int = MAX_VALUES,
    seed: int = 0,
    where: Callable[[Sample], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per class key (``vaiseg.classes.KEYS``) and ``"all"`` (every labelled pixel): the
    values of ``values(sample)`` ((H, W) or (k, H, W)) at that class's pixels of the
    eroded labels, pooled over ``samples`` -> (k, n) float32 (k = 1 for (H, W) values).
    ``where(sample)``: optional (H, W) bool; pixels where it is False are left out.

    Pixels are kept with probability ``min(1, cap / N_class)`` (N_class over all samples)
    by a ``default_rng(seed)`` draw, so large inputs never materialise and every sample
    keeps its weight; the result is then trimmed to at most ``cap`` columns. Callers draw
    both sides with the same ``seed``, so identical inputs give identical subsamples."""
    def labels_of(s: Sample) -> np.ndarray:
        return s.labels if where is None else np.where(where(s), s.labels, np.uint8(IGNORE))

    counts = np.zeros(N_CLASSES, np.int64)
    for s in samples:
        counts += np.bincount(labels_of(s).ravel(), minlength=256)[:N_CLASSES]
    keep_p = {c: min(1.0, cap / max(int(counts[c]), 1)) for c in range(N_CLASSES)}
    keep_p["all"] = min(1.0, cap / max(int(counts.sum()), 1))
    rng = np.random.default_rng(seed)
    parts: dict = {k: [] for k in keep_p}
    k_dim = 1
    for s in samples:
        v = np.asarray(values(s), dtype=np.float32)
        if v.ndim == 2:
            v = v[None]
        k_dim = v.shape[0]
        flat = v.reshape(v.shape[0], -1)
        lab = labels_of(s).ravel()
        for c, p in keep_p.items():
            idx = np.flatnonzero(lab < N_CLASSES if c == "all" else lab == c)
            if p < 1.0:
                idx = idx[rng.random(idx.size) < p]
            parts[c].append(flat[:, idx])
    out = {}
    for c, chunks in parts.items():
        arr = np.concatenate(chunks, axis=1) if chunks else np.zeros((k_dim, 0), np.float32)
        if arr.shape[1] > cap:
            arr = arr[:, np.sort(rng.choice(arr.shape[1], cap, replace=False))]
        out["all" if c == "all" else KEYS[c]] = arr
    return out


def boundary_fraction(labels) -> float:
    """Share of ``IGNORE`` (eroded-boundary) pixels in one (H, W) label image or pooled
    over a sequence of them (total ignored / total pixels; unitless, 0..1)."""
    arrs = [labels] if isinstance(labels, np.ndarray) else [np.asarray(x) for x in labels]
    n = sum(a.size for a in arrs)
    return float(sum(int((a == IGNORE).sum()) for a in arrs) / n) if n else float("nan")


def boundary_rates(labels) -> tuple[np.ndarray, np.ndarray]:
    """``(mix, rate)``, each (N_CLASSES,), of eroded label images (one or pooled).

    Each ``IGNORE`` pixel is given the class of its nearest labelled pixel (Euclidean,
    ``scipy.ndimage.distance_transform_edt``; ties by scipy's scan order): a straight
    boundary between two classes splits its 2 x radius band evenly, as the full labels
    would. Rule applied on both sides alike, so it needs no full labels (the mmseg crop has
    none). ``mix[c]`` = share of all pixels given to class c, ``rate[c]`` = ignored share
    of them (NaN where a class has no pixels). ``(mix * rate).sum()`` equals
    :func:`boundary_fraction`. An image with no labelled pixel at all counts nowhere."""
    arrs = [labels] if isinstance(labels, np.ndarray) else [np.asarray(x) for x in labels]
    n_cls, n_ign = np.zeros(N_CLASSES), np.zeros(N_CLASSES)
    for a in arrs:
        ign = a == IGNORE
        if ign.all():
            continue
        near = refill_ignored(a)
        n_cls += np.bincount(near.ravel(), minlength=N_CLASSES)[:N_CLASSES]
        n_ign += np.bincount(near[ign].ravel(), minlength=N_CLASSES)[:N_CLASSES]
    total = n_cls.sum()
    mix = n_cls / total if total else np.full(N_CLASSES, np.nan)
    rate = np.where(n_cls > 0, n_ign / np.maximum(n_cls, 1), np.nan)
    return mix, rate


def refill_ignored(labels: np.ndarray) -> np.ndarray:
    """Copy of eroded ``labels`` (H, W) with every ``IGNORE`` pixel given the class of its
    nearest labelled pixel (Euclidean; ties by scipy's scan order): the full labels as
    far as the eroded ones tell them, each boundary back in the middle of its band.
    ValueError when no pixel is labelled."""
    a = np.asarray(labels)
    ign = a == IGNORE
    if ign.all():
        raise ValueError("no labelled pixel to refill the boundary band from")
    if not ign.any():
        return a.copy()
    return a[tuple(ndi.distance_transform_edt(ign, return_distances=False, return_indices=True))]


def boundary_fraction_at_pixel_size(
    labels: np.ndarray, pixel_size: float, target: float = PIXEL_SIZE_M, radius: int = EROSION_RADIUS
) -> float:
    """Eroded-boundary fraction that eroded ``labels`` of ``pixel_size`` metres would have
    at ``target`` metres: the band refilled (:func:`refill_ignored`), the labels resampled
    by nearest neighbour (``scipy.ndimage.zoom``, order 0) and eroded again with
    :func:`vaiseg.data.erosion.erode_boundaries` (``radius`` px at the target size, so the
    band is wider on the ground when the target pixels are larger). The same rule at the
    labels' own size gives this module's erosion of them; ISPRS's own may differ a little
    (the Vaihingen crop: 0.081 as published, 0.089 refilled and eroded again here)."""
    if pixel_size <= 0 or target <= 0:
        raise ValueError(f"pixel sizes must be positive, got {pixel_size} and {target}")
    full = refill_ignored(labels)
    if not math.isclose(pixel_size, target):
        full = ndi.zoom(full, pixel_size / target, order=0, grid_mode=True, mode="nearest")
    return boundary_fraction(erode_boundaries(full, radius))


def boundary_fraction_at_mix(rate: np.ndarray, mix: np.ndarray) -> float:
    """Boundary fraction that band rates ``rate`` give at class mix ``mix``:
    ``sum(mix * rate)`` over the classes with a rate, the mix renormalised over them
    (a class that one side lacks -- the real crop has no clutter -- drops out)."""
    rate, mix = np.asarray(rate, float), np.asarray(mix, float)
    ok = np.isfinite(rate) & np.isfinite(mix)
    w = mix[ok].sum()
    return float((mix[ok] * rate[ok]).sum() / w) if w > 0 else float("nan")


# ----------------------------------------------------------------------------- objects


def object_table(
    labels: np.ndarray,
    cls: int,
    *,
    min_area_px: int | None = None,
    exclude_border: bool = True,
    pixel_size: float = PIXEL_SIZE_M,
) -> pd.DataFrame:
    """One row per object of class ``cls`` in (H, W) labels (eroded GT on both sides).

    Objects: 4-connected components (``skimage.measure.label``, connectivity 1) of
    ``labels == cls`` with at least ``min_area_px`` pixels (default ``MIN_AREA_PX[cls]``,
    else 1), dropping components that touch the image border when ``exclude_border``.
    Columns: ``area_px``, ``perimeter_px`` (skimage's 4-neighbour perimeter estimate),
    ``length_px`` / ``width_px`` (rectangle-equivalent sides: the major / minor axes of
    the second-moment ellipse times sqrt(3)/2, exact for a solid rectangle at any
    rotation), ``equivalent_diameter_px`` (diameter of the disc of the same area),
    ``compactness`` ``4 pi A / P^2`` (1 for a disc; a discrete square reads ~0.83-0.87, an
    L-shape less), and the same lengths in metres (``*_m``) and ``area_m2`` at
    ``pixel_size`` metres per pixel.
    """
    if min_area_px is None:
        min_area_px = MIN_AREA_PX.get(cls, 1)
    comp = cc_label(labels == cls, connectivity=1)
    h, w = labels.shape
    rows = []
    for p in regionprops(comp):
        if p.area < min_area_px:
            continue
        r0, c0, r1, c1 = p.bbox
        if exclude_border and (r0 == 0 or c0 == 0 or r1 == h or c1 == w):
            continue
        per = float(p.perimeter)
        rows.append(
            dict(
                area_px=float(p.area),
                perimeter_px=per,
                length_px=float(p.axis_major_length) * RECT_FROM_ELLIPSE,
                width_px=float(p.axis_minor_length) * RECT_FROM_ELLIPSE,
                equivalent_diameter_px=float(p.equivalent_diameter_area),
                compactness=4 * math.pi * float(p.area) / per**2 if per > 0 else float("nan"),
            )
        )
    df = pd.DataFrame(rows, columns=["area_px", "perimeter_px", "length_px", "width_px",
                                     "equivalent_diameter_px", "compactness"])
    df["area_m2"] = df["area_px"] * pixel_size**2
    for c in ("length", "width", "equivalent_diameter"):
        df[f"{c}_m"] = df[f"{c}_px"] * pixel_size
    return df


def summarise(values) -> dict:
    """median, q25, q75, iqr (= q75 - q25) and n of ``values`` (NaN stats when empty)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return dict(median=float("nan"), q25=float("nan"), q75=float("nan"), iqr=float("nan"), n=0)
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return dict(median=float(med), q25=float(q25), q75=float(q75), iqr=float(q75 - q25), n=int(v.size))


def object_stats(samples: Sequence[Sample], *, exclude_border: dict | None = None) -> dict[str, pd.DataFrame]:
    """{kind: object table pooled over ``samples`` (column ``sample`` added)} for the
    kinds of ``OBJECTS`` (car, building, tree), with :func:`object_table`'s filters and
    border rule ``exclude_border[kind]`` (default ``EXCLUDE_BORDER``)."""
    exclude_border = {**EXCLUDE_BORDER, **(exclude_border or {})}
    out = {}
    for kind, (cls, _) in OBJECTS.items():
        tables = []
        for s in samples:
            t = object_table(s.labels, cls, exclude_border=exclude_border[kind])
            t.insert(0, "sample", s.name)
            tables.append(t)
        out[kind] = pd.concat(tables, ignore_index=True) if tables else object_table(np.zeros((1, 1), np.uint8), cls)
    return out


# ----------------------------------------------------------------------------- shadows


def shadow_analysis(irrg: np.ndarray, labels: np.ndarray, *, fraction: float = SHADOW_FRACTION) -> dict:
    """Shadow pixels of one image by a fixed rule, identical for synthetic and real.

    b = :func:`brightness` (mean of IR, R, G; DN). Lit level ``L`` = the median
    brightness of the LIT impervious pixels: impervious (eroded labels == 0; all labelled
    pixels when fewer than 100 are impervious, all pixels when fewer than 100 are
    labelled) at or above the Otsu threshold of their brightness
    (``skimage.filters.threshold_otsu``), which splits the bimodal sunlit / shadowed road
    brightness even when most of the road is shadowed (a plain median is not: on the
    real area-1 crop 60 % of the road lies in a building's shadow). Shadow:
    ``b < fraction * L`` (``fraction`` = 0.5: darker than half of a sunlit road) for
    every pixel whatever its class; a black car or roof in the sun counts too, on both
    sides alike.

    Returns {``level``: L (DN), ``ratio``: (H, W) float32 b / L, ``mask``: (H, W) bool}.
    """
    b = brightness(irrg)
    base = labels == 0
    if base.sum() < 100:
        base = labels < N_CLASSES
    if base.sum() < 100:
        base = np.ones_like(base)
    v = b[base]
    if v.max() > v.min():
        v = v[v >= threshold_otsu(v)]
    level = max(float(np.median(v)), 1e-6)
    ratio = b / np.float32(level)
    return dict(level=level, ratio=ratio, mask=ratio < fraction)


def shadow_stats(samples: Sequence[Sample], *, fraction: float = SHADOW_FRACTION) -> dict[str, dict]:
    """Shadow fraction and darkness pooled over ``samples`` (rule of :func:`shadow_analysis`).

    Returns {class key or ``"all"``: {``fraction``: shadow pixels / pixels (unitless;
    ``"all"`` counts every pixel, boundaries included, the classes their eroded-label
    pixels), ``darkness``: median(b / L of shadow pixels) / median(b / L of lit pixels) of
    that class (unitless; NaN without shadow or lit pixels), ``n``: pixels}}."""
    keys = ["all"] + list(KEYS)
    ratios: dict = {k: ([], []) for k in keys}  # (shadow ratios, lit ratios)
    for s in samples:
        sa = shadow_analysis(s.irrg, s.labels, fraction=fraction)
        r, m = sa["ratio"], sa["mask"]
        ratios["all"][0].append(r[m])
        ratios["all"][1].append(r[~m])
        for c, k in enumerate(KEYS):
            sel = s.labels == c
            ratios[k][0].append(r[sel & m])
            ratios[k][1].append(r[sel & ~m])
    out = {}
    for k in keys:
        sh = np.concatenate(ratios[k][0]) if ratios[k][0] else np.zeros(0)
        li = np.concatenate(ratios[k][1]) if ratios[k][1] else np.zeros(0)
        n = sh.size + li.size
        dark = float(np.median(sh) / np.median(li)) if sh.size and li.size else float("nan")
        out[k] = dict(fraction=sh.size / n if n else float("nan"), darkness=dark, n=int(n))
    return out


# ------------------------------------------------------------------- separability

#: class separability: checkerboard block (px), pixels per class and fold, fewest pixels
#: of a class in a fold for a score (fewer: NaN), local windows of the features (px)
SEPARABILITY_BLOCK, SEPARABILITY_CAP, SEPARABILITY_MIN_PIXELS = 64, 4000, 200
SEPARABILITY_WINDOWS = (5, 11)
#: the pairs scored: every pair of scored classes
SEPARABILITY_PAIRS = tuple((a, b) for i, a in enumerate(SCORED) for b in SCORED[i + 1:])


def appearance_features(irrg: np.ndarray, windows: Sequence[int] = SEPARABILITY_WINDOWS) -> np.ndarray:
    """(3, H, W) image -> (H * W, 3 + 6 len(windows) + 1) float32 per-pixel features of
    local appearance: the bands (DN), per window size and band the local mean and std
    (``scipy.ndimage.uniform_filter``, mode 'reflect') and :func:`gradient_magnitude`."""
    x = irrg.astype(np.float32)
    feats = [x]
    for w in windows:
        m = np.stack([ndi.uniform_filter(b, w) for b in x])
        m2 = np.stack([ndi.uniform_filter(b * b, w) for b in x])
        feats += [m, np.sqrt(np.maximum(m2 - m * m, 0))]
    feats.append(gradient_magnitude(irrg)[None])
    f = np.concatenate(feats)
    return f.reshape(f.shape[0], -1).T.copy()


def checkerboard(shape: tuple[int, int], block: int = SEPARABILITY_BLOCK) -> np.ndarray:
    """(H, W) uint8 fold (0 or 1) of each pixel: a checkerboard of ``block`` px squares."""
    r = np.arange(shape[0])[:, None] // block
    c = np.arange(shape[1])[None, :] // block
    return ((r + c) % 2).astype(np.uint8)


def class_separability(
    samples: Sequence[Sample],
    pairs: Sequence[tuple[int, int]] = SEPARABILITY_PAIRS,
    *,
    block: int = SEPARABILITY_BLOCK,
    cap: int = SEPARABILITY_CAP,
    min_pixels: int = SEPARABILITY_MIN_PIXELS,
    seed: int = 0,
) -> dict[tuple[int, int], dict]:
    """Per class pair ``(a, b)``: how well local appearance alone separates the classes.

    Features :func:`appearance_features` of every sample; fold of every pixel by
    :func:`checkerboard` (``block``). For fold k = 0, 1: up to ``cap`` pixels of each
    class from fold k (seeded uniform draw over the pooled samples) train a
    ``HistGradientBoostingClassifier`` (100 iterations, ``random_state=seed``), up to
    ``cap`` of each from fold 1 - k are scored: ROC AUC (``sklearn.metrics.roc_auc_score``,
    class ``b`` positive). Returns {(a, b): {``auc``: mean of the two folds' AUCs (NaN
    when a class has fewer than ``min_pixels`` pixels in either fold), ``folds``: [AUC of
    fold 0, fold 1], ``n``: [pixels of a, of b] (eroded labels, all folds)}}."""
    rng = np.random.default_rng(seed)
    labs = [s.labels.ravel() for s in samples]
    folds = [checkerboard(s.shape, block).ravel() for s in samples]

    def draw(cls: int, fold: int) -> list[np.ndarray] | None:
        """Per sample, the pixels drawn (None: too few in the pooled samples)."""
        idx = [np.flatnonzero((lab == cls) & (f == fold)) for lab, f in zip(labs, folds)]
        n = sum(i.size for i in idx)
        if n < min_pixels:
            return None
        pick = np.sort(rng.choice(n, min(n, cap), replace=False))
        offsets = np.cumsum([0] + [i.size for i in idx])
        return [i[pick[(pick >= offsets[j]) & (pick < offsets[j + 1])] - offsets[j]] for j, i in enumerate(idx)]

    # every draw first (labels only), then the features one sample at a time, keeping only
    # the drawn pixels: memory stays at one image's features however large the areas
    draws = {(pair, c, k): draw(c, k) for pair in pairs for c in pair for k in (0, 1)}
    parts: dict = {key: [] for key, d in draws.items() if d is not None}
    for j, smp in enumerate(samples):
        f = appearance_features(smp.irrg)
        for key in parts:
            parts[key].append(f[draws[key][j]])
    xs = {key: np.concatenate(p) for key, p in parts.items()}

    counts = sum(np.bincount(lab, minlength=256) for lab in labs)  # pixels per class, all folds
    result = {}
    for a, b in pairs:
        n = [int(counts[a]), int(counts[b])]
        aucs = []
        for k in (0, 1):
            keys = [((a, b), a, k), ((a, b), b, k), ((a, b), a, 1 - k), ((a, b), b, 1 - k)]
            if any(key not in xs for key in keys):
                aucs.append(float("nan"))
                continue
            tr_a, tr_b, te_a, te_b = (xs[key] for key in keys)
            clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
            clf.fit(np.concatenate([tr_a, tr_b]), np.r_[np.zeros(len(tr_a)), np.ones(len(tr_b))])
            score = clf.predict_proba(np.concatenate([te_a, te_b]))[:, 1]
            aucs.append(float(roc_auc_score(np.r_[np.zeros(len(te_a)), np.ones(len(te_b))], score)))
        result[(a, b)] = dict(auc=float(np.mean(aucs)), folds=aucs, n=n)
    return result


def pair_key(a: int, b: int) -> str:
    """``"imp_surf/car"``: the name of a class pair in rows and summaries."""
    return f"{KEYS[a]}/{KEYS[b]}"


# ----------------------------------------------------------------------------- compare


def _row(measure, cls, band, syn, real, distance, unit) -> dict:
    return dict(measure=measure, **{"class": cls}, band=band, synthetic=syn, real=real, distance=distance, unit=unit)


def _nanmean(v) -> float:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _median(v) -> float:
    v = np.asarray(v).ravel()
    return float(np.median(v)) if v.size else float("nan")


def class_band_distances(
    synthetic: Sequence[Sample],
    real: Sequence[Sample],
    *,
    cap: int = MAX_VALUES,
    seed: int = 0,
    lit_only: bool = False,
    shadow_fraction: float = SHADOW_FRACTION,
) -> list[dict]:
    """Rows ``band_w1`` (per class incl. ``all``, per band: Wasserstein distance of the
    standardised values, unit ``std_real``; synthetic/real = the side's mean standardised
    value) and ``band_mean_dn`` (the side's mean DN, distance = synthetic - real).

    The standardisation always uses :func:`reference_band_stats` of ``real`` (all its
    labelled pixels). ``lit_only``: only pixels that :func:`shadow_analysis` does not
    call shadow (rows ``band_w1_lit`` / ``band_mean_dn_lit``): the colours of sunlit
    surfaces, independent of how much of each class lies in shadow."""
    mean, std = reference_band_stats(real)
    fn = lambda s: standardise(s.irrg, mean, std)  # noqa: E731
    where = (lambda s: ~shadow_analysis(s.irrg, s.labels, fraction=shadow_fraction)["mask"]) if lit_only else None
    syn = pooled_class_values(synthetic, fn, cap=cap, seed=seed, where=where)
    ref = pooled_class_values(real, fn, cap=cap, seed=seed, where=where)
    suffix = "_lit" if lit_only else ""
    rows = []
    for k in ["all"] + list(KEYS):
        for bi, band in enumerate(BANDS):
            a, b = syn[k][bi], ref[k][bi]
            ma = float(a.mean()) if a.size else float("nan")
            mb = float(b.mean()) if b.size else float("nan")
            rows.append(_row("band_w1" + suffix, k, band, ma, mb, wasserstein(a, b, cap=cap, seed=seed), "std_real"))
            da, db = ma * std[bi] + mean[bi], mb * std[bi] + mean[bi]
            rows.append(_row("band_mean_dn" + suffix, k, band, da, db, da - db, "DN"))
    return rows


def texture_distances(
    synthetic: Sequence[Sample], real: Sequence[Sample], *, cap: int = MAX_VALUES, seed: int = 0
) -> list[dict]:
    """Rows ``gradient_w1`` per class incl. ``all`` (band ``brightness``): Wasserstein
    distance of the :func:`gradient_magnitude` distributions (DN/px); synthetic/real =
    the side's median gradient magnitude (DN/px)."""
    fn = lambda s: gradient_magnitude(s.irrg)  # noqa: E731
    syn = pooled_class_values(synthetic, fn, cap=cap, seed=seed)
    ref = pooled_class_values(real, fn, cap=cap, seed=seed)
    return [
        _row("gradient_w1", k, "brightness", _median(syn[k]), _median(ref[k]),
             wasserstein(syn[k], ref[k], cap=cap, seed=seed), "DN/px")
        for k in ["all"] + list(KEYS)
    ]


def compare(
    synthetic: Sequence[Sample],
    real: Sequence[Sample],
    *,
    cap: int = MAX_VALUES,
    seed: int = 0,
    shadow_fraction: float = SHADOW_FRACTION,
) -> tuple[pd.DataFrame, dict]:
    """Every measure, synthetic against real.

    Returns ``(rows, summary)``: ``rows`` a DataFrame with columns measure, class, band,
    synthetic, real, distance, unit (see the module docstring; object measures carry the
    median, ``*_iqr`` rows the interquartile range and ``*_count`` rows the object count
    per side); ``summary`` the headline numbers as a flat JSON-ready dict (mean / max
    band W1 over the scored classes, texture W1, boundary fractions, object medians,
    shadow fraction and darkness per side) plus the settings and sample names.
    """
    synthetic, real = list(synthetic), list(real)
    if not synthetic or not real:
        raise ValueError("compare needs at least one synthetic and one real sample")
    rows = class_band_distances(synthetic, real, cap=cap, seed=seed)
    rows += class_band_distances(synthetic, real, cap=cap, seed=seed, lit_only=True, shadow_fraction=shadow_fraction)
    rows += texture_distances(synthetic, real, cap=cap, seed=seed)

    bf_s, bf_r = boundary_fraction([s.labels for s in synthetic]), boundary_fraction([s.labels for s in real])
    rows.append(_row("boundary_fraction", "all", "", bf_s, bf_r, bf_s - bf_r, "fraction"))
    (mix_s, rate_s), (mix_r, rate_r) = (boundary_rates([s.labels for s in side]) for side in (synthetic, real))
    for c, key in enumerate(KEYS):
        rows.append(_row("class_share", key, "", mix_s[c], mix_r[c], mix_s[c] - mix_r[c], "fraction"))
        rows.append(_row("boundary_rate", key, "", rate_s[c], rate_r[c], rate_s[c] - rate_r[c], "fraction"))

    obj_s, obj_r = object_stats(synthetic), object_stats(real)
    area_ha = {side: sum(s.labels.size for s in ss) * PIXEL_SIZE_M**2 / 1e4 for side, ss in (("s", synthetic), ("r", real))}
    obj_summary = {}
    for kind, (cls, props) in OBJECTS.items():
        ns, nr = len(obj_s[kind]), len(obj_r[kind])
        rows.append(_row(f"{kind}_count", KEYS[cls], "", ns, nr, ns - nr, "objects"))
        ds, dr = ns / area_ha["s"], nr / area_ha["r"]
        rows.append(_row(f"{kind}_density", KEYS[cls], "", ds, dr, ds - dr, "objects/ha"))
        obj_summary[f"{kind}_count"] = (ns, nr)
        for prop, unit in props:
            a, b = summarise(obj_s[kind][prop]), summarise(obj_r[kind][prop])
            rows.append(_row(f"{kind}_{prop}", KEYS[cls], "", a["median"], b["median"], a["median"] - b["median"], unit))
            rows.append(_row(f"{kind}_{prop}_iqr", KEYS[cls], "", a["iqr"], b["iqr"], a["iqr"] - b["iqr"], unit))
            obj_summary[f"{kind}_{prop}"] = (a["median"], b["median"])

    sh_s, sh_r = shadow_stats(synthetic, fraction=shadow_fraction), shadow_stats(real, fraction=shadow_fraction)
    for k in ["all"] + list(KEYS):
        a, b = sh_s[k], sh_r[k]
        rows.append(_row("shadow_fraction", k, "", a["fraction"], b["fraction"], a["fraction"] - b["fraction"], "fraction"))
        rows.append(_row("shadow_darkness", k, "", a["darkness"], b["darkness"], a["darkness"] - b["darkness"], "ratio"))

    sep_s, sep_r = class_separability(synthetic, seed=seed), class_separability(real, seed=seed)
    sep_summary = {}
    for pair in SEPARABILITY_PAIRS:
        a, b, key = sep_s[pair], sep_r[pair], pair_key(*pair)
        rows.append(_row("separability_auc", key, "", a["auc"], b["auc"], a["auc"] - b["auc"], "AUC"))
        for k in (0, 1):
            rows.append(_row(f"separability_auc_fold{k}", key, "", a["folds"][k], b["folds"][k],
                             a["folds"][k] - b["folds"][k], "AUC"))
        rows.append(_row("separability_pixels", key, "", min(a["n"]), min(b["n"]), min(a["n"]) - min(b["n"]), "px"))
        sep_summary[f"separability_{key.replace('/', '_vs_')}"] = (a["auc"], b["auc"])

    df = pd.DataFrame(rows, columns=["measure", "class", "band", "synthetic", "real", "distance", "unit"])

    scored = [KEYS[c] for c in SCORED]
    bw = df[(df.measure == "band_w1") & df["class"].isin(scored)].dropna(subset=["distance"])
    gw = df[(df.measure == "gradient_w1") & df["class"].isin(scored)]
    worst = bw.loc[bw.distance.idxmax()] if len(bw) else None
    bl = df[(df.measure == "band_w1_lit") & df["class"].isin(scored)]
    summary: dict = {
        "band_w1_mean": _nanmean(bw.distance),
        "band_w1_max": float(worst.distance) if worst is not None else float("nan"),
        "band_w1_max_at": f"{worst['class']}/{worst.band}" if worst is not None else None,
        "band_w1_lit_mean": _nanmean(bl.distance),
    }
    for band in BANDS:
        r = df[(df.measure == "band_w1") & (df["class"] == "all") & (df.band == band)].iloc[0]
        summary[f"band_w1_all_{band}"] = float(r.distance)
    g_all = df[(df.measure == "gradient_w1") & (df["class"] == "all")].iloc[0]
    summary.update(
        gradient_w1_mean=_nanmean(gw.distance),
        gradient_w1_all=float(g_all.distance),
        gradient_median_synthetic=float(g_all.synthetic),
        gradient_median_real=float(g_all.real),
        boundary_fraction_synthetic=bf_s,
        boundary_fraction_real=bf_r,
        # the real side's band rates at the synthetic class mix, and the other way round
        boundary_fraction_real_at_synthetic_mix=boundary_fraction_at_mix(rate_r, mix_s),
        boundary_fraction_synthetic_at_real_mix=boundary_fraction_at_mix(rate_s, mix_r),
    )
    for key, (a, b) in {**obj_summary, **sep_summary}.items():
        summary[f"{key}_synthetic"] = a
        summary[f"{key}_real"] = b
    sep = df[df.measure == "separability_auc"].dropna(subset=["distance"])
    summary.update(
        separability_auc_mean_synthetic=_nanmean(sep.synthetic),
        separability_auc_mean_real=_nanmean(sep.real),
        separability_auc_gap_max=float(sep.distance.max()) if len(sep) else float("nan"),
        separability_auc_gap_max_at=str(sep.loc[sep.distance.idxmax(), "class"]) if len(sep) else None,
    )
    summary.update(
        shadow_fraction_synthetic=sh_s["all"]["fraction"],
        shadow_fraction_real=sh_r["all"]["fraction"],
        shadow_darkness_synthetic=sh_s["all"]["darkness"],
        shadow_darkness_real=sh_r["all"]["darkness"],
        synthetic_samples=[s.name for s in synthetic],
        real_samples=[s.name for s in real],
        settings=dict(cap=cap, seed=seed, shadow_fraction=shadow_fraction, erosion_radius=EROSION_RADIUS,
                      min_area_px={KEYS[c]: v for c, v in MIN_AREA_PX.items()}, pixel_size_m=PIXEL_SIZE_M,
                      exclude_border=EXCLUDE_BORDER, separability_block=SEPARABILITY_BLOCK,
                      separability_cap=SEPARABILITY_CAP, separability_windows=list(SEPARABILITY_WINDOWS)),
    )
    return df, summary
