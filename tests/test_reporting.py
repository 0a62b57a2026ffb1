"""Tables 1-2 and the paper diff (vaiseg.reporting.tables / .paper_diff), from
hand-made confusion matrices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaiseg.config import FUSIONS
from vaiseg.errors import DataError
from vaiseg.reporting.paper_diff import (
    ACC_FALLS_MAX_SPEARMAN,
    ACC_FALLS_MIN_DROP,
    ERROR_UNCERTAINTY_MIN_RATIO,
    F1_COLUMNS,
    MFB_MIN_CAR_F1_GAIN,
    build_paper_diff,
    check_accuracy_falls,
    check_fusions,
    diff_cells,
    qualitative_findings,
    read_paper_results,
    typo_notes,
)
from vaiseg.reporting.tables import TABLE_COLUMNS, build_table, load_confusion, table_row

# rows = truth, cols = prediction; classes imp, building, low_veg, tree, car, clutter
CM = np.array(
    [
        [80, 10, 0, 0, 0, 10],
        [5, 90, 0, 0, 0, 5],
        [0, 0, 70, 30, 0, 0],
        [0, 0, 20, 80, 0, 0],
        [10, 0, 0, 0, 10, 0],
        [0, 0, 0, 0, 0, 50],
    ]
)


def write_metrics(path, cm, cm_full=None):
    cm_full = cm if cm_full is None else cm_full
    doc = {"eroded": {"pooled": {"confusion_matrix": np.asarray(cm).tolist()}},
           "full": {"pooled": {"confusion_matrix": np.asarray(cm_full).tolist()}}}
    path.write_text(json.dumps(doc))
    return path


def test_table_row_by_hand():
    r = table_row("X", CM)
    assert list(r) == TABLE_COLUMNS
    # impervious: TP 80, predicted 95, true 100 -> F1 = 160 / 195, recall 0.8
    assert r["imp_surf_f1"] == 82.05
    assert r["imp_surf_acc"] == 80.00
    # car: TP 10, predicted 10, true 20 -> F1 = 20 / 30, recall 0.5
    assert r["car_f1"] == 66.67
    assert r["car_acc"] == 50.00
    # OA over all non-ignored pixels, clutter included: 380 / 470
    assert r["overall_acc"] == 80.85
    # avg F1 = mean of the five unrounded F1s
    f1 = [160 / 195, 180 / 200, 140 / 190, 160 / 210, 20 / 30]
    assert r["avg_f1"] == round(100 * np.mean(f1), 2)
    for v in list(r.values())[1:]:
        assert v == round(v, 2) and 0 <= v <= 100


def test_clutter_not_in_avg_f1():
    cm2 = CM.copy()
    cm2[5, 5] = 5000  # more correct clutter: OA changes, avg F1 does not
    a, b = table_row("a", CM), table_row("b", cm2)
    assert a["avg_f1"] == b["avg_f1"]
    assert b["overall_acc"] > a["overall_acc"]


def test_build_table_files(tmp_path):
    m = {k: write_metrics(tmp_path / f"{k}.json", CM) for k in ("PB", "FCN", "FCN-MFB")}
    out = {e: tmp_path / f"table1.{e}" for e in ("csv", "md", "tex")}
    build_table(m, out["csv"], out["md"], out["tex"], tmp_path / "table1_extended.csv", name="table1", caption="Table 1 (%)")
    df = pd.read_csv(out["csv"])
    assert list(df.columns) == TABLE_COLUMNS
    assert list(df["method"]) == ["PB", "FCN", "FCN-MFB"]
    text = out["csv"].read_text().splitlines()[1].split(",")
    assert all(len(x.split(".")[1]) == 2 for x in text[1:]), text  # 2 decimals
    assert "| PB |" in out["md"].read_text()
    tex = out["tex"].read_text()
    assert r"\begin{tabular}" in tex and "82.05" in tex and r"\label{tab:table1}" in tex
    assert r"\caption{Table 1 (\%)}" in tex  # % would start a LaTeX comment
    ext = pd.read_csv(tmp_path / "table1_extended.csv")
    for k in ("imp_surf", "car", "clutter"):
        assert {f"{k}_precision", f"{k}_recall", f"{k}_f1", f"{k}_iou"} <= set(ext.columns)
    assert ext.loc[0, "car_iou"] == round(100 * 10 / 20, 2)
    assert ext.loc[0, "imp_surf_precision"] == round(100 * 80 / 95, 2)


def test_load_confusion_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_confusion(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text(json.dumps({"eroded": {"pooled": {"confusion_matrix": [[1, 2], [3, 4]]}}}))
    with pytest.raises(DataError, match="shape"):
        load_confusion(tmp_path / "bad.json")
    (tmp_path / "nokey.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json|nokey.json"):
        load_confusion(tmp_path / "nokey.json")
    neg = CM.copy()
    neg[0, 1] = -1
    with pytest.raises(DataError, match="non-negative"):
        load_confusion(write_metrics(tmp_path / "neg.json", neg))


@pytest.fixture
def paper_dir(repo_root):
    """The paper's numbers as shipped with the project (``paper/``)."""
    d = repo_root / "paper"
    assert (d / "paper_results.csv").is_file() and (d / "uncertainty_coverage.csv").is_file()
    return d


def test_paper_avg_f1_recomputed(paper_dir):
    p = read_paper_results(paper_dir / "paper_results.csv")
    fcn = p[p["method"] == "FCN"].iloc[0]
    assert fcn["avg_f1_printed"] == 86.36
    assert fcn["avg_f1"] == 81.28
    notes = typo_notes(p)
    assert len(notes) == 1 and "FCN" in notes[0] and "81.28" in notes[0]
    assert np.allclose(p["avg_f1"], p[F1_COLUMNS].mean(axis=1).round(2))


def _ours_equal_paper(paper_dir, tmp_path, shift=0.0):
    p = read_paper_results(paper_dir / "paper_results.csv")
    paths = []
    for t in (1, 2):
        df = p[p["table"] == t][TABLE_COLUMNS].copy()
        df.iloc[:, 1:] = df.iloc[:, 1:] + shift
        path = tmp_path / f"table{t}.csv"
        df.to_csv(path, index=False, float_format="%.2f")
        paths.append(path)
    return paths


def test_paper_diff_cells_and_deltas(paper_dir, tmp_path):
    tables = _ours_equal_paper(paper_dir, tmp_path, shift=1.5)
    cells = build_paper_diff(tables, paper_dir, tmp_path / "d.md", tmp_path / "d.csv", source="synthetic")
    assert len(cells) == 7 * 12  # every table cell
    assert set(cells.columns) >= {"table", "method", "column", "ours", "paper", "delta"}
    assert np.allclose(cells["delta"], 1.5)
    fcn = cells[(cells["method"] == "FCN") & (cells["column"] == "avg_f1")].iloc[0]
    assert fcn["paper"] == 81.28 and fcn["paper_printed"] == 86.36
    md = (tmp_path / "d.md").read_text()
    assert "synthetic" in md and "NOT comparable" in md and "81.28" in md
    assert len(pd.read_csv(tmp_path / "d.csv")) == 84


def test_paper_diff_isprs_header_and_findings(paper_dir, tmp_path):
    tables = _ours_equal_paper(paper_dir, tmp_path)
    build_paper_diff(tables, paper_dir, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    md = (tmp_path / "d.md").read_text()
    assert "isprs" in md and "NOT comparable" not in md
    cells = pd.read_csv(tmp_path / "d.csv")
    assert np.allclose(cells["delta"], 0.0)
    # the original columns first, then the (empty without reference_dir) reference columns;
    # single-seed tables have no ours_std/within_2std
    assert list(cells.columns) == ["table", "method", "column", "ours", "paper", "paper_printed", "delta",
                                   "reference", "ours_minus_reference", "reference_ci_low", "reference_ci_high"]
    assert cells["reference"].isna().all() and "No reference run to compare with" in md
    # the paper's own numbers satisfy its findings, each with its criterion beside the verdict
    assert "| check | criterion | measured | verdict |" in md
    rows = [line for line in md.splitlines() if "(§4.2, Table 1)" in line or "(§4.4, Table 2)" in line]
    assert len(rows) == 1 + len(FUSIONS)
    assert all(line.endswith("| yes |") for line in rows), rows
    mfb = next(line for line in rows if "MFB raises car F1" in line)
    assert "FCN-MFB car F1 - FCN car F1 >= 1 point" in mfb and "43.03 -> 92.57 (+49.54)" in mfb
    pb_fcn = next(line for line in rows if line.startswith("| PB+FCN:"))
    assert "OA(PB+FCN) - max OA(PB, FCN) > 0.00 points" in pb_fcn and "86.84 vs 86.65 (FCN): margin +0.19" in pb_fcn


# ---- qualitative checks: every outcome of every criterion on constructed inputs ---------

TABLE_METHODS = ["PB", "FCN", "FCN-MFB", "PB+FCN", "PB+FCN-MFB", "FCN+FCN-MFB", "ALL"]


def _ours(car_f1=(50.0, 40.0, 60.0), oa=(80.0, 85.0, 84.0, 86.0, 86.0, 86.0, 86.0)):
    """Tables 1-2 indexed by method: car F1 of PB, FCN, FCN-MFB (fusions 0) and the OAs."""
    return pd.DataFrame({"car_f1": list(car_f1) + [0.0] * 4, "overall_acc": list(oa)}, index=TABLE_METHODS)


@pytest.mark.parametrize(
    "fcn, mfb, verdict",
    [(40.0, 41.0, "yes"),  # exactly 1 point: enough
     (40.0, 40.99, "no"),  # just under 1 point
     (43.03, 43.5, "no"),  # higher, but by less than the criterion asks
     (40.0, 30.0, "no")],
)
def test_check_mfb_both_outcomes(fcn, mfb, verdict):
    (f,) = [x for x in qualitative_findings(_ours(car_f1=(50.0, fcn, mfb)), None, None) if x["check"].startswith("MFB raises")]
    assert f["verdict"] == verdict
    assert f["criterion"] == f"FCN-MFB car F1 - FCN car F1 >= {MFB_MIN_CAR_F1_GAIN:g} point"
    assert f"{fcn:.2f} -> {mfb:.2f}" in f["measured"]


def test_check_fusion_both_outcomes_and_margin():
    # PB 80, FCN 85, FCN-MFB 84; PB+FCN 85.01 (+0.01), PB+FCN-MFB 84 (= member: no),
    # FCN+FCN-MFB 84.5 (between its members: no), ALL 86 (+1)
    f = {x["check"]: x for x in check_fusions(_ours(oa=(80.0, 85.0, 84.0, 85.01, 84.0, 84.5, 86.0)))}
    v = {k.split(":")[0]: x["verdict"] for k, x in f.items()}
    assert v == {"PB+FCN": "yes", "PB+FCN-MFB": "no", "FCN+FCN-MFB": "no", "ALL": "yes"}
    m = {k.split(":")[0]: x["measured"] for k, x in f.items()}
    assert m["PB+FCN"] == "OA 85.01 vs 85.00 (FCN): margin +0.01"
    assert m["PB+FCN-MFB"] == "OA 84.00 vs 84.00 (FCN-MFB): margin +0.00"
    assert m["FCN+FCN-MFB"] == "OA 84.50 vs 85.00 (FCN): margin -0.50"
    assert all("> 0.00 points" in x["criterion"] for x in f.values())
    # a missing member: n/a, not yes or no
    f = {x["check"].split(":")[0]: x for x in check_fusions(_ours().drop(index="FCN-MFB"))}
    assert {k: x["verdict"] for k, x in f.items()} == {"PB+FCN": "yes", "PB+FCN-MFB": "n/a", "FCN+FCN-MFB": "n/a", "ALL": "n/a"}
    assert f["ALL"]["measured"] == "FCN-MFB missing"


def _curve(model, acc):
    """One model's curve at thresholds linspace(0, 1); NaN accuracy = nothing kept."""
    acc = np.asarray(acc, float)
    kept = np.where(np.isfinite(acc), np.linspace(0.1, 1, len(acc)), 0.0)
    return pd.DataFrame(dict(model=model, threshold=np.linspace(0, 1, len(acc)), kept_fraction=kept, overall_acc=acc))


def _rho_minus_0_019():
    """101 accuracies whose Spearman rho against the threshold is -0.019 (rank
    permutation built from swaps: sum d^2 = 2 * sum (j - i)^2 = 174970), falling by 10
    points from the first to the last threshold."""
    rank = np.arange(101)
    for i, j in [(0, 100), (1, 99), (2, 98), (3, 97), (4, 96), (5, 95), (6, 94), (7, 93), (8, 92), (9, 91),
                 (10, 70), (11, 38), (12, 16)]:
        rank[[i, j]] = rank[[j, i]]
    assert ((rank - np.arange(101)) ** 2).sum() == 174970
    return 0.80 + 0.001 * rank  # rank 100 first (90 %), rank 0 last (80 %)


def test_check_accuracy_falls_both_outcomes():
    curve = pd.concat([
        _curve("FCN", [np.nan, 0.99, 0.95, 0.9, 0.85]),  # monotone, 14 points: yes
        _curve("PB", [0.5, 0.6, 0.7, 0.8, 0.9]),  # rises: no
        _curve("RHO0019", _rho_minus_0_019()),  # drops 10 points, but rho -0.019: no
        _curve("SMALL", [0.900, 0.899, 0.897, 0.895, 0.8905]),  # rho -1 but drop 0.95 point: no
        _curve("EDGE", [0.90, 0.897, 0.89]),  # rho -1, drop exactly 1 point: yes
        _curve("HALF", [0.96, 0.90, 0.95, 0.93]),  # rho -0.4 (> -0.5), drop 3 points: no
        _curve("LIMIT", [0.94, 0.92, 0.95, 0.93, 0.91]),  # rho -0.5 exactly, drop 3 points: yes
        _curve("FLAT", [0.9, 0.9, 0.9]),  # rho undefined: no
        _curve("EMPTY", [np.nan, np.nan, 0.9]),  # one populated threshold: n/a
    ])
    f = {x["check"].split(":")[0]: x for x in qualitative_findings(_ours(), curve, None) if "threshold rises" in x["check"]}
    assert {k: x["verdict"] for k, x in f.items()} == {
        "FCN": "yes", "PB": "no", "RHO0019": "no", "SMALL": "no", "EDGE": "yes", "HALF": "no", "LIMIT": "yes", "FLAT": "no", "EMPTY": "n/a"}
    assert f["RHO0019"]["measured"].startswith("rho -0.019; OA 90.00 % at threshold 0, 80.00 % at threshold 1")
    assert f["FCN"]["measured"] == "rho -1.000; OA 99.00 % at threshold 0.25, 85.00 % at threshold 1 (drop +14.00)"
    assert f["HALF"]["measured"].startswith("rho -0.400;") and f["LIMIT"]["measured"].startswith("rho -0.500;")
    assert "undefined" in f["FLAT"]["measured"]
    assert f["FCN"]["criterion"] == (
        f"Spearman rho(threshold, OA) <= {ACC_FALLS_MAX_SPEARMAN:g} over the thresholds that keep pixels, "
        f"and OA at the lowest of them >= OA at threshold 1 + {ACC_FALLS_MIN_DROP:g} point")
    assert (ACC_FALLS_MAX_SPEARMAN, ACC_FALLS_MIN_DROP) == (-0.5, 1.0)


def test_check_error_uncertainty_both_outcomes():
    summary = {
        "A": {"mean_uncertainty_correct": 0.1, "mean_uncertainty_error": 0.3},  # x3: yes
        "B": {"mean_uncertainty_correct": 0.2, "mean_uncertainty_error": 0.3},  # x1.5 exactly: yes
        "C": {"mean_uncertainty_correct": 0.2, "mean_uncertainty_error": 0.29},  # higher, x1.45: no
        "D": {"mean_uncertainty_correct": 0.3, "mean_uncertainty_error": 0.1},  # lower: no
        "E": {"mean_uncertainty_correct": 0.0, "mean_uncertainty_error": 0.2},  # correct pixels all certain: yes
        "F": {"mean_uncertainty_correct": 0.0, "mean_uncertainty_error": 0.0},  # no information: no
        "G": {"mean_uncertainty_correct": 0.1, "mean_uncertainty_error": float("nan")},  # no errors: n/a
    }
    f = {x["check"].split(":")[0]: x for x in qualitative_findings(_ours(), None, summary) if "errors" in x["check"]}
    assert {k: x["verdict"] for k, x in f.items()} == {
        "A": "yes", "B": "yes", "C": "no", "D": "no", "E": "yes", "F": "no", "G": "n/a"}
    assert f["C"]["measured"] == "0.2900 on errors vs 0.2000 on correct pixels (ratio 1.45)"
    assert f["A"]["criterion"] == f"mean normalised uncertainty of errors >= {ERROR_UNCERTAINTY_MIN_RATIO:g} x that of correct pixels"


def test_findings_every_check_listed_with_criterion():
    f = qualitative_findings(_ours(), _curve("FCN", [0.99, 0.9]), {"FCN": {"mean_uncertainty_correct": 0.1, "mean_uncertainty_error": 0.3}})
    assert [x["check"].split(" (§")[0] for x in f] == (
        ["MFB raises car F1"] + [f"{k}: fusion raises overall accuracy" for k in FUSIONS]
        + ["FCN: accuracy falls as the uncertainty threshold rises", "FCN: uncertainty is higher on errors"])
    assert all(set(x) == {"check", "criterion", "measured", "verdict", "paper"} and x["criterion"] for x in f)
    assert [x["verdict"] for x in qualitative_findings(_ours().drop(index="FCN-MFB"), None, None)][0] == "n/a"


def test_paper_diff_md_findings_table_and_fig6_readings(paper_dir, tmp_path):
    tables = _ours_equal_paper(paper_dir, tmp_path)
    curve = pd.concat([_curve("FCN", [0.99, 0.95, 0.9]), _curve("PB", _rho_minus_0_019())])
    curve.to_csv(tmp_path / "curve.csv", index=False)
    (tmp_path / "s.json").write_text(json.dumps({"FCN": {"mean_uncertainty_correct": 0.1, "mean_uncertainty_error": 0.12}}))
    cols = ["model", "scope", "reading", "target_overall_acc", "pixels_classified_pct",
            "pixels_classified_pct_ignoring_boundaries", "threshold", "threshold_ignoring_boundaries",
            "paper_pixels_classified_pct", "paper_pixels_classified_pct_ignoring_boundaries"]
    pd.DataFrame([
        ["FCN", "validation", "two_thresholds", 97.5, 50.0, 60.0, 0.1, 0.2, 64.85, 67.65],
        ["FCN", "validation", "one_threshold", 97.5, 55.0, 60.0, 0.2, 0.2, 64.85, 67.65],
    ], columns=cols).to_csv(tmp_path / "cov.csv", index=False)
    build_paper_diff(tables, paper_dir, tmp_path / "d.md", tmp_path / "d.csv", source="isprs",
                     curve_csv=tmp_path / "curve.csv", summary_json=tmp_path / "s.json", coverage_csv=tmp_path / "cov.csv")
    md = (tmp_path / "d.md").read_text()
    assert "| check | criterion | measured | verdict |" in md
    line = lambda key: next(x for x in md.splitlines() if x.startswith(key))  # noqa: E731
    assert line("| FCN: accuracy falls").endswith("| yes |")
    assert line("| PB: accuracy falls").endswith("| no |") and "rho -0.019" in line("| PB: accuracy falls")
    assert line("| FCN: uncertainty is higher on errors").endswith("| no |")  # x1.2 < x1.5
    assert "Spearman rho(threshold, OA) <= -0.5" in line("| PB: accuracy falls")
    assert line("| FCN | validation | two thresholds") == (
        "| FCN | validation | two thresholds (configured) | 97.5 | 50.00 | 60.00 | 0.1000 / 0.2000 | 64.85 | 67.65 |")
    assert line("| FCN | validation | one threshold") == (
        "| FCN | validation | one threshold | 97.5 | 55.00 | 60.00 | 0.2000 | 64.85 | 67.65 |")
    assert "**two thresholds**" in md and "**one threshold**" in md
    assert len(pd.read_csv(tmp_path / "d.csv")) == 84  # the cell CSV is unchanged by the findings
    # report.fig6_reading: the configured reading leads and is marked
    build_paper_diff(tables, paper_dir, tmp_path / "d.md", tmp_path / "d.csv", source="isprs",
                     curve_csv=tmp_path / "curve.csv", summary_json=tmp_path / "s.json", coverage_csv=tmp_path / "cov.csv",
                     fig6_reading="one_threshold")
    rows = [x for x in (tmp_path / "d.md").read_text().splitlines() if x.startswith("| FCN | validation |")]
    assert rows[0].startswith("| FCN | validation | one threshold (configured) |")
    assert rows[1].startswith("| FCN | validation | two thresholds |")


def test_paper_dir_missing(tmp_path):
    with pytest.raises(DataError, match="paper_dir"):
        build_paper_diff([], tmp_path / "nowhere", tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    assert not (tmp_path / "d.md").exists() and not (tmp_path / "d.csv").exists()


def test_build_tables_both(tmp_path):
    from vaiseg.config import ALL_MODELS
    from vaiseg.reporting.tables import build_tables

    m = {k: write_metrics(tmp_path / f"{k}.json", CM) for k in ALL_MODELS}
    out = {f"{t}_{e}": tmp_path / f"{t}.{e}" for t in ("table1", "table2") for e in ("csv", "md", "tex")}
    out |= {f"{t}_extended": tmp_path / f"{t}_extended.csv" for t in ("table1", "table2")}
    frames = build_tables(m, out)
    assert list(frames["table2"]["method"]) == ["PB+FCN", "PB+FCN-MFB", "FCN+FCN-MFB", "ALL"]
    assert all(p.is_file() for p in out.values())
    del m["ALL"]
    with pytest.raises(DataError, match="ALL"):
        build_tables(m, {k: tmp_path / "again" / p.name for k, p in out.items()})
