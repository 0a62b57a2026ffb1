"""Smooth random fields shared by the height model (matching noise, terrain undulation)
and the renderer (texture, leaf clumps)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _noise(rng: np.random.Generator, shape, scale: float) -> np.ndarray:
    """Smooth Gaussian noise with unit std and correlation length ~``scale`` px:
    white noise on a grid ``scale`` times coarser, bilinearly upsampled (scale > 2), or
    white noise blurred with sigma ``scale`` (small scales)."""
    h, w = shape
    if scale <= 2:
        n = rng.standard_normal((h, w), dtype=np.float32)
        if scale > 0:
            n = ndimage.gaussian_filter(n, scale)
    else:
        gh, gw = int(h / scale) + 3, int(w / scale) + 3
        coarse = rng.standard_normal((gh, gw), dtype=np.float32)
        n = _upsample(coarse, h, w, scale)
    std = float(n.std()) or 1.0
    return n / np.float32(std)


def _upsample(coarse: np.ndarray, h: int, w: int, scale: float) -> np.ndarray:
    """Bilinear upsampling of ``coarse`` to (h, w), one coarse cell per ``scale`` px."""
    ys = np.arange(h, dtype=np.float32) / np.float32(scale)
    xs = np.arange(w, dtype=np.float32) / np.float32(scale)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    rows = coarse[:, x0] * (1 - fx) + coarse[:, x0 + 1] * fx  # (gh, w): along x first
    return (rows[y0] * (1 - fy) + rows[y0 + 1] * fy).astype(np.float32)
