"""Uncertainty as failure detection (vaiseg.reporting.failure): AURC, E-AURC and PAvPU
on cases worked by hand, AUROC/AUPR against scikit-learn, and the end-to-end analysis
on a tiny fake results tree."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vaiseg.classes import IGNORE
from vaiseg.config import MODELS
from vaiseg.raster import read_raster, write_raster
from vaiseg.reporting.failure import (
    COLUMNS,
    MEASURES,
    Ranking,
    aurc,
    auroc_aupr,
    e_aurc,
    error_detection_metrics,
    failure_detection_analysis,
    optimal_aurc,
    pavpu,
    risk_coverage,
    subsample_index,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_reporting_analysis import AREAS, gt, make_results, mc  # noqa: E402

PNG = b"\x89PNG"


# ---- hand-worked cases ----------------------------------------------------------------


def test_no_ties_by_hand():
    # scores 0.1 0.2 0.3 0.4 (already ascending), errors 0 1 0 1.
    # risk(k) = errors among the first k / k: k=1: 0/1, k=2: 1/2, k=3: 1/3, k=4: 2/4
    # AURC = (0 + 1/2 + 1/3 + 1/2) / 4 = (4/3) / 4 = 1/3
    # optimal (2 right first): 0, 0, 1/3, 2/4 -> (1/3 + 1/2) / 4 = 5/24; E-AURC = 1/3 - 5/24 = 1/8
    # PAvPU: error rate 1/2, threshold = 2nd (= n_correct-th) smallest score = 0.2;
    # certain (<= 0.2): pixel 1 right, pixel 2 wrong; uncertain: pixel 3 right, pixel 4 wrong
    # -> (accurate-certain 1 + inaccurate-uncertain 1) / 4 = 1/2
    # AUROC: error scores {0.2, 0.4} vs right {0.1, 0.3}: pairs won 0.2>0.1, 0.4>0.1, 0.4>0.3 -> 3/4
    # AUPR (average precision): errors reached at ranks 1 (0.4, precision 1/1) and 3
    # (0.2, precision 2/3) when sorting descending -> (1 + 2/3) / 2 = 5/6
    s, e = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1], bool)
    assert aurc(s, e) == pytest.approx(1 / 3)
    assert optimal_aurc(4, 2) == pytest.approx(5 / 24)
    assert e_aurc(s, e) == pytest.approx(1 / 8)
    assert pavpu(s, e) == pytest.approx((0.5, 0.2))
    assert auroc_aupr(s, e) == pytest.approx((3 / 4, 5 / 6))
    # the input order does not matter
    p = np.array([2, 0, 3, 1])
    assert aurc(s[p], e[p]) == pytest.approx(1 / 3) and pavpu(s[p], e[p]) == pytest.approx((0.5, 0.2))


def test_ties_by_hand():
    # scores 0 0 1 1 1, errors 0 1 0 1 1: groups {0: 2 pixels, 1 error}, {1: 3 pixels, 2 errors}.
    # risk inside a tie group = expectation over random orders within the group:
    # k=1: (0 + 1 * 1/2) / 1 = 1/2      k=2: (0 + 2 * 1/2) / 2 = 1/2
    # k=3: (1 + 1 * 2/3) / 3 = 5/9      k=4: (1 + 2 * 2/3) / 4 = 7/12     k=5: 3/5
    # AURC = (1/2 + 1/2 + 5/9 + 7/12 + 3/5) / 5 = (90 + 90 + 100 + 105 + 108) / 180 / 5 = 493/900
    # optimal (2 right, 3 wrong): 0, 0, 1/3, 2/4, 3/5 -> (10 + 15 + 18) / 30 / 5 = 43/150 = 258/900
    # E-AURC = (493 - 258) / 900 = 235/900 = 47/180
    # PAvPU: error rate 3/5, threshold = 2nd smallest score = 0; certain (<= 0): 1 right 1 wrong;
    # uncertain (> 0): 1 right 2 wrong -> (1 + 2) / 5 = 3/5
    s, e = np.array([0.0, 0.0, 1.0, 1.0, 1.0]), np.array([0, 1, 0, 1, 1], bool)
    r = Ranking.of(s, e)
    assert r.risk_at(np.arange(1, 6)) == pytest.approx([1 / 2, 1 / 2, 5 / 9, 7 / 12, 3 / 5])
    assert aurc(s, e) == pytest.approx(493 / 900)
    assert optimal_aurc(5, 3) == pytest.approx(43 / 150)
    assert e_aurc(s, e) == pytest.approx(47 / 180)
    assert pavpu(s, e) == pytest.approx((0.6, 0.0))
    for p in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):  # order-independent despite the ties
        assert aurc(s[p], e[p]) == pytest.approx(493 / 900)


def test_constant_score_by_hand():
    # one tie group of 4 pixels with 1 error: risk(k) = (k * 1/4) / k = 1/4 -> AURC = error rate 1/4
    # optimal: 0, 0, 0, 1/4 -> 1/16; E-AURC = 1/4 - 1/16 = 3/16
    # PAvPU: threshold = 3rd smallest = 0.5, every pixel certain (ties at the threshold)
    # -> accurate-certain 3 / 4
    s, e = np.full(4, 0.5), np.array([1, 0, 0, 0], bool)
    assert aurc(s, e) == pytest.approx(1 / 4)
    assert e_aurc(s, e) == pytest.approx(3 / 16)
    assert pavpu(s, e) == pytest.approx((0.75, 0.5))
    assert auroc_aupr(s, e)[0] == pytest.approx(0.5)


def test_degenerate_cases():
    s = np.array([0.3, 0.1, 0.2])
    # no error: risk 0 everywhere, every pixel certain; AUROC/AUPR undefined
    row, _ = error_detection_metrics(s, np.zeros(3, bool))
    assert row["aurc"] == 0 and row["e_aurc"] == 0 and row["pavpu"] == 1 and row["pavpu_threshold"] == pytest.approx(0.3)
    assert math.isnan(row["auroc"]) and math.isnan(row["aupr"])
    # every pixel wrong: risk 1 everywhere, every pixel uncertain (threshold -inf)
    row, _ = error_detection_metrics(s, np.ones(3, bool))
    assert row["aurc"] == 1 and row["e_aurc"] == 0 and row["pavpu"] == 1 and row["pavpu_threshold"] == -math.inf
    assert math.isnan(row["auroc"]) and row["aupr"] == 1
    with pytest.raises(ValueError):
        aurc(np.array([0.1, np.nan]), np.array([0, 1], bool))
    with pytest.raises(ValueError):
        aurc(np.array([0.1, 0.2]), np.array([0, 2]))


def test_optimal_aurc_closed_form_matches_sum():
    # the digamma form (used beyond 2**22 pixels) equals the exact sum
    from scipy.special import digamma

    n, n_err = 1000, 137
    n_ok = n - n_err
    closed = (n_err - n_ok * float(digamma(n + 1) - digamma(n_ok + 1))) / n
    assert optimal_aurc(n, n_err) == pytest.approx(closed, rel=1e-12)


# ---- rankings ---------------------------------------------------------------------------


def test_perfect_and_reversed_ranking():
    rng = np.random.default_rng(1)
    n = 5000
    e = rng.uniform(size=n) < 0.2
    s = np.where(e, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.5, n)).astype(np.float32)
    row, curve = error_detection_metrics(s, e)
    assert row["auroc"] == pytest.approx(1.0) and row["aupr"] == pytest.approx(1.0)
    assert row["e_aurc"] == pytest.approx(0.0, abs=1e-12) and row["pavpu"] == 1.0
    assert row["aurc"] == pytest.approx(optimal_aurc(n, int(e.sum())))
    assert row["error_rate"] == pytest.approx(e.mean()) and row["pixels"] == n
    assert np.allclose(curve["risk"], curve["optimal_risk"])
    # perfect with ties among errors and among correct pixels: still optimal
    assert e_aurc(e.astype(np.float32), e) == pytest.approx(0.0, abs=1e-12)
    assert pavpu(e.astype(np.float32), e)[0] == 1.0
    # reversed: AUROC 0, worst AURC
    row_r, _ = error_detection_metrics(-s, e)
    assert row_r["auroc"] == pytest.approx(0.0) and row_r["e_aurc"] > 0.5
    assert row_r["pavpu"] == pytest.approx(1 - 2 * e.mean())


def test_auroc_aupr_match_sklearn_on_random_data():
    rng = np.random.default_rng(2)
    s = rng.uniform(size=3000).astype(np.float32)
    e = rng.uniform(size=3000) < 0.3 + 0.4 * s  # informative but noisy
    auroc, aupr = auroc_aupr(s, e)
    assert auroc == roc_auc_score(e, s) and aupr == average_precision_score(e, s)
    assert 0.5 < auroc < 1 and e.mean() < aupr < 1
    # AURC lies between the optimal ranking's and the worst (reversed) ranking's
    assert optimal_aurc(e.size, int(e.sum())) < aurc(s, e) < aurc(-s, e)


def test_risk_coverage_curve():
    rng = np.random.default_rng(3)
    s, e = rng.uniform(size=1000), rng.uniform(size=1000) < 0.25
    c = risk_coverage(s, e, n_points=200)
    assert len(c) == 200 and list(c.columns) == ["coverage", "risk", "optimal_risk"]
    assert c["coverage"].iloc[-1] == 1.0 and c["coverage"].iloc[0] == pytest.approx(5 / 1000)
    assert c["risk"].iloc[-1] == pytest.approx(e.mean())  # all pixels kept: the error rate
    assert (c["optimal_risk"] <= c["risk"] + 1e-12).all()
    assert len(risk_coverage(s[:7], e[:7], n_points=200)) == 7  # fewer pixels than points


def test_subsample_index_deterministic():
    a, b = subsample_index(1000, 100, seed=5), subsample_index(1000, 100, seed=5)
    assert np.array_equal(a, b) and a.size == 100 == np.unique(a).size and (np.diff(a) > 0).all()
    assert not np.array_equal(a, subsample_index(1000, 100, seed=6))
    assert subsample_index(1000, None, 0) is None and subsample_index(1000, 1000, 0) is None


# ---- end to end on a tiny results tree ----------------------------------------------------


def add_measures(pred_dir: Path) -> None:
    """entropy.tif and mutual_info.tif for make_results' tree, derived from its uncertainty."""
    for m in MODELS:
        for a in AREAS:
            d = pred_dir / m / str(a)
            u = read_raster(d / "uncertainty.tif")[0][0]
            write_raster(d / "entropy.tif", (4 * u + 0.1).astype(np.float32))
            write_raster(d / "mutual_info.tif", np.sqrt(u).astype(np.float32))


def run(pred, data, out, **kw):
    return failure_detection_analysis(
        list(MODELS), list(AREAS), mc(pred, "probs"), mc(pred, "uncertainty"), mc(pred, "entropy"),
        mc(pred, "mutual_info"), mc(pred, "labels"), gt(data, "labels_eroded"),
        out / "uncertainty_metrics.csv", out / "risk_coverage.csv", out / "risk_coverage.png", **kw)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("failure")
    data, pred = make_results(root)
    add_measures(pred)
    out = root / "out"
    table, curves = run(pred, data, out)
    return root, data, pred, out, table, curves


def test_analysis_table_and_files(tree):
    root, data, pred, out, table, curves = tree
    df = pd.read_csv(out / "uncertainty_metrics.csv")
    assert list(df.columns) == list(COLUMNS)
    assert list(zip(df["model"], df["measure"])) == [(m, x) for m in MODELS for x in MEASURES]
    for col in ("auroc", "aupr", "aurc", "e_aurc", "pavpu", "error_rate"):
        assert df[col].between(0, 1).all(), col
    # scored pixels = non-ignored eroded GT pixels (every 5th row ignored) of both areas
    n = sum(int((read_raster(data / str(a) / "labels_eroded.tif")[0] != IGNORE).sum()) for a in AREAS)
    assert (df["pixels"] == n).all() and (df["pixels_scored"] == n).all() and df["subsample_seed"].isna().all()
    # errors where the uncertainty is high (make_results): the paper's measure detects them,
    # and entropy/mutual_info are monotone in it (same ranking, same metrics)
    ms = df[df["measure"] == "mean_std"].set_index("model")
    assert (ms["auroc"] > 0.6).all()
    for other in ("entropy", "mutual_info"):
        o = df[df["measure"] == other].set_index("model")
        assert np.allclose(o[["auroc", "aupr", "aurc", "e_aurc", "pavpu"]], ms[["auroc", "aupr", "aurc", "e_aurc", "pavpu"]])
    # the fake softmax is 0.8 on the predicted class everywhere: constant 1 - max, no ranking
    mx = df[df["measure"] == "one_minus_max_softmax"]
    assert np.allclose(mx["auroc"], 0.5) and np.allclose(mx["aurc"], mx["error_rate"], atol=1e-5)
    assert np.allclose(mx["pavpu_threshold"], 0.2, atol=1e-6)
    c = pd.read_csv(out / "risk_coverage.csv")
    assert list(c.columns) == ["model", "measure", "coverage", "risk"]
    assert set(c["measure"]) == set(MEASURES) | {"optimal"}
    assert c.groupby(["model", "measure"]).size().eq(200).all()
    assert (out / "risk_coverage.png").read_bytes()[:4] == PNG


def test_ignored_pixels_change_nothing(tree, tmp_path):
    root, data, pred, out, table, _ = tree
    # a copy of the predictions with every label on an ignored GT pixel changed
    pred2 = tmp_path / "predictions"
    shutil.copytree(pred, pred2)
    for m in MODELS:
        for a in AREAS:
            ignored = read_raster(data / str(a) / "labels_eroded.tif")[0][0] == IGNORE
            lab = read_raster(pred2 / m / str(a) / "labels.tif")[0][0]
            write_raster(pred2 / m / str(a) / "labels.tif", np.where(ignored, (lab + 3) % 6, lab).astype(np.uint8))
    table2, _ = run(pred2, data, tmp_path / "out")
    pd.testing.assert_frame_equal(table, table2)


def test_subsample_and_unclassified(tree, tmp_path):
    root, data, pred, out, table, _ = tree
    t, _ = run(pred, data, tmp_path / "sub", max_pixels=500, seed=3)
    assert (t["pixels"] == 500).all() and (t["pixels_scored"] == table["pixels_scored"]).all()
    assert (t["subsample_seed"] == 3).all()
    t2, _ = run(pred, data, tmp_path / "sub2", max_pixels=500, seed=3)
    pd.testing.assert_frame_equal(t, t2)  # deterministic
    # unclassified (IGNORE) predictions and NaN uncertainties are left out of every measure
    pred3 = tmp_path / "pred3"
    shutil.copytree(pred, pred3)
    m, a = MODELS[0], AREAS[0]
    lab = read_raster(pred3 / m / str(a) / "labels.tif")[0][0].copy()
    lab[1, :] = IGNORE  # row 1: scored in the eroded GT (rows 0, 5, ... are ignored)
    write_raster(pred3 / m / str(a) / "labels.tif", lab)
    ent = read_raster(pred3 / m / str(a) / "entropy.tif")[0][0].copy()
    ent[2, :3] = np.nan
    write_raster(pred3 / m / str(a) / "entropy.tif", ent)
    t3, _ = run(pred3, data, tmp_path / "out3")
    n0 = int(table.loc[table["model"] == m, "pixels"].iloc[0])
    assert (t3.loc[t3["model"] == m, "pixels"] == n0 - lab.shape[1] - 3).all()
