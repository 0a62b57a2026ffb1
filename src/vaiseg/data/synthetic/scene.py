"""One synthetic area: the ``Scene`` arrays and ``generate_scene``, which draws them.

``generate_scene`` seeds a ``SeedSequence`` from (seed, area, height, width) and spawns
one independent generator per stage, draws the sun (``_sun``: a summer-morning flight
over Vaihingen, 48.9 deg N, late July / early August, 08:20-11:40 local solar time:
azimuth ~105-175 deg, elevation ~36-61 deg), then runs the parts in order on one canvas:
``town._draw_town`` (layout and objects) -> the true surface and its cast shadows
(``heights._true_surface``, ``render._shadow_model``) -> ``heights._surface_models``
(matched DSM, nDSM) -> ``render._render`` (IRRG image) -> ``labels._annotate`` (the
ground truth as a digitiser draws the canvas's label layer). Each stage draws from its
own stream (town, heights, render, labels), so a change in one stage's draws leaves the
random numbers of the others unchanged.
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
from .heights import _surface_models, _terrain, _true_surface
from .labels import _annotate
from .render import _render, _shadow_model
from .town import _draw_town

#: CRS of the synthetic rasters (UTM zone 32N, WGS 84; Vaihingen lies in zone 32)
CRS_EPSG = 32632
#: latitude of Vaihingen/Enz (degrees north)
LATITUDE = 48.93
#: ranges of the sun draws: hour angle (deg, 15 deg per hour from solar noon) and the
#: sun's declination (deg; 15-20.5: late July to early August, the season of the DGPF
#: camera test flights over Vaihingen in summer 2008)
HOUR_ANGLE, DECLINATION = (-55.0, -5.0), (15.0, 20.5)


def _sun(rng: np.random.Generator) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a sun drawn over Vaihingen at the flight's
    season and time of day (two draws from ``rng``)."""
    hour = math.radians(rng.uniform(*HOUR_ANGLE))
    dec = math.radians(rng.uniform(*DECLINATION))
    lat = math.radians(LATITUDE)
    el = math.asin(math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(hour))
    north = math.cos(lat) * math.sin(dec) - math.sin(lat) * math.cos(dec) * math.cos(hour)
    az = math.atan2(-math.sin(hour) * math.cos(dec), north)
    return math.degrees(az) % 360.0, math.degrees(el)


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
    town_rng, heights_rng, render_rng, labels_rng = (np.random.default_rng(s) for s in root.spawn(4))
    h, w = int(height), int(width)
    az, el = _sun(town_rng)
    sa, ea = math.radians(az), math.radians(el)
    sun = np.array([math.sin(sa) * math.cos(ea), -math.cos(sa) * math.cos(ea), math.sin(ea)], np.float32)
    cv = _Canvas(h, w, town_rng, sun)
    _draw_town(cv)
    terrain = _terrain(heights_rng, h, w)
    shadow, occluder = _shadow_model(_true_surface(cv, terrain), az, el)
    dsm, ndsm = _surface_models(cv, terrain, shadow, heights_rng)
    irrg = _render(cv, shadow, occluder, render_rng)
    labels = _annotate(cv.label, labels_rng)
    return Scene(irrg=irrg, dsm=dsm, ndsm=ndsm, labels=labels, geo=area_geoinfo(area))
