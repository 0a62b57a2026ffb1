"""Eroded ground truth (§3): disc of radius 3 around class boundaries -> IGNORE."""

from __future__ import annotations

import numpy as np
import pytest

from vaiseg.classes import IGNORE
from vaiseg.data.erosion import erode_boundaries


def brute_force(labels: np.ndarray, radius: int) -> np.ndarray:
    """Reference: a pixel is ignored iff an in-image pixel at Euclidean distance
    <= radius has another label."""
    h, w = labels.shape
    out = labels.copy()
    for y in range(h):
        for x in range(w):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    if dy * dy + dx * dx > radius * radius:
                        continue
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and labels[yy, xx] != labels[y, x]:
                        out[y, x] = IGNORE
    return out


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_matches_brute_force_on_random_blobs(radius):
    rng = np.random.default_rng(radius)
    # blocky random labels: 6x6 cells of 4 px plus a few single-pixel specks
    labels = np.kron(rng.integers(0, 6, (6, 6)), np.ones((4, 4), int)).astype(np.uint8)
    labels[rng.integers(0, 24, 5), rng.integers(0, 24, 5)] = 4
    np.testing.assert_array_equal(erode_boundaries(labels, radius), brute_force(labels, radius))


def test_far_pixels_keep_label_and_boundary_band_is_ignored():
    labels = np.zeros((40, 40), np.uint8)
    labels[:, 20:] = 2  # one vertical boundary between columns 19 and 20
    out = erode_boundaries(labels, 3)
    # columns 17..22 are within 3 px of a pixel of the other class
    assert (out[:, 17:23] == IGNORE).all()
    assert (out[:, :17] == 0).all() and (out[:, 23:] == 2).all()
    # the input is untouched
    assert labels.max() == 2


def test_image_border_is_not_a_boundary():
    labels = np.full((10, 12), 3, np.uint8)
    np.testing.assert_array_equal(erode_boundaries(labels, 3), labels)


def test_car_shrinks_by_radius_on_each_side():
    labels = np.zeros((60, 90), np.uint8)
    labels[20:40, 20:70] = 4  # a 20 x 50 px car
    out = erode_boundaries(labels, 3)
    ys, xs = np.nonzero(out == 4)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (23, 36, 23, 66)  # 14 x 44 px


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        erode_boundaries(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        erode_boundaries(np.zeros((2, 4, 4), np.uint8))
