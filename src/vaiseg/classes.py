"""The one class table of the project (ISPRS 2D semantic labelling, §3).

Index, name, short key (used in CSV columns) and the ISPRS ground-truth colour.
The eroded ground truth marks class boundaries black; they are ignored (``IGNORE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SemanticClass:
    index: int
    name: str
    key: str
    color: tuple[int, int, int]


CLASSES: tuple[SemanticClass, ...] = (
    SemanticClass(0, "Impervious surfaces", "imp_surf", (255, 255, 255)),
    SemanticClass(1, "Building", "building", (0, 0, 255)),
    SemanticClass(2, "Low vegetation", "low_veg", (0, 255, 255)),
    SemanticClass(3, "Tree", "tree", (0, 255, 0)),
    SemanticClass(4, "Car", "car", (255, 255, 0)),
    SemanticClass(5, "Clutter/background", "clutter", (255, 0, 0)),
)
N_CLASSES = len(CLASSES)
#: the five classes scored in F1 averages (clutter is not scored, §5 / ISPRS)
SCORED = (0, 1, 2, 3, 4)
CAR = 4
CLUTTER = 5
#: label value of ignored pixels (eroded-GT boundaries)
IGNORE = 255
#: colour of eroded boundaries in the ISPRS eroded GT
BOUNDARY_COLOR = (0, 0, 0)

NAMES = tuple(c.name for c in CLASSES)
KEYS = tuple(c.key for c in CLASSES)
#: (N_CLASSES, 3) uint8 palette, row i = colour of class i
PALETTE = np.array([c.color for c in CLASSES], dtype=np.uint8)


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def rgb_to_index(rgb: np.ndarray, allow_boundary: bool = False) -> tuple[np.ndarray, dict]:
    """Map an (H, W, 3) uint8 ISPRS colour label image to class indices.

    Returns ``(labels, unknown)``: labels (H, W) uint8 with 0..5 (and ``IGNORE`` for
    black boundary pixels when ``allow_boundary``); ``unknown`` maps each colour that is
    none of the classes (r, g, b) -> pixel count. Unknown pixels are set to ``IGNORE``;
    callers decide whether unknown colours are an error.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) colour labels, got shape {rgb.shape}")
    packed = _pack(rgb)
    labels = np.full(packed.shape, IGNORE, dtype=np.uint8)
    known = np.zeros(packed.shape, dtype=bool)
    for c in CLASSES:
        m = packed == _pack(np.array(c.color))
        labels[m] = c.index
        known |= m
    if allow_boundary:
        known |= packed == _pack(np.array(BOUNDARY_COLOR))
    unknown: dict = {}
    if not known.all():
        values, counts = np.unique(packed[~known], return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist()):
            unknown[((v >> 16) & 255, (v >> 8) & 255, v & 255)] = int(n)
    return labels, unknown


def index_to_rgb(labels: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 ISPRS colours; ``IGNORE`` becomes black."""
    out = np.zeros(labels.shape + (3,), dtype=np.uint8)
    valid = labels < N_CLASSES
    out[valid] = PALETTE[labels[valid]]
    return out
