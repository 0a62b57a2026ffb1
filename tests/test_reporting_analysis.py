"""Uncertainty curve/coverage (§5, Figs. 6-7), calibration, map figures and history
plots (vaiseg.reporting.uncertainty / .calibration / .figures) on constructed data and
tiny rasters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaiseg.classes import IGNORE
from vaiseg.config import FUSIONS, MODELS
from vaiseg.errors import DataError
from vaiseg.raster import write_raster
from vaiseg.reporting.calibration import CalibrationAccumulator, calibration_analysis
from vaiseg.reporting.figures import choose_figure_area, figure_files, history_plot, history_plots, map_figures, thresholded
from vaiseg.reporting.uncertainty import (
    UncertaintyHistogram,
    coverage,
    coverage_at,
    curve,
    fine_bin_count,
    uncertainty_analysis,
)

PNG = b"\x89PNG"


def ranked(n=10000, err_from=0.8):
    """u_i = i/(n-1) (ranks the errors): pixels with rank >= err_from * n are wrong."""
    u = np.arange(n, dtype=np.float64) / (n - 1)
    gt = np.zeros(n, np.uint8)
    pred = np.where(np.arange(n) >= err_from * n, 1, 0).astype(np.int64)
    return u[None], pred[None], gt[None]


def test_curve_accuracy_falls_and_kept_reaches_one():
    u, pred, gt = ranked()
    h = UncertaintyHistogram(float(u.min()), float(u.max()), fine_bin_count(101))
    h.add(u, pred, gt, gt)
    c = curve(h.count, h.correct, 101)
    assert len(c) == 101 and c["threshold"].iloc[0] == 0 and c["threshold"].iloc[-1] == 1
    assert c["kept_fraction"].iloc[-1] == 1.0
    assert (np.diff(c["kept_fraction"]) >= 0).all()
    acc = c["overall_acc"].to_numpy()
    assert (np.diff(acc) <= 1e-12).all() and acc[-1] < acc[0]
    assert acc[0] == 1.0 and acc[-1] == pytest.approx(0.8)
    # threshold 0.5 keeps u <= 0.5: half of the pixels (to one pixel)
    assert c["kept_fraction"].iloc[50] == pytest.approx(0.5, abs=1e-4)


def test_ignored_and_empty_threshold_give_nan():
    u = np.array([[0.0, 0.5, 1.0, 1.0]])
    pred = np.array([[0, 0, 0, 1]])
    gt = np.array([[IGNORE, 0, 0, 0]], np.uint8)  # the only u = 0 pixel is ignored
    h = UncertaintyHistogram(0.0, 1.0, fine_bin_count(101))
    h.add(u, pred, gt)
    c = curve(h.count, h.correct, 101)
    assert np.isnan(c["overall_acc"].iloc[0]) and c["kept_fraction"].iloc[0] == 0
    assert c["overall_acc"].iloc[50] == 1.0 and c["kept_fraction"].iloc[50] == pytest.approx(1 / 3)
    assert c["overall_acc"].iloc[-1] == pytest.approx(2 / 3)
    assert h.count.sum() == 3  # ignored pixel excluded


def test_constant_uncertainty_normalises_to_zero():
    h = UncertaintyHistogram(0.2, 0.2, fine_bin_count(101))
    h.add(np.full((2, 2), 0.2), np.zeros((2, 2), int), np.zeros((2, 2), np.uint8))
    c = curve(h.count, h.correct, 101)
    assert (c["kept_fraction"] == 1).all()


def test_coverage_interpolation_by_hand():
    kept = np.array([0.2, 0.4, 0.6, 0.8])
    acc = np.array([1.0, 0.96, 0.90, 0.85])
    k, t = coverage_at(kept, acc, 0.95, thresholds=np.array([0.1, 0.2, 0.3, 0.4]))
    assert k == pytest.approx(0.4 + 0.2 * (0.96 - 0.95) / (0.96 - 0.90))
    assert t == pytest.approx(0.2 + 0.1 * (0.96 - 0.95) / (0.96 - 0.90))
    assert np.isnan(coverage_at(kept, acc, 1.01)[0])  # never reached
    assert coverage_at(kept, acc, 0.80)[0] == 0.8  # reached with every pixel
    # the last crossing counts when accuracy rises again
    assert coverage_at(np.array([0.1, 0.2, 0.3]), np.array([0.99, 0.9, 0.97]), 0.95)[0] == 0.3


def _by_reading(rows):
    """{reading: {target: row}} from :func:`coverage` rows."""
    out = {}
    for r in rows:
        out.setdefault(r["reading"], {})[r["target_overall_acc"]] = r
    return out


def test_coverage_analytic_with_and_without_boundaries():
    # errors on ranks >= 0.8 n: accuracy of the first k pixels = 0.8 n / k
    u, pred, gt = ranked(n=20000)
    eroded = gt.copy()
    eroded[0, 19000:] = IGNORE  # part of the errors sit on ignored boundaries
    h = UncertaintyHistogram(0.0, 1.0, fine_bin_count(101))
    h.add(u, pred, eroded, gt)
    rows = coverage(h)
    assert [r["reading"] for r in rows] == ["two_thresholds"] * 3 + ["one_threshold"] * 3
    by = _by_reading(rows)
    two, one = by["two_thresholds"], by["one_threshold"]
    for target in (97.5, 95.0, 90.0):
        assert two[target]["pixels_classified_pct"] == pytest.approx(100 * 0.8 / (target / 100), abs=0.02)
        # eroded: 19000 scored pixels, 16000 correct first -> kept = 16000 / (target * 19000)
        assert two[target]["pixels_classified_pct_ignoring_boundaries"] == pytest.approx(
            100 * 16000 / (target / 100) / 19000, abs=0.02)
        assert two[target]["pixels_classified_pct_ignoring_boundaries"] > two[target]["pixels_classified_pct"]
        assert 0.8 < two[target]["threshold"] < 1
        # one threshold (the eroded one): the same non-boundary share; every kept pixel has
        # rank < 19000 (no boundary pixel kept), so the share of all 20000 pixels is
        # 16000 / target / 20000
        assert one[target]["threshold"] == one[target]["threshold_ignoring_boundaries"] == two[target]["threshold_ignoring_boundaries"]
        assert one[target]["pixels_classified_pct_ignoring_boundaries"] == two[target]["pixels_classified_pct_ignoring_boundaries"]
        assert one[target]["pixels_classified_pct"] == pytest.approx(100 * 16000 / (target / 100) / 20000, abs=0.02)


def hand_made_pixels():
    """Pixels on 4 uncertainty bins (u = 0, 0.25, 0.5, 0.75; n_bins 4), full GT class 0,
    prediction 0 (right) or 1 (wrong); per bin (non-boundary pixels, right; boundary
    pixels, right): (10, 10; 0, 0), (10, 8; 5, 4), (10, 6; 10, 4), (10, 4; 5, 1).
    Plus 2 invalid pixels (NaN uncertainty; prediction outside 0..5), counted nowhere.

    Non-boundary (eroded GT): kept 10/20/30/40 of 40, OA 1, 0.9, 0.8, 0.7.
    All pixels (full GT):     kept 10/25/45/60 of 60, OA 1, 0.88, 32/45, 37/60."""
    u, pred, boundary = [], [], []
    for b, (n_in, ok_in, n_bd, ok_bd) in enumerate([(10, 10, 0, 0), (10, 8, 5, 4), (10, 6, 10, 4), (10, 4, 5, 1)]):
        for n, ok, bd in ((n_in, ok_in, False), (n_bd, ok_bd, True)):
            u += [b / 4] * n
            pred += [0] * ok + [1] * (n - ok)
            boundary += [bd] * n
    u += [float("nan"), 0.0]
    pred += [0, 6]
    boundary += [False, False]
    full = np.zeros((1, len(u)), np.uint8)
    eroded = np.where(np.array(boundary)[None], IGNORE, full).astype(np.uint8)
    h = UncertaintyHistogram(0.0, 1.0, 4)
    h.add(np.array([u]), np.array([pred]), eroded, full)
    return h


def test_coverage_two_readings_by_hand():
    h = hand_made_pixels()
    # count_full: every pixel with a full-GT label (boundaries included), count: non-boundary
    assert h.count_full.tolist() == [10, 15, 20, 15, 0] and h.count.tolist() == [10, 10, 10, 10, 0]
    assert (h.count_full - h.count).tolist() == [0, 5, 10, 5, 0]  # boundary pixels per bin
    assert h.correct_full.tolist() == [10, 12, 10, 5, 0] and h.correct.tolist() == [10, 8, 6, 4, 0]
    by = _by_reading(coverage(h, targets=(95.0, 85.0, 75.0, 65.0, 101.0)))
    two, one = by["two_thresholds"], by["one_threshold"]
    approx = lambda v: pytest.approx(v, abs=1e-9)  # noqa: E731

    # one threshold: where eroded OA crosses the target; the same weight for all three numbers
    # 95: between bin 0 (OA 1) and bin 1 (0.9), w = 0.5
    assert one[95.0]["threshold"] == approx(0.125) and one[95.0]["threshold_ignoring_boundaries"] == approx(0.125)
    assert one[95.0]["pixels_classified_pct_ignoring_boundaries"] == approx(100 * 15 / 40)
    assert one[95.0]["pixels_classified_pct"] == approx(100 * (10 + 0.5 * 15) / 60)
    # 85: between bin 1 (0.9) and bin 2 (0.8), w = 0.5
    assert one[85.0]["threshold"] == approx(0.375)
    assert one[85.0]["pixels_classified_pct_ignoring_boundaries"] == approx(62.5)
    assert one[85.0]["pixels_classified_pct"] == approx(100 * (25 + 0.5 * 20) / 60)
    # 75: between bin 2 (0.8) and bin 3 (0.7): 87.5 % of both
    assert one[75.0]["threshold"] == approx(0.625)
    assert one[75.0]["pixels_classified_pct"] == approx(87.5) and one[75.0]["pixels_classified_pct_ignoring_boundaries"] == approx(87.5)
    # 65: reached with every pixel (the empty last bin keeps threshold 1)
    assert one[65.0]["pixels_classified_pct"] == approx(100) and one[65.0]["threshold"] == approx(1.0)

    # two thresholds: the non-boundary share and its threshold are the one-threshold ones ...
    for t in (95.0, 85.0, 75.0, 65.0):
        for k in ("pixels_classified_pct_ignoring_boundaries", "threshold_ignoring_boundaries"):
            assert two[t][k] == one[t][k]
    # ... the all-pixel share has its own threshold, where full-GT OA crosses the target
    w = (1 - 0.95) / (1 - 0.88)  # 95: bin 0 (1) -> bin 1 (0.88)
    assert two[95.0]["pixels_classified_pct"] == approx(100 * (10 + w * 15) / 60)
    assert two[95.0]["threshold"] == approx(0.25 * w)
    w = (0.88 - 0.85) / (0.88 - 32 / 45)  # 85: bin 1 (0.88) -> bin 2 (32/45)
    assert two[85.0]["pixels_classified_pct"] == approx(100 * (25 + w * 20) / 60)
    assert two[85.0]["threshold"] == approx(0.25 + 0.25 * w)
    w = (0.88 - 0.75) / (0.88 - 32 / 45)  # 75: bin 1 -> bin 2 again
    assert two[75.0]["pixels_classified_pct"] == approx(100 * (25 + w * 20) / 60)
    w = (32 / 45 - 0.65) / (32 / 45 - 37 / 60)  # 65: bin 2 -> bin 3
    assert two[65.0]["pixels_classified_pct"] == approx(100 * (45 + w * 15) / 60)
    assert two[65.0]["threshold"] == approx(0.5 + 0.25 * w)
    # boundary pixels are harder: the two readings differ; at 95 % the one threshold keeps more
    assert one[95.0]["pixels_classified_pct"] > two[95.0]["pixels_classified_pct"]
    # a target no threshold reaches: NaN in both readings
    for r in (one[101.0], two[101.0]):
        assert all(np.isnan(r[k]) for k in ("pixels_classified_pct", "pixels_classified_pct_ignoring_boundaries",
                                           "threshold", "threshold_ignoring_boundaries"))


def test_coverage_readings_coincide_without_boundaries():
    rng = np.random.default_rng(1)
    n = 50000
    u = rng.uniform(size=(1, n))
    truth = rng.integers(0, 6, (1, n)).astype(np.uint8)
    pred = np.where(rng.uniform(size=(1, n)) < 0.3 * u, (truth + 1) % 6, truth).astype(np.int64)
    h = UncertaintyHistogram(0.0, 1.0, fine_bin_count(101))
    h.add(u, pred, truth, truth)  # eroded GT == full GT: no boundary pixel
    by = _by_reading(coverage(h, targets=(99.0, 97.5, 95.0, 90.0, 80.0)))
    for t, one in by["one_threshold"].items():
        two = by["two_thresholds"][t]
        for k in ("pixels_classified_pct", "pixels_classified_pct_ignoring_boundaries", "threshold", "threshold_ignoring_boundaries"):
            assert one[k] == pytest.approx(two[k], rel=1e-12, nan_ok=True), (t, k)
        assert one["pixels_classified_pct"] == one["pixels_classified_pct_ignoring_boundaries"]
    assert np.isfinite(by["one_threshold"][95.0]["pixels_classified_pct"])
    # the hand-made set without its boundary pixels: the same
    h2 = hand_made_pixels()
    h2.count_full, h2.correct_full = h2.count.copy(), h2.correct.copy()
    rows = coverage(h2, targets=(95.0, 85.0))
    assert [{k: v for k, v in r.items() if k != "reading"} for r in rows[:2]] == \
        [{k: v for k, v in r.items() if k != "reading"} for r in rows[2:]]


def test_coverage_without_full_gt_and_bad_reading():
    u, pred, gt = ranked(n=2000)
    h = UncertaintyHistogram(0.0, 1.0, fine_bin_count(101))
    h.add(u, pred, gt)  # no full GT: no all-pixel share in either reading
    for r in coverage(h):
        assert np.isnan(r["pixels_classified_pct"]) and np.isfinite(r["pixels_classified_pct_ignoring_boundaries"])
    assert {r["reading"] for r in coverage(h, readings=("one_threshold",))} == {"one_threshold"}
    with pytest.raises(ValueError, match="readings"):
        coverage(h, readings=("three_thresholds",))


def test_ece_calibrated_and_overconfident():
    rng = np.random.default_rng(0)
    n = 200_000
    conf = rng.uniform(0.3, 1.0, n)
    pred = rng.integers(0, 6, n)
    probs = np.empty((6, n))
    probs[:] = ((1 - conf) / 5)[None]
    probs[pred, np.arange(n)] = conf
    correct = rng.uniform(size=n) < conf
    truth = np.where(correct, pred, (pred + rng.integers(1, 6, n)) % 6).astype(np.uint8)
    acc = CalibrationAccumulator(15)
    acc.add(probs[:, None, :], truth[None])
    m = acc.metrics()
    assert m["ece"] < 0.01 and m["n_pixels"] == n
    # over-confident: claims 0.99, right 60 % of the time
    probs2 = np.full((6, n), 0.002)
    probs2[pred, np.arange(n)] = 0.99
    wrong = rng.uniform(size=n) >= 0.6
    truth2 = np.where(wrong, (pred + 1) % 6, pred).astype(np.uint8)
    acc2 = CalibrationAccumulator(15)
    acc2.add(probs2[:, None, :], truth2[None])
    m2 = acc2.metrics()
    assert m2["ece"] == pytest.approx(0.39, abs=0.01) and m2["ece"] > 0.3
    assert m2["nll"] > m["nll"]


def test_nll_brier_by_hand():
    probs = np.zeros((6, 1, 3))
    probs[0, 0, 0] = 1.0  # right, certain
    probs[1, 0, 1] = 1.0
    probs[:, 0, 2] = 1 / 6  # uniform
    truth = np.array([[0, 1, 2]], np.uint8)
    a = CalibrationAccumulator(15)
    a.add(probs, truth)
    m = a.metrics()
    assert m["nll"] == pytest.approx(np.log(6) / 3)
    assert m["brier"] == pytest.approx((0 + 0 + (5 / 36 + 25 / 36)) / 3)
    ignored = np.array([[0, IGNORE, IGNORE]], np.uint8)
    b = CalibrationAccumulator(15)
    b.add(probs, ignored)
    assert b.metrics()["n_pixels"] == 1 and b.metrics()["ece"] == pytest.approx(0.0)


# ---- tiny results tree ---------------------------------------------------------------

H, W = 24, 32
AREAS = (11, 30)


def make_results(root, seed=0):
    """results/data and results/predictions for every model on two tiny areas:
    predictions are the truth with errors where the (CNN) uncertainty is high."""
    rng = np.random.default_rng(seed)
    data, pred_dir = root / "data", root / "predictions"
    for a in AREAS:
        gt = rng.integers(0, 6, (H, W)).astype(np.uint8)
        eroded = gt.copy()
        eroded[::5, :] = IGNORE
        write_raster(data / str(a) / "labels.tif", gt)
        write_raster(data / str(a) / "labels_eroded.tif", eroded)
        write_raster(data / str(a) / "image.tif", rng.normal(size=(5, H, W)).astype(np.float32))
        for m in MODELS + tuple(FUSIONS):
            u = rng.uniform(0, 0.3, (H, W)).astype(np.float32)
            wrong = rng.uniform(size=(H, W)) < u * 2
            lab = np.where(wrong, (gt + 1) % 6, gt).astype(np.uint8)
            probs = np.full((6, H, W), 0.04, np.float32)
            np.put_along_axis(probs, lab[None].astype(np.int64), 0.8, axis=0)
            d = pred_dir / m / str(a)
            write_raster(d / "labels.tif", lab)
            write_raster(d / "probs.tif", probs)
            if m in MODELS:
                write_raster(d / "uncertainty.tif", u)
                det = np.full((6, H, W), 0.002, np.float32)
                np.put_along_axis(det, lab[None].astype(np.int64), 0.99, axis=0)
                write_raster(d / "probs_deterministic.tif", det)
    return data, pred_dir


def mc(pred, name, models=MODELS, areas=AREAS):
    """{(model, area): path} of one prediction file."""
    return {(m, a): pred / m / str(a) / f"{name}.tif" for m in models for a in areas}


def gt(data, name, areas=AREAS):
    return {a: data / str(a) / f"{name}.tif" for a in areas}


@pytest.fixture(scope="module")
def results(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("results")
    data, pred = make_results(root)
    paper = repo_root / "paper"  # the paper's numbers, shipped with the project
    fig = root / "figures"
    out = dict(curve=fig / "accuracy_vs_uncertainty.csv", png=fig / "accuracy_vs_uncertainty.png",
               coverage=fig / "uncertainty_coverage.csv", summary=fig / "uncertainty_summary.json")
    uncertainty_analysis(list(MODELS), list(AREAS), mc(pred, "uncertainty"), mc(pred, "labels"), gt(data, "labels_eroded"),
                         gt(data, "labels"), paper, out["curve"], out["png"], out["coverage"],
                         out["summary"], n_thresholds=101, figure_area=30)
    return root, data, pred, out


def test_uncertainty_analysis_files(results):
    _, _, _, out = results
    c = pd.read_csv(out["curve"])
    assert list(c.columns) == ["model", "threshold", "kept_fraction", "overall_acc"]
    assert list(dict.fromkeys(c["model"])) == list(MODELS)
    for _, g in c.groupby("model"):
        assert len(g) == 101 and g["kept_fraction"].iloc[-1] == 1.0
        ok = g["overall_acc"].dropna()
        assert ((ok >= 0) & (ok <= 1)).all()
        # errors were drawn with probability 2u: accuracy at t=1 is below the low-u one
        assert ok.iloc[-1] < ok.iloc[len(ok) // 10]
    assert out["png"].read_bytes()[:4] == PNG
    cov = pd.read_csv(out["coverage"])
    assert list(cov.columns) == [
        "model", "scope", "reading", "target_overall_acc", "pixels_classified_pct",
        "pixels_classified_pct_ignoring_boundaries", "threshold", "threshold_ignoring_boundaries",
        "paper_pixels_classified_pct", "paper_pixels_classified_pct_ignoring_boundaries"]
    # 3 models x 2 scopes x 2 readings x 3 targets
    assert len(cov) == 3 * 2 * 2 * 3 and set(cov["scope"]) == {"validation", "area 30"}
    assert cov.groupby(["model", "scope", "reading"]).size().eq(3).all()
    assert set(cov["reading"]) == {"two_thresholds", "one_threshold"}
    area = cov[cov["scope"] == "area 30"]
    assert ((area["pixels_classified_pct"].dropna() >= 0) & (area["pixels_classified_pct"].dropna() <= 100)).all()
    two = cov[cov["reading"] == "two_thresholds"].reset_index(drop=True)
    one = cov[cov["reading"] == "one_threshold"].reset_index(drop=True)
    assert (one["threshold"].fillna(-1) == one["threshold_ignoring_boundaries"].fillna(-1)).all()
    for k in ("pixels_classified_pct_ignoring_boundaries", "threshold_ignoring_boundaries"):
        assert np.allclose(one[k], two[k], equal_nan=True)  # the eroded-GT threshold is shared
    assert one["pixels_classified_pct"].notna().any()
    cov = cov[cov["scope"] == "validation"]
    for _, fcn in cov[cov["model"] == "FCN"].groupby("reading"):
        assert (fcn["paper_pixels_classified_pct"].to_numpy() == [64.85, 75.81, 94.06]).all()
        assert (fcn["paper_pixels_classified_pct_ignoring_boundaries"].to_numpy() == [67.65, 78.27, 94.97]).all()
    assert cov[cov["model"] == "PB"]["paper_pixels_classified_pct"].isna().all()
    s = json.loads(out["summary"].read_text())
    assert s["FCN"]["mean_uncertainty_error"] > s["FCN"]["mean_uncertainty_correct"]


def test_uncertainty_shape_mismatch(tmp_path, results):
    _, data, pred, out = results
    bad = tmp_path / "pred"
    for m in MODELS:
        for a in AREAS:
            d = bad / m / str(a)
            write_raster(d / "uncertainty.tif", np.zeros((H, W + 1), np.float32))
            write_raster(d / "labels.tif", np.zeros((H, W + 1), np.uint8))
    with pytest.raises(DataError, match="differs"):
        uncertainty_analysis(["FCN"], list(AREAS), mc(bad, "uncertainty"), mc(bad, "labels"), gt(data, "labels_eroded"),
                             gt(data, "labels"), _paper(results), tmp_path / "c.csv", tmp_path / "c.png", tmp_path / "v.csv", tmp_path / "s.json")
    assert not (tmp_path / "c.csv").exists()


def _paper(results):
    p = results[0] / "paper_empty"
    if not p.exists():
        p.mkdir()
        (p / "uncertainty_coverage.csv").write_text(
            "model,target_overall_acc,pixels_classified_pct,pixels_classified_pct_ignoring_boundaries\n")
    return p


def test_uncertainty_paper_dir_missing(tmp_path, results):
    _, data, pred, _ = results
    with pytest.raises(DataError, match="paper_dir"):
        uncertainty_analysis(["FCN"], list(AREAS), mc(pred, "uncertainty"), mc(pred, "labels"), gt(data, "labels_eroded"),
                             gt(data, "labels"), tmp_path / "nowhere", tmp_path / "c.csv",
                             tmp_path / "c.png", tmp_path / "v.csv", tmp_path / "s.json")
    assert not list(tmp_path.iterdir())


def test_calibration_files(results, tmp_path):
    _, data, pred, _ = results
    df = calibration_analysis(list(MODELS), list(AREAS), mc(pred, "probs"), mc(pred, "probs_deterministic"),
                              gt(data, "labels_eroded"), tmp_path / "cal.csv", tmp_path / "bins.csv", tmp_path / "cal.png")
    assert set(df.columns) >= {"model", "kind", "ece", "nll", "brier"}
    assert len(df) == 2 * len(MODELS)
    d = df.set_index(["model", "kind"])
    for m in MODELS:  # 0.99-confident deterministic pass is worse calibrated than the 0.8 one
        assert d.loc[(m, "deterministic"), "ece"] > d.loc[(m, "mc"), "ece"]
    assert (tmp_path / "cal.png").read_bytes()[:4] == PNG
    assert len(pd.read_csv(tmp_path / "bins.csv")) == 2 * len(MODELS) * 15


def test_figures(results, tmp_path):
    _, data, pred, out = results
    models = list(MODELS) + list(FUSIONS)
    area, note = choose_figure_area(30, AREAS)
    assert area == 30 and note is None
    files = figure_files(tmp_path, area, models, list(MODELS))
    map_figures(area, data / "30" / "image.tif", data / "30" / "labels.tif",
                {m: pred / m / "30" / "labels.tif" for m in models}, {m: pred / m / "30" / "uncertainty.tif" for m in MODELS},
                out["summary"], out["coverage"], files)
    assert all(k.isidentifier() for k in files)
    assert len(files) == 3 + len(models) + len(MODELS) + 3
    for p in files.values():
        b = open(p, "rb").read()
        assert b[:4] == PNG and len(b) > 100, p
    from PIL import Image

    from vaiseg.classes import index_to_rgb

    shown = np.asarray(Image.open(files["gt"]).convert("RGB"))
    assert shown.shape == (H, W, 3)
    from vaiseg.raster import read_raster

    truth = read_raster(data / "30" / "labels.tif")[0][0]
    assert (shown == index_to_rgb(truth)).all()  # pixel-exact ISPRS colours
    thr = np.asarray(Image.open(files["threshold_97_5"]).convert("RGB"))
    assert thr.shape == (H, W, 3) and (thr == 0).all(axis=2).any()  # some pixels rejected
    # Fig. 6 maps use the validation-set threshold of the two-threshold reading (full GT)
    cov = pd.read_csv(out["coverage"])
    cov = cov[(cov["model"] == "FCN") & (cov["scope"] == "validation") & (cov["target_overall_acc"] == 95.0)]
    t_two = float(cov.loc[cov["reading"] == "two_thresholds", "threshold"].iloc[0])
    t_one = float(cov.loc[cov["reading"] == "one_threshold", "threshold"].iloc[0])
    s = json.loads(out["summary"].read_text())["FCN"]
    un = (read_raster(pred / "FCN" / "30" / "uncertainty.tif")[0][0] - s["u_min"]) / (s["u_max"] - s["u_min"])
    black = (np.asarray(Image.open(files["threshold_95"]).convert("RGB")) == 0).all(axis=2)
    assert (black == (un > t_two)).all() and (black != (un > t_one)).any()
    # report.fig6_reading: one_threshold draws the maps at the ISPRS-OA threshold
    map_figures(area, data / "30" / "image.tif", data / "30" / "labels.tif",
                {m: pred / m / "30" / "labels.tif" for m in models}, {m: pred / m / "30" / "uncertainty.tif" for m in MODELS},
                out["summary"], out["coverage"], files, reading="one_threshold")
    black = (np.asarray(Image.open(files["threshold_95"]).convert("RGB")) == 0).all(axis=2)
    assert (black == (un > t_one)).all()
    with pytest.raises(DataError, match="no rows of the Fig. 6 reading"):
        map_figures(area, data / "30" / "image.tif", data / "30" / "labels.tif",
                    {m: pred / m / "30" / "labels.tif" for m in models}, {m: pred / m / "30" / "uncertainty.tif" for m in MODELS},
                    out["summary"], out["coverage"], files, reading="three_thresholds")


def test_figure_area_fallback():
    area, note = choose_figure_area(30, (11, 15))
    assert area == 11 and "not a validation area" in note


def test_thresholded_black():
    lab = np.zeros((2, 2), np.uint8)  # impervious = white
    u = np.array([[0.1, 0.9], [0.5, 0.2]])
    rgb = thresholded(lab, u, 0.5)
    assert (rgb[0, 1] == 0).all() and (rgb[0, 0] == 255).all() and (rgb[1, 0] == 255).all()
    assert (thresholded(lab, u, float("nan")) == 0).all()


def test_history_plot(tmp_path):
    h = tmp_path / "history.csv"
    # vaiseg.training's columns
    pd.DataFrame(dict(epoch=[1, 2, 3], train_loss=[1.0, 0.7, 0.5], val_loss=[1.1, 0.8, 0.7],
                      val_oa=[0.5, 0.6, 0.7], val_car_f1=[0.1, 0.3, 0.4], seconds=[3.0] * 3)).to_csv(h, index=False)
    history_plots({"FCN": h, "PB": h}, {"FCN": tmp_path / "h.png", "PB": tmp_path / "p.png"})
    assert (tmp_path / "h.png").read_bytes()[:4] == PNG and (tmp_path / "p.png").read_bytes()[:4] == PNG
    with pytest.raises(DataError, match="not found"):
        history_plot(tmp_path / "none.csv", tmp_path / "x.png", "PB")
    (tmp_path / "time.csv").write_text("epoch,seconds\n1,2.0\n")
    with pytest.raises(DataError, match="no loss"):
        history_plot(tmp_path / "time.csv", tmp_path / "x.png", "PB")
    (tmp_path / "empty.csv").write_text("epoch,train_loss\n")
    with pytest.raises(DataError, match="no rows"):
        history_plot(tmp_path / "empty.csv", tmp_path / "x.png", "PB")
    assert not (tmp_path / "x.png").exists()


def test_by_model_area_order():
    from vaiseg.reporting.uncertainty import by_area, by_model_area

    paths = [f"r/{m}/{a}/u.tif" for m in ("PB", "FCN") for a in (11, 30)]
    d = by_model_area(paths, ["PB", "FCN"], [11, 30])
    assert str(d[("FCN", 11)]) == "r/FCN/11/u.tif"
    with pytest.raises(ValueError, match="expand order"):
        by_model_area(paths, ["PB", "FCN"], [30, 11])
    with pytest.raises(ValueError):
        by_model_area(paths[:3], ["PB", "FCN"], [11, 30])
    assert by_area(["d/11/x.tif", "d/30/x.tif"], [11, 30])[30].as_posix() == "d/30/x.tif"
    with pytest.raises(ValueError):
        by_area(["d/30/x.tif", "d/11/x.tif"], [11, 30])


def test_calibration_skips_unclassified():
    probs = np.full((6, 1, 4), 1 / 6)
    probs[:, 0, :2] = np.nan  # PB border left unclassified
    a = CalibrationAccumulator(15)
    a.add(probs, np.zeros((1, 4), np.uint8))
    m = a.metrics()
    assert m["n_pixels"] == 2 and np.isfinite(m["ece"]) and np.isfinite(m["nll"])


def test_colour_matches_class_table():
    from vaiseg.classes import index_to_rgb
    from vaiseg.reporting.figures import colour

    lab = np.array([[0, 1, 2, 3], [4, 5, IGNORE, 7]], np.uint8)
    assert (colour(lab) == index_to_rgb(lab)).all()
