"""Surface models of a synthetic scene: terrain, DSM and nDSM.

- **Heights (nDSM, metres)**, as painted on the canvas by ``objects`` and ``town``: low
  vegetation 0.3 (hedges 0.8-2), cars 1.0-1.6 (vans ~2), clutter 0.05-2.5, buildings
  5.5-15 at the eaves plus gabled/hipped roofs (pitch 25-45 deg), garages 2.5-3.5, trees
  5-20 (broadleaf domes whose rim is >= 2.5 m up, so crowns overhang cars and roads;
  conifer cones).
- **DSM** = terrain (245-285 m a.s.l., a 0.5-3 % slope and a +-1 m undulation) + heights
  smoothed like a dense-matching DSM (Gaussian sigma 1 px) + matching noise (5 cm; 40 cm
  on crowns). nDSM = DSM - terrain (the exact terrain: no DTM-extraction error).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .canvas import PIXEL_SIZE, _Canvas
from .labels import TREE
from .noise import _noise


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Terrain (H, W) float32 metres a.s.l.: 245-285 m base, a 0.5-3 % slope in a random
    direction and a +-1 m undulation with ~100 m wavelength."""
    base = rng.uniform(245, 285)
    slope = rng.uniform(0.005, 0.03) * PIXEL_SIZE
    d = rng.uniform(0, 2 * math.pi)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    t = base + slope * (x * math.cos(d) + y * math.sin(d))
    t = t + _noise(rng, (h, w), 1100.0) * np.float32(rng.uniform(0.3, 1.0))
    return t.astype(np.float32)


def _surface_models(cv: _Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(dsm, ndsm), (H, W) float32 metres, of the heights painted on ``cv``: terrain +
    smoothed heights + matching noise, and that minus the terrain; ``rng``: this stage's
    generator."""
    h, w = cv.h, cv.w
    terrain = _terrain(rng, h, w)
    surface = ndimage.gaussian_filter(cv.height, 1.0)
    noise_amp = np.where(cv.label == TREE, np.float32(0.4), np.float32(0.05))
    surface += _noise(rng, (h, w), 1.0) * noise_amp
    surface = np.maximum(surface, 0.0)
    dsm = (terrain + surface).astype(np.float32)
    ndsm = (dsm - terrain).astype(np.float32)
    return dsm, ndsm
