"""The canvas the synthetic scene is painted on, object by object.

Four layers at 9 cm pixels (``PIXEL_SIZE``): label (class of the topmost surface,
``labels``), height above terrain (``heights`` turns it into the DSM / nDSM), lit colour
and material (``materials``; ``render`` turns them into the image) and a direct-light
factor (Lambert shading of roof planes and crowns, relative to flat ground, for the sun
drawn per scene). ``objects`` paints single objects with it, ``town`` places them and,
last, merges the specks its overlaps leave (regions under ``town.MIN_REGION_PX``) into
their surroundings (``_Canvas.despeckle``).
"""

from __future__ import annotations

import math

import numpy as np
from skimage.measure import label as _components

from .labels import IMP, LOW_VEG
from .materials import GRASS, M_GRASS

#: ground sampling distance of the Vaihingen TOPs and DSMs (metres per pixel)
PIXEL_SIZE = 0.09


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
        sl = (slice(y0, y1), slice(x0, x1))
        return (sl, *self.coords(sl, cx, cy, ang))

    @staticmethod
    def coords(sl, cx, cy, ang):
        """(a, b) float32 local coordinates of the pixels of box ``sl`` in the frame
        centred on (cx, cy) with its first axis at angle ``ang`` (as ``frame``)."""
        c, s = math.cos(ang), math.sin(ang)
        dy = np.arange(sl[0].start, sl[0].stop, dtype=np.float32)[:, None] - np.float32(cy)
        dx = np.arange(sl[1].start, sl[1].stop, dtype=np.float32)[None, :] - np.float32(cx)
        a = dx * np.float32(c) + dy * np.float32(s)
        b = dy * np.float32(c) - dx * np.float32(s)
        return a, b

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

    def despeckle(self, min_px: int) -> int:
        """Merge every region (4-connected pixels of one class) smaller than ``min_px``
        into its surroundings: all layers of its pixels are copied from a nearest pixel
        outside such regions (grown in from the region's edge, ring by ring). Removes the
        slivers and specks that overlapping rectangles and partly hidden objects leave (a
        1 px gap between two lots, a crumb of a car under a crown). Returns the number
        of pixels changed."""
        comp = _components(self.label, background=-1, connectivity=1)
        small = np.bincount(comp.ravel())[comp] < min_px
        del comp
        ys, xs = np.nonzero(small)
        changed = ys.size
        steps = ((0, 1), (0, -1), (1, 0), (-1, 0))
        while ys.size:
            done = np.zeros(ys.size, bool)
            for dy, dx in steps:
                ny, nx = ys + dy, xs + dx
                ok = ~done & (ny >= 0) & (ny < self.h) & (nx >= 0) & (nx < self.w)
                ok[ok] = ~small[ny[ok], nx[ok]]
                if not ok.any():
                    continue
                ty, tx, sy, sx = ys[ok], xs[ok], ny[ok], nx[ok]
                self.label[ty, tx] = self.label[sy, sx]
                self.height[ty, tx] = self.height[sy, sx]
                self.material[ty, tx] = self.material[sy, sx]
                self.shade[ty, tx] = self.shade[sy, sx]
                self.albedo[:, ty, tx] = self.albedo[:, sy, sx]
                done |= ok
            if not done.any():  # nothing but specks (cannot happen on a real tile)
                break
            small[ys[done], xs[done]] = False
            ys, xs = ys[~done], xs[~done]
        return int(changed)
