"""Materials of the synthetic scenes: ids, texture amplitudes and lit colours.

Every painted pixel carries a material id (the canvas's ``material`` layer) and a lit
colour (its ``albedo`` layer, DN of a sunlit surface, bands IR, R, G); ``render`` turns
them into the image. The lit colours are calibrated on the real Vaihingen area-1 crop
(lit road ~(114, 113, 116), lit grass ~(160, 65, 71), orange roofs ~(205, 175, 128));
every object draws its own tone around them (``_jitter``: a common factor and a small
per-band factor). The texture amplitudes scale the fine, medium and coarse texture
fields of ``render`` per material (leaf clumps, tile rows, gravel, lawn mottling).
The vegetation variants (``LAWN_VARIANTS``, ``TREE_SPECIES``, ``BUSH_FACTORS``) are
per-band factors on those lit colours (``_tint``), so a retune of a base tone carries
over; roof details (moss, solar panels, roof furniture, chimneys) have their own tones.
"""

from __future__ import annotations

import numpy as np

# materials: id -> texture amplitudes (fine ~1 px, medium ~6 px, coarse ~60 px)
M_GRASS, M_ASPHALT, M_PAVEMENT, M_ROOF_TILE, M_ROOF_FLAT, M_TREE, M_CAR, M_GLASS, M_CLUTTER, M_PAINT, M_SOIL = range(11)
TEXTURE = np.array(
    [
        [0.04, 0.09, 0.10],  # grass: mottled, mowing patterns
        [0.04, 0.04, 0.07],  # asphalt
        [0.055, 0.05, 0.06],  # pavement / concrete
        [0.075, 0.05, 0.05],  # roof tiles
        [0.065, 0.06, 0.10],  # flat roofs: gravel, stains
        [0.04, 0.06, 0.08],  # tree crowns (the leaf clumps and gaps: render's clump field)
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
    ((106, 90, 86), 0.15),  # brownish gravel (as the crop's flat roof: lit median (101, 86, 83))
    ((150, 148, 150), 0.12),  # concrete / light metal
    ((92, 80, 80), 0.08),  # aged bitumen with mineral grit: reddish-brown, IR ~90-100 as the crop's
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

# vegetation variety: per-band factors (IR, R, G) applied to the lit colours above, so a
# retune of GRASS / DRY_GRASS / TREE_LIT carries over to every variant
LAWN_VARIANTS = (  # (factors on GRASS, weight): fresh, lush, mown short / sparse, dryish
    ((1.00, 1.00, 1.00), 0.40),
    ((1.08, 1.02, 1.04), 0.20),
    ((0.92, 1.10, 1.08), 0.20),
    ((0.84, 1.18, 1.10), 0.20),
)
TREE_SPECIES = (  # (factors on TREE_LIT, weight)
    ((1.00, 1.00, 1.00), 0.45),  # common broadleaf
    ((1.10, 1.05, 1.06), 0.20),  # IR-bright (birch, lime)
    ((0.86, 0.94, 0.96), 0.25),  # dense dark crowns (oak, chestnut)
    ((0.74, 1.00, 0.92), 0.10),  # purple-leaved (copper beech, plum): less infrared
)
BUSH_FACTORS = ((1.05, 1.02, 1.04), (0.90, 0.98, 1.00), (0.80, 1.05, 1.00), (1.12, 1.08, 1.10))  # on TREE_LIT
SOIL = (130, 110, 95)  # bare soil, sand, flower beds (on its own: clutter)
FLOWER_BED = (128, 96, 88)  # soil between plants, some flowers (low vegetation)
MOSS = (150, 92, 82)  # moss and lichen on old tiles (more infrared than the tiles)
SOLAR = (62, 58, 78)  # photovoltaic panels: dark blue glass
ROOF_METAL = ((205, 205, 208), (150, 150, 155), (90, 90, 96))  # roof furniture: light, grey, dark
BRICK = ((150, 95, 82), (118, 104, 104))  # chimneys: brick, rendered


def _pick(rng: np.random.Generator, options):
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _jitter(rng: np.random.Generator, colour, rel: float = 0.08) -> np.ndarray:
    """Colour (3,) float32 scaled by a common factor and a small per-band factor."""
    c = np.asarray(colour, dtype=np.float32)
    return c * np.float32(rng.uniform(1 - rel, 1 + rel)) * rng.uniform(1 - rel / 3, 1 + rel / 3, 3).astype(np.float32)


def _tint(colour, factors) -> np.ndarray:
    """Colour (3,) float32 ``colour`` times per-band ``factors`` (a variant of a base tone)."""
    return np.asarray(colour, dtype=np.float32) * np.asarray(factors, dtype=np.float32)
