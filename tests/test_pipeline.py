"""End to end: the whole DAG on tests/config/tiny.yaml, checked against the output
contract of ARCHITECTURE.md (paths, CSV columns, value ranges)."""

from __future__ import annotations

import os
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


def _planned_outputs(*config: str) -> list[str]:
    """Every output file of the tiny config's DAG (+ --config), from ``snakemake --summary``."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "--summary", "--configfile", str(TINY_CONFIG),
                        "--config", 'ablations={"retrain": ["fcn_dropout", "mfb_median"]}', *config],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    lines = r.stdout.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("output_file"))
    return [x.split("\t")[0] for x in lines[start + 1 :] if x.strip()]


def test_run_name_keeps_runs_apart():
    """run_name puts every output under results/<name>/ or resources/<name>/; without it
    the paths are the output contract's. Every log: and benchmark: of every rule goes
    through the run's roots too (logs(...), res("benchmarks/...")), checked in the rules."""
    paths = _planned_outputs("run_name=side")
    assert len(paths) > 100
    stray = [p for p in paths if not p.startswith(("results/side/", "resources/side/"))]
    assert not stray, stray[:10]
    default = _planned_outputs()
    assert "results/tables/table1.csv" in default and "results/tables/ablations.csv" in default
    assert not [p for p in default if p.startswith("results/side")]
    # the retrain ablations train FCNs of their own, apart from the run's
    assert "results/ablations/fcn_dropout/last_two_sets/models/FCN-MFB/model.pt" in default
    assert "results/ablations/mfb_median/without_clutter/mfb_weights.json" in default
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() in ("log:", "benchmark:"):
                want = ("logs(", "slogs(") if line.strip() == "log:" else ('res("benchmarks/', 'sres("benchmarks/')
                assert lines[i + 1].strip().startswith(want), f"{smk.name}:{i + 2}: {lines[i + 1].strip()}"


def test_seeds_give_per_seed_runs_and_tables_over_them(tmp_path):
    """seeds: [0, 1]: every CNN and fusion per seed under results/seeds/<seed>/, Tables 1-2
    (mean +- std) at the contract paths, the one-seed analyses on the first seed; one seed
    keeps the contract layout (test_run_name_keeps_runs_apart)."""
    extra = tmp_path / "seeds.yaml"
    extra.write_text("seeds: [3, 1]\n")
    r = subprocess.run([sys.executable, "-m", "snakemake", "--summary", "--configfile", str(TINY_CONFIG), str(extra)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    lines = r.stdout.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("output_file"))
    paths = {x.split("\t")[0] for x in lines[start + 1 :] if x.strip()}
    for seed in (3, 1):
        for m in MODELS:
            assert f"results/seeds/{seed}/models/{m}/model.pt" in paths
        for m in (*MODELS, *FUSIONS):
            assert f"results/seeds/{seed}/metrics/{m}.json" in paths
            assert f"results/seeds/{seed}/predictions/{m}/{VAL[0]}/labels.tif" in paths
        assert f"results/seeds/{seed}/tables/table1.csv" in paths and f"results/seeds/{seed}/patches/pb.npz" in paths
    assert not [p for p in paths if p.startswith(("results/models/P", "results/models/F", "results/predictions/", "results/metrics/"))]
    for f in ("tables/table1.csv", "tables/table2.md", "tables/convergence.csv", "paper_diff.md",
              "figures/accuracy_vs_uncertainty.csv", "tables/comparisons.csv", "tables/uncertainty_metrics.csv"):
        assert f"results/{f}" in paths, f
    assert "results/models/mfb_weights.json" in paths  # from the labels alone: one for all seeds


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


def test_nothing_comes_from_shared(tiny_local_run):
    """The tiny run used a copy of the project with nothing beside it (no ../shared, as on
    a user's machine) and the shipped paper numbers."""
    from conftest import repo_snapshot

    snap = repo_snapshot()
    assert sorted(p.name for p in snap.parent.iterdir()) == ["project"]
    cfg = yaml.safe_load((tiny_local_run / "tiny.yaml").read_text())
    assert "paper_dir" not in cfg.get("report", {})
    md = (tiny_local_run / "results" / "paper_diff.md").read_text()
    assert "86.65" in md  # FCN overall accuracy of the paper's Table 1, from paper/


def test_ablation_table(tiny_local_run):
    res = tiny_local_run / "results"
    df = pd.read_csv(res / "tables/ablations.csv")
    assert list(df.columns[:3]) == ["choice", "option", "method"] and set(TABLE_COLUMNS[1:]) <= set(df.columns)
    assert set(df["choice"]) == {"fusion_sample", "svm_training", "pb_border", "fig6_reading"}
    table2 = pd.read_csv(res / "tables/table2.csv").set_index("method")
    table1 = pd.read_csv(res / "tables/table1.csv").set_index("method")
    # the configured options reproduce Tables 1-2 cell for cell
    for choice in ("fusion_sample", "svm_training", "pb_border"):
        for _, r in df[(df.choice == choice) & df.configured].iterrows():
            want = table2 if r["method"] in FUSIONS else table1
            for col in TABLE_COLUMNS[1:]:
                a, b = r[col], want.loc[r["method"], col]
                assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=0.006), (choice, r["method"], col)
    # one validation area: the cross-fit option cannot run and says so
    assert df[df.option == "val_crossfit"]["note"].str.contains("two validation areas").all()
    assert len(df[df.choice == "fig6_reading"]) == 2 * len(MODELS)
    assert "## pb_border" in (res / "tables/ablations.md").read_text()


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


def test_paper_config_on_the_two_zips_most_users_have(tmp_path):
    """config/vaihingen.yaml end to end, unchanged but for CPU-size overrides in a second
    --configfile, on archives with the official names and layout in resources/download/
    (synthetic pixels: the real ones cannot be downloaded here), and only the two archives
    most users have: the main zip and the eroded ground truth. Checks the paper config's
    switches took effect: no COMPLETE GT fetched, unclassified PB border, the paper's
    fusion sample, the FCNs' Bayesian-SegNet dropout, the one-threshold Fig. 6 reading."""
    from conftest import repo_snapshot, snakemake_log_tail
    from vaiseg.data.layout import ARCHIVES
    from vaiseg.data.synthetic import write_archives
    from vaiseg.models import PB_PAD, load_model

    tiny = yaml.safe_load(TINY_CONFIG.read_text())
    synth = tiny["data"]["synthetic"]
    made = write_archives(tmp_path / "synthetic", AREAS, synth["height"], synth["width"], synth["seed"], progress=False)
    download = tmp_path / "resources" / "download"
    download.mkdir(parents=True)
    for key in ("top", "gt_eroded"):
        (download / ARCHIVES[key]).write_bytes(made[key].read_bytes())
    from vaiseg.data.archives import md5sum

    overrides = {  # the CPU sizes of the tiny config; md5: these are not the published zips
        "data": {"areas": tiny["data"]["areas"], "ndsm": tiny["data"]["ndsm"],
                 "isprs": {"archives": {"top": {"md5": md5sum(download / ARCHIVES["top"])}}}},
        "patches": {"fcn": tiny["patches"]["fcn"], "pb": {"car_rotations": 2}, "val_fraction": 0.1},
        "models": {"width": tiny["models"]["width"]},
        "train": {"amp": False, "workers": 0, **{m: {"epochs": 1, "batch_size": 8} for m in MODELS}},
        "infer": tiny["infer"] | {"pb_border": "none"},
        "fusion": {"samples": tiny["fusion"]["samples"]},
        "report": {"figure_area": VAL[0]},
    }
    (tmp_path / "cpu.yaml").write_text(yaml.safe_dump(overrides))
    snap = repo_snapshot()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(snap / "src"), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snap / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(snap / "config" / "vaihingen.yaml"), str(tmp_path / "cpu.yaml")]
    with open(tmp_path / "snakemake.out", "w") as out:
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=1800)
    assert r.returncode == 0, snakemake_log_tail(tmp_path)
    res = tmp_path / "results" / "vaihingen"
    assert not (tmp_path / "results" / "tables").exists()  # run_name: vaihingen
    fetched = sorted(p.name for p in (tmp_path / "resources" / "vaihingen" / "archives").iterdir())
    assert fetched == ["gt_eroded.zip", "top.zip"]
    for name in ("table1", "table2", "ablations"):
        assert (res / "tables" / f"{name}.csv").stat().st_size > 0
    pb, _ = read_raster(res / f"predictions/PB/{VAL[0]}/labels.tif")
    assert (pb[0, :PB_PAD] == IGNORE).all() and (pb[0, PB_PAD:-PB_PAD, PB_PAD:-PB_PAD] != IGNORE).all()
    net, meta = load_model(res / "models/FCN-MFB/model.pt")
    assert net.settings()["dropout_placement"] == "last_two_sets"
    abl = pd.read_csv(res / "tables/ablations.csv")
    conf = abl[abl.configured.astype(bool)]
    assert set(conf[conf.choice == "pb_border"]["option"]) == {"none"}
    assert set(conf[conf.choice == "fusion_sample"]["option"]) == {"natural"}
    assert set(conf[conf.choice == "fig6_reading"]["option"]) == {"one_threshold"}
    assert "one threshold (configured)" in (res / "paper_diff.md").read_text()


def test_run_sh_passes_targets_and_options():
    """./run.sh pipeline hands targets and options to Snakemake unchanged (a target after
    --resources would be read as a resource); profiles/default supplies the cores and gpu."""
    r = subprocess.run([str(ROOT / "run.sh"), "pipeline", "-n", "realism", "--config", "run_name=runsh"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "profiles/default" in out and "results/runsh/realism/summary.json" in out


def test_convergence_comparisons_and_failure_detection_tables(tiny_local_run):
    """Issue 12's tables on the tiny run: convergence per CNN, the paired bootstrap
    comparisons of the paper's claims, uncertainty as failure detection."""
    res = tiny_local_run / "results"
    conv = pd.read_csv(res / "tables/convergence.csv")
    assert list(conv["model"]) == list(MODELS) and (conv["evaluations"] == 4).all()
    assert set(conv["converged"]) <= {"yes", "no"}
    cmp_ = pd.read_csv(res / "tables/comparisons.csv")
    assert {"claim", "metric", "a", "b", "difference", "ci_low", "ci_high", "supports"} <= set(cmp_.columns)
    assert len(cmp_) == 2 + 2 * len(FUSIONS)
    assert ((cmp_["ci_low"] <= cmp_["difference"] + 1e-9) | cmp_["ci_low"].isna()).all()
    unc = pd.read_csv(res / "tables/uncertainty_metrics.csv")
    assert {"model", "measure", "auroc", "aupr", "aurc", "e_aurc", "pavpu"} <= set(unc.columns)
    assert len(unc) == len(MODELS) * 4
    vals = unc[["auroc", "aupr", "aurc", "e_aurc", "pavpu"]].to_numpy(float)
    assert np.nanmin(vals) >= 0 and np.nanmax(vals) <= 1
    assert (res / "figures/risk_coverage.png").stat().st_size > 1000
    diff = pd.read_csv(res / "paper_diff.csv")
    assert {"reference", "ours_minus_reference"} <= set(diff.columns)


def test_run_diff_reproduces_the_tables(tiny_local_run):
    """`python -m vaiseg.reporting.run_diff` of the tiny run against itself: its 49 cells
    are the F1/OA cells of the run's Tables 1-2, every difference 0."""
    res = tiny_local_run / "results"
    r = subprocess.run([sys.executable, "-m", "vaiseg.reporting.run_diff", str(res), str(res),
                        "--out", str(tiny_local_run / "self_diff"), "--samples", "200"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "**0 of 49 F1/OA cells differ by more than 2 points**" in r.stdout
    cells = pd.read_csv(tiny_local_run / "self_diff.csv").set_index(["method", "metric"])
    tables = pd.concat([pd.read_csv(res / f"tables/{t}.csv") for t in ("table1", "table2")]).set_index("method")
    for (method, metric), row in cells.iterrows():
        want = tables.loc[method, metric]
        assert (np.isnan(want) and np.isnan(row["a_value"])) or row["a_value"] == pytest.approx(want, abs=1e-9), (method, metric)
    assert (cells["difference"].fillna(0) == 0).all()


def test_the_tiny_run_as_its_own_reference(tiny_local_run, tmp_path):
    """The tiny run's Tables 1-2 and block_confusions.csv (comparisons rule) copied into a
    reference folder, as docs/reference holds the demo's: the paper diff of the run
    against it finds every cell reproduced with zero-width intervals, so the rule's block
    matrices are those of the run's tables."""
    from vaiseg.reporting.paper_diff import build_paper_diff, reference_verdict

    res = tiny_local_run / "results"
    ref = tmp_path / "reference"
    ref.mkdir()
    for name in ("table1.csv", "table2.csv", "block_confusions.csv"):
        (ref / name).write_bytes((res / "tables" / name).read_bytes())
    cells = build_paper_diff([res / "tables/table1.csv", res / "tables/table2.csv"], ROOT / "paper",
                             tmp_path / "d.md", tmp_path / "d.csv", source="synthetic", reference_dir=ref,
                             blocks_csv=res / "tables/block_confusions.csv", bootstrap={"samples": 200})
    judged = cells[cells["column"].str.endswith("_f1") | (cells["column"] == "overall_acc")]
    finite = np.isfinite(judged["ours"])
    assert finite.sum() > 0 and (judged.loc[finite, "reference_ci_low"] == 0).all()
    assert (judged.loc[finite, "reference_ci_high"] == 0).all()
    assert reference_verdict(cells)[0] is True
    assert "No intervals" not in (tmp_path / "d.md").read_text()
