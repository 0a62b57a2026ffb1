"""Median frequency balancing (§4.2, eq. 1-2; Eigen & Fergus 2015).

Class weight (eq. 2): ``w_c = median({f_c | c in C}) / f_c`` where, as in Eigen & Fergus,
``f_c`` = (pixels of class c) / (total pixels of the images in which c appears). Here an
"image" is one training area, and ignored pixels (value ``ignore``, the eroded-GT
boundaries) count neither as class pixels nor in the image totals. A class absent from
every training area gets weight 0 (it cannot contribute to the loss anyway) and the
median is taken over the classes present.

Which classes the median runs over is not stated: "the median class frequency in the
training set" reads as all six classes, but clutter is not a class the paper scores.
``median_over="with_clutter"`` (default, config ``train.mfb_median``) takes the median
of all present classes; ``"without_clutter"`` leaves clutter out of the median (clutter
still gets its own weight ``median / f_clutter``). The two choices differ by one common
factor on every weight (the ratio of the two medians): the loss's class balance is the
same, its scale (and so the effective learning rate of the FCN-MFB) is not.

Weighted cross-entropy (eq. 1): ``L = -1/N * sum_n sum_c l_c^(n) w_c log p_c^(n)`` with N
the number of samples in the mini-batch. Implemented literally: the weighted sum of
per-pixel losses divided by N = the number of non-ignored pixels — *not* by the sum of
the weights as ``torch.nn.functional.cross_entropy(weight=..., reduction="mean")`` does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .atomic import write_json
from .classes import CLUTTER, IGNORE, NAMES, N_CLASSES
from .errors import DataError
from .raster import read_raster

log = logging.getLogger(__name__)


def class_frequencies(label_arrays: Iterable[np.ndarray], n_classes: int = N_CLASSES, ignore: int = IGNORE) -> tuple[np.ndarray, np.ndarray]:
    """(f_c (n_classes,) float64 with NaN for absent classes, pixel counts (n_classes,) int64).

    ``label_arrays``: one (H, W) integer array per image (training area).
    """
    counts = np.zeros(n_classes, dtype=np.int64)
    image_pixels = np.zeros(n_classes, dtype=np.int64)
    for lab in label_arrays:
        lab = np.asarray(lab)
        valid = lab != ignore
        c = np.bincount(lab[valid].ravel().astype(np.int64), minlength=n_classes)
        if len(c) > n_classes:
            raise ValueError(f"label values must be < {n_classes} or {ignore}, found {len(c) - 1}")
        counts += c
        image_pixels[c > 0] += int(valid.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = np.where(image_pixels > 0, counts / np.maximum(image_pixels, 1), np.nan)
    return freq, counts


#: ``train.mfb_median`` options: which classes the median of eq. 2 runs over
MEDIAN_OVER = ("with_clutter", "without_clutter")


def median_frequency_weights(
    label_arrays: Iterable[np.ndarray], n_classes: int = N_CLASSES, ignore: int = IGNORE, median_over: str = "with_clutter"
) -> np.ndarray:
    """Eq. 2: (n_classes,) float64 weights ``median(f) / f_c`` (0 for absent classes);
    ``median_over``: one of :data:`MEDIAN_OVER` (see the module docstring)."""
    if median_over not in MEDIAN_OVER:
        raise ValueError(f"median_over must be one of {MEDIAN_OVER}, got {median_over!r}")
    freq, _ = class_frequencies(label_arrays, n_classes, ignore)
    present = np.isfinite(freq)
    if not present.any():
        raise ValueError("no labelled pixel in the given label arrays")
    in_median = present.copy()
    if median_over == "without_clutter" and CLUTTER < n_classes:
        in_median[CLUTTER] = False
    if not in_median.any():
        raise ValueError("no class left for the median once clutter is left out")
    med = np.median(freq[in_median])
    return np.where(present, med / np.where(present, freq, 1.0), 0.0)


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, ignore_index: int = IGNORE) -> torch.Tensor:
    """Eq. 1: mean over the N non-ignored samples of ``w_{y_n} * (-log softmax(logits_n)[y_n])``.

    logits (N, C) or (N, C, H, W) float; target (N,) or (N, H, W) int64 with
    ``ignore_index`` for ignored pixels; weights (C,) or None (plain cross-entropy).
    Returns a scalar (0 when every pixel is ignored).
    """
    if weights is not None:
        weights = weights.to(device=logits.device, dtype=torch.float32)
    total = F.cross_entropy(logits.float(), target, weight=weights, ignore_index=ignore_index, reduction="sum")
    n = (target != ignore_index).sum().clamp(min=1)
    return total / n


def compute_mfb_weights(
    label_paths: list[str | Path], out: str | Path, n_classes: int = N_CLASSES, ignore: int = IGNORE, median_over: str = "with_clutter"
) -> dict:
    """Rule ``mfb_weights``: eq. 2 from the training areas' label rasters -> JSON.

    Writes ``{"weights": [...], "frequencies": [...], "pixels": [...], "classes": [...],
    "labels": [paths], "definition": ...}`` to ``out`` atomically and returns it.
    """
    arrays = []
    for p in label_paths:
        data, _ = read_raster(p)
        if data.shape[0] != 1:
            raise DataError(p, f"expected a 1-band label raster, got {data.shape[0]} bands")
        lab = data[0]
        bad = (lab >= n_classes) & (lab != ignore)
        if bad.any():
            raise DataError(p, f"label values must be 0..{n_classes - 1} or {ignore}, found {sorted(np.unique(lab[bad]).tolist())[:5]}")
        arrays.append(lab)
    freq, counts = class_frequencies(arrays, n_classes, ignore)
    weights = median_frequency_weights(arrays, n_classes, ignore, median_over)
    if (counts == 0).any():
        log.warning("MFB: classes %s absent from the training labels get weight 0", np.flatnonzero(counts == 0).tolist())
    result = {
        "weights": [float(w) for w in weights],
        "frequencies": [None if not np.isfinite(f) else float(f) for f in freq],
        "pixels": [int(c) for c in counts],
        "classes": list(NAMES[:n_classes]),
        "labels": [str(p) for p in label_paths],
        "median_over": median_over,
        "definition": "w_c = median(f) / f_c, f_c = pixels of c / pixels of the areas containing c (Eigen & Fergus), ignored pixels excluded (§4.2 eq. 2)",
    }
    write_json(out, result)
    log.info("MFB weights: %s", dict(zip(result["classes"], result["weights"])))
    return result


def load_mfb_weights(path: str | Path) -> torch.Tensor:
    """(n_classes,) float32 weights from an mfb_weights.json."""
    try:
        obj = json.loads(Path(path).read_text())
        w = torch.tensor(obj["weights"], dtype=torch.float32)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(path, f"cannot read MFB weights ({e})") from e
    if w.ndim != 1 or not torch.isfinite(w).all() or (w < 0).any():
        raise DataError(path, "MFB weights must be a list of finite non-negative numbers")
    return w
