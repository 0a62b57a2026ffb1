"""The `realism` target (issue 11) on the tiny config: the yardstick and the sim-to-real
check run by Snakemake. Not part of `all`; without a real reference it stops with one
message saying what to configure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, snakemake_log_tail, snakemake_tiny
from vaiseg.classes import KEYS, N_CLASSES
from vaiseg.raster import read_raster

pytestmark = pytest.mark.slow

REAL = ROOT.parent / "shared" / "real_samples"
CROP = {"irrg": str(REAL / "vaihingen_area1_0_0_512_irrg.png"), "labels": str(REAL / "vaihingen_area1_0_0_512_label.png")}


def test_realism_without_reference_says_what_to_configure(tiny_local_run):
    missing = {"reference": {"crop": {"irrg": "/nonexistent/irrg.png", "labels": "/nonexistent/label.png"}}}
    r = snakemake_tiny(tiny_local_run, "realism", config={"realism": missing})
    assert r.returncode != 0
    log = (tiny_local_run / "logs" / "realism" / "realism.log").read_text()
    assert "/nonexistent/irrg.png" in log and "realism.reference.crop.irrg" in log and "Traceback" not in log
    assert not (tiny_local_run / "results" / "realism" / "summary.json").exists()


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_samples (real Vaihingen crop) is absent")
def test_realism_target_on_the_real_crop(tiny_local_run):
    # two sim-to-real seeds: one IR-R-G FCN each, the headline their mean +- std
    r = snakemake_tiny(tiny_local_run, "realism", config={"realism": {"reference": {"crop": CROP}, "seeds": [0, 1]}})
    assert r.returncode == 0, snakemake_log_tail(tiny_local_run)
    out = tiny_local_run / "results" / "realism"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("sim_to_real_oa", "sim_to_real_avg_f1", "boundary_fraction_synthetic", "boundary_fraction_real",
                "boundary_fraction_real_at_synthetic_mix", "boundary_fraction_synthetic_at_real_mix"):
        assert key in summary, key
    assert 0 <= summary["sim_to_real_oa"] <= 100
    per_seed = summary["sim_to_real_seeds"]
    assert [p["seed"] for p in per_seed] == [0, 1] and "sim_to_real_oa_std" in summary
    assert summary["sim_to_real_oa"] == pytest.approx(np.mean([p["sim_to_real_oa"] for p in per_seed]))
    for seed in (0, 1):
        assert (out / "fcn_irrg" / f"seed{seed}" / "model.pt").is_file()
    assert 0.07 < summary["boundary_fraction_real"] < 0.09  # the crop: 8 % ignored
    pred, _ = read_raster(out / "real_crop_pred.tif")
    assert pred.shape == (1, 512, 512) and pred.dtype == np.uint8 and pred.max() < N_CLASSES
    for name in ("realism.csv", "realism.md", "realism.png", "real_cars.csv"):
        assert (out / name).stat().st_size > 0
    # the crop's cars, one row each; three are black cars in the building's shadow, within
    # 3 DN of the asphalt around them and without structure (docs/realism.md)
    cars = pd.read_csv(out / "real_cars.csv")
    assert len(cars) == summary["sim_to_real_cars_n"] == 12
    assert ((cars.contrast.abs() < 3) & (cars.brightness_std < 2.5)).sum() == 3
    assert list(cars.columns[-4:]) == ["recall_seed0", "recall_seed1", "recall", "found"]
    # the same FCNs on the tiny run's validation areas, and the gap to the crop in realism.md
    assert 0 <= summary["sim_to_real_in_domain_oa"] <= 100 and "sim_to_real_in_domain_oa_std" in summary
    assert summary["sim_to_real_in_domain_areas"] and "| car F1 |" in (out / "realism.md").read_text()
    assert "band rate syn / real" in (out / "realism.md").read_text()  # the boundary split by class
    # class separability of the real crop (image only): its low vegetation and trees look alike
    assert 0.75 < summary["separability_low_veg_vs_tree_real"] < 0.95
    a, b = summary["separability_auc_gap_max_at"].split("/")
    assert {a, b} <= set(KEYS[:5]) and a != b
    assert "## Class separability from the image alone" in (out / "realism.md").read_text()
    assert not (tiny_local_run / "results" / "tables" / "realism.csv").exists()
