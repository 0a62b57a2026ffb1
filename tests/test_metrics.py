"""ISPRS metrics against confusion matrices worked out by hand (§3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vaiseg.classes import IGNORE
from vaiseg.errors import DataError
from vaiseg.metrics import confusion_matrix, evaluate_model, scores, write_metrics
from vaiseg.raster import write_raster


def _hand_case():
    # 12 pixels; 2 ignored (boundary), 1 predicted as "unclassified"
    t = np.array([0, 0, 0, 1, 1, 4, 4, 4, 5, 5, IGNORE, IGNORE, 2], dtype=np.uint8)
    p = np.array([0, 0, 1, 1, 1, 4, 0, 0, 5, 0, 3, 4, IGNORE], dtype=np.uint8)
    return t, p


def test_confusion_matrix_by_hand_with_ignore_and_unclassified():
    t, p = _hand_case()
    cm, unc = confusion_matrix(t.reshape(1, -1), p.reshape(1, -1), return_unclassified=True)
    expected = np.zeros((6, 6), np.int64)
    expected[0, 0] = 2
    expected[0, 1] = 1
    expected[1, 1] = 2
    expected[4, 4] = 1
    expected[4, 0] = 2
    expected[5, 5] = 1
    expected[5, 0] = 1
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    assert unc == 1  # the class-2 pixel predicted as IGNORE


def test_scores_by_hand_clutter_not_in_avg_f1_but_in_oa():
    t, p = _hand_case()
    s = scores(confusion_matrix(t, p))
    # imp_surf: TP 2, FP 3 (one car... two car + one clutter), FN 1
    assert s["imp_surf_precision"] == pytest.approx(2 / 5)
    assert s["imp_surf_recall"] == pytest.approx(2 / 3)
    assert s["imp_surf_acc"] == s["imp_surf_recall"]
    assert s["imp_surf_f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 1))
    assert s["imp_surf_iou"] == pytest.approx(2 / (2 + 3 + 1))
    # building: TP 2, FP 1, FN 0
    assert s["building_f1"] == pytest.approx(4 / 5)
    # car: TP 1, FP 0, FN 2
    assert s["car_precision"] == pytest.approx(1.0)
    assert s["car_recall"] == pytest.approx(1 / 3)
    assert s["car_f1"] == pytest.approx(2 / 4)
    # low_veg / tree: absent from GT and never predicted -> undefined, left out of avg
    assert s["low_veg_f1"] is None and s["tree_f1"] is None
    assert s["n_f1_classes"] == 3
    assert s["avg_f1"] == pytest.approx(np.mean([0.5, 0.8, 0.5]))
    # clutter scored per class but not in avg_f1; its pixels count in OA
    assert s["clutter_f1"] == pytest.approx(2 / 3)
    assert s["overall_acc"] == pytest.approx(6 / 10)
    assert s["n_pixels"] == 10


def test_predicting_an_absent_class_gives_zero_f1():
    cm = np.zeros((6, 6), np.int64)
    cm[0, 0] = 5
    cm[0, 3] = 1  # tree predicted but absent from the GT
    s = scores(cm)
    assert s["tree_precision"] == 0.0 and s["tree_recall"] is None and s["tree_f1"] == 0.0
    assert s["n_f1_classes"] == 2


def test_vectorised_matches_loop_on_random_image():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 6, (300, 700)).astype(np.uint8)
    t[rng.random(t.shape) < 0.1] = IGNORE
    p = rng.integers(0, 6, t.shape).astype(np.uint8)
    ref = np.zeros((6, 6), np.int64)
    for a, b in zip(t.ravel().tolist(), p.ravel().tolist()):
        if a != IGNORE:
            ref[a, b] += 1
    np.testing.assert_array_equal(confusion_matrix(t, p), ref)


def test_bad_values_raise_data_error_naming_file():
    t = np.array([0, 7], np.uint8)
    p = np.array([0, 0], np.uint8)
    with pytest.raises(DataError, match="gt.tif.*values \\[7\\]"):
        confusion_matrix(t, p, path="gt.tif")
    with pytest.raises(DataError, match="prediction holds values \\[9\\]"):
        confusion_matrix(p, np.array([0, 9], np.uint8))


def test_evaluate_model_pools_areas_and_uses_eroded_gt(tmp_path):
    full_a = np.array([[0, 0, 1, 1], [4, 4, 5, 5]], np.uint8)
    eroded_a = full_a.copy()
    eroded_a[:, 1:3] = IGNORE  # boundary column pair ignored
    pred_a = np.array([[0, 1, 0, 1], [4, 0, 0, 5]], np.uint8)
    full_b = np.full((2, 4), 3, np.uint8)
    eroded_b = full_b.copy()
    pred_b = np.array([[3, 3, 3, 2], [3, 3, 3, 3]], np.uint8)
    paths = {}
    for name, arr in dict(fa=full_a, ea=eroded_a, pa=pred_a, fb=full_b, eb=eroded_b, pb=pred_b).items():
        paths[name] = tmp_path / f"{name}.tif"
        write_raster(paths[name], arr)
    res = evaluate_model(
        [paths["pa"], paths["pb"]], [paths["ea"], paths["eb"]], [paths["fa"], paths["fb"]], areas=[11, 15]
    )
    # area 11 eroded: kept pixels (0,0)->0 ok, (0,3) 1->1 ok, (1,0) 4->4 ok, (1,3) 5->5 ok
    a11 = res["eroded"]["per_area"]["11"]
    assert a11["overall_acc"] == pytest.approx(1.0) and a11["n_pixels"] == 4
    # area 11 full: 4 of 8 correct
    assert res["full"]["per_area"]["11"]["overall_acc"] == pytest.approx(4 / 8)
    # pooled eroded: 4 + 7 correct of 4 + 8
    pooled = res["eroded"]["pooled"]
    assert pooled["overall_acc"] == pytest.approx(11 / 12)
    cm = np.array(pooled["confusion_matrix"])
    assert cm.sum() == 12 and cm[3, 2] == 1
    # pooled is one matrix over all pixels, not the mean of the areas
    assert pooled["overall_acc"] != pytest.approx(
        np.mean([a11["overall_acc"], res["eroded"]["per_area"]["15"]["overall_acc"]])
    )
    write_metrics(res, tmp_path / "m.json", tmp_path / "cm.csv")
    back = json.loads((tmp_path / "m.json").read_text())
    assert back["eroded"]["pooled"]["overall_acc"] == pytest.approx(11 / 12)
    assert (tmp_path / "cm.csv").read_text().splitlines()[0].startswith("gt,true,pred_imp_surf")


def test_evaluate_model_shape_mismatch(tmp_path):
    write_raster(tmp_path / "p.tif", np.zeros((4, 4), np.uint8))
    write_raster(tmp_path / "g.tif", np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match="shape"):
        evaluate_model([tmp_path / "p.tif"], [tmp_path / "g.tif"], [tmp_path / "g.tif"])
