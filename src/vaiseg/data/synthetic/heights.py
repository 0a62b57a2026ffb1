"""Surface models of a synthetic scene: terrain, DSM and nDSM.

- **Heights (nDSM, metres)**, as painted on the canvas by ``objects`` and ``town``: low
  vegetation 0.3 (hedges 0.8-2), cars 1.0-1.6 (vans ~2), clutter 0.05-2.5, buildings
  5.5-15 at the eaves plus gabled/hipped roofs (pitch 25-45 deg), garages 2.5-3.5, trees
  5-20 (broadleaf domes whose rim is >= 2.5 m up, so crowns overhang cars and roads;
  conifer cones). These exact heights plus the terrain are the *true surface*; the
  renderer casts its shadows on it (``_true_surface``).
- **Terrain**: 245-285 m a.s.l., a 0.5-3 % slope and a +-1 m undulation.
- **DSM**: what dense image matching makes of the true surface (the Vaihingen DSM is
  matched from the same images as the TOP), in order: cars mostly vanish (70 % are gone,
  the rest keep 30-80 % of their height: parked cars are small, dark and often moved
  between the overlapping images); crowns are matched below their top (70-95 %) with
  holes where the matcher sees through the leaves (~12 % of the crown drops to 15-45 %
  of its height); the surface is smoothed over 0.45-0.8 m (Gaussian sigma drawn per area,
  2-3.5 px: a building edge ramps over 5-9 px from 10 to 90 %) and its edges wobble by
  ~1 px (a smooth random displacement field); matching noise (5 cm, 35 cm on crowns) and,
  where the cast shadow is (dark, textureless image), 30 cm of noise and blunders of
  +-1-3 m in ~3 % of the shadowed area.
- **nDSM** = DSM minus an *estimated* terrain, as real nDSMs are made: the DSM's 10th
  percentile in 16 x 16 px blocks, a rank opening over ~36 m (10th percentile of the
  window, then its maximum: removes everything smaller, buildings and crowns, and
  ignores the blunders' pits), smoothed (sigma ~3.6 m) and upsampled; clipped at 0. It
  carries the DSM's errors plus the terrain estimate's (ground ~0.1 m up on average,
  raised ground where no ground shows for ~36 m, cut tops of terrain bumps).
  The real filter runs on the DSM of the whole town, so around an area it sees the
  streets beyond the area's edge; a 448 px area is 40 m, about one window. The blocks
  beyond the edge are therefore bare ground (the true terrain's plane, extended), not the
  edge blocks repeated: repeating them made a building at the edge endless, and a
  building covering two thirds of one area came out at 0 m over a third of its roof.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .canvas import PIXEL_SIZE, _Canvas
from .labels import CAR
from .materials import M_TREE
from .noise import _noise, _upsample

#: share of cars the matcher loses entirely; the others keep this range of their height
CAR_LOST, CAR_KEPT = 0.70, (0.3, 0.8)
#: crowns: matched height range (share of the true); see-through holes where a smooth
#: unit-Gaussian field exceeds CROWN_HOLE_Z (1.175: its upper 12 %), matched at this range
#: of the height
CROWN_MATCHED, CROWN_HOLE_Z, CROWN_HOLE_HEIGHT = (0.70, 0.95), 1.175, (0.15, 0.45)
#: smoothing sigma range of the matched surface (px)
SMOOTH_SIGMA = (2.0, 3.5)
#: matching noise (m): everywhere, on crowns, in shadows; blunders in the shadows where a
#: smooth unit-Gaussian field exceeds BLUNDER_Z (1.88: its upper 3 %). The two thresholds
#: are the constants themselves (not shares turned into quantiles), so the scenes stay
#: the same bit for bit (tests/synthetic_digests.json)
NOISE, NOISE_CROWN, NOISE_SHADOW, BLUNDER_Z = 0.05, 0.35, 0.30, 1.88
#: terrain estimate: block (px), opening window (m), smoothing sigma (m)
DTM_BLOCK, DTM_WINDOW, DTM_SIGMA = 16, 36.0, 3.6


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Terrain (H, W) float32 metres a.s.l.: 245-285 m base, a 0.5-3 % slope in a random
    direction and a +-1 m undulation with ~100 m wavelength."""
    base = rng.uniform(245, 285)
    slope = rng.uniform(0.005, 0.03) * PIXEL_SIZE
    d = rng.uniform(0, 2 * math.pi)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    t = base + slope * (x * math.cos(d) + y * math.sin(d))
    # undulation: unit-variance nodes every ~100 m, bilinear in between (not rescaled to
    # unit std per tile: a small tile sees a gentle part of one wave, not a steep ramp)
    nodes = rng.standard_normal((int(h / 1100.0) + 3, int(w / 1100.0) + 3), dtype=np.float32)
    t = t + _upsample(nodes, h, w, 1100.0) * np.float32(rng.uniform(0.3, 1.0))
    return t.astype(np.float32)


def _true_surface(cv: _Canvas, terrain: np.ndarray) -> np.ndarray:
    """The exact surface (H, W) float32 m a.s.l.: terrain + the canvas's heights."""
    return (terrain + cv.height).astype(np.float32)


def _matched_heights(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Heights above terrain (H, W) float32 as the matcher sees objects: cars mostly
    gone, crowns lower and with holes (before smoothing and noise)."""
    h, w = cv.h, cv.w
    z = cv.height.copy()
    # cars: one draw per car (4-connected component of the car label)
    comp, n = ndimage.label(cv.label == CAR)
    if n:
        keep = np.where(rng.random(n + 1) < CAR_LOST, 0.0, rng.uniform(*CAR_KEPT, n + 1)).astype(np.float32)
        car = comp > 0
        z[car] *= keep[comp[car]]
    # crowns (trees and hedges): matched below the top, with see-through holes
    leaf = cv.material == M_TREE
    lo, hi = CROWN_MATCHED
    f = np.clip((lo + hi) / 2 + (hi - lo) / 2 * _noise(rng, (h, w), 12.0), lo, hi)
    holes = _noise(rng, (h, w), 4.0) > np.float32(CROWN_HOLE_Z)
    hl, hh = CROWN_HOLE_HEIGHT
    f = np.where(holes, np.float32((hl + hh) / 2) + np.float32((hh - hl) / 2) * _noise(rng, (h, w), 2.0).clip(-1, 1), f)
    z[leaf] *= f[leaf]
    return z


def _blocks(a: np.ndarray, b: int) -> np.ndarray:
    """(H, W) -> (ceil(H / b), ceil(W / b), b * b): the values of each b x b block, the
    last partial blocks filled by repeating the edge."""
    h, w = a.shape
    hp, wp = -(-h // b) * b, -(-w // b) * b
    a = np.pad(a, ((0, hp - h), (0, wp - w)), mode="edge")
    return a.reshape(hp // b, b, wp // b, b).transpose(0, 2, 1, 3).reshape(hp // b, wp // b, b * b)


def block_means(a: np.ndarray, b: int) -> np.ndarray:
    """(ceil(H / b), ceil(W / b)) float64 means of the b x b blocks of ``a`` (:func:`_blocks`;
    also the tolerant pins of the DSM and nDSM in tests/synthetic_digests.json)."""
    return _blocks(a, b).mean(axis=2, dtype=np.float64)


def _outside_ground(means: np.ndarray, pad: int) -> np.ndarray:
    """The block grid of ``means`` (the true terrain's block means) padded by ``pad``
    blocks each side, all of it the least-squares plane through ``means``: bare ground
    around the area."""
    gy, gx = means.shape
    yy, xx = np.mgrid[:gy, :gx]
    a = np.column_stack([np.ones(yy.size), yy.ravel(), xx.ravel()])
    coef = np.linalg.lstsq(a, means.ravel(), rcond=None)[0]
    py, px = np.mgrid[-pad : gy + pad, -pad : gx + pad]
    return (coef[0] + coef[1] * py + coef[2] * px).astype(np.float32)


def _estimate_terrain(dsm: np.ndarray, terrain: np.ndarray, pixel_size: float = PIXEL_SIZE) -> np.ndarray:
    """Terrain (H, W) float32 estimated from a DSM as a DTM filter would: the 10th
    percentile per ``DTM_BLOCK`` block, a rank opening over ``DTM_WINDOW`` m (the 10th
    percentile of the window, robust to the matching blunders' pits, then its maximum),
    Gaussian smoothing and bilinear upsampling. ``terrain``: the true terrain (H, W); the
    filter sees bare ground on it beyond the area's edge (``_outside_ground``), as a
    filter run on the whole town's DSM sees the streets around an area."""
    h, w = dsm.shape
    b = DTM_BLOCK
    k = int(0.1 * b * b)
    low = np.partition(_blocks(dsm, b), k, axis=2)[:, :, k]
    size = int(DTM_WINDOW / (b * pixel_size)) | 1
    pad = size  # the opening's two filters each reach size // 2 blocks out
    padded = _outside_ground(block_means(terrain, b), pad)
    padded[pad:-pad, pad:-pad] = low
    ground = ndimage.percentile_filter(padded, 10, size=size, mode="nearest")
    ground = ndimage.maximum_filter(ground, size=size, mode="nearest")[pad:-pad, pad:-pad]
    ground = ndimage.gaussian_filter(ground, DTM_SIGMA / (b * pixel_size), mode="nearest").astype(np.float32)
    if ground.shape[0] < 2 or ground.shape[1] < 2:
        return np.full((h, w), float(ground.mean()), np.float32)
    # bilinear upsampling, block centres at (i + 0.5) * b - 0.5
    ys = np.clip((np.arange(h, dtype=np.float32) + 0.5) / b - 0.5, 0, ground.shape[0] - 1)
    xs = np.clip((np.arange(w, dtype=np.float32) + 0.5) / b - 0.5, 0, ground.shape[1] - 1)
    y0 = np.minimum(ys.astype(np.int64), ground.shape[0] - 2)
    x0 = np.minimum(xs.astype(np.int64), ground.shape[1] - 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    rows = ground[:, x0] * (1 - fx) + ground[:, x0 + 1] * fx
    return (rows[y0] * (1 - fy) + rows[y0 + 1] * fy).astype(np.float32)


def _surface_models(
    cv: _Canvas, terrain: np.ndarray, shadow: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(dsm, ndsm), (H, W) float32 metres, of the heights painted on ``cv`` over
    ``terrain`` as dense image matching would give them (see the module docstring);
    ``shadow``: the cast-shadow map of the true surface (``render.cast_shadows``);
    ``rng``: this stage's generator."""
    h, w = cv.h, cv.w
    z = _matched_heights(cv, rng)
    sigma = rng.uniform(*SMOOTH_SIGMA)
    z = ndimage.gaussian_filter(z, sigma)
    # wobbling edges: resample along a smooth displacement field of ~1 px
    coords = np.indices((h, w), dtype=np.float32)
    coords[0] += _noise(rng, (h, w), 10.0) * np.float32(0.8)
    coords[1] += _noise(rng, (h, w), 10.0) * np.float32(0.8)
    z = ndimage.map_coordinates(z, coords, order=1, mode="nearest", output=np.float32)
    del coords
    # matching noise, larger on crowns and in the shadows, with blunders in the shadows
    leaf = ndimage.gaussian_filter((cv.material == M_TREE).astype(np.float32), sigma)
    amp = np.float32(NOISE) + np.float32(NOISE_CROWN) * leaf + np.float32(NOISE_SHADOW) * shadow
    z += _noise(rng, (h, w), 1.5) * amp
    blunder = (_noise(rng, (h, w), 6.0) > np.float32(BLUNDER_Z)) & (shadow > 0.5)
    z += blunder * np.clip(_noise(rng, (h, w), 8.0), -1.5, 1.5) * np.float32(2.0)
    del amp, blunder, leaf
    dsm = (terrain + z).astype(np.float32)
    ndsm = np.maximum(dsm - _estimate_terrain(dsm, terrain), 0).astype(np.float32)
    return dsm, ndsm
