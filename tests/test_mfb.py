"""Median frequency balancing (§4.2, eq. 1-2) on a hand-made label set."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vaiseg.errors import DataError
from vaiseg.mfb import (
    class_frequencies,
    compute_mfb_weights,
    load_mfb_weights,
    median_frequency_weights,
    weighted_cross_entropy,
)
from vaiseg.raster import write_raster

# two "images" (areas), 3 classes, 255 = ignored boundary
A = np.array([[0, 0, 0, 1], [0, 0, 1, 255], [255, 0, 0, 0]], dtype=np.uint8)  # 10 valid: 8 x c0, 2 x c1
B = np.array([[0, 2, 2, 2], [0, 2, 2, 255]], dtype=np.uint8)  # 7 valid: 2 x c0, 5 x c2


def test_frequencies_and_weights_by_hand():
    freq, counts = class_frequencies([A, B], n_classes=3)
    assert counts.tolist() == [10, 2, 5]
    # f_c = pixels of c / pixels of the images where c appears (ignored pixels excluded)
    f0, f1, f2 = 10 / 17, 2 / 10, 5 / 7
    assert np.allclose(freq, [f0, f1, f2])
    med = f0  # median of {0.588, 0.2, 0.714}
    w = median_frequency_weights([A, B], n_classes=3)
    assert np.allclose(w, [med / f0, med / f1, med / f2])
    assert w[1] > w[0] > w[2]  # rare class up-weighted


def test_absent_class_gets_zero_weight():
    w = median_frequency_weights([A], n_classes=4)  # classes 2, 3 absent
    f0, f1 = 8 / 10, 2 / 10
    med = (f0 + f1) / 2
    assert np.allclose(w, [med / f0, med / f1, 0, 0])


def test_weighted_loss_equals_eq1_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 2, 2)
    target = torch.tensor([[[0, 1], [2, 255]], [[1, 1], [0, 2]]])
    w = torch.tensor([0.5, 2.0, 1.5])
    # eq. 1 by hand: -1/N sum_n w_{y_n} log p_{y_n}, N = 7 non-ignored samples
    total, n = 0.0, 0
    for b in range(2):
        for i in range(2):
            for j in range(2):
                y = int(target[b, i, j])
                if y == 255:
                    continue
                p = torch.softmax(logits[b, :, i, j], 0)[y].item()
                total += -float(w[y]) * math.log(p)
                n += 1
    assert n == 7
    got = weighted_cross_entropy(logits, target, w)
    assert got.item() == pytest.approx(total / n, rel=1e-6)
    # differs from torch's "divide by the sum of weights" mean
    torch_mean = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert abs(torch_mean.item() - got.item()) > 1e-3
    # no weights = plain cross-entropy
    plain = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert weighted_cross_entropy(logits, target, None).item() == pytest.approx(plain.item(), rel=1e-6)
    # every pixel ignored -> 0, and the gradient is finite
    lg = logits.clone().requires_grad_()
    z = weighted_cross_entropy(lg, torch.full((2, 2, 2), 255), w)
    z.backward()
    assert z.item() == 0 and torch.isfinite(lg.grad).all()


def test_compute_mfb_weights_file(tmp_path):
    pa, pb = tmp_path / "1.tif", tmp_path / "3.tif"
    write_raster(pa, A)
    write_raster(pb, B)
    out = tmp_path / "mfb_weights.json"
    compute_mfb_weights([pa, pb], out, n_classes=3)
    obj = json.loads(out.read_text())
    assert np.allclose(obj["weights"], median_frequency_weights([A, B], n_classes=3))
    assert obj["pixels"] == [10, 2, 5]
    assert torch.allclose(load_mfb_weights(out), torch.tensor(obj["weights"], dtype=torch.float32))
    bad = tmp_path / "bad.tif"
    write_raster(bad, np.array([[0, 7]], dtype=np.uint8))
    with pytest.raises(DataError, match="bad.tif"):
        compute_mfb_weights([bad], tmp_path / "x.json", n_classes=6)
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "w.json").write_text("{}")
    with pytest.raises(DataError, match="w.json"):
        load_mfb_weights(tmp_path / "w.json")


def test_median_without_clutter_by_hand():
    # six classes, one area: counts 6, 1, 2, 3, 4, 8 of 24 valid pixels (clutter = class 5)
    lab = np.repeat(np.arange(6, dtype=np.uint8), [6, 1, 2, 3, 4, 8]).reshape(4, 6)
    f = np.array([6, 1, 2, 3, 4, 8]) / 24
    w_all = median_frequency_weights([lab], n_classes=6)
    w_scored = median_frequency_weights([lab], n_classes=6, median_over="without_clutter")
    assert np.allclose(w_all, np.median(f) / f)  # median of all six: (3 + 4) / 2 / 24
    assert np.allclose(w_scored, (3 / 24) / f)  # median of classes 0-4: 3 / 24
    assert w_scored[5] > 0  # clutter keeps its own weight
    # one common factor between the two choices
    assert np.allclose(w_scored / w_all, (3 / 24) / np.median(f))
    with pytest.raises(ValueError, match="median_over"):
        median_frequency_weights([lab], n_classes=6, median_over="scored")


def test_median_choice_recorded(tmp_path):
    lab = np.repeat(np.arange(6, dtype=np.uint8), [6, 1, 2, 3, 4, 8]).reshape(1, 4, 6)
    path = tmp_path / "labels.tif"
    write_raster(path, lab)
    out = compute_mfb_weights([path], tmp_path / "w.json", median_over="without_clutter")
    assert json.loads((tmp_path / "w.json").read_text())["median_over"] == "without_clutter"
    assert np.allclose(out["weights"], median_frequency_weights([lab[0]], median_over="without_clutter"))
