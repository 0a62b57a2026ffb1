"""Single objects painted on the canvas: buildings, cars, tree crowns, clutter.

Each painter draws its own shape, height, colour, material and shading from the
canvas's generator and paints it (``_Canvas.paint``); ``town`` decides where. Footprints
are oriented rectangles (cars: rounded corners; L-shaped houses are two rectangles,
see ``town._block``), crowns lobed discs or stars; roofs are gabled, hipped or flat, with
chimneys / dormers, solar panels and flat-roof objects as smaller rectangles on top.
Each function's docstring gives its sizes, heights and colours.
"""

from __future__ import annotations

import math

import numpy as np

from .canvas import PIXEL_SIZE, _Canvas
from .labels import BUILDING, CAR, CLUTTER, IMP, TREE
from .materials import (
    CAR_COLOURS,
    CLUTTER_COLOURS,
    M_CAR,
    M_CLUTTER,
    M_GLASS,
    M_ROOF_FLAT,
    M_ROOF_TILE,
    M_SOIL,
    M_TREE,
    ROOF_TONES,
    TREE_LIT,
    _jitter,
    _pick,
)


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
