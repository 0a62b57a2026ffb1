"""Appearance of a synthetic scene: the IRRG image rendered from the canvas and the surface.

- **Radiometry**: per band ``DN = gain * (haze + albedo * texture * (direct + diffuse))``:
  ``direct`` is the sunlit share (Lambert shading of roof planes and crowns painted by
  ``objects``, times the part of the sun disc not hidden by a cast shadow, plus the
  light crowns let through), ``diffuse`` the sky and adjacency light that reaches
  everything, shadows included. Haze (15, 39, 37.5) DN and diffuse (0.29, 0.087, 0.089)
  of the direct light, bands IR, R, G, are fitted on the real Vaihingen area-1 crop from
  its lit and shadowed road and grass (medians: road lit (113, 112, 117) / shadow
  (37, 45, 44), grass lit (162, 62, 68) / shadow (48, 41, 40)): a shadow keeps ~0.37 of a
  sunlit road's brightness and vegetation keeps its infrared glow in it. The albedo is
  the canvas's lit colour (``materials``) with the haze and the diffuse part taken out.
- **Crowns**: the sun lights the leaf clumps and leaves the gaps between them in the
  crown's own shadow (clump fields of ~3 and ~8 px scale the direct light by 0.65 on
  average, sd 0.5, within 0.05-1.4), while the sky light reaches both: sunlit crowns
  are strongly textured, crowns in a cast shadow smooth and relatively bright (the real
  crop's shadowed crowns: IR 55 DN). Crowns are translucent in the near infrared: their
  shadows (on the ground or on a crown's own far side) get ``LEAF_TRANSMISSION`` (0.10,
  0.02, 0.02) of the direct light.
- **Per-area radiometry** (the real tiles are mosaics of images taken minutes apart):
  each area draws a gain (+-4 %), a white balance (+-2.5 % per band), a haze level
  (+-12 %), a diffuse level (+-10 %) and the optics blur (sigma 0.9-1.5 px).
- **Sun and shadows**: the sun direction is drawn in ``scene`` (a summer-morning flight,
  azimuth ~105-175 deg, elevation ~36-61 deg); ``cast_shadows`` ray-marches the true
  surface (terrain + the canvas's heights, not the matched DSM) towards the sun and
  returns the share of the sun disc hidden at each pixel: the penumbra widens with the
  distance to the occluder (effective angular radius ``SUN_RADIUS`` 0.35 deg: the sun's
  0.27 deg plus the circumsolar glow), along the sun direction from the horizon angle,
  across it by a blur growing with the occluder distance (``_soft_shadow``).
- **Texture and sensor**: multi-scale texture (fine, ~4 px and ~60 px fields scaled per
  material by ``materials.TEXTURE``), the optics blur, then sensor noise that grows with
  the signal (shot noise: variance 0.3 + 0.008 DN, ~1.1 DN on a sunlit road, 0.8 DN in
  its shadow). Calibrated on the real crop's texture (median Sobel gradient of the
  brightness, DN/px) apart for sunlit and shadowed pixels, which its class medians mix
  (60-70 % of its road, grass and crowns lie in one building's shadow): real road
  2.2 lit / 0.4 shadow, roofs 2.8 / 1.1, crowns 12.8 / 1.4.
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
HAZE = np.array([15.0, 39.0, 37.5], dtype=np.float32)
DIFFUSE = np.array([0.29, 0.087, 0.089], dtype=np.float32)
#: share of the direct light a crown lets through to its shadow, per band (IR, R, G)
LEAF_TRANSMISSION = np.array([0.10, 0.02, 0.02], dtype=np.float32)
#: leaf clumps on crowns: correlation lengths (px; clumps, branch clusters), mean and
#: amplitude of the share of the direct light they get (the gaps lie in the crown's own
#: shadow)
CLUMP_SCALE, CLUMP_MEAN, CLUMP_AMP = (3.0, 8.0), 0.65, 0.5
#: effective angular radius of the sun disc (radians): 0.27 deg disc + circumsolar glow
SUN_RADIUS = math.radians(0.35)
#: ranges of the per-area radiometric draws: gain, white balance, haze, diffuse (relative)
#: and the optics blur sigma (px). Blur 0.9-1.5 px (0.5-1.0 before): the real crop's median
#: brightness gradient is 1.37 DN/px, the areas' was 2.13 (1.76 now); in the realism sweep
#: on one H200 (benchmarks/results/realism_sweep_h200.json, 6 sim-to-real FCNs each) it
#: raised the sim-to-real OA from 73.0 +- 3.1 to 77.9 +- 2.9 %, average and car F1 within
#: their noise; stronger blurs (1.3-2.0 px, with or without halved fine texture) did no
#: better within the noise, so the smaller step was taken
GAIN_JITTER, BALANCE_JITTER, HAZE_JITTER, DIFFUSE_JITTER = 0.04, 0.025, 0.12, 0.10
BLUR_SIGMA = (0.9, 1.5)
#: sensor noise variance = NOISE_FLOOR + NOISE_SHOT * DN (DN^2)
NOISE_FLOOR, NOISE_SHOT = 0.3, 0.008


def _march_offsets(sun_az_deg: float, steps: int) -> list[tuple[int, int]]:
    """Distinct pixel offsets (dy, dx) towards the sun at 1, 2, ..., ``steps`` px: every
    step up to 24 px, every 2nd up to 96 px, every 3rd beyond (occluders far away are
    large: walls, roofs, crowns)."""
    az = math.radians(sun_az_deg)
    sx, sy = math.sin(az), -math.cos(az)
    ks = list(range(1, min(steps, 24) + 1)) + list(range(26, min(steps, 96) + 1, 2)) + list(range(99, steps + 1, 3))
    out, seen = [], set()
    for k in ks:
        o = (int(round(k * sy)), int(round(k * sx)))
        if o not in seen:
            seen.add(o)
            out.append(o)
    return out


def _march(dsm: np.ndarray, sun_az_deg: float, sun_el_deg: float, pixel_size: float):
    """Ray march of ``dsm`` towards the sun: for every pixel the highest tangent of the
    elevation angle under which it sees the surface towards the sun,
    ``(d[p + k * s] - d[p] - 5 cm) / (k * pixel_size)``, and the step that gave it.

    Returns (tan_horizon (H, W) float32, -inf where nothing is above the pixel; step
    (H, W) int16 index into the offsets, -1 where none; offsets (n, 2) int array of
    (dy, dx) per step)."""
    h, w = dsm.shape
    el = math.radians(sun_el_deg)
    # farthest occluder that can reach the sun's lower rim, with a margin
    tan_lo = math.tan(max(el - 2 * SUN_RADIUS, math.radians(5)))
    relief = float(np.percentile(dsm, 99.9) - dsm.min())
    steps = int(min(relief, 40.0) / (pixel_size * tan_lo)) + 2
    offsets = [o for o in _march_offsets(sun_az_deg, steps) if abs(o[0]) < h and abs(o[1]) < w]
    acc = np.full((h, w), -np.inf, np.float32)
    idx = np.full((h, w), -1, np.int16)
    buf = np.empty((h, w), np.float32)
    hit = np.empty((h, w), bool)
    tol = np.float32(0.05)
    for i, (oy, ox) in enumerate(offsets):
        tgt = (slice(max(0, -oy), h - max(0, oy)), slice(max(0, -ox), w - max(0, ox)))
        src = (slice(max(0, oy), h + min(0, oy)), slice(max(0, ox), w + min(0, ox)))
        nh, nw = h - abs(oy), w - abs(ox)
        t, u, a = buf[:nh, :nw], hit[:nh, :nw], acc[tgt]
        np.subtract(dsm[src], dsm[tgt], out=t)
        t -= tol
        t *= np.float32(1.0 / (math.hypot(oy, ox) * pixel_size))
        np.greater(t, a, out=u)
        np.copyto(a, t, where=u)
        np.copyto(idx[tgt], np.int16(i), where=u)
    return acc, idx, np.array(offsets or [(0, 0)], dtype=np.int64).reshape(-1, 2)


def _soft_shadow(
    tan_h: np.ndarray, idx: np.ndarray, offsets: np.ndarray, sun_el_deg: float, pixel_size: float
) -> np.ndarray:
    """Share of the sun disc hidden at each pixel (float32, 0..1) from the march.

    Along the sun direction: the horizon (elevation ``atan(tan_h)``) cuts the disc of
    angular radius ``SUN_RADIUS``; the hidden share is the disc's segment below it, so
    the penumbra is ``2 r D / sin^2(el)`` wide behind an edge ``D`` m away. Across the
    sun direction: a blur of sigma ``r L / pixel`` (``L`` the slant distance to the
    occluder), interpolated between sigmas 0.4 and 2 px."""
    el = math.radians(sun_el_deg)
    with np.errstate(invalid="ignore"):
        u = (np.arctan(tan_h) - np.float32(el)) / np.float32(SUN_RADIUS)
    u = np.clip(np.nan_to_num(u, nan=-1.0, neginf=-1.0), -1.0, 1.0).astype(np.float32)
    hidden = 0.5 + (u * np.sqrt(1.0 - u * u) + np.arcsin(u)) / np.float32(math.pi)
    hidden = np.clip(hidden, 0.0, 1.0).astype(np.float32)
    # lateral penumbra: blur width from the occluder distance near the shadow edges
    dist = np.hypot(offsets[:, 0], offsets[:, 1]).astype(np.float32) * np.float32(pixel_size)
    d = np.where(idx >= 0, dist[np.maximum(idx, 0)], np.float32(0.0))
    d = ndimage.maximum_filter(d, size=5)
    sigma = d / np.float32(math.cos(el)) * np.float32(SUN_RADIUS / pixel_size)
    lo, hi = 0.4, 2.0
    wgt = np.clip((sigma - lo) / (hi - lo), 0.0, 1.0)
    a = ndimage.gaussian_filter(hidden, lo)
    b = ndimage.gaussian_filter(hidden, hi)
    return (a + wgt * (b - a)).astype(np.float32)


def _shadow_model(surface: np.ndarray, sun_az_deg: float, sun_el_deg: float, pixel_size: float = PIXEL_SIZE):
    """(hidden share of the sun (H, W) float32, occluder (H, W) flat pixel index of what
    casts the shadow, -1 where nothing is above the pixel) of a true surface model. Tiles wider than 1024 px are marched at half resolution (block
    maximum) and upsampled."""
    h, w = surface.shape
    f = 2 if max(h, w) > 1024 else 1
    if f > 1:
        hp, wp = -(-h // f) * f, -(-w // f) * f
        padded = np.pad(surface, ((0, hp - h), (0, wp - w)), mode="edge")
        d = padded.reshape(hp // f, f, wp // f, f).max(axis=(1, 3))
    else:
        d = surface
    tan_h, idx, offsets = _march(d, sun_az_deg, sun_el_deg, pixel_size * f)
    hidden = _soft_shadow(tan_h, idx, offsets, sun_el_deg, pixel_size * f)
    hh, ww = d.shape
    yy, xx = np.indices((hh, ww))
    oy, ox = offsets[np.maximum(idx, 0), 0], offsets[np.maximum(idx, 0), 1]
    occ_y = np.clip((yy + oy) * f, 0, h - 1)
    occ_x = np.clip((xx + ox) * f, 0, w - 1)
    occ = np.where(idx >= 0, occ_y * w + occ_x, -1).astype(np.int32 if h * w < 2**31 else np.int64)
    if f > 1:
        hidden = np.repeat(np.repeat(hidden, f, axis=0), f, axis=1)[:h, :w]
        occ = np.repeat(np.repeat(occ, f, axis=0), f, axis=1)[:h, :w]
    return hidden, occ


def cast_shadows(dsm: np.ndarray, sun_az_deg: float, sun_el_deg: float, pixel_size: float = PIXEL_SIZE) -> np.ndarray:
    """Cast-shadow map of a surface model by ray marching towards the sun.

    dsm: (H, W) float32 metres; sun azimuth clockwise from north (image up), elevation
    above the horizon, degrees. A pixel is in shadow when some pixel towards the sun rises
    (by > 5 cm) above the ray from the pixel to the sun there. Returns (H, W) float32 in
    [0, 1], the share of the sun disc hidden: 0.5 on the geometric shadow edge, with a
    penumbra that widens with the distance to the occluder (see ``_soft_shadow``).
    Tiles wider than 1024 px are marched at half resolution.
    """
    return _shadow_model(np.asarray(dsm, np.float32), sun_az_deg, sun_el_deg, pixel_size)[0]


def _radiometry(rng: np.random.Generator):
    """Per-area (gain (3,), haze (3,), diffuse (3,), blur sigma) drawn around the fit."""
    gain = np.float32(rng.uniform(1 - GAIN_JITTER, 1 + GAIN_JITTER)) * rng.uniform(
        1 - BALANCE_JITTER, 1 + BALANCE_JITTER, 3
    ).astype(np.float32)
    haze = HAZE * np.float32(rng.uniform(1 - HAZE_JITTER, 1 + HAZE_JITTER))
    diffuse = DIFFUSE * np.float32(rng.uniform(1 - DIFFUSE_JITTER, 1 + DIFFUSE_JITTER))
    return gain, haze, diffuse, float(rng.uniform(*BLUR_SIGMA))


def _render(cv: _Canvas, shadow: np.ndarray, occluder: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """IRRG image (3, H, W) uint8 of canvas ``cv`` under the cast shadows ``shadow``
    ((H, W) hidden share of the sun, ``cast_shadows``) whose occluders are the flat
    pixel indices ``occluder`` (-1: none); ``rng``: this stage's generator. Band by
    band, to bound the temporaries."""
    h, w = cv.h, cv.w
    gain, haze, diffuse, blur = _radiometry(rng)
    mod = np.ones((h, w), np.float32)
    for k, scale in enumerate((0.0, 4.0, 60.0)):  # fine, medium, coarse texture
        mod += TEXTURE[:, k][cv.material] * _noise(rng, (h, w), scale)
    # leaf clumps (within branch clusters: two scales): the sun lights the clumps and
    # leaves the gaps between them in the crown's own shadow (on average CLUMP_MEAN of
    # the direct light); the sky light reaches both
    is_tree = cv.material == M_TREE
    clumps = _noise(rng, (h, w), CLUMP_SCALE[0]) + _noise(rng, (h, w), CLUMP_SCALE[1])
    clumps *= np.float32(1 / math.sqrt(2))
    sun_on = np.ones((h, w), np.float32)
    sun_on[is_tree] = np.clip(CLUMP_MEAN + CLUMP_AMP * clumps[is_tree], 0.05, 1.4)
    # light let through by crowns: where the occluder is a crown, mottled by leaf gaps
    through = np.zeros((h, w), np.float32)
    has = occluder >= 0
    through[has] = (cv.material.ravel()[occluder[has]] == M_TREE).astype(np.float32)
    through *= shadow * np.clip(1.0 + 0.15 * clumps, 0.0, 2.0)
    direct = cv.shade * (1.0 - shadow) * sun_on
    lit_mean = np.where(is_tree, np.float32(CLUMP_MEAN), np.float32(1.0))  # of the lit colour
    del is_tree, clumps, has, sun_on
    irrg = np.empty((3, h, w), np.uint8)
    for band in range(3):
        albedo = np.maximum((cv.albedo[band] - HAZE[band]) / (lit_mean + DIFFUSE[band]), 0)
        light = direct + np.float32(diffuse[band]) + through * np.float32(LEAF_TRANSMISSION[band])
        img = np.float32(gain[band]) * (np.float32(haze[band]) + albedo * mod * light)
        del albedo, light
        img = ndimage.gaussian_filter(img, blur)  # optics
        sd = np.sqrt(np.float32(NOISE_FLOOR) + np.float32(NOISE_SHOT) * np.maximum(img, 0))
        img += rng.standard_normal((h, w), dtype=np.float32) * sd  # sensor noise
        irrg[band] = np.clip(np.rint(img), 0, 255)
    del direct, mod, through, lit_mean
    return irrg
