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


def test_coverage_analytic_with_and_without_boundaries():
    # errors on ranks >= 0.8 n: accuracy of the first k pixels = 0.8 n / k
    u, pred, gt = ranked(n=20000)
    eroded = gt.copy()
    eroded[0, 19000:] = IGNORE  # part of the errors sit on ignored boundaries
    h = UncertaintyHistogram(0.0, 1.0, fine_bin_count(101))
    h.add(u, pred, eroded, gt)
    rows = {r["target_overall_acc"]: r for r in coverage(h)}
    for target in (97.5, 95.0, 90.0):
        assert rows[target]["pixels_classified_pct"] == pytest.approx(100 * 0.8 / (target / 100), abs=0.02)
        # eroded: 19000 scored pixels, 16000 correct first -> kept = 16000 / (target * 19000)
        assert rows[target]["pixels_classified_pct_ignoring_boundaries"] == pytest.approx(
            100 * 16000 / (target / 100) / 19000, abs=0.02)
        assert rows[target]["pixels_classified_pct_ignoring_boundaries"] > rows[target]["pixels_classified_pct"]
        assert 0.8 < rows[target]["threshold"] < 1


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
    paper = repo_root.parent / "shared" / "paper"
    if not (paper / "uncertainty_coverage.csv").is_file():
        paper = root / "paper"
        paper.mkdir()
        (paper / "uncertainty_coverage.csv").write_text("model,target_overall_acc,pixels_classified_pct,pixels_classified_pct_ignoring_boundaries\n"
                         "FCN,97.5,64.85,67.65\nFCN,95.0,75.81,78.27\nFCN,90.0,94.06,94.97\n")
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
    assert len(cov) == 2 * 9 and set(cov["scope"]) == {"validation", "area 30"}
    area = cov[cov["scope"] == "area 30"]
    assert ((area["pixels_classified_pct"].dropna() >= 0) & (area["pixels_classified_pct"].dropna() <= 100)).all()
    cov = cov[cov["scope"] == "validation"]
    fcn = cov[cov["model"] == "FCN"]
    assert (fcn["paper_pixels_classified_pct"].to_numpy() == [64.85, 75.81, 94.06]).all()
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
