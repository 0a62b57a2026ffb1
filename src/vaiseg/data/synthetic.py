"""Synthetic Vaihingen-like scenes, written as ISPRS archives (data source 2, §3).

The ISPRS Vaihingen data cannot be redistributed, so the default pipeline runs on scenes
this module draws: a seeded, deterministic town at the data set's scale (9 cm pixels)
with what makes the paper's problem real (§1, §5): small cars (about 20 x 50 px, random
orientation and colour, parked in rows and along roads), trees whose crowns overhang
roads and cars (the ground truth says *tree* wherever the canopy is on top, as ISPRS
does), trees and low vegetation with similar colours, deep cast shadows, varied roofs.

Scene model (all choices; the paper is silent, §3 only describes the real data):

- **Layout**: a street grid rotated by a random angle; blocks 1.3-2.0 x the tile side,
  clipped to 450-750 px (40-68 m; small tiles always show a road); carriageways 60-100 px
  (5.4-9 m) with dashed centre lines, kerbs, repair patches and manholes; sidewalks
  1.3-2.9 m on 85 % of the roads; 20 % of the road segments are dropped (T-junctions,
  merged blocks, footpaths instead). Blocks are residential (52 %: lots of 15-23 m with a
  gabled / hipped / flat-roofed house, garage, driveway, terrace, lawn, hedge, garden
  trees, clutter), dense (33 %: perimeter buildings 8-15 m high on a paved or green block,
  courtyard with parking rows and trees), parking (8 %: stall rows, trees, sometimes a big
  flat-roofed hall) or parks (7 %: tree groups, paths). Street trees line 65 % of the kerbs,
  cars are parallel-parked along 65 % of them and stand in the parking rows and driveways.
- **Labels**: the class of the topmost surface (ISPRS convention: a crown over a car is
  *tree*). Low vegetation is the default ground (hedges too: low vegetation that looks
  like a crown), impervious the paved areas, clutter small objects and bare soil.
- **Heights (nDSM, metres)**: low vegetation 0.3 (hedges 0.8-2), cars 1.0-1.6 (vans
  ~2), clutter 0.05-2.5, buildings 5.5-15 at the eaves plus gabled/hipped roofs (pitch
  25-45 deg), garages 2.5-3.5, trees 5-20 (broadleaf domes whose rim is >= 2.5 m up, so
  crowns overhang cars and roads; conifer cones). DSM = terrain (245-285 m a.s.l., a
  0.5-3 % slope and a +-1 m undulation) + heights smoothed like a dense-matching DSM
  (Gaussian sigma 1 px) + matching noise (5 cm; 40 cm on crowns). nDSM = DSM - terrain.
- **Appearance (IRRG)**: per-material lit colours calibrated on the real Vaihingen area-1
  crop (lit road ~(114, 113, 116), lit grass ~(160, 65, 71), orange roofs ~(205, 175,
  128)), a radiometric model ``DN = haze + albedo * (direct * (1 - shadow) + diffuse)``
  fitted on the same crop (haze (22, 36, 36) DN; diffuse (0.15, 0.07, 0.07): shadows are
  dark, vegetation keeps some infrared in them), cast shadows ray-marched on the DSM for a
  random sun (azimuth 100-200 deg, elevation 40-60 deg), Lambert shading of roof planes
  and crowns, multi-scale texture (leaf clumps, tile rows, gravel, lawn mottling), optics
  blur (sigma 0.5 px) and sensor noise (2 DN).

Measured (seed 2016; impervious / building / low veg. / tree / car / clutter): the 16
paper-split areas at 448 x 448 pool to 25 / 27 / 21 / 25 / 1.9 / 0.3 %, areas 1, 5, 11,
30 at 2500 x 2000 to 28 / 27 / 23 / 20 / 1.6 / 0.2 % (Vaihingen: ~27 / 26 / 21 / 23 /
1-2 / <= 1 %); single small tiles vary much more (a 40 m tile may be all houses).
Costs (one CPU core): ~0.5 s for 448 x 448 and ~12 s for 2500 x 2000; peak memory about
90 bytes per pixel (~0.45 GB for a Vaihingen-sized tile; the road layer is computed in
row bands and the image band by band to bound the temporaries).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import tempfile
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine
from scipy import ndimage

from ..atomic import atomic_path, write_json
from ..classes import CAR, CLASSES, CLUTTER, N_CLASSES, index_to_rgb
from ..config import LABELLED_AREAS
from ..raster import GeoInfo, write_raster
from . import layout
from .erosion import erode_boundaries

log = logging.getLogger(__name__)

#: ground sampling distance of the Vaihingen TOPs and DSMs (metres per pixel)
PIXEL_SIZE = 0.09
#: CRS of the synthetic rasters (UTM zone 32N, WGS 84; Vaihingen lies in zone 32)
CRS_EPSG = 32632

IMP, BUILDING, LOW_VEG, TREE = 0, 1, 2, 3

#: haze (path radiance, DN) and diffuse-light fraction per band (IR, R, G), fitted on
#: the real Vaihingen crop from lit/shadowed road and grass (see module docstring)
HAZE = np.array([22.0, 36.0, 36.0], dtype=np.float32)
DIFFUSE = np.array([0.15, 0.07, 0.07], dtype=np.float32)

# materials: id -> texture amplitudes (fine ~1 px, medium ~6 px, coarse ~60 px)
M_GRASS, M_ASPHALT, M_PAVEMENT, M_ROOF_TILE, M_ROOF_FLAT, M_TREE, M_CAR, M_GLASS, M_CLUTTER, M_PAINT, M_SOIL = range(11)
TEXTURE = np.array(
    [
        [0.04, 0.09, 0.10],  # grass: mottled, mowing patterns
        [0.05, 0.04, 0.07],  # asphalt
        [0.07, 0.05, 0.06],  # pavement / concrete
        [0.09, 0.05, 0.05],  # roof tiles
        [0.08, 0.06, 0.10],  # flat roofs: gravel, stains
        [0.10, 0.12, 0.08],  # tree crowns: leaf clumps and gaps (plus the clump field)
        [0.02, 0.01, 0.00],  # car body
        [0.03, 0.00, 0.00],  # car glass
        [0.10, 0.08, 0.05],  # clutter
        [0.03, 0.00, 0.00],  # road paint
        [0.08, 0.10, 0.10],  # bare soil
    ],
    dtype=np.float32,
)

# lit colours (DN, bands IR, R, G) of the materials; per-object jitter is added
GRASS = (165, 68, 74)
DRY_GRASS = (130, 85, 82)
ASPHALT = (106, 106, 111)
PAVEMENT = (128, 125, 128)
TREE_LIT = (170, 66, 70)
ROOF_TONES = (  # (colour, weight)
    ((205, 165, 110), 0.30),  # red clay tiles: orange in IRRG (real crop ~(205, 175, 128))
    ((150, 108, 80), 0.15),  # brown tiles
    ((98, 90, 92), 0.15),  # dark grey tiles / slate
    ((112, 98, 92), 0.15),  # brownish gravel (as the crop's flat roof)
    ((150, 148, 150), 0.12),  # concrete / light metal
    ((70, 70, 74), 0.08),  # bitumen
    ((180, 180, 184), 0.05),  # white membrane
)
CAR_COLOURS = (  # (IRRG lit colour, weight): white, silver, grey, black, red, blue, other
    ((205, 200, 205), 0.18),
    ((160, 158, 164), 0.18),
    ((105, 104, 110), 0.17),
    ((45, 44, 48), 0.23),
    ((150, 150, 60), 0.08),
    ((70, 45, 80), 0.08),
    ((120, 95, 70), 0.05),
    ((170, 160, 70), 0.03),
)
CLUTTER_COLOURS = ((90, 95, 120), (150, 120, 95), (60, 70, 110), (180, 170, 160), (110, 80, 70), (140, 60, 60))


@dataclass
class Scene:
    """One synthetic area.

    irrg: (3, H, W) uint8, bands IR, R, G (as the ISPRS TOP tiles).
    dsm: (H, W) float32, surface height in metres a.s.l.
    ndsm: (H, W) float32, DSM minus terrain, metres.
    labels: (H, W) uint8 class indices 0..5 (vaiseg.classes).
    geo: the area's georeferencing (9 cm pixels, EPSG:32632).
    """

    irrg: np.ndarray
    dsm: np.ndarray
    ndsm: np.ndarray
    labels: np.ndarray
    geo: GeoInfo


def area_geoinfo(area: int) -> GeoInfo:
    """Made-up but plausible georeferencing of an area: 9 cm pixels, north up, origins
    on a 300 m grid around Vaihingen/Enz (UTM 32N ~496 km E, 5420 km N)."""
    col, row = (area - 1) % 6, (area - 1) // 6
    x0 = 496_000.0 + 300.0 * col
    y0 = 5_421_000.0 - 300.0 * row
    return GeoInfo(Affine(PIXEL_SIZE, 0.0, x0, 0.0, -PIXEL_SIZE, y0), CRS.from_epsg(CRS_EPSG))


def _pick(rng: np.random.Generator, options):
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _jitter(rng: np.random.Generator, colour, rel: float = 0.08) -> np.ndarray:
    """Colour (3,) float32 scaled by a common factor and a small per-band factor."""
    c = np.asarray(colour, dtype=np.float32)
    return c * np.float32(rng.uniform(1 - rel, 1 + rel)) * rng.uniform(1 - rel / 3, 1 + rel / 3, 3).astype(np.float32)


class _Canvas:
    """Label / height / appearance layers painted object by object.

    label (H, W) uint8 class; height (H, W) float32 metres above terrain; albedo
    (3, H, W) float32 (in lit-DN units); material (H, W) uint8; shade (H, W) float32
    direct-light factor relative to flat ground (roof planes, crowns).
    """

    def __init__(self, h: int, w: int, rng: np.random.Generator, sun: np.ndarray):
        self.h, self.w, self.rng, self.sun = h, w, rng, sun
        self.label = np.full((h, w), LOW_VEG, np.uint8)
        self.height = np.zeros((h, w), np.float32)
        self.albedo = np.empty((3, h, w), np.float32)
        self.albedo[:] = np.asarray(GRASS, np.float32)[:, None, None]
        self.material = np.full((h, w), M_GRASS, np.uint8)
        self.shade = np.ones((h, w), np.float32)

    # geometry -------------------------------------------------------------------------
    def frame(self, cx, cy, ang, half_len, half_wid):
        """Bounding-box slices and local coordinates of an oriented rectangle.

        (cx, cy): centre in pixels (x = column, y = row); ang: direction of the long axis
        in radians (image axes). Returns None when the box misses the canvas, else
        (sl, a, b): a along the axis, b across it (pixels, float32 arrays of the box).
        """
        c, s = math.cos(ang), math.sin(ang)
        ex = abs(half_len * c) + abs(half_wid * s) + 1
        ey = abs(half_len * s) + abs(half_wid * c) + 1
        x0, x1 = max(0, int(cx - ex)), min(self.w, int(cx + ex) + 2)
        y0, y1 = max(0, int(cy - ey)), min(self.h, int(cy + ey) + 2)
        if x0 >= x1 or y0 >= y1:
            return None
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        a = dx * np.float32(c) + dy * np.float32(s)
        b = dy * np.float32(c) - dx * np.float32(s)
        return (slice(y0, y1), slice(x0, x1)), a, b

    def rect(self, cx, cy, ang, half_len, half_wid):
        """(sl, mask, a, b) of an oriented rectangle, or None."""
        f = self.frame(cx, cy, ang, half_len, half_wid)
        if f is None:
            return None
        sl, a, b = f
        mask = (np.abs(a) <= half_len) & (np.abs(b) <= half_wid)
        if not mask.any():
            return None
        return sl, mask, a, b

    # painting -------------------------------------------------------------------------
    def paint(self, sl, mask, cls, height, colour, material, shade=1.0, top=False):
        """Paint ``mask`` (within slices ``sl``) with a class, height (scalar or array of
        the box), colour ((3,) or (3, h, w) lit DN), material and shade. ``top``: only
        where the new surface is at least as high as what is there (trees)."""
        hbox = self.height[sl]
        hnew = np.broadcast_to(np.asarray(height, np.float32), hbox.shape)
        if top:
            mask = mask & (hnew >= hbox)
        if not mask.any():
            return
        self.label[sl][mask] = cls
        hbox[mask] = hnew[mask]
        col = np.asarray(colour, np.float32)
        alb = self.albedo[:, sl[0], sl[1]]
        alb[:, mask] = col[:, mask] if col.ndim == 3 else col[:, None]
        self.material[sl][mask] = material
        self.shade[sl][mask] = np.broadcast_to(np.asarray(shade, np.float32), hbox.shape)[mask]

    def free(self, sl, mask, allowed=(IMP, LOW_VEG)) -> bool:
        """True when every pixel of ``mask`` is ground of an allowed class (no object)."""
        lab = self.label[sl][mask]
        return bool(np.isin(lab, allowed).all()) and bool((self.height[sl][mask] < 0.5).all())

    def lambert(self, nx, ny, nz):
        """Direct-light factor of a surface normal relative to flat ground."""
        sx, sy, sz = self.sun
        return np.clip((nx * sx + ny * sy + nz * sz) / sz, 0.0, 1.8).astype(np.float32)


# ---------------------------------------------------------------------------------------
# objects
# ---------------------------------------------------------------------------------------


def _building(cv: _Canvas, cx, cy, ang, half_len, half_wid, *, flat: bool, eave: float, colour=None) -> np.ndarray:
    """A building: rectangle with a pitched or a flat roof, eaves at ``eave`` m.

    Pitched: gabled (ridge along the long axis) or, for 30 % of elongated ones, hipped;
    pitch 25-45 deg, every plane shaded by Lambert's law, faint tile rows, chimneys and
    dormers, solar panels on 20 %. Flat: a parapet rim and roof objects (vents, skylights)
    0.5-2 m high, all building pixels of other tones. ``colour``: roof colour (3,) lit DN,
    drawn from the roof tones when None. Returns the roof colour used."""
    rng = cv.rng
    if colour is None:
        colour = _jitter(rng, _pick(rng, ROOF_TONES[2:] if flat else ROOF_TONES), 0.12)
    r = cv.rect(cx, cy, ang, half_len, half_wid)
    if r is None:
        return colour
    sl, mask, a, b = r
    if flat:
        cv.paint(sl, mask, BUILDING, eave, colour, M_ROOF_FLAT)
        # parapet: a slightly brighter rim 3-5 px wide
        rim = rng.uniform(3, 5)
        edge = mask & ((np.abs(a) > half_len - rim) | (np.abs(b) > half_wid - rim))
        cv.paint(sl, edge, BUILDING, eave + 0.4, colour * 1.12, M_ROOF_FLAT)
        for _ in range(rng.poisson(half_len * half_wid / 2500)):
            ca = rng.uniform(-half_len + 8, half_len - 8)
            cb = rng.uniform(-half_wid + 8, half_wid - 8)
            hl, hw = rng.uniform(3, 12), rng.uniform(3, 9)
            c, s = math.cos(ang), math.sin(ang)
            o = cv.rect(cx + ca * c - cb * s, cy + ca * s + cb * c, ang, hl, hw)
            if o is not None:
                tone = (210, 205, 205) if rng.random() < 0.4 else (70, 66, 70)
                cv.paint(o[0], o[1] & _restrict(sl, o[0], mask), BUILDING, eave + rng.uniform(0.5, 2.0), _jitter(rng, tone, 0.1), M_ROOF_FLAT)
        return colour
    pitch = math.radians(rng.uniform(25, 45))
    t = math.tan(pitch)
    hipped = rng.random() < 0.3 and half_len > half_wid * 1.2
    across = half_wid - np.abs(b)  # distance to the long eaves (px)
    if hipped:  # four planes: the ends slope too
        along = half_len - np.abs(a)
        end = along < across
        dist = np.where(end, along, across)
    else:  # gabled: two planes, ridge along the long axis
        end = np.zeros_like(across, dtype=bool)
        dist = across
    height = eave + dist * np.float32(PIXEL_SIZE * t)
    # normal of each plane, tilted towards the side it faces
    ax, ay = -math.sin(ang), math.cos(ang)  # across axis
    lx, ly = math.cos(ang), math.sin(ang)  # long axis
    sp, cp = math.sin(pitch), math.cos(pitch)
    sb, sa = np.sign(b), np.sign(a)
    nx = np.where(end, sa * lx, sb * ax) * sp
    ny = np.where(end, sa * ly, sb * ay) * sp
    shade = cv.lambert(nx, ny, np.float32(cp))
    # tile rows: faint stripes parallel to the eaves
    rows = 1.0 + 0.06 * np.sin(dist * np.float32(2 * math.pi / rng.uniform(3.5, 5.0)))
    col = colour[:, None, None] * rows[None]
    cv.paint(sl, mask, BUILDING, height, col, M_ROOF_TILE, shade)
    c, s = math.cos(ang), math.sin(ang)

    def roof_height(ca, cb):
        d = min(half_wid - abs(cb), half_len - abs(ca)) if hipped else half_wid - abs(cb)
        return eave + d * PIXEL_SIZE * t

    if rng.random() < 0.2:  # solar panels on one plane: dark, gridded, 10 cm above it
        side = 1 if rng.random() < 0.5 else -1
        pl, pw = half_len * rng.uniform(0.3, 0.6), half_wid * rng.uniform(0.25, 0.4)
        cb = side * half_wid * 0.5
        o = cv.rect(cx - cb * s, cy + cb * c, ang, pl, pw)
        if o is not None:
            osl, om, oa, ob = o
            om &= _restrict(sl, osl, mask)
            grid = ((np.abs(oa) % 9.0) < 1.0) | ((np.abs(ob - 0.0) % 14.0) < 1.0)
            pcol = _jitter(rng, (62, 58, 78), 0.1)[:, None, None] * np.where(grid, 1.5, 1.0)[None].astype(np.float32)
            oh = cv.height[osl] + np.float32(0.1)
            cv.paint(osl, om, BUILDING, oh, pcol, M_GLASS, cv.shade[osl].copy())
    # dormers / chimneys
    for _ in range(rng.poisson(half_len / 60)):
        ca = rng.uniform(-half_len + 10, half_len - 10)
        cb = rng.uniform(-half_wid + 6, half_wid - 6)
        o = cv.rect(cx + ca * c - cb * s, cy + ca * s + cb * c, ang, rng.uniform(3, 8), rng.uniform(3, 6))
        if o is not None:
            hh = roof_height(ca, cb) + rng.uniform(0.3, 1.2)
            cv.paint(o[0], o[1] & _restrict(sl, o[0], mask), BUILDING, hh, _jitter(rng, (120, 110, 108), 0.15), M_ROOF_FLAT)
    return colour


def _restrict(sl_outer, sl_inner, mask_outer) -> np.ndarray:
    """``mask_outer`` (defined on box ``sl_outer``) restricted to box ``sl_inner``."""
    full = np.zeros((sl_inner[0].stop - sl_inner[0].start, sl_inner[1].stop - sl_inner[1].start), bool)
    y0, y1 = max(sl_inner[0].start, sl_outer[0].start), min(sl_inner[0].stop, sl_outer[0].stop)
    x0, x1 = max(sl_inner[1].start, sl_outer[1].start), min(sl_inner[1].stop, sl_outer[1].stop)
    if y0 < y1 and x0 < x1:
        full[y0 - sl_inner[0].start : y1 - sl_inner[0].start, x0 - sl_inner[1].start : x1 - sl_inner[1].start] = mask_outer[
            y0 - sl_outer[0].start : y1 - sl_outer[0].start, x0 - sl_outer[1].start : x1 - sl_outer[1].start
        ]
    return full


def _car(cv: _Canvas, cx, cy, ang, *, check=True) -> bool:
    """A car: rounded rectangle ~2 x 4.5 m (length N(48, 4) px clipped to 40-58, width
    N(20, 1.5) clipped to 17-23), body colour from a fleet distribution, dark windscreen
    and rear window, 1.4-1.6 m high (lower at the bonnet); 8 % are vans (length
    N(58, 4) clipped to 52-68 px, width 20-24 px, 1.9-2.2 m, windscreen only; ISPRS counts
    vans as cars). Returns False (nothing painted) when ``check`` and the footprint is
    not free ground."""
    rng = cv.rng
    van = rng.random() < 0.08
    if van:
        hl = float(np.clip(rng.normal(58, 4), 52, 68)) / 2
        hw = float(np.clip(rng.normal(22, 1.0), 20, 24)) / 2
    else:
        hl = float(np.clip(rng.normal(48, 4), 40, 58)) / 2
        hw = float(np.clip(rng.normal(20, 1.5), 17, 23)) / 2
    f = cv.frame(cx, cy, ang, hl, hw)
    if f is None:
        return False
    sl, a, b = f
    rc = 0.45 * hw  # corner radius
    qa, qb = np.maximum(np.abs(a) - (hl - rc), 0), np.maximum(np.abs(b) - (hw - rc), 0)
    mask = (np.abs(a) <= hl) & (np.abs(b) <= hw) & (qa * qa + qb * qb <= rc * rc)
    if not mask.any() or (check and not cv.free(sl, mask, allowed=(IMP,))):
        return False
    body = _jitter(rng, _pick(rng, CAR_COLOURS), 0.1)
    u = a / np.float32(hl)  # -1 rear .. +1 front
    if van:
        glass = (u > 0.55) & (u < 0.75)
        height = np.where(u > 0.75, 1.2, 2.0).astype(np.float32) + np.float32(rng.uniform(-0.1, 0.2))
    else:
        glass = ((u > 0.12) & (u < 0.42)) | ((u > -0.72) & (u < -0.52))
        height = np.where(u > 0.42, 1.0, np.where(u < -0.72, 1.1, 1.45)).astype(np.float32) + np.float32(rng.uniform(-0.05, 0.1))
    glass &= np.abs(b) < hw - 2.0
    # rounded body: darker towards the sides, a highlight along the roof line
    prof = 1.0 - 0.25 * (np.abs(b) / hw) ** 2
    col = body[:, None, None] * prof[None]
    glass_col = np.array([38, 42, 50], np.float32)[:, None, None] * np.ones_like(prof)[None]
    col = np.where(glass[None], glass_col, col)
    cv.paint(sl, mask, CAR, height, col, M_CAR)
    cv.material[sl][mask & glass] = M_GLASS
    return True


def _tree(cv: _Canvas, cx, cy, radius, top):
    """A tree crown, painted only where it is the highest surface.

    Broadleaf (88 %): lobed disc of ``radius`` px, dome of ``top`` m whose rim is at
    ~45 % of the top (so it overhangs cars and roads), Lambert-shaded as a spheroid.
    Conifer (12 %): 0.6 x the radius, star-shaped outline, a cone from 15 % of the top,
    darker in the infrared."""
    rng = cv.rng
    conifer = rng.random() < 0.12
    if conifer:
        radius *= 0.6
    f = cv.frame(cx, cy, 0.0, radius * 1.25, radius * 1.25)
    if f is None:
        return
    sl, a, b = f
    phi = np.arctan2(b, a)
    p1, p2 = rng.uniform(0, 2 * math.pi, 2)
    if conifer:
        rr = radius * (1 + 0.15 * np.sin(7 * phi + p1) + 0.08 * np.sin(11 * phi + p2))
    else:
        rr = radius * (1 + 0.12 * np.sin(3 * phi + p1) + 0.07 * np.sin(5 * phi + p2))
    d = np.hypot(a, b)
    q = d / rr
    mask = q < 1.0
    if not mask.any():
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        ux, uy = np.where(d > 0, a / d, 0), np.where(d > 0, b / d, 0)
    if conifer:
        base = 0.15 * top
        height = (base + (top - base) * np.clip(1 - q, 0, 1)).astype(np.float32)
        shade = cv.lambert(0.75 * ux, 0.75 * uy, np.float32(0.65)) * np.float32(0.8)
        colour = _jitter(rng, (135, 52, 60), 0.1)
    else:
        base = max(2.5, 0.45 * top)
        z = np.sqrt(np.clip(1 - q * q, 0, 1))
        height = (base + (top - base) * z).astype(np.float32)
        shade = cv.lambert(q * ux, q * uy, z + 0.15) * np.float32(0.85)  # spheroid normal ~ (q * radial, z)
        colour = _jitter(rng, TREE_LIT, 0.12)
    cv.paint(sl, mask, TREE, height, colour, M_TREE, shade, top=True)


def _clutter(cv: _Canvas, sample, tries: int = 5) -> bool:
    """Clutter: a small object or heap 1-4 m across, 0.2-2.5 m high, odd colour, or a
    flat patch of bare soil; placed on free ground at the first of ``tries`` positions
    ``sample()`` -> (x, y, angle) that fits."""
    rng = cv.rng
    hl, hw = rng.uniform(6, 22), rng.uniform(5, 16)
    for _ in range(tries):
        r = cv.rect(*sample(), hl, hw)
        if r is None or not cv.free(r[0], r[1]):
            continue
        sl, mask, _, _ = r
        if rng.random() < 0.3:  # bare soil / sand, flat
            cv.paint(sl, mask, CLUTTER, 0.05, _jitter(rng, (130, 110, 95), 0.12), M_SOIL)
        else:
            col = _jitter(rng, CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))], 0.15)
            cv.paint(sl, mask, CLUTTER, rng.uniform(0.2, 2.5), col, M_CLUTTER)
        return True
    return False


# ---------------------------------------------------------------------------------------
# layout: street grid, blocks
# ---------------------------------------------------------------------------------------


class _Grid:
    """A street grid rotated by ``theta``: u = x cos + y sin, v = -x sin + y cos.

    u-roads are the lines u = cu[i] (running along v), v-roads the lines v = cv[j]."""

    def __init__(self, theta, cu, wu, cv_, wv):
        self.theta = theta
        self.c, self.s = math.cos(theta), math.sin(theta)
        self.cu, self.wu, self.cv, self.wv = cu, wu, cv_, wv

    def xy(self, u, v):
        return u * self.c - v * self.s, u * self.s + v * self.c


def _lines(rng, lo, hi, block, force_inside: bool):
    """Road-line positions covering [lo - block, hi + block], spacing 0.75-1.25 block."""
    if force_inside:
        start = rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))
        while start > lo - block:
            start -= block * rng.uniform(0.75, 1.25)
    else:
        start = lo - block * rng.uniform(0.0, 1.0)
    out = [start]
    while out[-1] < hi + block:
        out.append(out[-1] + block * rng.uniform(0.75, 1.25))
    return np.array(out)


def _road_layer(cv: _Canvas, g: _Grid, keep_u, keep_v, sidewalk_u, sidewalk_v, chunk: int = 256) -> None:
    """Paint carriageways (asphalt, dashed centre lines on roads wider than 6.3 m),
    sidewalks (pavement) and, in half of the places where a road segment was dropped,
    a 2 m footpath. Vectorised, in bands of ``chunk`` rows to bound the temporaries."""
    rng = cv.rng
    colours = {M_PAVEMENT: _jitter(rng, PAVEMENT, 0.06), M_ASPHALT: _jitter(rng, ASPHALT, 0.06)}
    paint_col = np.array([190, 195, 200], np.float32)
    xx = np.arange(cv.w, dtype=np.float32)[None, :]

    def nearest(pos, lines):
        i = np.clip(np.searchsorted(lines, pos), 1, len(lines) - 1)
        lo, hi = lines[i - 1], lines[i]
        near = np.where(pos - lo < hi - pos, i - 1, i)
        return near, (pos - lines[near]).astype(np.float32), np.clip(i - 1, 0, len(lines) - 2)

    for r0 in range(0, cv.h, chunk):
        r1 = min(cv.h, r0 + chunk)
        yy = np.arange(r0, r1, dtype=np.float32)[:, None]
        u = xx * np.float32(g.c) + yy * np.float32(g.s)
        v = yy * np.float32(g.c) - xx * np.float32(g.s)
        iu, du, bu = nearest(u, g.cu)  # nearest u-line, offset, u-block index
        iv, dv, bv = nearest(v, g.cv)
        on_u = keep_u[iu, bv]  # the u-road segment next to this pixel exists
        on_v = keep_v[iv, bu]
        hwu, hwv = (g.wu / 2)[iu], (g.wv / 2)[iv]
        road = (on_u & (np.abs(du) <= hwu)) | (on_v & (np.abs(dv) <= hwv))
        walk = (on_u & (np.abs(du) <= hwu + sidewalk_u[iu])) | (on_v & (np.abs(dv) <= hwv + sidewalk_v[iv]))
        path = (~on_u & (np.abs(du) <= 12)) | (~on_v & (np.abs(dv) <= 12))
        walk &= ~road
        path &= ~(road | walk)
        path &= (((iu * 7 + bv * 3) % 2) == 0) | (((iv * 5 + bu * 11) % 2) == 0)
        dash = (on_u & (np.abs(du) <= 1.2) & (g.wu[iu] > 70) & ((v % 90) < 40)) | (
            on_v & (np.abs(dv) <= 1.2) & (g.wv[iv] > 70) & ((u % 90) < 40)
        )
        dash &= road
        kerb = road & (
            (on_u & (np.abs(du) > hwu - 1.5) & (sidewalk_u[iu] > 0)) | (on_v & (np.abs(dv) > hwv - 1.5) & (sidewalk_v[iv] > 0))
        )
        lab, alb, mat = cv.label[r0:r1], cv.albedo[:, r0:r1], cv.material[r0:r1]
        for m, mid in ((path | walk, M_PAVEMENT), (road, M_ASPHALT)):
            lab[m] = IMP
            alb[:, m] = colours[mid][:, None]
            mat[m] = mid
        alb[:, dash] = paint_col[:, None]
        mat[dash] = M_PAINT
        alb[:, kerb] = colours[M_PAVEMENT][:, None] * np.float32(1.15)  # kerb stones
        mat[kerb] = M_PAVEMENT


def _road_wear(cv: _Canvas) -> None:
    """Repair patches (darker asphalt, 1.5-6 m) and manhole covers (0.8-1 m discs) on
    the asphalt; the label stays impervious. About one patch per 1400 m2 of asphalt
    (170 000 px) and one cover per 700 m2."""
    rng = cv.rng
    asphalt = np.flatnonzero(cv.material.ravel() == M_ASPHALT)
    if asphalt.size == 0:
        return
    for patch in [True] * rng.poisson(asphalt.size / 170_000) + [False] * rng.poisson(asphalt.size / 85_000):
        y, x = divmod(int(asphalt[rng.integers(asphalt.size)]), cv.w)
        if patch:
            r = cv.rect(x, y, rng.uniform(0, math.pi), rng.uniform(8, 35), rng.uniform(8, 25))
            factor = rng.uniform(0.75, 0.9)
        else:
            rad = rng.uniform(4.5, 5.5)
            r = cv.rect(x, y, 0.0, rad, rad)
            factor = rng.uniform(0.7, 1.2)
        if r is None:
            continue
        sl, m, a, b = r
        if not patch:
            m &= a * a + b * b <= rad * rad
        m &= cv.material[sl] == M_ASPHALT
        alb = cv.albedo[:, sl[0], sl[1]]
        alb[:, m] *= np.float32(factor)


def _parking_rows(cv: _Canvas, g: _Grid, u0, u1, v0, v1, occupancy, max_rows: int | None = None):
    """A parking lot in [u0, u1] x [v0, v1]: rows of perpendicular stalls (2.5 m wide,
    5 m deep, in pairs back to back) separated by 6-7 m aisles, stall lines painted,
    cars in a share ``occupancy`` of the stalls. Rows run along u or (half the time) v;
    at most ``max_rows`` rows, the asphalt covers only the rows used plus an aisle."""
    rng = cv.rng
    swap = rng.random() < 0.5  # rows along v instead of u
    (a0, a1), (b0, b1) = ((v0, v1), (u0, u1)) if swap else ((u0, u1), (v0, v1))
    stall_w, depth, aisle = rng.uniform(26, 30), rng.uniform(52, 58), rng.uniform(60, 75)
    rows, b = [], b0 + 4
    while b + depth <= b1 - 2 and (max_rows is None or len(rows) < max_rows):
        rows.append(b)
        b += depth + (aisle if len(rows) % 2 == 1 else 2)
    if not rows:
        return
    b_end = min(b1, rows[-1] + depth + (aisle if len(rows) % 2 == 1 else 4))
    if swap:
        cxm, cym = g.xy((b0 + b_end) / 2, (a0 + a1) / 2)
        r = cv.rect(cxm, cym, g.theta, (b_end - b0) / 2, (a1 - a0) / 2)
    else:
        cxm, cym = g.xy((a0 + a1) / 2, (b0 + b_end) / 2)
        r = cv.rect(cxm, cym, g.theta, (a1 - a0) / 2, (b_end - b0) / 2)
    if r is None:
        return
    cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, ASPHALT, 0.1), M_ASPHALT)
    for b in rows:
        centre_b = b + depth / 2
        a = a0 + 6
        while a + stall_w <= a1 - 4:
            ca = a + stall_w / 2
            # stall separator line (painted across the row depth)
            uu, vv = ((centre_b, a)) if swap else ((a, centre_b))
            lx, ly = g.xy(uu, vv)
            ang_line = g.theta if swap else g.theta + math.pi / 2
            rl = cv.rect(lx, ly, ang_line, depth / 2, 1.0)
            if rl is not None:
                cv.albedo[:, rl[0][0], rl[0][1]][:, rl[1]] = np.array([185, 188, 192], np.float32)[:, None]
            if rng.random() < occupancy:
                uu, vv = ((centre_b, ca)) if swap else ((ca, centre_b))
                x, y = g.xy(uu, vv)
                x += rng.normal(0, 1.5)
                y += rng.normal(0, 1.5)
                heading = (g.theta if swap else g.theta + math.pi / 2) + rng.normal(0, 0.04) + (math.pi if rng.random() < 0.5 else 0)
                _car(cv, x, y, heading)
            a += stall_w


def _street_cars(cv: _Canvas, g: _Grid, keep_u, keep_v, lo_hi_u, lo_hi_v, p_side: float):
    """Cars parallel-parked along the kerbs (gaps 0.5-4 m, sometimes longer) and a few
    driving in the lanes, oriented along the road (+- 2 deg, either heading)."""
    rng = cv.rng
    for lines, widths, keep, (lo, hi), along_u in ((g.cu, g.wu, keep_u, lo_hi_v, False), (g.cv, g.wv, keep_v, lo_hi_u, True)):
        other = g.cv if not along_u else g.cu
        for i, c in enumerate(lines):
            hw = widths[i] / 2
            for side in (-1, 1):
                parking = rng.random() < p_side and hw > 28
                t = lo + rng.uniform(0, 60)
                while t < hi:
                    seg = int(np.clip(np.searchsorted(other, t) - 1, 0, len(other) - 2))
                    if not keep[i, seg]:
                        t += 60
                        continue
                    if parking:
                        off = side * (hw - 12 - rng.uniform(0, 3))
                    elif rng.random() < 0.08:  # a car in the lane
                        off = side * hw * rng.uniform(0.3, 0.55)
                    else:
                        t += rng.uniform(150, 400)
                        continue
                    uu, vv = (t, c + off) if along_u else (c + off, t)
                    x, y = g.xy(uu, vv)
                    heading = (g.theta if along_u else g.theta + math.pi / 2) + rng.normal(0, 0.035) + (math.pi if side > 0 else 0)
                    _car(cv, x, y, heading)
                    t += 50 + (rng.uniform(8, 60) if rng.random() < 0.7 else rng.uniform(100, 400))


def _block(cv: _Canvas, g: _Grid, u0, u1, v0, v1, kind: str):
    """Fill one block [u0, u1] x [v0, v1] (grid coordinates, pixels) with its content."""
    rng = cv.rng
    lu, lv = u1 - u0, v1 - v0
    if lu < 30 or lv < 30:
        return
    c, s = g.c, g.s

    def at(u, v):
        return g.xy(u, v)

    if kind == "park":
        cxm, cym = at((u0 + u1) / 2, (v0 + v1) / 2)
        r = cv.rect(cxm, cym, g.theta, lu / 2, lv / 2)
        if r is not None:
            cv.paint(r[0], r[1], LOW_VEG, 0.3, _jitter(rng, _pick(rng, ((GRASS, 0.7), (DRY_GRASS, 0.3))), 0.08), M_GRASS)
        if rng.random() < 0.7:  # a path across
            pu = rng.uniform(u0 + 0.2 * lu, u1 - 0.2 * lu)
            x, y = at(pu, (v0 + v1) / 2)
            r = cv.rect(x, y, g.theta + math.pi / 2, lv / 2, rng.uniform(10, 20))
            if r is not None:
                cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, PAVEMENT, 0.1), M_PAVEMENT)
        for _ in range(rng.poisson(2.0)):
            _clutter(cv, lambda: (*at(rng.uniform(u0, u1), rng.uniform(v0, v1)), g.theta + rng.uniform(-0.3, 0.3)))
        n_groups = max(1, rng.poisson(lu * lv / 60_000))
        for _ in range(n_groups):
            gu, gv = rng.uniform(u0, u1), rng.uniform(v0, v1)
            spread = rng.uniform(40, 120)
            for _ in range(rng.integers(3, 12)):
                _tree(cv, *at(gu + rng.normal(0, spread), gv + rng.normal(0, spread)), rng.uniform(28, 65), rng.uniform(8, 20))
        return

    if kind == "parking":
        hall = rng.random() < 0.5 and lu > 300 and lv > 300
        pu0 = u0
        if hall:  # a large flat-roofed hall on one side
            split = u0 + lu * rng.uniform(0.4, 0.6)
            x, y = at((u0 + split) / 2, (v0 + v1) / 2)
            _building(cv, x, y, g.theta, (split - u0) / 2 - 10, lv / 2 - 10, flat=True, eave=rng.uniform(6, 10))
            pu0 = split + 5
        _parking_rows(cv, g, pu0 + 5, u1 - 5, v0 + 5, v1 - 5, rng.uniform(0.4, 0.8), max_rows=int(rng.integers(2, 5)))
        for _ in range(rng.poisson(lu * lv / 30_000)):  # trees among the stalls and on the lawn
            _tree(cv, *at(rng.uniform(pu0, u1), rng.uniform(v0, v1)), rng.uniform(30, 55), rng.uniform(7, 14))
        for _ in range(rng.poisson(max(lu, lv) / 150)):  # trees on the edges / islands
            side = rng.integers(4)
            uu = [pu0 + 8, u1 - 8, rng.uniform(pu0, u1), rng.uniform(pu0, u1)][side]
            vv = [rng.uniform(v0, v1), rng.uniform(v0, v1), v0 + 8, v1 - 8][side]
            _tree(cv, *at(uu, vv), rng.uniform(30, 55), rng.uniform(7, 14))
        return

    if kind == "dense":
        depth = rng.uniform(100, 165)
        court = rng.random() < 0.6
        if rng.random() < 0.7:  # town centre: paved up to the facades
            x, y = at((u0 + u1) / 2, (v0 + v1) / 2)
            r = cv.rect(x, y, g.theta, lu / 2, lv / 2)
            if r is not None:
                cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, PAVEMENT, 0.1), M_PAVEMENT)
        # courtyard first (paved with parking, or a garden)
        cu0, cu1, cv0, cv1 = u0 + depth + 6, u1 - depth - 6, v0 + depth + 6, v1 - depth - 6
        if cu1 - cu0 > 60 and cv1 - cv0 > 60:
            x, y = at((cu0 + cu1) / 2, (cv0 + cv1) / 2)
            r = cv.rect(x, y, g.theta, (cu1 - cu0) / 2, (cv1 - cv0) / 2)
            if r is not None:  # a garden or a paved courtyard
                paved = rng.random() < 0.4
                colour = _jitter(rng, PAVEMENT if paved else GRASS, 0.12)
                cv.paint(r[0], r[1], IMP if paved else LOW_VEG, 0.0 if paved else 0.3, colour, M_PAVEMENT if paved else M_GRASS)
            if court:
                _parking_rows(cv, g, cu0, cu1, cv0, cv1, rng.uniform(0.35, 0.75), max_rows=int(rng.integers(1, 4)))
            for _ in range(rng.poisson((cu1 - cu0) * (cv1 - cv0) / 14_000)):
                _tree(cv, *at(rng.uniform(cu0, cu1), rng.uniform(cv0, cv1)), rng.uniform(30, 60), rng.uniform(8, 16))
            for _ in range(rng.poisson(2.0)):
                _clutter(cv, lambda: (*at(rng.uniform(cu0, cu1), rng.uniform(cv0, cv1)), g.theta))
        else:
            x, y = at((u0 + u1) / 2, (v0 + v1) / 2)
            r = cv.rect(x, y, g.theta, lu / 2, lv / 2)
            if r is not None:
                cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, PAVEMENT, 0.1), M_PAVEMENT)
        flat = rng.random() < 0.6
        eave = rng.uniform(8, 15)
        setback = rng.uniform(3, 20)
        sides = [k for k in range(4) if rng.random() < 0.8] or [int(rng.integers(4))]
        for k in sides:
            along_u = k < 2
            length = lu if along_u else lv
            pos = 0.0
            while pos < length - 80:
                seg = min(length - pos, rng.uniform(200, 600))
                if seg < 80:
                    break
                mid = pos + seg / 2
                if along_u:
                    vv = v0 + setback + depth / 2 if k == 0 else v1 - setback - depth / 2
                    x, y = at(u0 + mid, vv)
                    ang = g.theta
                else:
                    uu = u0 + setback + depth / 2 if k == 2 else u1 - setback - depth / 2
                    x, y = at(uu, v0 + mid)
                    ang = g.theta + math.pi / 2
                f = flat if rng.random() < 0.8 else not flat
                _building(cv, x, y, ang, seg / 2 - rng.uniform(0, 8), depth / 2, flat=f, eave=eave + rng.uniform(-1.5, 1.5))
                pos += seg + (rng.uniform(15, 80) if rng.random() < 0.35 else 0)
        return

    # residential: lots of 15-25 m
    lot = rng.uniform(170, 260)
    nu, nv = max(1, int(round(lu / lot))), max(1, int(round(lv / lot)))
    su, sv = lu / nu, lv / nv
    for i in range(nu):
        for j in range(nv):
            a0, a1, b0, b1 = u0 + i * su, u0 + (i + 1) * su, v0 + j * sv, v0 + (j + 1) * sv
            tone = _jitter(rng, _pick(rng, ((GRASS, 0.75), (DRY_GRASS, 0.25))), 0.1)
            x, y = at((a0 + a1) / 2, (b0 + b1) / 2)
            r = cv.rect(x, y, g.theta, su / 2 - 1, sv / 2 - 1)
            if r is not None:
                cv.paint(r[0], r[1], LOW_VEG, 0.3, tone, M_GRASS)
            if rng.random() < 0.5:  # a paved yard / terrace
                yu, yv = rng.uniform(a0, a1), rng.uniform(b0, b1)
                x, y = at(yu, yv)
                r = cv.rect(x, y, g.theta, rng.uniform(25, 60), rng.uniform(20, 45))
                if r is not None:
                    cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, PAVEMENT, 0.12), M_PAVEMENT)
            # house
            rot = rng.random() < 0.3
            hu = float(np.clip(su * rng.uniform(0.52, 0.78), 70, 220))
            hv = float(np.clip(sv * rng.uniform(0.5, 0.75), 70, 190))
            if rot:
                hu, hv = hv, hu
            mu = rng.uniform(a0 + hu / 2 + 8, max(a0 + hu / 2 + 8, a1 - hu / 2 - 8))
            mv = rng.uniform(b0 + hv / 2 + 8, max(b0 + hv / 2 + 8, b1 - hv / 2 - 8))
            # driveway towards the nearer v-side of the block, before the house
            near_v0 = (mv - v0) < (v1 - mv)
            dv0, dv1 = (v0, mv) if near_v0 else (mv, v1)
            du = mu + rng.uniform(-hu / 2, hu / 2)
            dw = rng.uniform(15, 22)
            x, y = at(du, (dv0 + dv1) / 2)
            r = cv.rect(x, y, g.theta + math.pi / 2, (dv1 - dv0) / 2, dw)
            if r is not None:
                cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, _pick(rng, ((PAVEMENT, 0.6), (ASPHALT, 0.4))), 0.1), M_PAVEMENT)
            if rng.random() < 0.45:  # a terrace / paved path around the house
                x, y = at(mu, mv)
                pad = rng.uniform(12, 30)
                r = cv.rect(x, y, g.theta, hu / 2 + pad, hv / 2 + pad)
                if r is not None:
                    cv.paint(r[0], r[1], IMP, 0.0, _jitter(rng, PAVEMENT, 0.12), M_PAVEMENT)
            x, y = at(mu, mv)
            long_u = hu >= hv
            skew = rng.normal(0, 0.15) if rng.random() < 0.2 else rng.normal(0, 0.03)  # old village: some houses askew
            ang = g.theta + skew + (0 if long_u else math.pi / 2)
            hl, hw = max(hu, hv) / 2, min(hu, hv) / 2
            eave = rng.uniform(5.5, 9.0)
            roof = _building(cv, x, y, ang, hl, hw, flat=rng.random() < 0.25, eave=eave)
            if rng.random() < 0.25:  # an L-shaped house: a lower wing off one end, same roof
                wl, ww = hw * rng.uniform(0.8, 1.3), hw * rng.uniform(0.55, 0.8)
                end, side = rng.choice([-1, 1]), rng.choice([-1, 1])
                ca, cb = end * (hl - ww), side * (hw + wl - 4)
                c_, s_ = math.cos(ang), math.sin(ang)
                _building(cv, x + ca * c_ - cb * s_, y + ca * s_ + cb * c_, ang + math.pi / 2, wl, ww, flat=False, eave=eave - rng.uniform(0.5, 2.0), colour=roof)
            if rng.random() < 0.5:  # a garage / shed beside the house (flat, 2.5-3.5 m)
                gl, gw = rng.uniform(25, 35), rng.uniform(15, 22)
                side = 1 if rng.random() < 0.5 else -1
                gu = mu + side * (hu / 2 + gw + rng.uniform(0, 6))
                if a0 + gw < gu < a1 - gw:
                    x, y = at(gu, mv + rng.uniform(-hv / 4, hv / 4))
                    _building(cv, x, y, g.theta + math.pi / 2, gl, gw, flat=True, eave=rng.uniform(2.5, 3.5))
            if rng.random() < 0.4:  # a hedge on a lot boundary: low vegetation that looks like a crown
                hw_ = rng.uniform(5, 9)
                if rng.random() < 0.5:
                    x, y = at(a0 + hw_, (b0 + b1) / 2)
                    r = cv.rect(x, y, g.theta + math.pi / 2, sv / 2 - 2, hw_)
                else:
                    x, y = at((a0 + a1) / 2, b0 + hw_)
                    r = cv.rect(x, y, g.theta, su / 2 - 2, hw_)
                if r is not None:
                    m = r[1] & np.isin(cv.label[r[0]], (LOW_VEG,))
                    cv.paint(r[0], m, LOW_VEG, rng.uniform(0.8, 2.0), _jitter(rng, TREE_LIT, 0.12) * 0.85, M_TREE, 0.8)
            if rng.random() < 0.3:  # a car on the driveway
                dvc = (v0 + (mv - hv / 2)) / 2 if near_v0 else ((mv + hv / 2) + v1) / 2
                x, y = at(du, dvc)
                _car(cv, x, y, g.theta + math.pi / 2 + rng.normal(0, 0.05) + (math.pi if rng.random() < 0.5 else 0))
            for _ in range(rng.poisson(0.7)):
                _clutter(cv, lambda: (*at(rng.uniform(a0, a1), rng.uniform(b0, b1)), g.theta + rng.uniform(-0.2, 0.2)))
            for _ in range(rng.poisson(2.6)):
                _tree(cv, *at(rng.uniform(a0, a1), rng.uniform(b0, b1)), rng.uniform(22, 60), rng.uniform(5, 15))


def _street_trees(cv: _Canvas, g: _Grid, keep_u, keep_v, lo_hi_u, lo_hi_v, p_row: float):
    """Rows of street trees on the kerb line (spacing 8-13 m), crowns over the road."""
    rng = cv.rng
    for lines, widths, keep, (lo, hi), along_u in ((g.cu, g.wu, keep_u, lo_hi_v, False), (g.cv, g.wv, keep_v, lo_hi_u, True)):
        other = g.cv if not along_u else g.cu
        for i, c in enumerate(lines):
            for side in (-1, 1):
                if rng.random() >= p_row:
                    continue
                spacing = rng.uniform(90, 145)
                radius, top = rng.uniform(30, 55), rng.uniform(8, 17)
                off = side * (widths[i] / 2 + rng.uniform(-5, 15))
                t = lo + rng.uniform(0, spacing)
                while t < hi:
                    seg = int(np.clip(np.searchsorted(other, t) - 1, 0, len(other) - 2))
                    if keep[i, seg]:
                        uu, vv = (t, c + off) if along_u else (c + off, t)
                        _tree(cv, *g.xy(uu, vv), radius * rng.uniform(0.8, 1.2), top * rng.uniform(0.85, 1.15))
                    t += spacing * rng.uniform(0.9, 1.1)


# ---------------------------------------------------------------------------------------
# physics: shadows, DSM, rendering
# ---------------------------------------------------------------------------------------


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


def generate_scene(area: int, height: int, width: int, seed: int) -> Scene:
    """Draw one synthetic Vaihingen-like area (see the module docstring for the model).

    area: ISPRS area number (only seeds the scene and its georeferencing); height,
    width: tile size in pixels (>= 64); seed: generator seed. Deterministic: the same
    (area, height, width, seed) give identical arrays on every run.
    """
    if height < 64 or width < 64:
        raise ValueError(f"tile must be at least 64 x 64 px, got {height} x {width}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(area), int(height), int(width)])
    h, w = int(height), int(width)
    az, el = rng.uniform(100, 200), rng.uniform(40, 60)
    sa, ea = math.radians(az), math.radians(el)
    sun = np.array([math.sin(sa) * math.cos(ea), -math.cos(sa) * math.cos(ea), math.sin(ea)], np.float32)
    cv = _Canvas(h, w, rng, sun)

    # street grid ----------------------------------------------------------------------
    theta = rng.uniform(-math.pi / 4, math.pi / 4)
    block = float(np.clip(rng.uniform(1.3, 2.0) * max(h, w), 450, 750))
    corners_x = np.array([0, w, 0, w], float)
    corners_y = np.array([0, 0, h, h], float)
    cu_all = corners_x * math.cos(theta) + corners_y * math.sin(theta)
    cv_all = -corners_x * math.sin(theta) + corners_y * math.cos(theta)
    lo_u, hi_u, lo_v, hi_v = cu_all.min(), cu_all.max(), cv_all.min(), cv_all.max()
    small = max(h, w) < block
    cu = _lines(rng, lo_u, hi_u, block, force_inside=small)
    cvl = _lines(rng, lo_v, hi_v, block, force_inside=small and rng.random() < 0.6)
    wu = rng.uniform(60, 100, len(cu))
    wv = rng.uniform(60, 100, len(cvl))
    g = _Grid(theta, cu, wu, cvl, wv)
    keep_u = rng.random((len(cu), len(cvl))) < 0.8
    keep_v = rng.random((len(cvl), len(cu))) < 0.8
    if small:  # the road forced into a small tile is kept whole half of the time
        keep_u[:] |= rng.random() < 0.5
    side_u = np.where(rng.random(len(cu)) < 0.85, rng.uniform(14, 32, len(cu)), 0.0)
    side_v = np.where(rng.random(len(cvl)) < 0.85, rng.uniform(14, 32, len(cvl)), 0.0)

    _road_layer(cv, g, keep_u, keep_v, side_u, side_v)
    _road_wear(cv)

    # blocks ---------------------------------------------------------------------------
    kinds = ("residential", "dense", "parking", "park")
    p_kind = np.array([0.52, 0.33, 0.08, 0.07])
    for i in range(len(cu) - 1):
        for j in range(len(cvl) - 1):
            # block interior: between the kerbs + sidewalks (+ a verge)
            u0 = cu[i] + wu[i] / 2 + side_u[i] + rng.uniform(0, 25)
            u1 = cu[i + 1] - wu[i + 1] / 2 - side_u[i + 1] - rng.uniform(0, 25)
            v0 = cvl[j] + wv[j] / 2 + side_v[j] + rng.uniform(0, 25)
            v1 = cvl[j + 1] - wv[j + 1] / 2 - side_v[j + 1] - rng.uniform(0, 25)
            kind = kinds[int(rng.choice(4, p=p_kind))]
            if u1 < lo_u or u0 > hi_u or v1 < lo_v or v0 > hi_v:
                continue
            # skip blocks that miss the tile (their corners all outside)
            bx, by = g.xy(np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1]))
            if bx.max() < 0 or bx.min() > w or by.max() < 0 or by.min() > h:
                continue
            _block(cv, g, u0, u1, v0, v1, kind)

    _street_cars(cv, g, keep_u, keep_v, (lo_u, hi_u), (lo_v, hi_v), p_side=0.65)
    _street_trees(cv, g, keep_u, keep_v, (lo_u, hi_u), (lo_v, hi_v), p_row=0.65)

    # DSM / nDSM ---------------------------------------------------------------------------
    terrain = _terrain(rng, h, w)
    surface = ndimage.gaussian_filter(cv.height, 1.0)
    noise_amp = np.where(cv.label == TREE, np.float32(0.4), np.float32(0.05))
    surface += _noise(rng, (h, w), 1.0) * noise_amp
    surface = np.maximum(surface, 0.0)
    dsm = (terrain + surface).astype(np.float32)
    ndsm = (dsm - terrain).astype(np.float32)

    # rendering ----------------------------------------------------------------------------
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
    return Scene(irrg=irrg, dsm=dsm, ndsm=ndsm, labels=cv.label, geo=area_geoinfo(area))


def class_frequencies(labels: np.ndarray) -> dict[str, float]:
    """Share of each class among the labelled pixels: {class name: fraction}, in class
    order; ``IGNORE`` (255) pixels are left out of the denominator."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=256)[:N_CLASSES].astype(float)
    total = counts.sum()
    return {c.name: (float(counts[c.index] / total) if total else 0.0) for c in CLASSES}


# ---------------------------------------------------------------------------------------
# archives
# ---------------------------------------------------------------------------------------

#: fixed timestamp of every zip member (the zip format's epoch), for stable md5s
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _add_member(zf: zipfile.ZipFile, name: str, path: Path) -> None:
    """Store ``path`` as ``name`` with a fixed timestamp and mode. Stored, not deflated:
    the GeoTIFFs are deflate-compressed inside already."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_archives(out_dir, areas, height: int, width: int, seed: int, *, progress: bool = True) -> dict[str, Path]:
    """Write synthetic areas as the four ISPRS archives of ``layout.ARCHIVES``.

    out_dir/<ISPRS archive name> for keys top (``top/…``, ``dsm/…`` and
    ``gts_for_participants/…`` for labelled areas only), gt (colour GT), gt_eroded
    (colour GT with black boundaries, ``erode_boundaries`` radius 3) and ndsm (float32
    nDSM GeoTIFFs); plus out_dir/md5.json {key: md5} and out_dir/class_frequencies.csv
    (one row per area and a pooled row, columns area + class keys). Members are named
    by layout's *_MEMBER templates. Every zip is written to a temporary file and renamed;
    members carry a fixed timestamp, so the md5s depend only on the inputs.
    Returns {key: archive path}.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    areas = sorted(int(a) for a in areas)
    if not areas:
        raise ValueError("write_archives: no areas given")
    paths = {key: out_dir / name for key, name in layout.ARCHIVES.items()}
    rows = []
    pooled = np.zeros(N_CLASSES, np.int64)
    with ExitStack() as stack, tempfile.TemporaryDirectory(dir=out_dir, prefix=".synth-") as tmpdir:
        tmp = Path(tmpdir)
        zips = {}
        for key, path in paths.items():
            part = stack.enter_context(atomic_path(path))
            zips[key] = stack.enter_context(zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED))
        for area in tqdm(areas, desc="synthetic areas", unit="area", disable=not progress):
            scene = generate_scene(area, height, width, seed)
            colour_gt = np.moveaxis(index_to_rgb(scene.labels), -1, 0)
            eroded = np.moveaxis(index_to_rgb(erode_boundaries(scene.labels, 3)), -1, 0)
            members = [
                ("top", layout.TOP_MEMBER, scene.irrg),
                ("top", layout.DSM_MEMBER, scene.dsm),
            ]
            if area in LABELLED_AREAS:
                members.append(("top", layout.GT_PARTICIPANTS_MEMBER, colour_gt))
            members += [
                ("gt", layout.GT_MEMBER, colour_gt),
                ("gt_eroded", layout.GT_ERODED_MEMBER, eroded),
                ("ndsm", layout.NDSM_MEMBER, scene.ndsm),
            ]
            for key, template, data in members:
                name = template.format(area=area)
                f = tmp / f"{key}_{Path(name).name}"
                write_raster(f, data, scene.geo)
                _add_member(zips[key], name, f)
                f.unlink()
            freq = class_frequencies(scene.labels)
            counts = np.bincount(scene.labels.ravel(), minlength=256)[:N_CLASSES]
            pooled += counts
            rows.append([str(area)] + [f"{freq[c.name]:.4f}" for c in CLASSES])
            log.info("area %d: %s", area, ", ".join(f"{c.key} {100 * freq[c.name]:.1f} %" for c in CLASSES))
        for zf in zips.values():
            zf.close()
    total = pooled.sum()
    rows.append(["pooled"] + [f"{pooled[c.index] / total:.4f}" for c in CLASSES])
    log.info("pooled: %s", ", ".join(f"{c.key} {100 * pooled[c.index] / total:.1f} %" for c in CLASSES))
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["area"] + [c.key for c in CLASSES])
    wr.writerows(rows)
    with atomic_path(out_dir / "class_frequencies.csv") as t:
        t.write_text(buf.getvalue())
    write_json(out_dir / "md5.json", {key: _md5(p) for key, p in paths.items()})
    return paths
