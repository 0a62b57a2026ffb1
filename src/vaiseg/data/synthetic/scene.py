"""One synthetic area: the ``Scene`` arrays and ``generate_scene``, which draws them.

``generate_scene`` seeds a ``SeedSequence`` from (seed, area, height, width) and spawns
one independent generator per stage, draws the sun (azimuth 100-200 deg, elevation
40-60 deg), then runs the parts in order on one canvas: ``town._draw_town`` (layout and
objects) -> ``heights._surface_models`` (DSM, nDSM) -> ``render._render`` (IRRG image);
the labels are the canvas's label layer. Each stage draws from its own stream, so a
change in one stage's draws leaves the random numbers of the others unchanged.
Georeferencing is made up (``area_geoinfo``): 9 cm pixels on a 300 m grid of origins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from ...raster import GeoInfo
from .canvas import PIXEL_SIZE, _Canvas
from .heights import _surface_models
from .render import _render
from .town import _draw_town

#: CRS of the synthetic rasters (UTM zone 32N, WGS 84; Vaihingen lies in zone 32)
CRS_EPSG = 32632


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


def generate_scene(area: int, height: int, width: int, seed: int) -> Scene:
    """Draw one synthetic Vaihingen-like area (see the package docstring for the model).

    area: ISPRS area number (only seeds the scene and its georeferencing); height,
    width: tile size in pixels (>= 64); seed: generator seed. Deterministic: the same
    (area, height, width, seed) give identical arrays on every run.
    """
    if height < 64 or width < 64:
        raise ValueError(f"tile must be at least 64 x 64 px, got {height} x {width}")
    root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(area), int(height), int(width)])
    town_rng, heights_rng, render_rng = (np.random.default_rng(s) for s in root.spawn(3))
    h, w = int(height), int(width)
    az, el = town_rng.uniform(100, 200), town_rng.uniform(40, 60)
    sa, ea = math.radians(az), math.radians(el)
    sun = np.array([math.sin(sa) * math.cos(ea), -math.cos(sa) * math.cos(ea), math.sin(ea)], np.float32)
    cv = _Canvas(h, w, town_rng, sun)
    _draw_town(cv)
    dsm, ndsm = _surface_models(cv, heights_rng)
    irrg = _render(cv, dsm, az, el, render_rng)
    return Scene(irrg=irrg, dsm=dsm, ndsm=ndsm, labels=cv.label, geo=area_geoinfo(area))
