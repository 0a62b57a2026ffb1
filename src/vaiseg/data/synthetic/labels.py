"""Labels of the synthetic scenes: the class ids, the annotation stage and class shares.

- **Convention**: the label of a pixel is the class of the topmost surface (ISPRS
  convention: a crown over a car is *tree*). Low vegetation is the default ground
  (hedges too: low vegetation that looks like a crown), impervious the paved areas,
  clutter small objects and bare soil. The canvas (``canvas``) starts as low vegetation
  and every painted object overwrites the label with its class, so the canvas's label
  layer is the class of the last (trees: the highest) surface painted on a pixel, with
  pixel-exact edges.
- **Annotation** (``_annotate``, its own random stream): the ground truth is that layer
  as a human digitiser would draw it, not the layer itself. (1) Generalisation: patches
  of any class but car smaller than ``MIN_AREA_PX`` (1.2 m^2; the real area-1 crop's
  smallest drawn non-car patches are ~100-200 px after erosion) take the label of the
  nearest pixel outside them, ground gaps narrower than ~0.7 m between crowns are
  closed (canopy outlines, not single crowns), and cars are outlined ``CAR_INSET`` px
  inside the body (the crop's eroded car polygons: ~9.5 x 37.5 px). (2) Polygons: per
  class, every region's outline (and its holes' outlines,
  ``skimage.measure.find_contours``) is simplified (``approximate_polygon``, tolerance
  ``TOLERANCE`` 0.75 px for cars to 2 px for crowns), its vertices are moved by
  ``JITTER_SD`` 1.1 px (at most 2 px) and it is filled again (``_fill_even_odd``),
  class by class in the topmost-surface order ``ORDER`` (low vegetation as the base,
  impervious, clutter, building, car, tree): a later class is
  drawn over an earlier one, whose region reaches ``UNDERLAP`` 3 px under it so no
  sliver opens between them, and outlines run past the image border so none opens
  along it. Each label edge is thus one digitised polyline, ~1 px (at most ~3.5 px)
  off the canvas's edge, and off the image's. Every car stays (one left with less than
  half of its pixels gets them back).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours
from skimage.measure import label as _components

from ...classes import CAR, CLASSES, CLUTTER, N_CLASSES

__all__ = ["BUILDING", "CAR", "CLUTTER", "IMP", "LOW_VEG", "TREE", "class_frequencies"]

IMP, BUILDING, LOW_VEG, TREE = 0, 1, 2, 3

#: painting order of the annotation: the topmost surface last (low vegetation is the base)
ORDER = (IMP, CLUTTER, BUILDING, CAR, TREE)
#: polygon simplification tolerance per class (px)
TOLERANCE = {IMP: 1.5, CLUTTER: 1.5, BUILDING: 1.0, CAR: 0.75, TREE: 2.0}
#: vertex jitter of the digitiser (px): standard deviation and bound
JITTER_SD, JITTER_MAX = 1.1, 2.0
#: smallest patch a digitiser draws (px; cars are always kept; see the module docstring)
MIN_AREA_PX = 150
#: ground gaps between crowns closed up to this radius (px)
CANOPY_CLOSING = 4
#: how far an earlier class's region reaches under a later one (px)
UNDERLAP = 3
#: cars are outlined this far (px) inside the body's edge (the real area-1 crop's car
#: polygons, eroded, are ~9.5 x 37.5 px, i.e. ~15.5 x 43.5 px drawn: ~2 px inside bodies
#: of ~1.8 x 4.3 m); the rim takes the label of the nearest pixel outside the car
CAR_INSET = 2


def class_frequencies(labels: np.ndarray) -> dict[str, float]:
    """Share of each class among the labelled pixels: {class name: fraction}, in class
    order; ``IGNORE`` (255) pixels are left out of the denominator."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=256)[:N_CLASSES].astype(float)
    total = counts.sum()
    return {c.name: (float(counts[c.index] / total) if total else 0.0) for c in CLASSES}


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Dilation of a bool mask by a (2r + 1)^2 square (separable, edges replicated)."""
    m = mask.view(np.uint8)
    m = ndimage.maximum_filter1d(m, 2 * r + 1, axis=0, mode="nearest")
    return ndimage.maximum_filter1d(m, 2 * r + 1, axis=1, mode="nearest").view(bool)


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Erosion of a bool mask by a (2r + 1)^2 square (separable, edges replicated)."""
    m = mask.view(np.uint8)
    m = ndimage.minimum_filter1d(m, 2 * r + 1, axis=0, mode="nearest")
    return ndimage.minimum_filter1d(m, 2 * r + 1, axis=1, mode="nearest").view(bool)


def _generalise(label: np.ndarray) -> np.ndarray:
    """Small patches (< ``MIN_AREA_PX``, cars excepted) take the label of the nearest
    pixel outside them; ground gaps between crowns narrower than ~2 x
    ``CANOPY_CLOSING`` px become tree (a closing by a square)."""
    out = label.copy()
    comp = _components(label, background=-1, connectivity=1)
    small = (np.bincount(comp.ravel()) < MIN_AREA_PX)[comp] & (label != CAR)
    del comp
    if small.any() and not small.all():
        iy, ix = ndimage.distance_transform_edt(small, return_distances=False, return_indices=True)
        out[small] = label[iy[small], ix[small]]
        del iy, ix
    if CANOPY_CLOSING:
        tree = out == TREE
        closed = _erode(_dilate(tree, CANOPY_CLOSING), CANOPY_CLOSING)
        gap = closed & ~tree & np.isin(out, (IMP, LOW_VEG, CLUTTER))
        out[gap] = TREE
    return _inset_cars(out)


def _inset_cars(label: np.ndarray) -> np.ndarray:
    """``label`` with every car outlined ``CAR_INSET`` px inside its body: the car's rim
    (outside its erosion by a square) takes the label of the nearest non-car pixel; car
    fragments thinner than that (under crowns) stay whole."""
    out = label.copy()
    car = out == CAR
    if CAR_INSET and car.any() and not car.all():
        core = _erode(car, CAR_INSET)
        comp, n = ndimage.label(car)
        has_core = np.concatenate([[False], ndimage.sum(core, comp, index=np.arange(1, n + 1)) > 0])
        rim = car & ~core & has_core[comp]
        iy, ix = ndimage.distance_transform_edt(car, return_distances=False, return_indices=True)
        out[rim] = label[iy[rim], ix[rim]]
    return out


def _fill_even_odd(polygons: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside an odd number of the closed
    ``polygons`` ((n, 2) float arrays of (row, col) vertices, first == last), by a
    vectorised scanline fill: every edge toggles, on each pixel row it crosses, the
    pixels right of the crossing (rows counted half-open, so a vertex on a row counts
    once)."""
    if not polygons:
        return np.zeros((h, w), bool)
    v0 = np.concatenate([p[:-1] for p in polygons])
    v1 = np.concatenate([p[1:] for p in polygons])
    ya, yb = np.minimum(v0[:, 0], v1[:, 0]), np.maximum(v0[:, 0], v1[:, 0])
    r0 = np.clip(np.ceil(ya), 0, h).astype(np.int64)
    r1 = np.clip(np.ceil(yb), 0, h).astype(np.int64)
    n = np.maximum(r1 - r0, 0)
    keep = n > 0
    v0, v1, r0, n = v0[keep], v1[keep], r0[keep], n[keep]
    edge = np.repeat(np.arange(len(n)), n)
    rows = r0[edge] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    y0, x0, y1, x1 = v0[edge, 0], v0[edge, 1], v1[edge, 0], v1[edge, 1]
    xc = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
    cols = np.clip(np.ceil(xc), 0, w).astype(np.int64)
    toggles = np.bincount(rows * (w + 1) + cols, minlength=h * (w + 1)).reshape(h, w + 1)[:, :w]
    return (np.cumsum(toggles, axis=1) & 1).astype(bool)


def _digitise(region: np.ndarray, tolerance: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool: ``region``'s outlines simplified, their vertices jittered, filled
    even-odd. The region is extended past the image border (edge replication), so the
    border stays covered."""
    h, w = region.shape
    p = int(np.ceil(JITTER_MAX)) + 1
    padded = np.pad(np.pad(region, p, mode="edge"), 1)
    off = p + 1
    polygons = []
    for c in find_contours(padded.astype(np.float32), 0.5):
        poly = approximate_polygon(c, tolerance)
        if len(poly) < 4:  # degenerate (closed: first == last)
            poly = c
        jit = np.clip(rng.normal(0.0, JITTER_SD, poly.shape), -JITTER_MAX, JITTER_MAX)
        jit[-1] = jit[0]
        polygons.append(poly + jit - off)
    return _fill_even_odd(polygons, h, w)


def _annotate(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Annotation-like ground truth (H, W) uint8 of a canvas label layer (see the module
    docstring); ``rng``: this stage's generator."""
    gen = _generalise(label)
    out = np.full(gen.shape, LOW_VEG, np.uint8)
    for i, c in enumerate(ORDER):
        mine = gen == c
        if not mine.any():
            continue
        later = np.isin(gen, ORDER[i + 1 :])
        region = mine | (_dilate(mine, UNDERLAP) & later)
        out[_digitise(region, TOLERANCE[c], rng)] = c
    # every car stays: a car left with less than half of its pixels is restored
    comp, n = ndimage.label(label == CAR)
    if n:
        kept = ndimage.sum(out[comp > 0] == CAR, comp[comp > 0], index=np.arange(1, n + 1))
        size = np.bincount(comp.ravel(), minlength=n + 1)[1:]
        lost = np.concatenate([[False], kept < 0.5 * size])
        out[lost[comp]] = CAR
    return out
