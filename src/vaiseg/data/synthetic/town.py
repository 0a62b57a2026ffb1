"""The town plan of a synthetic scene: street grid, roads, blocks and what fills them.

- **Street grid** (``_Grid``): road lines u = cu[i] and v = cv[j] of a grid rotated by
  a random angle and smoothly warped, so streets curve (75 % of the scenes): the image
  position of grid point (u, v) is the rotation of (u + fu(v), v + fv(u)), fu a sum of
  two sines (slope <= 0.16, wavelengths 54-270 m: curve radii down to ~80 m), fv a
  gentler one. Every pixel's (u, v) is computed once (``_Grid.maps``, fixed-point
  inversion) and everything is laid out in (u, v): roads, block regions, lots, rows of
  cars and trees follow the curves; buildings are rectangles turned to the local street
  direction. Road lines are 0.75-1.25 x 420-700 px apart (28-79 m); 20 % of the road
  segments are dropped (T-junctions; the blocks on both sides meet there, half of the
  time along a 2 m footpath), except on the road forced into a tile smaller than a
  block (small tiles always show a road).
- **Density**: a scene draws an urban density in [0.05, 0.95] (0 suburb, 1 old-town core)
  with a gradient across the tile (+-0.25 per tile side). It sets the block kinds
  (``KIND_P``), narrower streets with parking lanes in dense parts, fewer street trees.
- **Roads**: driving lanes 4.7-6.8 m, parking lanes 1.8-2.2 m on a side (30-75 % by
  density), sidewalks 1.3-2.7 m on 85-95 % of the roads, a grass verge 1.6-3.2 m on
  5-50 % (suburbs: more) (street trees stand in it); markings: dashed (3 m / 6 m)
  or solid centre lines on two-lane roads, parking-bay ticks and lane lines, zebra
  crossings and arrows before 20 % / 12 % of the junctions; kerbs, repair patches,
  manholes; each road its own asphalt tone.
- **Blocks**: ``centre`` (old town like the Vaihingen area-1 crop: adjoining houses
  8-24 m wide flush with the sidewalk, 10-20 m deep, eaves 11-18 m (3-5 storeys), big flat roofs with
  furniture and steep pitched roofs, rear wings, a paved courtyard with sheds, parking
  and a tree or two), ``dense`` (perimeter blocks of flats behind front gardens, green or
  paved courtyard), ``flats`` (slabs of 4-6 storeys, stepped or L-shaped, in lawns with
  parking rows), ``residential`` (detached houses on 14-23 m lots in one or two rows:
  rectangular, L, T or with an annex, gabled / hipped / flat; garage, driveway, patio,
  flower beds, bushes, hedges, garden trees), ``terrace`` (rows of 3-8 adjoining houses
  5.6-8.5 m wide, staggered, gardens behind), ``parking`` (stall rows, sometimes a big
  flat-roofed hall) and ``park`` (lawns of several tones, paths, tree groups, bushes).
- **Vegetation**: every lawn gets a tone (``materials.LAWN_VARIANTS``), a coarse tone
  field, on some mowing stripes and dry patches; bushes, flower beds, hedges and crowns
  of several shapes, sizes and species.
- **Streets**: cars parked in the parking lanes (gaps 0.5-6 m) or, in dense parts,
  along the kerbs of narrow streets, a few in the lanes, none on junctions; street trees
  on 25-60 % of the kerbs (by density), their crowns over the road and the parked cars.

Order (``_draw_town``): roads, blocks (ground, buildings, cars, bushes, crowns), street
cars, street trees; last the specks that overlaps leave (regions under
``MIN_REGION_PX``) are merged into their surroundings (``_Canvas.despeckle``).
"""

from __future__ import annotations

import math

import numpy as np

from .canvas import _Canvas
from .labels import IMP, LOW_VEG
from .materials import (
    ASPHALT,
    DRY_GRASS,
    FLOWER_BED,
    GRASS,
    LAWN_VARIANTS,
    M_ASPHALT,
    M_GRASS,
    M_PAINT,
    M_PAVEMENT,
    M_SOIL,
    M_TREE,
    PAVEMENT,
    ROOF_TONES,
    TREE_LIT,
    BUSH_FACTORS,
    _jitter,
    _pick,
    _tint,
)
from .objects import Wing, _bush, _car, _clutter, _field, _house, _tree, _uni

#: regions (4-connected pixels of one class) smaller than this are merged into their
#: surroundings at the end (0.32 m2: slivers between rectangles, crumbs of hidden cars)
MIN_REGION_PX = 40

KINDS = ("centre", "dense", "flats", "residential", "terrace", "parking", "park")
#: block-kind probabilities at urban density 0 (suburb), 0.5 and 1 (old-town core);
#: linear in between
KIND_P = np.array(
    [
        [0.00, 0.06, 0.10, 0.58, 0.12, 0.06, 0.08],
        [0.14, 0.14, 0.16, 0.30, 0.14, 0.06, 0.06],
        [0.62, 0.18, 0.05, 0.05, 0.05, 0.03, 0.02],
    ]
)
PAINT = np.array([190, 195, 200], np.float32)  # road markings
#: shrub beds (groups of 4-14 overlapping bushes, low vegetation that looks like crowns)
#: per 40,000 px^2 (32 x 32 m) of lawn, drawn last from their own stream (``_shrub_beds``);
#: 0 leaves them out
SHRUB_BEDS = 0.0


def _kind_probs(d: float) -> np.ndarray:
    d = float(np.clip(d, 0, 1))
    p = KIND_P[0] + (KIND_P[1] - KIND_P[0]) * (d / 0.5) if d <= 0.5 else KIND_P[1] + (KIND_P[2] - KIND_P[1]) * ((d - 0.5) / 0.5)
    return p / p.sum()


# ----------------------------------------------------------------------------- grid


class _Grid:
    """A warped, rotated street grid (see the module docstring).

    Image point of grid point (u, v): (p, q) = (u + fu(v), v + fv(u)) rotated by theta,
    x = p cos - q sin, y = p sin + q cos. u-roads are the lines u = cu[i] (running along
    v), v-roads the lines v = cv[j]. ``U``, ``V``: (H, W) float32 grid coordinates of
    every pixel (``maps``)."""

    def __init__(self, theta: float, fu, fv):
        self.theta = theta
        self.c, self.s = math.cos(theta), math.sin(theta)
        self.fu_terms, self.fv_terms = fu, fv  # [(amplitude px, wavenumber rad/px, phase)]
        self.cu = self.cv = self.wu = self.wv = None
        self.U = self.V = None

    @staticmethod
    def _f(terms, t):
        out = 0.0
        for amp, k, ph in terms:
            out = out + np.float32(amp) * np.sin(np.float32(k) * t + np.float32(ph))
        return out

    @staticmethod
    def _df(terms, t):
        out = 0.0
        for amp, k, ph in terms:
            out = out + amp * k * np.cos(k * t + ph)
        return out

    def xy(self, u, v):
        p = u + self._f(self.fu_terms, v)
        q = v + self._f(self.fv_terms, u)
        return p * self.c - q * self.s, p * self.s + q * self.c

    def uv(self, x, y, iters: int = 3):
        """Inverse of ``xy`` by fixed-point iteration (the warp's slopes are small)."""
        p = x * np.float32(self.c) + y * np.float32(self.s)
        q = y * np.float32(self.c) - x * np.float32(self.s)
        v = q - self._f(self.fv_terms, p)
        u = p - self._f(self.fu_terms, v)
        for _ in range(iters - 1):
            v = q - self._f(self.fv_terms, u)
            u = p - self._f(self.fu_terms, v)
        return u, v

    def ang_u(self, u) -> float:
        """Image angle of the direction of increasing u at u (along the v-roads)."""
        return self.theta + math.atan(float(self._df(self.fv_terms, u)))

    def ang_v(self, v) -> float:
        """Image angle of the direction of increasing v at v (along the u-roads)."""
        return self.theta + math.pi / 2 - math.atan(float(self._df(self.fu_terms, v)))

    def maps(self, h: int, w: int, band: int = 512) -> None:
        self.U = np.empty((h, w), np.float32)
        self.V = np.empty((h, w), np.float32)
        xx = np.arange(w, dtype=np.float32)[None, :]
        for r0 in range(0, h, band):
            r1 = min(h, r0 + band)
            yy = np.arange(r0, r1, dtype=np.float32)[:, None]
            self.U[r0:r1], self.V[r0:r1] = self.uv(xx, yy)

    def region(self, u0, u1, v0, v1, pad: int = 4):
        """(slices, mask) of the pixels with u0 <= u < u1 and v0 <= v < v1, or None."""
        n = 6
        lu, lv = np.linspace(u0, u1, n), np.linspace(v0, v1, n)
        us = np.concatenate([lu, np.full(n, u1), lu, np.full(n, u0)])
        vs = np.concatenate([np.full(n, v0), lv, np.full(n, v1), lv])
        x, y = self.xy(us, vs)
        h, w = self.U.shape
        x0, x1 = max(0, int(x.min()) - pad), min(w, int(x.max()) + pad + 1)
        y0, y1 = max(0, int(y.min()) - pad), min(h, int(y.max()) + pad + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        sl = (slice(y0, y1), slice(x0, x1))
        U, V = self.U[sl], self.V[sl]
        m = (U >= u0) & (U < u1) & (V >= v0) & (V < v1)
        return (sl, m) if m.any() else None


def _draw_town(cv: _Canvas) -> _Grid:
    """Lay out a town on the whole canvas (see the module docstring); returns its grid."""
    rng, h, w = cv.rng, cv.h, cv.w
    theta = rng.uniform(-math.pi / 4, math.pi / 4)
    dens0 = rng.uniform(0.05, 0.95)
    dgrad = rng.normal(0, 0.25, 2) / max(h, w)

    def density(x, y):
        return float(np.clip(dens0 + dgrad[0] * (x - w / 2) + dgrad[1] * (y - h / 2), 0, 1))

    # warp: fu bends the u-roads, fv (gentler) the v-roads
    curvy = rng.random() < 0.75
    fu, fv = [], []
    for terms, slope_hi, n in ((fu, 0.16 if curvy else 0.02, 2), (fv, 0.08 if curvy else 0.01, 1)):
        for k in range(n):
            lam = rng.uniform(1200, 3000) if k == 0 else rng.uniform(600, 1200)
            slope = rng.uniform(0.3, 1.0) * slope_hi * (1.0 if k == 0 else 0.3)
            kk = 2 * math.pi / lam
            terms.append((slope / kk, kk, rng.uniform(0, 2 * math.pi)))
    g = _Grid(theta, fu, fv)
    g.maps(h, w)
    lo_u, hi_u = float(g.U.min()), float(g.U.max())
    lo_v, hi_v = float(g.V.min()), float(g.V.max())

    block = rng.uniform(420, 700)
    small = max(h, w) < block
    cu = _lines(rng, lo_u, hi_u, block, force_inside=small)
    cvl = _lines(rng, lo_v, hi_v, block, force_inside=small and rng.random() < 0.6)
    nu, nv = len(cu), len(cvl)
    ru = _road_specs(rng, nu, dens0)
    rv = _road_specs(rng, nv, dens0)
    g.cu, g.cv, g.wu, g.wv = cu, cvl, 2 * ru["half"], 2 * rv["half"]
    keep_u = rng.random((nu, nv)) < 0.8
    keep_v = rng.random((nv, nu)) < 0.8
    if small:  # the road forced into a small tile is kept whole: small tiles always show a road
        keep_u[(cu > lo_u) & (cu < hi_u)] = True
    path_u = rng.random((nu, nv)) < 0.5
    path_v = rng.random((nv, nu)) < 0.5
    zebra = rng.random((nu, nv)) < 0.2
    arrows = rng.random((nu, nv)) < 0.12

    _road_layer(cv, g, ru, rv, keep_u, keep_v, path_u, path_v, zebra, arrows)
    _road_wear(cv)

    def inset(spec, keep, path, i, j):
        if keep[i, j]:
            return spec["half"][i] + spec["verge"][i] + spec["walk"][i]
        return 12.0 if path[i, j] else 0.0

    for i in range(nu - 1):
        for j in range(nv - 1):
            u0 = cu[i] + inset(ru, keep_u, path_u, i, j)
            u1 = cu[i + 1] - inset(ru, keep_u, path_u, i + 1, j)
            v0 = cvl[j] + inset(rv, keep_v, path_v, j, i)
            v1 = cvl[j + 1] - inset(rv, keep_v, path_v, j + 1, i)
            if u1 < lo_u or u0 > hi_u or v1 < lo_v or v0 > hi_v or u1 - u0 < 30 or v1 - v0 < 30:
                continue
            if g.region(u0, u1, v0, v1) is None:
                continue
            bx, by = g.xy((u0 + u1) / 2, (v0 + v1) / 2)
            d = density(bx, by)
            kind = KINDS[int(rng.choice(len(KINDS), p=_kind_probs(d)))]
            street = (keep_u[i, j], keep_u[i + 1, j], keep_v[j, i], keep_v[j + 1, i])  # u0, u1, v0, v1 sides
            _BLOCKS[kind](_Blk(cv, g, u0, u1, v0, v1, d, street))

    _street_cars(cv, g, ru, rv, keep_u, keep_v, (lo_u, hi_u), (lo_v, hi_v), density)
    _street_trees(cv, g, ru, rv, keep_u, keep_v, (lo_u, hi_u), (lo_v, hi_v), density)
    _shrub_beds(cv, SHRUB_BEDS)
    cv.despeckle(MIN_REGION_PX)
    g.U = g.V = None  # free the maps (the grid's lines stay for inspection)
    return g


def _lines(rng, lo, hi, block, force_inside: bool):
    """Road-line positions covering [lo - block, hi + block], spacing 0.75-1.25 block."""
    if force_inside:
        start = _uni(rng, lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))
        while start > lo - block:
            start -= block * rng.uniform(0.75, 1.25)
    else:
        start = lo - block * rng.uniform(0.0, 1.0)
    out = [start]
    while out[-1] < hi + block:
        out.append(out[-1] + block * rng.uniform(0.75, 1.25))
    return np.array(out)


def _road_specs(rng, n: int, dens: float) -> dict:
    """Cross-sections of ``n`` parallel roads (px): driving lanes 52-75, a parking lane
    20-24 on each side with probability 0.3-0.75 (by density ``dens``), sidewalks 14-30
    on 85-95 %, grass verges 18-35 on 5-50 % (suburbs: more), markings, tones."""
    lanes = rng.uniform(52, 75 - 8 * dens, n)
    pw = rng.uniform(20, 24, n)
    park = rng.random((n, 2)) < 0.3 + 0.45 * dens  # [:, 0] side -1, [:, 1] side +1
    half = (lanes + pw * park.sum(axis=1)) / 2
    walk = np.where(rng.random(n) < 0.85 + 0.1 * dens, rng.uniform(14, 30, n), 0.0)
    verge = np.where((rng.random(n) < 0.05 + 0.45 * (1 - dens)) & (walk > 0), rng.uniform(18, 35, n), 0.0)
    return dict(
        lanes=lanes,
        pw=pw,
        park=park,
        half=half,
        centre=(park[:, 1].astype(float) - park[:, 0]) * pw / 2,  # offset of the lanes' centre line
        walk=walk,
        verge=verge,
        dash=np.where(lanes > 62, np.where(rng.random(n) < 0.75, 1, 2), 0),  # 0 none, 1 dashed, 2 solid
        bays=rng.random(n) < 0.45,
        asphalt=np.stack([_jitter(rng, ASPHALT, 0.07) for _ in range(n)]),
        pavement=np.stack([_jitter(rng, PAVEMENT, 0.06) for _ in range(n)]),
        grass=np.stack([_jitter(rng, GRASS, 0.08) for _ in range(n)]),
    )


def _road_layer(cv: _Canvas, g: _Grid, ru, rv, keep_u, keep_v, path_u, path_v, zebra, arrows, chunk: int = 256) -> None:
    """Paint carriageways, parking lanes, verges, sidewalks and footpaths with their
    markings, vectorised in bands of ``chunk`` rows (the (u, v) maps give every pixel
    its nearest road line of each family and its offset from it)."""

    def nearest(pos, lines):
        i = np.clip(np.searchsorted(lines, pos), 1, len(lines) - 1)
        lo, hi = lines[i - 1], lines[i]
        near = np.where(pos - lo < hi - pos, i - 1, i)
        return near, (pos - lines[near]).astype(np.float32), np.clip(i - 1, 0, len(lines) - 2)

    f32 = {k: {n: np.asarray(spec[n], np.float32) for n in ("half", "verge", "walk", "centre", "pw", "lanes")} for k, spec in (("u", ru), ("v", rv))}
    for r0 in range(0, cv.h, chunk):
        r1 = min(cv.h, r0 + chunk)
        U, V = g.U[r0:r1], g.V[r0:r1]
        iu, du, bu = nearest(U, g.cu)  # nearest u-line, offset, u-block index
        iv, dv, bv = nearest(V, g.cv)
        on_u, on_v = keep_u[iu, bv], keep_v[iv, bu]
        adu, adv = np.abs(du), np.abs(dv)
        fu_, fv_ = f32["u"], f32["v"]
        hu, hv = fu_["half"][iu], fv_["half"][iv]
        eu, ev = hu + fu_["verge"][iu], hv + fv_["verge"][iv]  # outer edge of the verge
        wu_, wv_ = eu + fu_["walk"][iu], ev + fv_["walk"][iv]  # outer edge of the sidewalk
        road_u, road_v = on_u & (adu <= hu), on_v & (adv <= hv)
        road = road_u | road_v
        walk_zone = (on_u & (adu > eu) & (adu <= wu_)) | (on_v & (adv > ev) & (adv <= wv_))
        verge = ((on_u & (adu <= eu)) | (on_v & (adv <= ev))) & ~road & ~walk_zone
        walk = walk_zone & ~road
        path = ((~on_u & path_u[iu, bv] & (adu <= 12)) | (~on_v & path_v[iv, bu] & (adv <= 12))) & ~(road | walk | verge)
        lab, alb, mat = cv.label[r0:r1], cv.albedo[:, r0:r1], cv.material[r0:r1]
        # each road its own tones (u-roads win on junctions)
        for zone, mid, cls, key in ((walk | path, M_PAVEMENT, IMP, "pavement"), (verge, M_GRASS, LOW_VEG, "grass"), (road, M_ASPHALT, IMP, "asphalt")):
            if not zone.any():
                continue
            lab[zone] = cls
            mat[zone] = mid
            zu = zone & (on_u & (adu <= wu_))
            for spec, idx, part in ((rv, iv, zone & ~zu), (ru, iu, zu)):
                if not part.any():
                    continue
                for i in np.unique(idx[part]):
                    m = part & (idx == i)
                    alb[:, m] = spec[key][i][:, None]
        if verge.any():
            cv.height[r0:r1][verge] = 0.2
        # markings (no label change) --------------------------------------------------
        if not road.any():
            continue
        clear_u = adv > wv_ + 4  # away from the junction with the crossing road
        clear_v = adu > wu_ + 4
        cu_off = du - fu_["centre"][iu]
        cv_off = dv - fv_["centre"][iv]
        du_type, dv_type = ru["dash"][iu], rv["dash"][iv]
        mark = road_u & clear_u & (np.abs(cu_off) <= 1.2) & ((du_type == 2) | ((du_type == 1) & ((V % 100) < 33)))
        mark |= road_v & clear_v & (np.abs(cv_off) <= 1.2) & ((dv_type == 2) | ((dv_type == 1) & ((U % 100) < 33)))
        # parking lanes: bay ticks every 5.2 m and the line along the lane
        for spec, f, road_s, ad, d_, h_, along, idx, clear in ((ru, fu_, road_u, adu, du, hu, V, iu, clear_u), (rv, fv_, road_v, adv, dv, hv, U, iv, clear_v)):
            lane_edge = h_ - f["pw"][idx]
            lane = road_s & clear & (ad > lane_edge - 0.8) & spec["bays"][idx] & spec["park"][idx, (d_ > 0).astype(np.intp)]
            if lane.any():
                mark |= lane & (((along % 58) < 1.6) | (np.abs(ad - lane_edge) < 0.8))
        # zebra crossings 0.4-4 m before a junction (stripes 0.5 m across the road), arrows
        zu = zebra[iu, iv] & road_u & ~road_v
        if zu.any():
            ahead = adv - wv_
            mark |= zu & (ahead > 4) & (ahead < 40) & ((du % 11) < 5.5) & (adu < hu - 3)
        au = arrows[iu, iv] & road_u & ~road_v
        if au.any():
            along = adv - wv_ - 60
            dl = np.abs(np.abs(cu_off) - fu_["lanes"][iu] / 4)
            mark |= au & (((along > 14) & (along < 44) & (dl < 1.3)) | ((along >= 2) & (along <= 14) & (dl < (along - 2) * 0.45)))
        # kerb stones: a bright line where the carriageway meets a sidewalk or verge
        kerb = (road_u & (adu > hu - 1.5) & (wu_ > hu)) | (road_v & (adv > hv - 1.5) & (wv_ > hv))
        alb[:, mark] = PAINT[:, None]
        mat[mark] = M_PAINT
        kerb &= ~mark
        alb[:, kerb] = alb[:, kerb] * np.float32(1.2)
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


# ----------------------------------------------------------------------------- blocks


class _Blk:
    """One block [u0, u1] x [v0, v1] (grid coordinates) and helpers to paint in it.

    Block-local frame (s, t): s along the block's longer side, t across it, from 0;
    ``uv(s, t)`` maps to grid coordinates, ``st_region`` / ``st_wing`` paint in it."""

    def __init__(self, cv: _Canvas, g: _Grid, u0, u1, v0, v1, density: float, street=(True, True, True, True)):
        self.cv, self.g, self.rng = cv, g, cv.rng
        self.u0, self.u1, self.v0, self.v1 = u0, u1, v0, v1
        self.lu, self.lv = u1 - u0, v1 - v0
        self.density = density
        self.s_along_u = self.lu >= self.lv
        self.S, self.T = (self.lu, self.lv) if self.s_along_u else (self.lv, self.lu)
        su0, su1, sv0, sv1 = (bool(x) for x in street)
        # is there a street along side t = 0, t = T, s = 0, s = S (else a neighbouring block)
        self.street = (sv0, sv1, su0, su1) if self.s_along_u else (su0, su1, sv0, sv1)

    def uv(self, s, t):
        return (self.u0 + s, self.v0 + t) if self.s_along_u else (self.u0 + t, self.v0 + s)

    def xy(self, s, t):
        return self.g.xy(*self.uv(s, t))

    def region(self, s0, s1, t0, t1):
        (ua, va), (ub, vb) = self.uv(s0, t0), self.uv(s1, t1)
        return self.g.region(min(ua, ub), max(ua, ub), min(va, vb), max(va, vb))

    def fill(self, s0, s1, t0, t1, cls, height, colour, material, shade=1.0):
        """Paint ground (lawn, paving) on the region, under whatever stands there
        already (crowns of the neighbouring lot, a garage: objects 0.5 m or higher)."""
        r = self.region(s0, s1, t0, t1)
        if r is not None:
            sl, m = r
            self.cv.paint(sl, m & (self.cv.height[sl] < 0.5), cls, height, colour, material, shade)
        return r

    def ang(self, s, t, along_s: bool) -> float:
        u, v = self.uv(s, t)
        along_u = along_s == self.s_along_u
        return self.g.ang_u(u) if along_u else self.g.ang_v(v)

    def wing(self, sc, tc, hs, ht, eave, roof, ridge_s: bool = True) -> Wing:
        """A footprint rectangle of the grid centred at (sc, tc), half sizes hs along s
        and ht along t, its ridge (long axis) along s or t; it bends with the streets
        (its local coordinates come from the grid's (u, v) maps)."""
        g = self.g
        uc, vc = self.uv(sc, tc)
        hu, hv = (hs, ht) if self.s_along_u else (ht, hs)
        ridge_u = ridge_s == self.s_along_u
        x, y = g.xy(uc, vc)

        def frame(cv):
            r = g.region(uc - hu - 1, uc + hu + 1, vc - hv - 1, vc + hv + 1)
            if r is None:
                return None
            sl = r[0]
            du, dv = g.U[sl] - np.float32(uc), g.V[sl] - np.float32(vc)
            return (sl, du, dv) if ridge_u else (sl, dv, -du)

        if ridge_u:
            return Wing(x, y, g.ang_u(uc), hu, hv, eave, roof, frame)
        return Wing(x, y, g.ang_v(vc), hv, hu, eave, roof, frame)

    # ground ---------------------------------------------------------------------------
    def lawn(self, s0, s1, t0, t1, base=None, stripes=None):
        """A lawn: a tone of ``LAWN_VARIANTS`` (or ``base``), a coarse tone field, on 30 %
        mowing stripes (0.5-0.9 m) and on 35 % dry patches blending into DRY_GRASS."""
        rng = self.rng
        r = self.region(s0, s1, t0, t1)
        if r is None:
            return None
        sl, m = r
        if base is None:
            base = _jitter(rng, _tint(GRASS, _pick(rng, LAWN_VARIANTS)), 0.07)
        shape = m.shape
        mod = 1.0 + np.float32(rng.uniform(0.03, 0.08)) * _field(rng, shape, rng.uniform(15, 50))
        if stripes if stripes is not None else rng.random() < 0.3:
            U = self.g.U[sl] if self.s_along_u else self.g.V[sl]
            mod = mod * (1 + np.float32(rng.uniform(0.02, 0.04)) * np.sign(np.sin(U * np.float32(math.pi / rng.uniform(6, 10)))))
        col = np.asarray(base, np.float32)[:, None, None] * mod[None]
        if rng.random() < 0.35:
            wdry = np.clip((_field(rng, shape, rng.uniform(12, 30)) - rng.uniform(0.4, 1.2)) * 0.6, 0, 0.8)
            col = col * (1 - wdry[None]) + np.asarray(DRY_GRASS, np.float32)[:, None, None] * wdry[None]
        self.cv.paint(sl, m & (self.cv.height[sl] < 0.5), LOW_VEG, 0.2, col, M_GRASS)
        return r

    def paved(self, s0, s1, t0, t1, asphalt=False, tone=None):
        rng = self.rng
        col = tone if tone is not None else _jitter(rng, ASPHALT if asphalt else PAVEMENT, 0.1)
        return self.fill(s0, s1, t0, t1, IMP, 0.0, col, M_ASPHALT if asphalt else M_PAVEMENT)

    def hedge(self, s0, s1, t0, t1):
        """A hedge: low vegetation 0.8-2 m high that looks like a crown."""
        rng = self.rng
        r = self.region(s0, s1, t0, t1)
        if r is not None:
            tone = _jitter(rng, _tint(TREE_LIT, BUSH_FACTORS[int(rng.integers(len(BUSH_FACTORS)))]), 0.1) * np.float32(0.9)
            m = r[1] & (self.cv.label[r[0]] == LOW_VEG) & (self.cv.height[r[0]] < 0.5)
            self.cv.paint(r[0], m, LOW_VEG, rng.uniform(0.8, 2.0), tone, M_TREE, 0.85)

    def flower_bed(self, s0, s1, t0, t1):
        rng = self.rng
        r = self.region(s0, s1, t0, t1)
        if r is not None:
            sl, m = r
            m = m & (self.cv.label[sl] == LOW_VEG) & (self.cv.height[sl] < 0.5)
            base = _jitter(rng, FLOWER_BED, 0.1)
            w_ = np.clip(0.5 + 0.5 * _field(rng, m.shape, 3.0), 0, 1)[None]  # plants among the soil
            col = base[:, None, None] * (1 - w_) + _tint(GRASS, (1.0, 1.1, 1.1))[:, None, None] * w_
            self.cv.paint(sl, m, LOW_VEG, 0.3, col, M_SOIL)

    # objects --------------------------------------------------------------------------
    def tree(self, s, t, radius, top, **kw):
        _tree(self.cv, *self.xy(s, t), radius, top, **kw)

    def bush(self, s, t, radius, **kw):
        _bush(self.cv, *self.xy(s, t), radius, **kw)

    def car(self, s, t, along_s: bool, flip=None):
        rng = self.rng
        ang = self.ang(s, t, along_s) + rng.normal(0, 0.04) + (math.pi if (rng.random() < 0.5 if flip is None else flip) else 0)
        x, y = self.xy(s, t)
        return _car(self.cv, x + rng.normal(0, 1.0), y + rng.normal(0, 1.0), ang)

    def clutter(self, s0, s1, t0, t1):
        rng = self.rng
        _clutter(self.cv, lambda: (*self.xy(_uni(rng, s0, s1), _uni(rng, t0, t1)), self.ang((s0 + s1) / 2, (t0 + t1) / 2, True) + rng.normal(0, 0.1)))

    def parking_rows(self, s0, s1, t0, t1, occupancy, max_rows=None):
        """Rows of perpendicular stalls (2.5 m wide, 5 m deep, back to back in pairs,
        6-7 m aisles) in [s0, s1] x [t0, t1]: asphalt under the rows used, stall lines
        painted, cars in a share ``occupancy`` of the stalls."""
        rng = self.rng
        stall_w, depth, aisle = rng.uniform(26, 30), rng.uniform(52, 58), rng.uniform(60, 75)
        rows, t = [], t0 + 4
        while t + depth <= t1 - 2 and (max_rows is None or len(rows) < max_rows):
            rows.append(t)
            t += depth + (aisle if len(rows) % 2 == 1 else 2)
        if not rows:
            return
        t_end = min(t1, rows[-1] + depth + (aisle if len(rows) % 2 == 1 else 4))
        self.paved(s0, s1, t0, t_end, asphalt=True)
        for t in rows:
            tc = t + depth / 2
            s = s0 + 6
            while s + stall_w <= s1 - 4:
                x, y = self.xy(s, tc)
                rl = self.cv.rect(x, y, self.ang(s, tc, False), depth / 2, 1.0)
                if rl is not None:
                    mm = rl[1] & (self.cv.label[rl[0]] == IMP)
                    self.cv.albedo[:, rl[0][0], rl[0][1]][:, mm] = np.array([185, 188, 192], np.float32)[:, None]
                    self.cv.material[rl[0]][mm] = M_PAINT
                if rng.random() < occupancy:
                    self.car(s + stall_w / 2, tc, False)
                s += stall_w


def _trees_in(b: _Blk, n, s0, s1, t0, t1, rmin=25, rmax=60, tmin=6, tmax=16, cluster=0.0):
    rng = b.rng
    for _ in range(n):
        s, t = _uni(rng, s0, s1), _uni(rng, t0, t1)
        b.tree(s, t, _uni(rng, rmin, rmax), _uni(rng, tmin, tmax), **({"shape": "cluster"} if rng.random() < cluster else {}))


def _bushes_in(b: _Blk, n, s0, s1, t0, t1, rmin=8, rmax=20):
    rng = b.rng
    for _ in range(n):
        b.bush(_uni(rng, s0, s1), _uni(rng, t0, t1), _uni(rng, rmin, rmax))


def _shrub_beds(cv: _Canvas, per_lawn: float = 0.0) -> None:
    """Shrub beds on the lawns: Poisson(``per_lawn`` x lawn px / 40,000) beds (per 32 x 32 m
    of lawn), each centred on a lawn pixel and made of 4-14 bushes (radius 8-20 px,
    0.6-2.5 m, lobed domes with leaf texture: ``objects._bush``) scattered 10-28 px around
    it, so they merge into one mass of low vegetation that looks like crowns. Painted
    only over low vegetation and where highest (never over a road, car, roof or crown).
    Drawn after everything else, from their own random stream (spawned from the seed
    sequence of the town's generator): the rest of the town is the same with or without
    them."""
    if per_lawn <= 0:
        return
    rng = np.random.default_rng(cv.rng.bit_generator.seed_seq.spawn(1)[0])
    lawn = (cv.label == LOW_VEG) & (cv.material == M_GRASS)
    ys, xs = np.nonzero(lawn)
    if not ys.size:
        return
    for _ in range(int(rng.poisson(per_lawn * ys.size / 40_000))):
        k = int(rng.integers(ys.size))
        spread, top = rng.uniform(10, 28), rng.uniform(0.6, 2.5)
        for _ in range(4 + min(int(rng.poisson(4)), 10)):
            _bush(cv, xs[k] + rng.normal(0, spread), ys[k] + rng.normal(0, spread), rng.uniform(8, 20),
                  height=float(np.clip(top + rng.normal(0, 0.3), 0.6, 2.5)), ground=LOW_VEG, rng=rng)


def _block_park(b: _Blk):
    """Park: lawns of two or three tones, a path or two, tree groups, bushes."""
    rng = b.rng
    S, T = b.S, b.T
    b.lawn(0, S, 0, T)
    if rng.random() < 0.6:  # a second lawn tone in part of it (a meadow / sports field)
        s0 = rng.uniform(0, 0.5) * S
        b.lawn(s0, s0 + rng.uniform(0.3, 0.5) * S, rng.uniform(0, 0.3) * T, rng.uniform(0.6, 1.0) * T)
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:
            s = rng.uniform(0.2, 0.8) * S
            wd = rng.uniform(10, 18)
            b.paved(s - wd, s + wd, 0, T)
        else:
            t = rng.uniform(0.2, 0.8) * T
            wd = rng.uniform(10, 18)
            b.paved(0, S, t - wd, t + wd)
    if rng.random() < 0.3:
        b.clutter(0.1 * S, 0.9 * S, 0.1 * T, 0.9 * T)
    for _ in range(max(1, rng.poisson(S * T / 60_000))):
        gs, gt, spread = rng.uniform(0, S), rng.uniform(0, T), rng.uniform(40, 110)
        for _ in range(int(rng.integers(2, 8))):
            b.tree(gs + rng.normal(0, spread), gt + rng.normal(0, spread), rng.uniform(28, 70), rng.uniform(8, 20))
    _bushes_in(b, rng.poisson(S * T / 25_000), 0, S, 0, T, 10, 25)


def _block_parking(b: _Blk):
    """Parking: stall rows (40-80 % occupied), trees on islands and edges; on half of
    the big ones a flat-roofed hall (6-10 m) on one side."""
    rng = b.rng
    S, T = b.S, b.T
    b.lawn(0, S, 0, T)
    s0 = 0.0
    if rng.random() < 0.5 and S > 300 and T > 300:
        split = S * rng.uniform(0.4, 0.6)
        eave = rng.uniform(6, 10)
        _house(b.cv, [b.wing(split / 2, T / 2, split / 2 - 10, T / 2 - 10, eave, "flat")])
        s0 = split + 5
    b.parking_rows(s0 + 5, S - 5, 5, T - 5, rng.uniform(0.4, 0.8), max_rows=int(rng.integers(2, 5)))
    _trees_in(b, rng.poisson(S * T / 40_000), s0, S, 0, T, 30, 55, 7, 14)
    for _ in range(rng.poisson(max(S, T) / 150)):
        side = rng.integers(4)
        s = [s0 + 8, S - 8, _uni(rng, s0, S), _uni(rng, s0, S)][side]
        t = [rng.uniform(0, T), rng.uniform(0, T), 8, T - 8][side]
        b.tree(s, t, rng.uniform(30, 55), rng.uniform(7, 14))


def _pitched(rng, p_flat=0.0, p_hipped=0.25) -> str:
    r = rng.random()
    return "flat" if r < p_flat else ("hipped" if r < p_flat + p_hipped else "gabled")


def _block_centre(b: _Blk):
    """Old-town perimeter block (like the Vaihingen area-1 crop): adjoining houses
    8-24 m wide (15 %: a big store 27-45 m) flush with the sidewalk around the block,
    10-20 m deep, eaves 11-18 m, flat roofs (30-80 %, 85 % of the big ones) or steep
    gabled / hipped; rear wings into the courtyard (35 %); 8 % of the frontage a gate.
    The courtyard is paved (asphalt or pavers) with sheds, parked cars, a lawn patch and
    a tree or two."""
    rng = b.rng
    S, T = b.S, b.T
    b.paved(0, S, 0, T, asphalt=rng.random() < 0.4)
    depth0 = rng.uniform(110, 200)
    depth0 = min(depth0, max(60.0, T / 2 - 20))
    eave0 = rng.uniform(11, 18)
    p_flat = rng.uniform(0.3, 0.8)
    pitch = rng.uniform(35, 50)
    sides = [k for k in range(4) if rng.random() < 0.92] or [int(rng.integers(4))]
    for k in sides:
        along_s = k < 2
        L = S if along_s else T
        pos = 0.0
        while pos < L - 40:
            big = rng.random() < 0.15
            front = rng.uniform(300, 500) if big else rng.uniform(90, 260)
            if L - pos - front < 70:
                front = L - pos
            front = min(front, L - pos)
            if rng.random() < 0.08 and front < 300:  # a gate / driveway into the courtyard
                pos += rng.uniform(35, 50)
                continue
            depth = min(depth0 * rng.uniform(0.85, 1.2) if not big else rng.uniform(160, 260), (T if along_s else S) / 2 - 10)
            depth = max(depth, 50.0)
            eave = eave0 + rng.uniform(-2.5, 2.5) + (1.5 if big else 0)
            roof = "flat" if rng.random() < (0.85 if big else p_flat) else _pitched(rng, 0.0, 0.2)
            inset = rng.uniform(0, 4) if b.street[k] else -1.0  # back to back with the next block: no gap
            mid = pos + front / 2
            if along_s:
                tc = inset + depth / 2 if k == 0 else T - inset - depth / 2
                wings = [b.wing(mid, tc, front / 2, depth / 2, eave, roof, ridge_s=True)]
            else:
                sc = inset + depth / 2 if k == 2 else S - inset - depth / 2
                wings = [b.wing(sc, mid, depth / 2, front / 2, eave, roof, ridge_s=False)]
            if rng.random() < 0.35 and front > 80:  # a rear wing into the courtyard
                wl, ww = rng.uniform(50, 120), rng.uniform(25, 45)
                off = _uni(rng, -front / 2 + ww, front / 2 - ww)
                e2 = eave * rng.uniform(0.45, 0.8)
                r2 = "flat" if rng.random() < 0.6 else "gabled"
                if along_s:
                    tb = depth + wl / 2 - 4 if k == 0 else T - depth - wl / 2 + 4
                    wings.append(b.wing(mid + off, tb, ww, wl / 2, e2, r2, ridge_s=False))
                else:
                    sb = depth + wl / 2 - 4 if k == 2 else S - depth - wl / 2 + 4
                    wings.append(b.wing(sb, mid + off, wl / 2, ww, e2, r2, ridge_s=True))
            _house(b.cv, wings, pitch=pitch)
            pos += front
    # courtyard ---------------------------------------------------------------------------
    m = depth0 * 1.15
    cs0, cs1, ct0, ct1 = m, S - m, m, T - m
    if cs1 - cs0 > 60 and ct1 - ct0 > 60:
        if rng.random() < 0.5:
            ls = _uni(rng, cs0, (cs0 + cs1) / 2)
            lt = _uni(rng, ct0, (ct0 + ct1) / 2)
            b.lawn(ls, min(cs1, ls + rng.uniform(60, 200)), lt, min(ct1, lt + rng.uniform(60, 160)))
        for _ in range(rng.poisson(1.2)):  # sheds and garages against the rear walls
            hs, ht = rng.uniform(20, 50), rng.uniform(18, 35)
            sc, tc = _uni(rng, cs0 - 10, cs1 + 10), _uni(rng, ct0 - 10, ct1 + 10)
            _house(b.cv, [b.wing(sc, tc, hs, ht, rng.uniform(2.5, 4.0), "flat" if rng.random() < 0.7 else "gabled", ridge_s=True)])
        for _ in range(rng.poisson((cs1 - cs0) * (ct1 - ct0) / 20_000)):
            b.car(_uni(rng, cs0, cs1), _uni(rng, ct0, ct1), rng.random() < 0.5)
        if rng.random() < 0.4 and ct1 - ct0 > 130:
            b.parking_rows(cs0, cs1, ct0, ct1, rng.uniform(0.4, 0.8), max_rows=1)
        _trees_in(b, rng.poisson(0.5 + (cs1 - cs0) * (ct1 - ct0) / 25_000), cs0, cs1, ct0, ct1, 25, 60, 6, 15)
        if rng.random() < 0.3:
            b.clutter(cs0, cs1, ct0, ct1)


def _block_dense(b: _Blk):
    """Perimeter block of flats: buildings 10-14 m deep, eaves 11-17 m, set back 2-6 m
    behind front gardens (lawn, hedge) on 3-4 sides; segments 18-45 m with gaps, some
    with rear wings; courtyard green (trees, bushes, a playground) or parking."""
    rng = b.rng
    S, T = b.S, b.T
    green = rng.random() < 0.4
    if green:
        b.lawn(0, S, 0, T)
    else:
        b.paved(0, S, 0, T)
    depth = rng.uniform(110, 155)
    setback = rng.uniform(22, 65)
    eave0 = rng.uniform(11, 17)
    p_flat = rng.uniform(0.3, 0.8)
    if not green and rng.random() < 0.7:  # front gardens
        b.lawn(0, S, 0, setback)
        b.lawn(0, S, T - setback, T)
    sides = [k for k in range(4) if rng.random() < 0.8] or [int(rng.integers(4))]
    for k in sides:
        along_s = k < 2
        L = S if along_s else T
        pos = setback if along_s else setback + depth
        end = L - (setback if along_s else setback + depth)
        while pos < end - 80:
            seg = min(end - pos, rng.uniform(200, 500))
            if seg < 80:
                break
            mid = pos + seg / 2
            eave = eave0 + rng.uniform(-1, 1)
            roof = "flat" if rng.random() < p_flat else _pitched(rng, 0, 0.3)
            if along_s:
                tc = setback + depth / 2 if k == 0 else T - setback - depth / 2
                wings = [b.wing(mid, tc, seg / 2, depth / 2, eave, roof, True)]
            else:
                sc = setback + depth / 2 if k == 2 else S - setback - depth / 2
                wings = [b.wing(sc, mid, depth / 2, seg / 2, eave, roof, False)]
            if rng.random() < 0.25:
                wl, ww = rng.uniform(60, 140), rng.uniform(45, 65)
                off = _uni(rng, -seg / 2 + ww, seg / 2 - ww) if seg > 2 * ww + 2 else 0.0
                if along_s:
                    tb = setback + depth + wl / 2 - 4 if k == 0 else T - setback - depth - wl / 2 + 4
                    wings.append(b.wing(mid + off, tb, ww, wl / 2, eave - rng.uniform(0, 3), roof, False))
                else:
                    sb = setback + depth + wl / 2 - 4 if k == 2 else S - setback - depth - wl / 2 + 4
                    wings.append(b.wing(sb, mid + off, wl / 2, ww, eave - rng.uniform(0, 3), roof, True))
            _house(b.cv, wings)
            pos += seg + (rng.uniform(30, 90) if rng.random() < 0.35 else 0)
    if rng.random() < 0.5 and setback > 30:  # hedges along the front gardens
        b.hedge(0, S, setback * 0.1, setback * 0.1 + rng.uniform(7, 12))
    inner = setback + depth + 10
    cs0, cs1, ct0, ct1 = inner, S - inner, inner, T - inner
    if cs1 - cs0 > 60 and ct1 - ct0 > 60:
        if not green and rng.random() < 0.6:
            b.parking_rows(cs0, cs1, ct0, ct1, rng.uniform(0.35, 0.75), max_rows=int(rng.integers(1, 4)))
        _trees_in(b, rng.poisson((cs1 - cs0) * (ct1 - ct0) / 15_000), cs0, cs1, ct0, ct1, 30, 60, 8, 16, cluster=0.2)
        _bushes_in(b, rng.poisson(2), cs0, cs1, ct0, ct1)
        if rng.random() < 0.3:
            b.clutter(cs0, cs1, ct0, ct1)
    _trees_in(b, rng.poisson(S / 300), 0, S, 0, setback, 25, 45, 6, 12)


def _block_flats(b: _Blk):
    """Blocks of flats: 1-3 slabs 10-14 m deep, 30-70 m long (split in 2-3 stepped
    segments on 40 %, an end wing on 20 %), eaves 11-20 m, flat (70 %) or low gabled
    roofs, in lawns with paths to the doors, a parking row along a street (50 %),
    trees, bushes and now and then a playground."""
    rng = b.rng
    S, T = b.S, b.T
    b.lawn(0, S, 0, T)
    margin = rng.uniform(30, 70)
    if rng.random() < 0.7 and T > 350:
        b.parking_rows(margin, S - margin, 4, 4 + rng.uniform(120, 140), rng.uniform(0.4, 0.85), max_rows=2)
        t_start = 150.0
    else:
        t_start = margin
    depth = rng.uniform(110, 155)
    gap = rng.uniform(150, 280)
    eave = rng.uniform(11, 20)
    roof = "flat" if rng.random() < 0.7 else "gabled"
    t = t_start
    while t + depth < T - margin:
        length = rng.uniform(0.55, 0.95) * (S - 2 * margin)
        s0 = _uni(rng, margin, S - margin - length)
        tc = t + depth / 2
        wings = []
        if rng.random() < 0.4:  # stepped segments
            n = int(rng.integers(2, 4))
            seg = length / n
            for q in range(n):
                off = rng.uniform(-20, 20)
                wings.append(b.wing(s0 + seg * (q + 0.5), tc + off, seg / 2 + 2, depth / 2, eave + rng.uniform(-0.5, 0.5), roof, True))
        else:
            wings.append(b.wing(s0 + length / 2, tc, length / 2, depth / 2, eave, roof, True))
        if rng.random() < 0.2:  # an end wing
            wl = rng.uniform(80, 160)
            end = s0 + depth / 2 if rng.random() < 0.5 else s0 + length - depth / 2
            wings.append(b.wing(end, tc + depth / 2 + wl / 2 - 4, depth / 2, wl / 2, eave, roof, False))
        _house(b.cv, wings)
        for q in range(int(rng.integers(1, 4))):  # paths to the doors
            sp = s0 + length * (q + 0.5) / 3
            b.paved(sp - 9, sp + 9, t - rng.uniform(30, 80), t + 2)
        t += depth + gap
    _trees_in(b, rng.poisson(S * T / 20_000), 0, S, 0, T, 30, 65, 8, 18, cluster=0.2)
    _bushes_in(b, rng.poisson(S * T / 30_000), 0, S, 0, T, 10, 22)
    if rng.random() < 0.25:
        b.clutter(0, S, 0, T)


def _detached(b: _Blk, s0, s1, f0, f1, front: int):
    """One residential lot [s0, s1] x depth [f0, f1] from the street (``front`` = +1:
    the street is at t = 0, -1: at t = T)."""
    rng = b.rng
    T = b.T

    def tt(f):
        return f if front > 0 else T - f

    def rect(sa, sb, fa, fb):
        return sa, sb, min(tt(fa), tt(fb)), max(tt(fa), tt(fb))

    lw, ld = s1 - s0, f1 - f0
    b.lawn(*rect(s0, s1, f0, f1))
    hs = float(np.clip(lw * rng.uniform(0.42, 0.62), 60, 190)) / 2  # half frontage
    hd = float(np.clip(rng.uniform(85, 130), 60, ld * 0.5)) / 2  # half depth
    setback = rng.uniform(25, 70)
    garage = rng.random() < 0.5
    room = lw - 2 * hs - (60 if garage else 20)
    sc = s0 + 10 + hs + rng.uniform(0, max(room, 0))
    gside = 1 if sc - s0 < s1 - sc else -1
    fc = f0 + setback + hd
    eave = rng.uniform(5.5, 8.0)
    r = rng.random()
    roof = "gabled" if r < 0.55 else ("hipped" if r < 0.82 else "flat")
    ridge_s = rng.random() < 0.7
    wings = [b.wing(sc, tt(fc), hs, hd, eave, roof, ridge_s)]
    shape = rng.choice(5, p=[0.2, 0.3, 0.12, 0.23, 0.15])
    if shape in (1, 2):  # L: a wing back from one end / T: from the middle
        ws = hs * rng.uniform(0.35, 0.55)
        wl = rng.uniform(40, 90)
        sw = sc + (rng.choice([-1, 1]) * (hs - ws) if shape == 1 else rng.uniform(-0.2, 0.2) * hs)
        wings.append(b.wing(sw, tt(fc + hd + wl / 2 - 6), ws, wl / 2 + 6, eave - rng.uniform(0, 1.2), "flat" if roof == "flat" else "gabled", False))
    elif shape == 3:  # a low annex: conservatory, extension
        ah, ad = rng.uniform(20, 45), rng.uniform(18, 35)
        sa = sc + rng.uniform(-hs + ah, hs - ah) if hs > ah else sc
        back = rng.random() < 0.7
        wings.append(b.wing(sa, tt(fc + (hd + ad - 4 if back else -hd - ad + 4)), ah, ad, rng.uniform(2.6, 3.4), "flat", True))
    elif shape == 4:  # offset volumes: a second box shifted along and back
        hs2, hd2 = hs * rng.uniform(0.45, 0.75), hd * rng.uniform(0.7, 1.0)
        s2 = sc + rng.choice([-1, 1]) * (hs - hs2 * rng.uniform(0.1, 0.7))
        f2 = fc + rng.choice([-1, 1]) * hd * rng.uniform(0.3, 0.7)
        wings.append(b.wing(s2, tt(f2), hs2, hd2, eave + rng.uniform(-1.5, 0.5), roof if rng.random() < 0.6 else "flat", ridge_s))
    if rng.random() < 0.45:  # a porch, bay or entrance at the front
        ph, pd = rng.uniform(8, 18), rng.uniform(6, 12)
        wings.append(b.wing(sc + rng.uniform(-0.7, 0.7) * (hs - ph), tt(fc - hd - pd + 3), ph, pd, rng.uniform(2.6, 3.2), "flat", True))
    # driveway / garage on the free side (attached to the house on 60 %), path, patio
    if garage:
        gw, gl = rng.uniform(16, 20), rng.uniform(28, 34)
        gs = sc + gside * (hs + gw + (0 if rng.random() < 0.6 else rng.uniform(6, 20)))
        if s0 + gw < gs < s1 - gw:
            b.paved(*rect(gs - gw - 4, gs + gw + 4, f0, f0 + setback + 6), asphalt=rng.random() < 0.3)
            if rng.random() < 0.65:
                _house(b.cv, [b.wing(gs, tt(f0 + setback + gl), gw, gl, rng.uniform(2.6, 3.2), "flat", False)])
            if rng.random() < 0.6:
                b.car(gs, tt(f0 + setback / 2 + 2), False)
    if rng.random() < 0.2:  # a paved front yard
        b.paved(*rect(s0 + rng.uniform(0, 0.3) * lw, s1 - rng.uniform(0, 0.3) * lw, f0, f0 + setback * rng.uniform(0.5, 0.9)))
    elif rng.random() < 0.6:
        ds = sc + rng.uniform(-hs * 0.6, hs * 0.6)
        b.paved(*rect(ds - 6, ds + 6, f0, f0 + setback + 2))
    if rng.random() < 0.75:
        pw = hs * rng.uniform(0.5, 1.0)
        pd = rng.uniform(25, 50)
        b.paved(*rect(sc - pw, sc + pw, fc + hd - 2, fc + hd + pd))
    if rng.random() < 0.5:  # flower beds along the front of the house or a lot side
        if rng.random() < 0.5:
            b.flower_bed(*rect(sc - hs, sc + hs * rng.uniform(-0.2, 1.0), fc - hd - rng.uniform(10, 16), fc - hd - 1))
        else:
            e = s0 + 2 if rng.random() < 0.5 else s1 - 14
            b.flower_bed(*rect(e, e + 12, f0 + setback + 2 * hd + 20, f1 - 20))
    _house(b.cv, wings)
    if rng.random() < 0.25:  # a garden shed at the back
        b_s = s0 + 20 if rng.random() < 0.5 else s1 - 20
        _house(b.cv, [b.wing(b_s, tt(f1 - 22), rng.uniform(10, 16), rng.uniform(10, 16), rng.uniform(2.0, 2.5), "flat" if rng.random() < 0.5 else "gabled")])
    if rng.random() < 0.45:  # hedges on the lot boundaries / the front
        k = rng.integers(3)
        hw = rng.uniform(4, 7)
        if k == 0:
            b.hedge(*rect(s0, s0 + 2 * hw, f0, f1))
        elif k == 1:
            b.hedge(*rect(s1 - 2 * hw, s1, f0, f1))
        else:
            b.hedge(*rect(s0, s1, f0, f0 + 2 * hw))
    for _ in range(rng.poisson(1.4)):
        edge = rng.random() < 0.5
        s = (s0 + rng.uniform(8, 20)) if edge and rng.random() < 0.5 else ((s1 - rng.uniform(8, 20)) if edge else _uni(rng, s0, s1))
        b.bush(s, tt(_uni(rng, f0 + 10, f1 - 10)), rng.uniform(8, 22))
    for _ in range(rng.poisson(2.0)):  # garden trees: along the rear and side boundaries (canopy bands), free behind the house, in front
        r, rad = rng.random(), rng.uniform(22, 68)
        if r < 0.45:
            s, f = _uni(rng, s0, s1), f1 - rng.uniform(0.2, 0.7) * rad
        elif r < 0.65:
            s, f = (s0 if rng.random() < 0.5 else s1) + rng.uniform(-0.3, 0.3) * rad, _uni(rng, fc, f1)
        elif r < 0.88:
            s, f = _uni(rng, s0, s1), _uni(rng, fc + hd, f1)
        else:
            s, f = _uni(rng, s0, s1), _uni(rng, f0, f0 + setback)
        b.tree(s, tt(f), rad, rng.uniform(6, 16))
    if rng.random() < 0.2:
        b.clutter(*rect(s0 + 10, s1 - 10, fc + hd + 20, f1 - 10))


def _block_residential(b: _Blk):
    """Detached houses: lots 15-25 m wide in one row (blocks under 29 m deep) or two
    back to back, facing the streets on the long sides."""
    rng = b.rng
    S, T = b.S, b.T
    rows = 2 if T > 320 else 1
    fw = rng.uniform(165, 260)
    n = max(1, int(round(S / fw)))
    lw = S / n
    for r in range(rows):
        front = 1 if r == 0 else -1
        depth = T / rows
        for k in range(n):
            _detached(b, k * lw, (k + 1) * lw, 0, depth, front)


def _block_terrace(b: _Blk):
    """Terraced houses: rows of 3-8 adjoining houses 5.6-8.5 m wide and 8-11 m deep
    along the long sides, staggered by up to 1 m on half of the rows, ridges along the
    street (75 %), a few tones per row, rear extensions (25 %); gardens behind with
    hedges, patios, sheds and trees."""
    rng = b.rng
    S, T = b.S, b.T
    rows = 2 if T > 300 else 1
    b.lawn(0, S, 0, T)
    for r in range(rows):
        front = 1 if r == 0 else -1

        def tt(f):
            return f if front > 0 else T - f

        depth = rng.uniform(90, 120)
        setback = rng.uniform(15, 55)
        eave = rng.uniform(6.0, 8.5)
        tones = [_jitter(rng, _pick(rng, ROOF_TONES[:4]), 0.1) for _ in range(int(rng.integers(1, 4)))]
        stagger = rng.uniform(4, 12) if rng.random() < 0.5 else 0.0
        ridge_s = rng.random() < 0.75
        roof = "gabled" if rng.random() < 0.85 else "flat"
        pitch = rng.uniform(30, 45)
        lot_end = T / rows
        s = rng.uniform(10, 30)
        b.paved(0, S, min(tt(setback * 0.3), tt(setback * 0.3 + 12)), max(tt(setback * 0.3), tt(setback * 0.3 + 12)))  # front path
        while s < S - 150:
            nh = int(rng.integers(3, 9))
            fw = rng.uniform(62, 95)
            nh = min(nh, int((S - 10 - s) // fw))
            if nh < 2:
                break
            tone_i = 0
            for q in range(nh):
                sc = s + fw * (q + 0.5)
                fc = setback + depth / 2 + (rng.uniform(-stagger, stagger) if stagger else 0)
                if rng.random() < 0.3:
                    tone_i = int(rng.integers(len(tones)))
                wings = [b.wing(sc, tt(fc), fw / 2, depth / 2, eave + rng.uniform(-0.2, 0.2), roof, ridge_s)]
                if rng.random() < 0.25:
                    el = rng.uniform(25, 50)
                    wings.append(b.wing(sc + rng.uniform(-fw / 6, fw / 6), tt(fc + depth / 2 + el / 2 - 3), fw / 3, el / 2 + 3, rng.uniform(2.6, 3.4), "flat", True))
                g0, g1 = fc + depth / 2, lot_end
                b.lawn(s + fw * q, s + fw * (q + 1), min(tt(g0), tt(g1)), max(tt(g0), tt(g1)))
                if rng.random() < 0.6:
                    pd = rng.uniform(20, 40)
                    b.paved(s + fw * q + 4, s + fw * (q + 1) - 4, min(tt(g0), tt(g0 + pd)), max(tt(g0), tt(g0 + pd)))
                if rng.random() < 0.4:
                    e = s + fw * (q + 1)
                    b.hedge(e - 4, e + 4, min(tt(g0 + 10), tt(g1 - 5)), max(tt(g0 + 10), tt(g1 - 5)))
                _house(b.cv, wings, colour=tones[tone_i], pitch=pitch)
                if rng.random() < 0.2:
                    _house(b.cv, [b.wing(s + fw * (q + 0.5), tt(g1 - 20), rng.uniform(10, 15), rng.uniform(10, 15), rng.uniform(2.0, 2.5), "flat")])
                if rng.random() < 0.6:
                    b.tree(s + fw * (q + rng.uniform(0.2, 0.8)), tt(_uni(rng, g0 + 20, g1)), rng.uniform(20, 55), rng.uniform(4, 11))
                if rng.random() < 0.5:
                    b.bush(s + fw * (q + rng.uniform(0.1, 0.9)), tt(_uni(rng, g0 + 10, g1 - 5)), rng.uniform(8, 16))
            s += nh * fw + rng.uniform(20, 45)


_BLOCKS = {
    "centre": _block_centre,
    "dense": _block_dense,
    "flats": _block_flats,
    "residential": _block_residential,
    "terrace": _block_terrace,
    "parking": _block_parking,
    "park": _block_park,
}


# ----------------------------------------------------------------------------- streets


def _street_cars(cv: _Canvas, g: _Grid, ru, rv, keep_u, keep_v, lo_hi_u, lo_hi_v, density):
    """Cars parked in the parking lanes (gaps 0.5-6 m, sometimes a long one) or, where
    there is none, on 40-80 % (by density) of the kerbs of the carriageway; a few in the
    lanes; none within 3 m of a junction; oriented along the road (+-2 deg)."""
    rng = cv.rng
    for lines, spec, keep, (lo, hi), along_u in ((g.cu, ru, keep_u, lo_hi_v, False), (g.cv, rv, keep_v, lo_hi_u, True)):
        other = g.cv if not along_u else g.cu
        ospec = rv if not along_u else ru
        oreach = ospec["half"] + ospec["verge"] + ospec["walk"] + 30
        for i, c in enumerate(lines):
            hw = spec["half"][i]
            for si, side in enumerate((-1, 1)):
                lane = bool(spec["park"][i, si])
                x0, y0 = g.xy(*((lo + hi) / 2, c) if along_u else (c, (lo + hi) / 2))
                d = density(x0, y0)
                kerb = not lane and rng.random() < 0.4 + 0.4 * d and hw > 30
                full = rng.uniform(0.55, 0.95) if lane else rng.uniform(0.3, 0.8)
                t = lo + rng.uniform(0, 60)
                while t < hi:
                    seg = int(np.clip(np.searchsorted(other, t) - 1, 0, len(other) - 2))
                    k = int(np.argmin(np.abs(other - t)))
                    if not keep[i, seg] or abs(t - other[k]) < oreach[k]:
                        t += 40
                        continue
                    if lane:
                        off = side * (hw - spec["pw"][i] / 2 - rng.uniform(-0.5, 1.5))
                    elif kerb:
                        off = side * (hw - 12 - rng.uniform(0, 2))
                    elif rng.random() < 0.06:  # a car in the lane
                        off = side * hw * rng.uniform(0.25, 0.5) + spec["centre"][i]
                    else:
                        t += rng.uniform(150, 400)
                        continue
                    if (lane or kerb) and rng.random() > full:
                        t += rng.uniform(55, 160)
                        continue
                    uu, vv = (t, c + off) if along_u else (c + off, t)
                    x, y = g.xy(uu, vv)
                    heading = (g.ang_u(uu) if along_u else g.ang_v(vv)) + rng.normal(0, 0.035) + (math.pi if side > 0 else 0)
                    _car(cv, x, y, heading)
                    t += 52 + (rng.uniform(6, 60) if rng.random() < 0.85 else rng.uniform(100, 300))


def _street_trees(cv: _Canvas, g: _Grid, ru, rv, keep_u, keep_v, lo_hi_u, lo_hi_v, density):
    """Rows of street trees (spacing 1.7-2.6 crown radii, 4.6-13 m) on 25-60 % of the kerbs (fewer where
    dense): in the verge where there is one, else in pits at the kerb; crowns over the
    road and the parked cars."""
    rng = cv.rng
    for lines, spec, keep, (lo, hi), along_u in ((g.cu, ru, keep_u, lo_hi_v, False), (g.cv, rv, keep_v, lo_hi_u, True)):
        other = g.cv if not along_u else g.cu
        for i, c in enumerate(lines):
            x0, y0 = g.xy(*((lo + hi) / 2, c) if along_u else (c, (lo + hi) / 2))
            p_row = 0.6 - 0.35 * density(x0, y0)
            for side in (-1, 1):
                if rng.random() >= p_row:
                    continue
                radius, top = rng.uniform(30, 55), rng.uniform(8, 17)
                spacing = radius * rng.uniform(1.7, 2.6)
                tone = _jitter(rng, _tint(TREE_LIT, _pick(rng, (((1, 1, 1), 0.6), ((1.1, 1.05, 1.06), 0.25), ((0.88, 0.95, 0.97), 0.15)))), 0.08)
                verge = spec["verge"][i]
                base = spec["half"][i] + (verge / 2 if verge > 0 else rng.uniform(-4, 10))
                t = lo + rng.uniform(0, spacing)
                while t < hi:
                    seg = int(np.clip(np.searchsorted(other, t) - 1, 0, len(other) - 2))
                    if keep[i, seg]:
                        off = side * base
                        uu, vv = (t, c + off) if along_u else (c + off, t)
                        _tree(cv, *g.xy(uu, vv), radius * rng.uniform(0.8, 1.2), top * rng.uniform(0.85, 1.15),
                              shape="round" if rng.random() < 0.7 else "irregular", tone=tone * np.float32(rng.uniform(0.95, 1.05)))
                    t += spacing * rng.uniform(0.9, 1.1)


