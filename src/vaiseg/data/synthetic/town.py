"""The town plan of a synthetic scene: street grid, roads, blocks and what fills them.

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

Roads are straight lines of the grid (``_Grid``: u/v coordinates rotated by theta);
``_road_layer`` paints them vectorised in row bands, everything else is painted object by
object (``objects``) in the order of ``_draw_town``: roads, blocks, street cars, street
trees (crowns on top of everything lower).
"""

from __future__ import annotations

import math

import numpy as np

from .canvas import _Canvas
from .labels import IMP, LOW_VEG
from .materials import (
    ASPHALT,
    DRY_GRASS,
    GRASS,
    M_ASPHALT,
    M_GRASS,
    M_PAINT,
    M_PAVEMENT,
    M_TREE,
    PAVEMENT,
    TREE_LIT,
    _jitter,
    _pick,
)
from .objects import _building, _car, _clutter, _tree


def _draw_town(cv: _Canvas) -> None:
    """Lay out a town on the whole canvas: street grid and roads, blocks with their
    content, then cars and trees along the streets (see the module docstring)."""
    rng, h, w = cv.rng, cv.h, cv.w
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
