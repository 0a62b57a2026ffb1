"""Appearance of a synthetic scene: the IRRG image rendered from the canvas and the DSM.

- **Radiometry**: ``DN = haze + albedo * (direct * (1 - shadow) + diffuse)`` per band,
  fitted on the real Vaihingen area-1 crop from lit / shadowed road and grass (haze
  (22, 36, 36) DN; diffuse (0.15, 0.07, 0.07): shadows are dark, vegetation keeps some
  infrared in them); the albedo is the canvas's lit colour (``materials``) with the
  haze and the diffuse part taken out.
- **Light**: cast shadows ray-marched on the DSM for the scene's random sun (azimuth
  100-200 deg, elevation 40-60 deg; drawn in ``scene``), times the Lambert shading of
  roof planes and crowns painted by ``objects``. Shadows are binary (a 0.7 px blur for
  the penumbra); what lies in them keeps only the diffuse light.
- **Texture and sensor**: multi-scale texture (fine, ~4 px and ~60 px fields scaled per
  material by ``materials.TEXTURE``; leaf clumps with dark gaps on crowns), optics blur
  (sigma 0.5 px) and sensor noise (2 DN).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .canvas import PIXEL_SIZE, _Canvas
from .materials import M_TREE, TEXTURE
from .noise import _noise

#: haze (path radiance, DN) and diffuse-light fraction per band (IR, R, G), fitted on
#: the real Vaihingen crop from lit/shadowed road and grass (see module docstring)
HAZE = np.array([22.0, 36.0, 36.0], dtype=np.float32)
DIFFUSE = np.array([0.15, 0.07, 0.07], dtype=np.float32)


def cast_shadows(dsm: np.ndarray, sun_az_deg: float, sun_el_deg: float, pixel_size: float = PIXEL_SIZE) -> np.ndarray:
    """Cast-shadow mask of a surface model by ray marching towards the sun.

    dsm: (H, W) float32 metres; sun azimuth clockwise from north (image up), elevation
    above the horizon, degrees. A pixel is shadowed when some pixel k steps towards the
    sun is higher than the ray from the pixel to the sun there (by > 5 cm). Tiles wider
    than 1024 px are marched at half resolution (block maximum) and upsampled.
    Returns (H, W) float32 in [0, 1] (softened by a sigma 0.7 px blur: penumbra).
    """
    h, w = dsm.shape
    f = 2 if max(h, w) > 1024 else 1
    if f > 1:
        hp, wp = -(-h // f) * f, -(-w // f) * f
        padded = np.pad(dsm, ((0, hp - h), (0, wp - w)), mode="edge")
        d = padded.reshape(hp // f, f, wp // f, f).max(axis=(1, 3))
    else:
        d = dsm
    az, el = math.radians(sun_az_deg), math.radians(sun_el_deg)
    sx, sy = math.sin(az), -math.cos(az)
    drop = pixel_size * f * math.tan(el)
    relief = float(np.percentile(d, 99.9) - d.min())
    steps = int(min(relief, 40.0) / drop) + 1
    acc = np.full(d.shape, -np.inf, np.float32)
    hh, ww = d.shape
    seen = set()
    for k in range(1, steps + 1):
        oy, ox = int(round(k * sy)), int(round(k * sx))
        if (oy, ox) in seen:
            continue
        seen.add((oy, ox))
        dist = math.hypot(oy, ox)
        if abs(oy) >= hh or abs(ox) >= ww:
            break
        tgt = (slice(max(0, -oy), hh - max(0, oy)), slice(max(0, -ox), ww - max(0, ox)))
        src = (slice(max(0, oy), hh + min(0, oy)), slice(max(0, ox), ww + min(0, ox)))
        np.maximum(acc[tgt], d[src] - np.float32(dist * drop), out=acc[tgt])
    shadow = (acc > d + 0.05).astype(np.float32)
    if f > 1:
        shadow = np.repeat(np.repeat(shadow, f, axis=0), f, axis=1)[:h, :w]
    return ndimage.gaussian_filter(shadow, 0.7)


def _render(cv: _Canvas, dsm: np.ndarray, az: float, el: float, rng: np.random.Generator) -> np.ndarray:
    """IRRG image (3, H, W) uint8 of canvas ``cv`` with surface model ``dsm`` under a
    sun at azimuth ``az`` / elevation ``el`` (degrees); ``rng``: this stage's generator.
    Band by band, to bound the temporaries."""
    h, w = cv.h, cv.w
    shadow = cast_shadows(dsm, az, el)
    mod = np.ones((h, w), np.float32)
    for k, scale in enumerate((0.0, 4.0, 60.0)):  # fine, medium, coarse texture
        mod += TEXTURE[:, k][cv.material] * _noise(rng, (h, w), scale)
    # leaf clumps: crowns have dark gaps between bright clumps
    is_tree = cv.material == M_TREE
    mod[is_tree] *= np.clip(1.0 + 0.4 * _noise(rng, (h, w), 3.5)[is_tree], 0.3, 1.5)
    direct = cv.shade * (1.0 - shadow)
    del shadow, is_tree
    irrg = np.empty((3, h, w), np.uint8)
    for band in range(3):
        albedo = np.maximum((cv.albedo[band] - HAZE[band]) / (1.0 + DIFFUSE[band]), 0)
        img = HAZE[band] + albedo * mod * (direct + DIFFUSE[band])
        del albedo
        img = ndimage.gaussian_filter(img, 0.5)  # optics
        img += rng.standard_normal((h, w), dtype=np.float32) * np.float32(2.0)  # sensor noise
        irrg[band] = np.clip(np.rint(img), 0, 255)
    del direct, mod
    return irrg
