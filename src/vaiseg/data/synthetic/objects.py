"""Single objects painted on the canvas: buildings, cars, tree crowns, bushes, clutter.

Each painter draws its own shape, height, colour, material and shading from the
canvas's generator and paints it (``_Canvas.paint``); ``town`` decides where.

- **Buildings** (``_house``): a footprint is a union of oriented rectangles (``Wing``:
  main house, wings, annexes), so L, T, U shapes, courtyards and stepped outlines come
  from a few wings; each wing has its own eave height and roof (gabled with the ridge
  along its long axis, hipped, or flat), and where wings overlap the higher surface
  wins, which forms the valleys of cross-gabled roofs. Pitched roofs: pitch 25-45 deg,
  Lambert-shaded planes, tile rows (period 0.3-0.45 m), ageing (a coarse tone field),
  patches of replaced tiles, moss on 35 % (more on the north planes), chimneys, roof
  windows, dormers, solar panels. Flat roofs: gravel / bitumen / membrane tones with
  stains and seams, a parapet 2-5 px wide, and furniture: vents, AC units, skylights,
  stair / lift housings (2.5-3.2 m), solar rows. Furniture stands 0.05-3.2 m above the
  roof and is labelled building (ISPRS). Separately painted buildings that touch (a
  terrace, a perimeter block) paint only where they are at least as high as what is
  there, so the taller one wins at party walls and corners.
- **Cars** (``_car``): rounded, slightly tapered rectangles: cars 4.05-4.86 m x
  1.71-1.89 m, vans (12 %) 4.8-5.8 m x 1.9-2.07 m (ISPRS counts vans as cars).
- **Crowns** (``_tree``): round, irregular (more lobes), elliptic, clustered (2-4
  merged sub-crowns) or conifer (star); radius as given, species tones
  (``materials.TREE_SPECIES``); painted only where they are the highest surface.
- **Bushes** (``_bush``): small lobed domes 0.6-2.2 m high, low vegetation (ISPRS)
  that looks like a small crown. **Clutter** (``_clutter``): containers, heaps, bare
  soil, play equipment: 1.5-6 m objects, never specks.

Each function's docstring gives its sizes, heights and colours.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .canvas import PIXEL_SIZE, _Canvas
from .labels import BUILDING, CAR, CLUTTER, IMP, LOW_VEG, TREE
from .materials import (
    BRICK,
    BUSH_FACTORS,
    CAR_COLOURS,
    CLUTTER_COLOURS,
    M_CAR,
    M_CLUTTER,
    M_GLASS,
    M_ROOF_FLAT,
    M_ROOF_TILE,
    M_SOIL,
    M_TREE,
    MOSS,
    ROOF_METAL,
    ROOF_TONES,
    SOIL,
    SOLAR,
    TREE_LIT,
    TREE_SPECIES,
    _jitter,
    _pick,
    _tint,
)
from .noise import _upsample


#: highest ridge above the eaves (m): deep wings get a lower pitch
MAX_RISE = 6.5


class Wing(NamedTuple):
    """One rectangle of a building footprint: centre (cx, cy) px, long-axis angle
    ``ang`` (rad, image axes), half length ``hl`` along it and half width ``hw`` across
    (px), eave height (m) and roof: 'gabled' (ridge along the long axis), 'hipped' or
    'flat'. ``frame``: optional ``frame(cv)`` -> (slices, a, b) giving the local
    coordinates (along, across) of the pixels of a box around the wing, for wings that
    follow a curved street grid (``town``); a straight frame when None."""

    cx: float
    cy: float
    ang: float
    hl: float
    hw: float
    eave: float
    roof: str
    frame: object = None


def _uni(rng: np.random.Generator, lo, hi) -> float:
    """A uniform draw between ``lo`` and ``hi`` in either order (``lo`` when equal);
    for bounds that come from the layout and may cross."""
    return float(lo + (hi - lo) * rng.random())


def _field(rng: np.random.Generator, shape, scale: float) -> np.ndarray:
    """A smooth random field (float32, ~unit std) of ``shape`` with correlation length
    ~``scale`` px (coarse white noise, bilinearly upsampled)."""
    h, w = shape
    coarse = rng.standard_normal((int(h / scale) + 3, int(w / scale) + 3)).astype(np.float32)
    return _upsample(coarse, h, w, scale) * np.float32(1.6)


def _sub(outer, inner):
    """Slices of box ``inner`` relative to the origin of box ``outer`` (inner within outer)."""
    return (
        slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start),
        slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start),
    )


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


def _roof_tone(rng: np.random.Generator, flat: bool) -> np.ndarray:
    return _jitter(rng, _pick(rng, ROOF_TONES[3:] if flat else ROOF_TONES), 0.12)


# ----------------------------------------------------------------------------- buildings


def _building(cv: _Canvas, cx, cy, ang, half_len, half_wid, *, flat: bool, eave: float, colour=None) -> np.ndarray:
    """A rectangular building (one wing): flat roof, or gabled / hipped (30 % of
    elongated ones) with the ridge along ``ang``. Returns the roof colour used."""
    rng = cv.rng
    roof = "flat" if flat else ("hipped" if rng.random() < 0.3 and half_len > half_wid * 1.2 else "gabled")
    return _house(cv, [Wing(cx, cy, ang, half_len, half_wid, eave, roof)], colour=colour)


def _house(cv: _Canvas, wings, *, colour=None, flat_colour=None, pitch=None, furniture: bool = True) -> np.ndarray:
    """A building whose footprint is the union of ``wings`` (see ``Wing``).

    Heights: eave + (distance to the eave) x tan(pitch) on pitched wings (the pitch
    lowered where the ridge would rise more than ``MAX_RISE``), the eave on flat ones
    (+0.3-0.5 m parapet); where wings overlap the highest surface wins, and the
    building paints only where it is at least as high as what is there. ``colour`` /
    ``flat_colour``: lit colours (3,) of the pitched / flat wings, drawn from
    ``ROOF_TONES`` when None; ``pitch`` in degrees (25-45 when None). Returns the colour
    of the pitched wings."""
    rng = cv.rng
    if colour is None:
        colour = _roof_tone(rng, all(w.roof == "flat" for w in wings))
    if flat_colour is None:
        flat_colour = colour if all(w.roof == "flat" for w in wings) else _roof_tone(rng, True)
    t = math.tan(math.radians(pitch if pitch is not None else rng.uniform(25, 45)))
    frames = []
    for w in wings:
        frames.append(w.frame(cv) if w.frame is not None else cv.frame(w.cx, w.cy, w.ang, w.hl, w.hw))
    boxes = [f[0] for f in frames if f is not None]
    if not boxes:
        return colour
    box = (slice(min(b[0].start for b in boxes), max(b[0].stop for b in boxes)), slice(min(b[1].start for b in boxes), max(b[1].stop for b in boxes)))
    shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    H = np.full(shape, -np.inf, np.float32)
    NX, NY = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    NZ = np.ones(shape, np.float32)
    D = np.zeros(shape, np.float32)  # distance to the eave (tile rows)
    FLAT = np.zeros(shape, bool)
    RIDGE = np.zeros(shape, bool)
    for w, f in zip(wings, frames):
        if f is None:
            continue
        sl, a, b = f
        m = (np.abs(a) <= w.hl) & (np.abs(b) <= w.hw)
        sub = _sub(box, sl)
        across = w.hw - np.abs(b)
        ax, ay = -math.sin(w.ang), math.cos(w.ang)  # across axis
        lx, ly = math.cos(w.ang), math.sin(w.ang)  # long axis
        if w.roof == "flat":
            hk = np.full(a.shape, w.eave, np.float32)
            dist = np.zeros_like(a)
            nx = ny = np.zeros_like(a)
            nz = np.ones_like(a)
        else:
            if w.roof == "hipped":
                along = w.hl - np.abs(a)
                end = along < across
                dist = np.where(end, along, across)
            else:
                end = np.zeros(a.shape, bool)
                dist = across
            tw = min(t, MAX_RISE / (PIXEL_SIZE * max(w.hw, 1.0)))  # deep wings: a lower pitch
            sw, cw = tw / math.hypot(1, tw), 1 / math.hypot(1, tw)
            hk = (w.eave + dist * np.float32(PIXEL_SIZE * tw)).astype(np.float32)
            sb, sa = np.sign(b), np.sign(a)
            nx = (np.where(end, sa * lx, sb * ax) * sw).astype(np.float32)
            ny = (np.where(end, sa * ly, sb * ay) * sw).astype(np.float32)
            nz = np.full(a.shape, cw, np.float32)
        upd = m & (hk > H[sub])
        for arr, val in ((H, hk), (NX, nx), (NY, ny), (NZ, nz), (D, dist)):
            arr[sub][upd] = val[upd]
        FLAT[sub][upd] = w.roof == "flat"
        if w.roof != "flat":
            RIDGE[sub][upd] = (dist >= w.hw - 1.8)[upd]
    mask = np.isfinite(H)
    if not mask.any():
        return colour
    Hs = np.where(mask, H, 0).astype(np.float32)
    shade = cv.lambert(NX, NY, NZ)
    pitched = mask & ~FLAT
    flat = mask & FLAT
    # appearance ---------------------------------------------------------------------
    age = 1.0 + np.float32(rng.uniform(0.03, 0.08)) * _field(rng, shape, rng.uniform(25, 60))
    col = np.empty((3,) + shape, np.float32)
    col[:] = np.asarray(colour, np.float32)[:, None, None]
    if flat.any():
        col[:, flat] = np.asarray(flat_colour, np.float32)[:, None]
    if pitched.any():
        period = rng.uniform(3.3, 5.0)
        frac = (D / np.float32(period)) % 1.0
        rows = 1.0 + np.float32(rng.uniform(0.03, 0.06)) * (frac - 0.5) * 2  # a dark lower edge per tile row
        ridge = np.where(pitched & RIDGE, np.float32(rng.uniform(0.85, 1.1)), 1)
        mod = np.where(pitched, rows * ridge, 1).astype(np.float32)
        if rng.random() < 0.35:  # moss / lichen, mostly on the planes facing north (up)
            fm = _field(rng, shape, rng.uniform(6, 14))
            wgt = np.clip((fm - rng.uniform(0.3, 1.0)) * 0.5, 0, rng.uniform(0.3, 0.7)) * np.where(NY < 0, 1.0, 0.4)
            wgt = np.where(pitched, wgt, 0).astype(np.float32)
            col = col * (1 - wgt[None]) + np.asarray(MOSS, np.float32)[:, None, None] * wgt[None]
        col *= mod[None]
    if flat.any():  # stains and (bitumen) seams
        fs = _field(rng, shape, rng.uniform(8, 25))
        stain = 1.0 - np.float32(rng.uniform(0.05, 0.14)) * np.clip(fs - 0.6, 0, 1.5)
        if rng.random() < 0.4:
            w0 = wings[int(np.argmax([w.hl * w.hw for w in wings]))]
            a0, _ = cv.coords(box, w0.cx, w0.cy, w0.ang)
            stain = stain * np.where((a0 % rng.uniform(10, 13)) < 1.0, np.float32(0.9), 1)
        col *= np.where(flat, stain, 1).astype(np.float32)[None]
    col *= age[None]
    cv.paint(box, pitched, BUILDING, Hs, col, M_ROOF_TILE, shade, top=True)
    cv.paint(box, flat, BUILDING, Hs, col, M_ROOF_FLAT, shade, top=True)
    painted = (cv.label[box] == BUILDING) & mask & (np.abs(cv.height[box] - Hs) < 1e-4)
    if flat.any():  # parapet along the outline of the flat parts
        rim = int(rng.integers(2, 6))
        inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=rim, border_value=1)
        edge = flat & ~inner & painted
        cv.paint(box, edge, BUILDING, Hs + np.float32(rng.uniform(0.3, 0.5)), col * np.float32(rng.uniform(1.05, 1.2)), M_ROOF_FLAT)
    if pitched.any() and rng.random() < 0.3:  # patches of replaced tiles
        for _ in range(int(rng.integers(1, 4))):
            w = wings[int(rng.integers(len(wings)))]
            if w.roof == "flat":
                continue
            _roof_patch(cv, box, painted & pitched, w, rng.uniform(0.8, 1.25))
    if furniture:
        for w in wings:
            if w.roof == "flat":
                _flat_furniture(cv, box, painted & flat, w, flat_colour)
            else:
                _pitched_furniture(cv, box, painted & pitched, w, colour, t)
    return colour


def _on_wing(w: Wing, ca, cb):
    """Image position of the point (ca along, cb across) of wing ``w``'s frame."""
    c, s = math.cos(w.ang), math.sin(w.ang)
    return w.cx + ca * c - cb * s, w.cy + ca * s + cb * c


def _roof_patch(cv: _Canvas, box, roofmask, w: Wing, factor: float):
    rng = cv.rng
    ca, cb = rng.uniform(-0.8, 0.8) * w.hl, rng.uniform(-0.8, 0.8) * w.hw
    r = cv.rect(*_on_wing(w, ca, cb), w.ang, rng.uniform(6, 18), rng.uniform(5, 12))
    if r is None:
        return
    sl, m, _, _ = r
    m &= _restrict(box, sl, roofmask)
    alb = cv.albedo[:, sl[0], sl[1]]
    alb[:, m] *= np.float32(factor)


def _box_on_roof(cv: _Canvas, box, roofmask, w: Wing, ca, cb, hl, hw, dh, colour, material=M_ROOF_FLAT, flat_top=True, ang=None):
    """A box (hl x hw px half sizes) standing ``dh`` m on the roof at (ca, cb) of wing
    ``w``; flat-topped at the highest roof point under it (or following the roof)."""
    r = cv.rect(*_on_wing(w, ca, cb), w.ang if ang is None else ang, hl, hw)
    if r is None:
        return None
    sl, m, a, b = r
    m &= _restrict(box, sl, roofmask)
    if not m.any():
        return None
    base = cv.height[sl]
    h = np.float32(base[m].max() + dh) if flat_top else base + np.float32(dh)
    cv.paint(sl, m, BUILDING, h, colour, material)
    return sl, m, a, b


def _flat_furniture(cv: _Canvas, box, roofmask, w: Wing, tone):
    """Vents (3-6 px, 0.3-0.8 m), AC units (8-14 px, 1-1.5 m, a dark fan), skylights
    (10-24 px glass, 0.3-0.8 m), a stair / lift housing on big roofs (20-44 px,
    2.5-3.2 m) and, on 15 %, rows of solar panels."""
    rng = cv.rng
    area = 4 * w.hl * w.hw
    m = 7.0
    if w.hl < m + 4 or w.hw < m + 4:
        return

    def spot(margin):
        return _uni(rng, -w.hl + margin, w.hl - margin), _uni(rng, -w.hw + margin, w.hw - margin)

    if area > 15_000 and rng.random() < 0.55:
        hl, hw = rng.uniform(10, 22), rng.uniform(10, 16)
        if w.hl > hl + m and w.hw > hw + m:
            _box_on_roof(cv, box, roofmask, w, *spot(max(hl, hw) + m), hl, hw, rng.uniform(2.5, 3.2), _jitter(rng, tone, 0.1) * np.float32(1.08))
    if area > 10_000 and rng.random() < 0.15:  # solar rows facing the sun side (down = south)
        n = int(min(8, (2 * w.hw - 2 * m) // 22))
        pl = rng.uniform(0.4, 0.8) * (w.hl - m)
        for k in range(n):
            cb = -w.hw + m + 8 + k * 22
            _box_on_roof(cv, box, roofmask, w, 0.0, cb, pl, 5.5, 0.6, _jitter(rng, SOLAR, 0.08), M_GLASS)
    for _ in range(rng.poisson(area / 25_000)):
        hl, hw = rng.uniform(5, 12), rng.uniform(4, 8)
        if w.hl > hl + m and w.hw > hw + m:
            r = _box_on_roof(cv, box, roofmask, w, *spot(max(hl, hw) + m), hl, hw, rng.uniform(0.3, 0.8), np.asarray(ROOF_METAL[0], np.float32) * 0.9)
            if r is not None:  # glass inside a light frame
                sl, mm, a, b = r
                glass = mm & (np.abs(a) < hl - 1.5) & (np.abs(b) < hw - 1.5)
                g = _jitter(rng, (70, 80, 95) if rng.random() < 0.6 else (160, 170, 180), 0.1)
                cv.albedo[:, sl[0], sl[1]][:, glass] = g[:, None]
                cv.material[sl][glass] = M_GLASS
    for _ in range(rng.poisson(area / 30_000)):
        hl, hw = rng.uniform(4, 7), rng.uniform(3, 5)
        r = _box_on_roof(cv, box, roofmask, w, *spot(m + 7), hl, hw, rng.uniform(1.0, 1.5), _jitter(rng, ROOF_METAL[1 if rng.random() < 0.3 else 0], 0.06))
        if r is not None:
            sl, mm, a, b = r
            fan = mm & ((a - hl * 0.3) ** 2 + b**2 < (0.7 * hw) ** 2)
            cv.albedo[:, sl[0], sl[1]][:, fan] *= np.float32(0.45)
    for _ in range(rng.poisson(area / 6_000)):
        s = rng.uniform(1.5, 3.0)
        _box_on_roof(cv, box, roofmask, w, *spot(m + 3), s, s * rng.uniform(0.7, 1.3), rng.uniform(0.3, 0.8), _jitter(rng, ROOF_METAL[int(rng.integers(3))], 0.1))


def _pitched_furniture(cv: _Canvas, box, roofmask, w: Wing, tone, t: float):
    """Chimneys (4-7 px squares near the ridge, 0.7-1.5 m above it), roof windows (glass
    6-10 x 8-12 px, flush), dormers (on 25 % of long gabled wings) and solar panels (20 %)."""
    rng = cv.rng
    if w.hl < 14 or w.hw < 12:
        return
    for _ in range(rng.poisson(0.3 + w.hl / 90)):
        s = rng.uniform(2.0, 3.5)
        ca, cb = rng.uniform(-w.hl + 8, w.hl - 8), rng.uniform(-0.35, 0.35) * w.hw
        _box_on_roof(cv, box, roofmask, w, ca, cb, s, s, rng.uniform(0.7, 1.5), _jitter(rng, BRICK[int(rng.integers(2))], 0.1))
    if w.roof == "gabled" and w.hl > 45 and rng.random() < 0.25:
        side = 1 if rng.random() < 0.5 else -1
        for _ in range(int(rng.integers(1, 4))):
            _dormer(cv, box, roofmask, w, side, tone, t)
    if rng.random() < 0.4:
        side = 1 if rng.random() < 0.5 else -1
        for _ in range(int(rng.integers(1, 4))):
            ca, cb = rng.uniform(-w.hl + 10, w.hl - 10), side * rng.uniform(0.3, 0.7) * w.hw
            r = _box_on_roof(cv, box, roofmask, w, ca, cb, rng.uniform(3, 5), rng.uniform(4, 6), 0.05, _jitter(rng, (55, 60, 72), 0.12), M_GLASS, flat_top=False)
            if r is not None:
                sl, mm, _, _ = r
                cv.shade[sl][mm] = cv.shade[sl][mm] * 0.9
    if rng.random() < 0.2 and w.hl > 25:  # solar panels on one plane: dark, gridded, 10 cm above it
        side = 1 if rng.random() < 0.5 else -1
        pl, pw = w.hl * rng.uniform(0.3, 0.6), w.hw * rng.uniform(0.25, 0.4)
        o = cv.rect(*_on_wing(w, 0.0, side * w.hw * 0.5), w.ang, pl, pw)
        if o is not None:
            osl, om, oa, ob = o
            om &= _restrict(box, osl, roofmask)
            grid = ((np.abs(oa) % 9.0) < 1.0) | ((np.abs(ob) % 14.0) < 1.0)
            pcol = _jitter(rng, SOLAR, 0.1)[:, None, None] * np.where(grid, 1.5, 1.0)[None].astype(np.float32)
            cv.paint(osl, om, BUILDING, cv.height[osl] + np.float32(0.1), pcol, M_GLASS, cv.shade[osl].copy())


def _dormer(cv: _Canvas, box, roofmask, w: Wing, side: int, tone, t: float):
    """A gabled dormer on one plane of wing ``w``: 14-28 px wide, reaching from near the
    ridge 40-70 % down the plane; its small ridge runs down the slope."""
    rng = cv.rng
    dw = rng.uniform(7, 14)
    ca = rng.uniform(-w.hl + dw + 6, w.hl - dw - 6)
    b_in, b_out = w.hw * rng.uniform(0.1, 0.2), w.hw * rng.uniform(0.55, 0.75)
    bm = side * (b_in + b_out) / 2
    r = cv.rect(*_on_wing(w, ca, bm), w.ang, dw, (b_out - b_in) / 2)
    if r is None:
        return
    sl, m, a, b = r
    m &= _restrict(box, sl, roofmask)
    if not m.any():
        return
    top = np.float32(cv.height[sl][m].max() - 0.2)
    td = math.tan(math.radians(rng.uniform(30, 45)))
    h = (top - np.abs(a) * np.float32(PIXEL_SIZE * td)).astype(np.float32)
    s2, c2 = td / math.hypot(1, td), 1 / math.hypot(1, td)
    lx, ly = math.cos(w.ang), math.sin(w.ang)
    sa = np.sign(a)
    shade = cv.lambert(sa * lx * s2, sa * ly * s2, np.float32(c2))
    cv.paint(sl, m, BUILDING, h, np.asarray(tone, np.float32) * np.float32(rng.uniform(0.85, 1.0)), M_ROOF_TILE, shade, top=True)


# ----------------------------------------------------------------------------- cars


def _car(cv: _Canvas, cx, cy, ang, *, check=True, van=None) -> bool:
    """A car: rounded, slightly tapered rectangle, length N(50, 2.5) px clipped to 45-54
    (4.05-4.86 m), width N(20, 0.6) clipped to 19-21 (1.71-1.89 m), body colour from a
    fleet distribution, dark windscreen and rear window, 1.4-1.6 m high (lower at the
    bonnet); 12 % are vans (length N(58, 3) clipped to 53-64 px, width 21-23 px,
    1.9-2.2 m, windscreen only; ISPRS counts vans as cars). Returns False (nothing
    painted) when ``check`` and the footprint is not free paved ground."""
    rng = cv.rng
    van = rng.random() < 0.12 if van is None else van
    if van:
        hl = float(np.clip(rng.normal(58, 3), 53, 64)) / 2
        hw = float(np.clip(rng.normal(22, 0.7), 21, 23)) / 2
    else:
        hl = float(np.clip(rng.normal(50, 2.5), 45, 54)) / 2
        hw = float(np.clip(rng.normal(20, 0.6), 19, 21)) / 2
    f = cv.frame(cx, cy, ang, hl, hw)
    if f is None:
        return False
    sl, a, b = f
    u = a / np.float32(hl)  # -1 rear .. +1 front
    taper = np.float32(hw) * (1 - 0.08 * np.clip(np.abs(u) - 0.6, 0, None) / 0.4)  # narrower at the ends
    rc = 0.45 * hw  # corner radius
    qa, qb = np.maximum(np.abs(a) - (hl - rc), 0), np.maximum(np.abs(b) - (taper - rc), 0)
    mask = (np.abs(a) <= hl) & (np.abs(b) <= taper) & (qa * qa + qb * qb <= rc * rc)
    if not mask.any() or (check and not cv.free(sl, mask, allowed=(IMP,))):
        return False
    body = _jitter(rng, _pick(rng, CAR_COLOURS), 0.1)
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


# ----------------------------------------------------------------------------- vegetation


def _crown_mask(rng, a, b, radius, shape: str):
    """(mask, q) of a crown outline in local coordinates: q = distance / local radius."""
    phi = np.arctan2(b, a)
    p = rng.uniform(0, 2 * math.pi, 4)
    if shape == "conifer":
        rr = radius * (1 + 0.15 * np.sin(7 * phi + p[0]) + 0.08 * np.sin(11 * phi + p[1]))
        d = np.hypot(a, b)
    elif shape == "irregular":
        amp = rng.uniform(0.05, 0.14, 4)
        rr = radius * (1 + amp[0] * np.sin(2 * phi + p[0]) + amp[1] * np.sin(3 * phi + p[1]) + amp[2] * np.sin(4 * phi + p[2]) + amp[3] * 0.6 * np.sin(7 * phi + p[3]))
        d = np.hypot(a, b)
    elif shape == "elliptic":
        e = math.sqrt(rng.uniform(1.15, 1.6))
        o = rng.uniform(0, math.pi)
        a2, b2 = a * math.cos(o) + b * math.sin(o), b * math.cos(o) - a * math.sin(o)
        d = np.hypot(a2 / e, b2 * e)
        rr = radius * (1 + 0.06 * np.sin(3 * phi + p[0]) + 0.04 * np.sin(5 * phi + p[1]))
    else:  # round, lobed
        rr = radius * (1 + rng.uniform(0.05, 0.13) * np.sin(3 * phi + p[0]) + rng.uniform(0.03, 0.08) * np.sin(5 * phi + p[1]))
        d = np.hypot(a, b)
    q = d / rr
    return q < 1.0, q, d


def _tree(cv: _Canvas, cx, cy, radius, top, *, shape=None, tone=None):
    """A tree crown, painted only where it is the highest surface.

    Shapes: round (30 %: lobed disc), irregular (25 %: 2-7 lobes), elliptic (15 %:
    aspect 1.15-1.6), clustered (20 %: 2-4 merged sub-crowns 0.5-0.8 x the radius, a
    multi-stem tree or a group) -- broadleaf domes of ``top`` m whose rim is at ~45 % of
    the top (so they overhang cars and roads), Lambert-shaded as spheroids -- or conifer
    (10 %: 0.6 x the radius, star-shaped, a cone from 15 % of the top, darker in the
    infrared). Tone: a species of ``TREE_SPECIES`` +-10 %."""
    rng = cv.rng
    if shape is None:
        shape = ("round", "irregular", "elliptic", "cluster", "conifer")[int(rng.choice(5, p=[0.3, 0.25, 0.15, 0.2, 0.10]))]
    if tone is None:
        tone = _jitter(rng, _tint(TREE_LIT, _pick(rng, TREE_SPECIES)), 0.1)
    if shape == "cluster":
        for _ in range(int(rng.integers(2, 5))):
            o, d = rng.uniform(0, 2 * math.pi), radius * rng.uniform(0.25, 0.55)
            _tree(cv, cx + d * math.cos(o), cy + d * math.sin(o), radius * rng.uniform(0.5, 0.8), top * rng.uniform(0.85, 1.0),
                  shape="round" if rng.random() < 0.6 else "irregular", tone=tone * np.float32(rng.uniform(0.95, 1.05)))
        return
    conifer = shape == "conifer"
    if conifer:
        radius *= 0.6
    f = cv.frame(cx, cy, 0.0, radius * 1.7, radius * 1.7)
    if f is None:
        return
    sl, a, b = f
    mask, q, d = _crown_mask(rng, a, b, radius, shape)
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
        colour = tone
    cv.paint(sl, mask, TREE, height, colour, M_TREE, shade, top=True)


def _bush(cv: _Canvas, cx, cy, radius, *, height=None, tone=None, ground=None, rng=None):
    """A bush or shrub: lobed dome of ``radius`` px, 0.6-2.2 m high (``height``), low
    vegetation (ISPRS) with leaf texture and a tone of ``BUSH_FACTORS``; painted only
    where it is the highest surface and, with ``ground`` (a class), only over that class.
    Its outline, height and tone are drawn from ``rng`` (default: the town's ``cv.rng``)."""
    rng = cv.rng if rng is None else rng
    f = cv.frame(cx, cy, 0.0, radius * 1.4, radius * 1.4)
    if f is None:
        return
    sl, a, b = f
    mask, q, d = _crown_mask(rng, a, b, radius, "irregular" if rng.random() < 0.5 else "round")
    if ground is not None:
        mask = mask & (cv.label[sl] == ground)
    if not mask.any():
        return
    top = rng.uniform(0.6, 2.2) if height is None else height
    z = np.sqrt(np.clip(1 - q * q, 0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ux, uy = np.where(d > 0, a / d, 0), np.where(d > 0, b / d, 0)
    shade = cv.lambert(q * ux, q * uy, z + 0.3) * np.float32(0.9)
    if tone is None:
        tone = _jitter(rng, _tint(TREE_LIT, BUSH_FACTORS[int(rng.integers(len(BUSH_FACTORS)))]), 0.1)
    cv.paint(sl, mask, LOW_VEG, (0.3 + (top - 0.3) * z).astype(np.float32), tone, M_TREE, shade, top=True)


# ----------------------------------------------------------------------------- clutter


def _clutter(cv: _Canvas, sample, tries: int = 5) -> bool:
    """Clutter on free ground, at the first of ``tries`` positions ``sample()`` ->
    (x, y, angle) that fits: a container / skip / trailer (5-7 x 2.3-2.6 m, 1.2-2.6 m
    high, 30 %), a heap of material (disc 1.5-3.5 m, 0.5-2 m, 25 %), bare soil or sand
    (3-6 m, flat, 30 %), play equipment / pool / trampoline (disc 1.5-2 m, 15 %)."""
    rng = cv.rng
    kind = int(rng.choice(4, p=[0.3, 0.25, 0.3, 0.15]))
    if kind == 0:
        hl, hw = rng.uniform(28, 38), rng.uniform(13, 15)
    elif kind == 2:
        hl, hw = rng.uniform(17, 34), rng.uniform(15, 30)
    else:
        hl = hw = rng.uniform(16, 38) if kind == 1 else rng.uniform(17, 22)
    for _ in range(tries):
        r = cv.rect(*sample(), hl, hw)
        if r is None:
            continue
        sl, mask, a, b = r
        if kind in (1, 3):
            mask = mask & (a * a + b * b <= hl * hl)
        if not mask.any() or not cv.free(sl, mask):
            continue
        if kind == 2:  # bare soil / sand, flat
            cv.paint(sl, mask, CLUTTER, 0.05, _jitter(rng, SOIL, 0.12), M_SOIL)
        elif kind == 1:  # heap: a dome
            hgt = (rng.uniform(0.5, 2.0) * np.sqrt(np.clip(1 - (a * a + b * b) / (hl * hl), 0, 1))).astype(np.float32)
            cv.paint(sl, mask, CLUTTER, hgt, _jitter(rng, CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))], 0.15), M_SOIL)
        else:
            col = _jitter(rng, CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))], 0.15)
            hgt = rng.uniform(1.2, 2.6) if kind == 0 else rng.uniform(0.3, 1.0)
            cv.paint(sl, mask, CLUTTER, hgt, col, M_CLUTTER)
        return True
    return False
