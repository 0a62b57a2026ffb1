"""End to end: the whole DAG on tests/config/tiny.yaml, checked against the output
contract of ARCHITECTURE.md (paths, CSV columns, value ranges)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, TINY_CONFIG
from vaiseg.classes import IGNORE, N_CLASSES
from vaiseg.config import FUSIONS, MODELS
from vaiseg.raster import read_raster

pytestmark = pytest.mark.slow

TABLE_COLUMNS = [
    "method", "imp_surf_f1", "imp_surf_acc", "building_f1", "building_acc", "low_veg_f1",
    "low_veg_acc", "tree_f1", "tree_acc", "car_f1", "car_acc", "avg_f1", "overall_acc",
]
CFG = yaml.safe_load(TINY_CONFIG.read_text())
AREAS = CFG["data"]["areas"]["train"] + CFG["data"]["areas"]["val"]
VAL = CFG["data"]["areas"]["val"]


def test_lint_is_clean():
    r = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", str(TINY_CONFIG)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Lints for" not in out, out


def test_data_contract(tiny_local_run):
    res = tiny_local_run / "results"
    for a in AREAS:
        img, geo = read_raster(res / f"data/{a}/image.tif")
        assert img.shape[0] == 5 and img.dtype == np.float32 and np.isfinite(img).all()
        lab, geo_l = read_raster(res / f"data/{a}/labels.tif")
        ero, _ = read_raster(res / f"data/{a}/labels_eroded.tif")
        assert lab.dtype == np.uint8 and lab.max() < N_CLASSES
        assert set(np.unique(ero)) <= set(range(N_CLASSES)) | {IGNORE}
        assert (ero == IGNORE).any(), "eroded GT must mark boundaries"
        keep = ero[0] != IGNORE
        assert (ero[0][keep] == lab[0][keep]).all()
        assert geo.transform == geo_l.transform


def test_prediction_contract(tiny_local_run):
    res = tiny_local_run / "results"
    for m in (*MODELS, *FUSIONS):
        for a in VAL:
            probs, _ = read_raster(res / f"predictions/{m}/{a}/probs.tif")
            labels, _ = read_raster(res / f"predictions/{m}/{a}/labels.tif")
            assert probs.shape[0] in (5, 6)
            assert probs.shape[1:] == labels.shape[1:]
            assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1 + 1e-5
            assert labels.max() < N_CLASSES
            if m in MODELS:
                np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-3)
                unc, _ = read_raster(res / f"predictions/{m}/{a}/uncertainty.tif")
                assert unc.shape[1:] == labels.shape[1:] and (unc >= 0).all() and (unc <= 0.5 + 1e-6).all()
                # argmax of the mean softmax
                want = np.argmax(probs, axis=0)
                assert (labels[0] == want).mean() > 0.999


def test_tables_and_diff_contract(tiny_local_run):
    res = tiny_local_run / "results"
    for name, rows in (("table1", list(MODELS)), ("table2", list(FUSIONS))):
        df = pd.read_csv(res / f"tables/{name}.csv")
        assert list(df.columns) == TABLE_COLUMNS
        assert list(df["method"]) == rows
        vals = df[TABLE_COLUMNS[1:]].to_numpy(float)
        assert np.nanmin(vals) >= 0 and np.nanmax(vals) <= 100
        f1 = df[[c for c in TABLE_COLUMNS if c.endswith("_f1") and c != "avg_f1"]].to_numpy(float)
        np.testing.assert_allclose(df["avg_f1"], f1.mean(1), atol=0.011)
        for ext in ("md", "tex"):
            assert (res / f"tables/{name}.{ext}").stat().st_size > 0
    diff = pd.read_csv(res / "paper_diff.csv")
    assert len(diff) == 7 * 12  # every table cell of both tables
    assert "synthetic" in (res / "paper_diff.md").read_text().lower()


def test_uncertainty_curve_contract(tiny_local_run):
    res = tiny_local_run / "results"
    df = pd.read_csv(res / "figures/accuracy_vs_uncertainty.csv")
    assert list(df.columns) == ["model", "threshold", "kept_fraction", "overall_acc"]
    assert set(df["model"]) == set(MODELS)
    for _, g in df.groupby("model"):
        assert len(g) >= 101
        assert g["threshold"].min() == 0 and g["threshold"].max() == 1
        assert np.all(np.diff(g["kept_fraction"].to_numpy()) >= -1e-12)
        assert g["kept_fraction"].iloc[-1] == pytest.approx(1.0)
    assert (res / "figures/accuracy_vs_uncertainty.png").stat().st_size > 1000
