"""Tables 1-2 and the paper diff (vaiseg.reporting.tables / .paper_diff), from
hand-made confusion matrices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaiseg.errors import DataError
from vaiseg.reporting.paper_diff import (
    F1_COLUMNS,
    build_paper_diff,
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
    d = repo_root.parent / "shared" / "paper"
    if not (d / "paper_results.csv").is_file():
        pytest.skip("../shared/paper not available")
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
    # the paper's own numbers satisfy its findings
    assert "| MFB raises car F1 (FCN-MFB vs FCN) | yes |" in md
    assert "each of its members) | yes |" in md


def test_findings_answer_no_and_curve():
    ours = pd.DataFrame(
        {"car_f1": [50.0, 40.0, 0, 0, 0, 0, 0], "overall_acc": [80.0, 85.0, 84.0, 84.0, 86.0, 86.0, 86.0]},
        index=["PB", "FCN", "FCN-MFB", "PB+FCN", "PB+FCN-MFB", "FCN+FCN-MFB", "ALL"],
    )
    t = np.linspace(0, 1, 5)
    curve = pd.concat([
        pd.DataFrame(dict(model="FCN", threshold=t, kept_fraction=t, overall_acc=[np.nan, 0.99, 0.95, 0.9, 0.85])),
        pd.DataFrame(dict(model="PB", threshold=t, kept_fraction=t, overall_acc=[0.5, 0.6, 0.7, 0.8, 0.9])),
    ])
    f = {x["finding"]: x["ours"] for x in qualitative_findings(ours, curve, {"FCN": {"mean_uncertainty_correct": 0.1, "mean_uncertainty_error": 0.3}})}
    assert f["MFB raises car F1 (FCN-MFB vs FCN)"] == "no"
    assert f["Fusion raises overall accuracy (each fusion > each of its members)"] == "no"  # PB+FCN 84 < 85
    assert f["FCN: accuracy falls as the uncertainty threshold rises"] == "yes"
    assert f["PB: accuracy falls as the uncertainty threshold rises"] == "no"
    assert f["FCN: uncertainty is higher on errors"] == "yes"


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
