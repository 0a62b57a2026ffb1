"""Synthetic Vaihingen-like scenes, written as ISPRS archives (data source 2, §3).

The ISPRS Vaihingen data cannot be redistributed, so the default pipeline runs on scenes
this package draws: a seeded, deterministic town at the data set's scale (9 cm pixels)
with what makes the paper's problem real (§1, §5): small cars (about 20 x 50 px, random
orientation and colour, parked in rows and along roads), trees whose crowns overhang
roads and cars (the ground truth says *tree* wherever the canopy is on top, as ISPRS
does), trees and low vegetation with similar colours, deep cast shadows, varied roofs.

Scene model (all choices; the paper is silent, §3 only describes the real data), one
part per module, each docstring holding its part of the model and its figures:

- ``scene``: ``Scene`` and ``generate_scene``, which seeds the generator, draws the sun
  (a summer-morning flight over Vaihingen) and runs the parts in order, each on its own
  random stream: town -> true surface and its shadows -> matched DSM / nDSM -> render
  -> annotation.
- ``canvas``: the label / height / colour / material / shading layers everything is
  painted on (``PIXEL_SIZE``).
- ``town``: the layout: a rotated street grid warped so streets curve, an urban density
  (suburb .. old-town core) that picks the kinds of blocks (old-town perimeter blocks of
  adjoining houses like the area-1 crop, blocks of flats, detached and terraced houses,
  parking, parks), roads with parking lanes, sidewalks, verges and markings, cars parked
  along the kerbs, street trees; last, specks merged into their surroundings.
- ``objects``: buildings whose footprints are unions of wings (L, T, U, courtyards,
  stepped and adjoining volumes) with gabled / hipped / flat roofs, roof texture (tile
  rows, ageing, patches, moss) and roof furniture (chimneys, dormers, roof windows,
  skylights, AC units, stair housings, solar panels); cars and vans of real sizes; tree
  crowns of several shapes and species, bushes, clutter.
- ``labels``: the labelling convention (class of the topmost surface), the annotation
  stage (the ground truth as a digitiser draws it: small patches generalised away,
  simplified polygons with vertices ~1 px off, every car kept) and
  ``class_frequencies``.
- ``materials``: material ids, texture amplitudes and lit colours calibrated on the
  real Vaihingen area-1 crop.
- ``heights``: terrain, the DSM as dense image matching makes it (cars mostly lost,
  crowns low and holed, edges smoothed over 0.5-0.8 m, noise and blunders in shadows) and
  the nDSM over an estimated terrain (DTM-filter errors included).
- ``render``: radiometric model (haze, diffuse light, leaf clumps, light through crowns;
  fitted on the real crop, jittered per area), soft cast shadows (``cast_shadows``: the
  penumbra widens with the occluder's distance), texture, optics blur and sensor noise.
- ``noise``: the smooth random fields heights and render share.
- ``archive``: ``write_archives``, the four ISPRS zips with stable md5s.

Measured (seed 2016; impervious / building / low veg. / tree / car / clutter): the 16
paper-split areas at 448 x 448 pool to 25 / 25 / 23 / 25 / 1.6 / 0.1 %, areas 1, 5, 11,
30 at 2500 x 2000 to 29 / 23 / 21 / 25 / 2.0 / 0.1 % (Vaihingen: ~27 / 26 / 21 / 23 /
1-2 / <= 1 %; the layouts of 128 areas at 448 x 448 pool to 29 / 25 / 20 / 25 / 1.8 /
0.1 %); single small tiles vary much more (a 40 m tile may be all houses, or one block).
Costs (one CPU core, ``taskset -c 0``): ~0.37 s for 448 x 448 (layout ~0.12 s, soft
shadows ~0.08 s, annotation ~0.06-0.13 s, DSM ~0.05 s, image ~0.03 s) and ~10 s for
2500 x 2000; peak memory about 115 bytes per pixel (~0.57 GB for a Vaihingen-sized tile;
the road layer is computed in row bands and the image band by band to bound the
temporaries).
"""

from __future__ import annotations

from ..code_digest import synthetic_code_digest as code_digest
from .archive import write_archives
from .canvas import PIXEL_SIZE
from .labels import BUILDING, CAR, CLUTTER, IMP, LOW_VEG, TREE, class_frequencies
from .materials import (
    ASPHALT,
    CAR_COLOURS,
    CLUTTER_COLOURS,
    DRY_GRASS,
    GRASS,
    M_ASPHALT,
    M_CAR,
    M_CLUTTER,
    M_GLASS,
    M_GRASS,
    M_PAINT,
    M_PAVEMENT,
    M_ROOF_FLAT,
    M_ROOF_TILE,
    M_SOIL,
    M_TREE,
    PAVEMENT,
    ROOF_TONES,
    TEXTURE,
    TREE_LIT,
)
from .render import DIFFUSE, HAZE, cast_shadows
from .scene import CRS_EPSG, Scene, area_geoinfo, generate_scene


__all__ = [
    "code_digest",
    "ASPHALT",
    "BUILDING",
    "CAR",
    "CAR_COLOURS",
    "CLUTTER",
    "CLUTTER_COLOURS",
    "CRS_EPSG",
    "DIFFUSE",
    "DRY_GRASS",
    "GRASS",
    "HAZE",
    "IMP",
    "LOW_VEG",
    "M_ASPHALT",
    "M_CAR",
    "M_CLUTTER",
    "M_GLASS",
    "M_GRASS",
    "M_PAINT",
    "M_PAVEMENT",
    "M_ROOF_FLAT",
    "M_ROOF_TILE",
    "M_SOIL",
    "M_TREE",
    "PAVEMENT",
    "PIXEL_SIZE",
    "ROOF_TONES",
    "TEXTURE",
    "TREE",
    "TREE_LIT",
    "Scene",
    "area_geoinfo",
    "cast_shadows",
    "class_frequencies",
    "generate_scene",
    "write_archives",
]
