"""Paired bootstrap comparisons of the paper's claims (vaiseg.reporting.comparisons) on
hand-made rasters and block confusion matrices, and the comparisons rule by Snakemake."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaiseg.classes import CAR, IGNORE, N_CLASSES
from vaiseg.config import ALL_MODELS, FUSIONS
from vaiseg.errors import ConfigError, DataError
from vaiseg.metrics import confusion_matrix, evaluate_model, scores, write_metrics
from vaiseg.raster import write_raster
from vaiseg.reporting.comparisons import (
    COLUMNS,
    best_member,
    block_confusions,
    block_grid,
    claim_specs,
    compare,
    comparisons,
    load_block_confusions,
    metric_values,
    resample_counts,
    to_markdown,
    write_comparisons,
)
from vaiseg.reporting.tables import load_confusion, table_row

K = N_CLASSES
AREAS = (11, 30)
H, W = 70, 90  # block 32: 3 x 3 blocks per area (edge blocks 6 or 26 px wide)


def make_tree(root: Path, seed: int = 0):
    """results/data/{area}/labels_eroded.tif (+ labels.tif) and predictions of every
    model: the truth with a model-dependent error rate (cars common enough for car F1)."""
    rng = np.random.default_rng(seed)
    labels, eroded = {m: {} for m in ALL_MODELS}, {}
    err = {m: 0.05 + 0.04 * i for i, m in enumerate(ALL_MODELS)}
    for a in AREAS:
        gt = rng.integers(0, K, (H, W)).astype(np.uint8)
        er = gt.copy()
        er[::7, :] = IGNORE
        er[:, 64:] = IGNORE  # the last column of blocks (64..89) is all ignored: dropped
        write_raster(root / "data" / str(a) / "labels.tif", gt)
        write_raster(root / "data" / str(a) / "labels_eroded.tif", er)
        eroded[a] = root / "data" / str(a) / "labels_eroded.tif"
        for m in ALL_MODELS:
            wrong = rng.uniform(size=(H, W)) < err[m]
            lab = np.where(wrong, (gt + 1) % K, gt).astype(np.uint8)
            path = root / "predictions" / m / str(a) / "labels.tif"
            write_raster(path, lab)
            labels[m][a] = path
    return labels, eroded


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    labels, eroded = make_tree(root)
    return root, labels, eroded


def synthetic_blocks(n=20, seed=0, car_tp=50, car_err=5):
    """(n, K, K) block matrices: diagonal-heavy, with some car pixels in each block."""
    rng = np.random.default_rng(seed)
    cms = rng.integers(0, 5, (n, K, K)) + np.eye(K, dtype=np.int64) * 200
    cms[:, CAR, CAR] = car_tp
    cms[:, CAR, 0] = car_err
    return cms.astype(np.int64)


# (4) the block split, by hand
def test_block_grid_by_hand():
    grid = block_grid((5, 7), 3)
    assert len(grid) == 6
    sizes = [(r.stop - r.start, c.stop - c.start) for r, c in grid]
    assert sizes == [(3, 3), (3, 3), (3, 1), (2, 3), (2, 3), (2, 1)]
    assert sum(h * w for h, w in sizes) == 35
    gt = np.arange(35, dtype=np.uint8).reshape(5, 7) % K
    pred = gt.copy()
    pred[4, 6] = (pred[4, 6] + 1) % K  # one error, in the last (2 x 1) block
    cms = block_confusions(gt, pred, 3)
    assert cms.shape == (6, K, K)
    assert [int(c.sum()) for c in cms] == [9, 9, 3, 6, 6, 2]
    assert [int(c.sum() - np.trace(c)) for c in cms] == [0, 0, 0, 0, 0, 1]
    # each block's matrix is the matrix of its slice; their sum is the whole image's
    for (r, c), cm in zip(grid, cms):
        assert np.array_equal(cm, confusion_matrix(gt[r, c], pred[r, c]))
    assert np.array_equal(cms.sum(0), confusion_matrix(gt, pred))
    # ignored truth and unclassified predictions are not counted (ISPRS protocol)
    gt2, pred2 = gt.copy(), pred.copy()
    gt2[0, 0] = IGNORE
    pred2[0, 1] = IGNORE
    assert int(block_confusions(gt2, pred2, 3)[0].sum()) == 7


def test_block_confusions_errors():
    gt = np.zeros((4, 4), np.uint8)
    with pytest.raises(DataError, match="pred.tif.*differs from ground truth"):
        block_confusions(gt, np.zeros((4, 5), np.uint8), 2, pred_path="pred.tif", gt_path="gt.tif")
    bad = gt.copy()
    bad[0, 0] = 9
    with pytest.raises(DataError, match=r"prediction holds values \[9\].*pred.tif"):
        block_confusions(gt, bad, 2, pred_path="pred.tif", gt_path="gt.tif")
    with pytest.raises(ConfigError, match="block"):
        block_grid((4, 4), 0)


def test_shape_mismatch_names_the_file(tmp_path):
    write_raster(tmp_path / "gt.tif", np.zeros((8, 8), np.uint8))
    write_raster(tmp_path / "p.tif", np.zeros((8, 9), np.uint8))
    with pytest.raises(DataError, match=r"p\.tif.*differs from ground truth.*gt\.tif"):
        load_block_confusions({"FCN": {1: tmp_path / "p.tif"}}, {1: tmp_path / "gt.tif"}, 4)
    with pytest.raises(DataError, match="no prediction of FCN for area 2"):
        load_block_confusions({"FCN": {1: tmp_path / "p.tif"}}, {2: tmp_path / "gt.tif"}, 4)


# (1) point estimates on all blocks = the Table 1/2 cells
def test_point_estimates_equal_table_cells(tree, tmp_path):
    root, labels, eroded = tree
    conf = load_block_confusions(labels, eroded, 32)
    # 3 x 3 blocks per area, the last column all ignored -> 6 kept per area
    assert {c.shape for c in conf.values()} == {(12, K, K)}
    df = comparisons(labels, eroded, block=32, samples=200, confidence=0.95, seed=1)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 2 + 2 * len(FUSIONS)
    rows = {}
    for m in ALL_MODELS:
        r = evaluate_model([labels[m][a] for a in AREAS], [eroded[a] for a in AREAS],
                           [root / "data" / str(a) / "labels.tif" for a in AREAS], areas=list(AREAS))
        write_metrics(r, tmp_path / f"{m}.json")
        cm = load_confusion(tmp_path / f"{m}.json")
        assert np.array_equal(cm, conf[m].sum(0))  # blocks sum to the pooled matrix
        rows[m] = table_row(m, cm)
    for _, r in df.iterrows():
        assert r["a_value"] == rows[r["a"]][r["metric"]]
        assert r["b_value"] == rows[r["b"]][r["metric"]]
        assert r["difference"] == round(r["a_value"] - r["b_value"], 2)
        assert r["ci_low"] <= r["ci_high"]
        assert r["n_blocks"] == 12 and r["n_boot"] == 200 and r["confidence"] == 0.95
    # the vectorised metric is the one of vaiseg.metrics.scores (unrounded)
    for m in ALL_MODELS:
        s = scores(conf[m].sum(0))
        assert metric_values(conf[m].sum(0), "overall_acc") == pytest.approx(100 * s["overall_acc"], rel=1e-14)
        assert metric_values(conf[m].sum(0), "car_f1") == pytest.approx(100 * s["car_f1"], rel=1e-14)
    # PB (error 5 %) beats every other model (higher errors) on every block's car F1
    assert df.loc[df["claim"] == "PB vs FCN", "supports"].item() == "a > b"


# (2) identical methods: difference 0, interval [0, 0]
def test_identical_methods_give_zero_interval():
    cms = synthetic_blocks()
    conf = {m: cms for m in ALL_MODELS}
    df = compare(conf, samples=300, seed=0)
    assert (df["difference"] == 0).all()
    assert (df["ci_low"] == 0).all() and (df["ci_high"] == 0).all()
    assert (df["supports"] == "no difference shown").all()
    assert (df["n_boot"] == 300).all()


# (3) better on every block: the interval excludes 0 with the right sign
def test_better_on_every_block_excludes_zero():
    good = synthetic_blocks()
    bad = good.copy()
    bad[:, CAR, CAR] -= 20  # 20 car pixels per block predicted as building
    bad[:, CAR, 1] += 20
    bad[:, 2, 2] -= 30  # and 30 low-vegetation pixels as tree
    bad[:, 2, 3] += 30
    specs = [("x", "car_f1", "good", ("bad",)), ("y", "car_f1", "bad", ("good",)),
             ("z", "overall_acc", "good", ("bad",))]
    df = compare({"good": good, "bad": bad}, samples=500, seed=3, specs=specs).set_index("claim")
    assert df.loc["x", "supports"] == "a > b" and df.loc["x", "ci_low"] > 0
    assert df.loc["y", "supports"] == "a < b" and df.loc["y", "ci_high"] < 0
    assert df.loc["z", "supports"] == "a > b" and df.loc["z", "difference"] > 0
    assert df.loc["x", "ci_low"] <= df.loc["x", "difference"] <= df.loc["x", "ci_high"]


# (5) determinism
def test_deterministic_for_a_seed():
    rng = np.random.default_rng(7)
    conf = {m: synthetic_blocks(seed=int(rng.integers(1000))) for m in ALL_MODELS}
    a = compare(conf, samples=400, seed=11)
    b = compare(conf, samples=400, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = compare(conf, samples=400, seed=12)
    assert not a[["ci_low", "ci_high"]].equals(c[["ci_low", "ci_high"]])
    counts = resample_counts(20, 50, 5)
    assert counts.shape == (50, 20) and (counts.sum(1) == 20).all()
    assert np.array_equal(counts, resample_counts(20, 50, 5))


# (6) the best member
def test_best_member_picks_the_higher_member():
    good = synthetic_blocks()
    worse_car = good.copy()
    worse_car[:, CAR, CAR] -= 20
    worse_car[:, CAR, 1] += 20
    worse_oa = good.copy()  # better car F1 than `good`, worse overall accuracy
    worse_oa[:, CAR, 0] = 0
    worse_oa[:, CAR, CAR] += 5
    worse_oa[:, 2, 2] -= 60
    worse_oa[:, 2, 3] += 60
    conf = {"PB": worse_car, "FCN": good, "FCN-MFB": worse_oa}
    assert best_member(conf, ["PB", "FCN", "FCN-MFB"], "overall_acc") == "FCN"
    assert best_member(conf, ["PB", "FCN", "FCN-MFB"], "car_f1") == "FCN-MFB"
    assert best_member(conf, ["PB", "FCN"], "car_f1") == "FCN"
    assert best_member({"PB": good, "FCN": good}, ["PB", "FCN"], "car_f1") == "PB"  # tie: first
    fusions = {"ALL": ("PB", "FCN", "FCN-MFB")}
    conf["ALL"] = good
    df = compare(conf, samples=100, seed=0, specs=claim_specs(fusions)).set_index(["claim", "metric"])
    assert df.loc[("fusion vs best member", "overall_acc"), "b"] == "FCN"
    assert df.loc[("fusion vs best member", "car_f1"), "b"] == "FCN-MFB"
    assert df.loc[("MFB vs no MFB", "car_f1"), ["a", "b"]].tolist() == ["FCN-MFB", "FCN"]


def test_undefined_car_f1_resamples_are_dropped():
    cms = synthetic_blocks(n=10)
    conf = {m: cms.copy() for m in ALL_MODELS}
    # only block 0 has car pixels (true or predicted) for every method
    for c in conf.values():
        c[1:, CAR, :] = 0
        c[1:, :, CAR] = 0
    df = compare(conf, samples=1000, seed=0)
    car = df[df["metric"] == "car_f1"]
    # a resample misses block 0 with probability (9/10)**10 ~ 0.35
    assert (car["n_boot"] < 1000).all() and (car["n_boot"] > 500).all()
    assert (df.loc[df["metric"] == "overall_acc", "n_boot"] == 1000).all()
    # no car anywhere: nothing left, NaN interval
    for c in conf.values():
        c[:, CAR, :] = 0
        c[:, :, CAR] = 0
    df = compare(conf, samples=100, seed=0)
    car = df[df["metric"] == "car_f1"]
    assert (car["n_boot"] == 0).all() and car["ci_low"].isna().all() and car["a_value"].isna().all()
    assert (car["supports"] == "no difference shown").all()


def test_config_errors_and_missing_methods():
    conf = {m: synthetic_blocks() for m in ALL_MODELS}
    with pytest.raises(ConfigError, match="confidence"):
        compare(conf, confidence=1.0)
    with pytest.raises(ConfigError, match="samples"):
        compare(conf, samples=0)
    with pytest.raises(DataError, match="no predictions for"):
        compare({"FCN": conf["FCN"]}, samples=10)


def test_fast_enough():
    """2000 resamples x 7 methods, 100 blocks: well under a few seconds."""
    conf = {m: synthetic_blocks(n=100, seed=i) for i, m in enumerate(ALL_MODELS)}
    t = time.perf_counter()
    df = compare(conf, samples=2000, seed=0)
    assert time.perf_counter() - t < 3
    assert len(df) == 10


def test_written_files(tmp_path):
    conf = {m: synthetic_blocks(seed=i) for i, m in enumerate(ALL_MODELS)}
    df = compare(conf, samples=200, seed=4)
    write_comparisons(df, tmp_path / "c.csv", tmp_path / "c.md", block=256, samples=200, seed=4)
    back = pd.read_csv(tmp_path / "c.csv")
    assert list(back.columns) == list(COLUMNS)
    assert back["supports"].isin(["a > b", "a < b", "no difference shown"]).all()
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    md = (tmp_path / "c.md").read_text()
    assert "blocks of 256 px" in md and "percentile" in md and "includes 0" in md
    assert "not independent" in md and "optimistic" in md
    assert md.count("| fusion vs best member |") == 2 * len(FUSIONS)
    assert to_markdown(df, block=64).count("\n|") == len(df) + 2
    assert not list(tmp_path.glob(".*part*"))  # atomic writes leave no temporaries


@pytest.mark.slow
def test_comparisons_rule(tmp_path, repo_root):
    """The rule on a fake results tree, by Snakemake (one job, a few seconds)."""
    res = tmp_path / "results"
    make_tree(res)
    rules = repo_root / "workflow" / "rules"
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""\
        data:
          source: synthetic
          areas: {{train: [1], val: [{AREAS[0]}, {AREAS[1]}]}}
        report:
          paper_dir: {repo_root / 'paper'}
          bootstrap: {{block: 32, samples: 300, confidence: 0.9}}
        """))
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""\
        configfile: "config.yaml"
        include: "{rules / 'common.smk'}"
        include: "{rules / 'report.smk'}"
        include: "{rules / 'comparisons.smk'}"
        rule all:
            input: rules.comparisons.output
        """))
    snakemake = Path(sys.executable).parent / "snakemake"
    p = subprocess.run([str(snakemake), "--cores", "1", "--snakefile", "Snakefile", "--directory", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-4000:]
    df = pd.read_csv(res / "tables" / "comparisons.csv")
    assert list(df.columns) == list(COLUMNS) and len(df) == 10
    assert (df["n_blocks"] == 12).all() and (df["confidence"] == 0.9).all()
    assert "blocks of 32 px" in (res / "tables" / "comparisons.md").read_text()
    assert (tmp_path / "logs" / "comparisons" / "comparisons.log").exists()
    assert (res / "benchmarks" / "comparisons" / "comparisons.tsv").exists()
