"""Labels of the synthetic scenes: the class ids the painters use and class shares.

- **Convention**: the label of a pixel is the class of the topmost surface (ISPRS
  convention: a crown over a car is *tree*). Low vegetation is the default ground
  (hedges too: low vegetation that looks like a crown), impervious the paved areas,
  clutter small objects and bare soil. The canvas (``canvas``) starts as low vegetation
  and every painted object overwrites the label with its class, so the label layer is
  the class of the last (trees: the highest) surface painted on a pixel; edges are
  pixel-exact (no annotation blur, no boundary uncertainty).
"""

from __future__ import annotations

import numpy as np

from ...classes import CAR, CLASSES, CLUTTER, N_CLASSES

__all__ = ["BUILDING", "CAR", "CLUTTER", "IMP", "LOW_VEG", "TREE", "class_frequencies"]

IMP, BUILDING, LOW_VEG, TREE = 0, 1, 2, 3


def class_frequencies(labels: np.ndarray) -> dict[str, float]:
    """Share of each class among the labelled pixels: {class name: fraction}, in class
    order; ``IGNORE`` (255) pixels are left out of the denominator."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=256)[:N_CLASSES].astype(float)
    total = counts.sum()
    return {c.name: (float(counts[c.index] / total) if total else 0.0) for c in CLASSES}
