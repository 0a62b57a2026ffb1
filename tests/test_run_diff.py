"""Two runs' tables cell by cell with paired bootstrap intervals (vaiseg.reporting.run_diff),
on hand-made run folders; the cells against the tiny run's own Tables 1-2 in test_pipeline.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaiseg.classes import CAR, IGNORE, KEYS, N_CLASSES, SCORED
from vaiseg.config import ALL_MODELS
from vaiseg.errors import DataError
from vaiseg.metrics import confusion_matrix, read_label_raster, scores
from vaiseg.raster import write_raster
from vaiseg.reporting.comparisons import CELL_METRICS, metric_values
from vaiseg.reporting.run_diff import COLUMNS, main, run_diff, summary
from vaiseg.reporting.tables import table_row

from test_comparisons import AREAS, make_tree  # noqa: E402

CONFIG = {"data": {"areas": {"train": [1], "val": list(AREAS)}}}


def make_run(root: Path, seed: int = 0) -> Path:
    """A finished run's folder: provenance.json with its config, the eroded GT and every
    method's predictions of the validation areas (test_comparisons.make_tree)."""
    make_tree(root, seed)
    (root / "provenance.json").write_text(json.dumps({"config": CONFIG}))
    return root


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run_a"))


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def one_area_run(src: Path, dst: Path) -> Path:
    """A copy of a run whose config validates on its first area only."""
    copy_run(src, dst)
    (dst / "provenance.json").write_text(json.dumps({"config": {"data": {"areas": {"train": [1], "val": [AREAS[0]]}}}}))
    return dst


def pooled(root: Path, method: str) -> np.ndarray:
    return sum(
        confusion_matrix(read_label_raster(root / "data" / str(a) / "labels_eroded.tif"),
                         read_label_raster(root / "predictions" / method / str(a) / "labels.tif"))
        for a in AREAS
    )


def test_metric_values_are_the_tables_formulas():
    """Every F1/OA cell metric, vectorised over matrices, equals scores() (percent) — a
    class absent from a matrix gives NaN and is left out of avg_f1, as scores() does."""
    rng = np.random.default_rng(3)
    cms = rng.integers(0, 30, (6, N_CLASSES, N_CLASSES))
    cms[2, CAR, :] = 0
    cms[2, :, CAR] = 0  # car neither true nor predicted: car F1 undefined
    assert set(CELL_METRICS) == {f"{KEYS[c]}_f1" for c in SCORED} | {"avg_f1", "overall_acc"}
    for metric in CELL_METRICS:
        got = metric_values(cms, metric)
        for i, cm in enumerate(cms):
            want = scores(cm)[metric]
            if want is None:
                assert np.isnan(got[i]), (metric, i)
            else:
                assert got[i] == pytest.approx(100 * want, abs=1e-9), (metric, i)


def test_metric_values_by_hand():
    """Worked by hand: 2x2 classes in the corner of a 6x6 matrix."""
    cm = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    cm[0, 0], cm[0, 1], cm[1, 1] = 6, 2, 2  # impervious: TP 6, FN 2; building: TP 2, FP 2
    assert metric_values(cm, "imp_surf_f1") == pytest.approx(100 * 12 / 14)
    assert metric_values(cm, "building_f1") == pytest.approx(100 * 4 / 6)
    assert metric_values(cm, "avg_f1") == pytest.approx(100 * (12 / 14 + 4 / 6) / 2)  # other classes undefined
    assert metric_values(cm, "overall_acc") == pytest.approx(80.0)
    assert np.isnan(metric_values(cm, "car_f1"))


def test_a_run_against_itself(run_a, tmp_path):
    """A copy of a run: every cell the same (its table cell), every difference and interval 0."""
    b = copy_run(run_a, tmp_path / "b")
    df = run_diff(run_a, b, block=32, samples=200)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(ALL_MODELS) * len(CELL_METRICS) == 49
    for m in ALL_MODELS:
        row = table_row(m, pooled(run_a, m))
        got = df[df["method"] == m].set_index("metric")
        for metric in CELL_METRICS:
            assert got.loc[metric, "a_value"] == row[metric] == got.loc[metric, "b_value"]
    assert (df["difference"] == 0).all() and (df["ci_low"] == 0).all() and (df["ci_high"] == 0).all()
    assert (df["supports"] == "no difference shown").all() and not df["beyond_tolerance"].any()
    assert summary(df)["beyond_tolerance"] == 0


def test_a_worse_network_is_shown(run_a, tmp_path):
    """Run b's FCN misses every car (called impervious surface): FCN's car F1 falls to 0,
    the interval lies above 0, the cell is beyond the tolerance; the other methods' cells
    do not move."""
    b = copy_run(run_a, tmp_path / "b")
    for a in AREAS:
        p = b / "predictions" / "FCN" / str(a) / "labels.tif"
        lab = read_label_raster(p)
        write_raster(p, np.where(lab == CAR, 0, lab).astype(np.uint8))
    df = run_diff(run_a, b, block=32, samples=300).set_index(["method", "metric"])
    car = df.loc[("FCN", "car_f1")]
    assert car["b_value"] == 0 and car["difference"] == car["a_value"] > 2
    assert car["ci_low"] > 0 and car["supports"] == "a > b" and car["beyond_tolerance"]
    assert df.loc[("FCN", "imp_surf_f1"), "difference"] > 0  # its cars became false impervious
    others = df.drop(index="FCN", level="method")
    assert (others["difference"] == 0).all()
    s = summary(df.reset_index())
    assert s["beyond_tolerance"] >= 1 and s["beyond_and_shown"] >= 1


def test_seed_folders_and_cli(run_a, tmp_path, capsys):
    """A seed's folder of a multi-seed run (results/seeds/<s>) is a run; the CLI writes
    <out>.csv and <out>.md and prints the Markdown."""
    b = copy_run(run_a, tmp_path / "b")
    seed_dir = b / "seeds" / "1"
    seed_dir.mkdir(parents=True)
    shutil.move(str(b / "predictions"), seed_dir / "predictions")
    out = tmp_path / "out" / "a_vs_b"
    assert main([str(run_a), str(seed_dir), "--out", str(out), "--block", "32", "--samples", "100"]) == 0
    printed = capsys.readouterr().out
    assert "**0 of 49 F1/OA cells differ by more than 2 points**" in printed
    assert (out.parent / "a_vs_b.md").read_text() == printed
    df = pd.read_csv(out.parent / "a_vs_b.csv")
    assert list(df.columns) == list(COLUMNS) and len(df) == 49


def test_cli_as_module_reports_bad_input(tmp_path):
    """`python -m vaiseg.reporting.run_diff` on a folder that is not a run: exit 2, the
    path and the problem on stderr, nothing written."""
    r = subprocess.run([sys.executable, "-m", "vaiseg.reporting.run_diff", str(tmp_path), str(tmp_path),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2
    assert str(tmp_path) in r.stderr and "no provenance.json" in r.stderr
    assert not list(tmp_path.iterdir())


def test_runs_on_other_data_are_refused(run_a, tmp_path):
    """Another eroded GT, other validation areas or a missing prediction: DataError naming the file."""
    b = copy_run(run_a, tmp_path / "b")
    gt = b / "data" / str(AREAS[1]) / "labels_eroded.tif"
    lab = read_label_raster(gt)
    lab[0, 0] = IGNORE if lab[0, 0] != IGNORE else 0
    write_raster(gt, lab)
    with pytest.raises(DataError, match="differs from") as e:
        run_diff(run_a, b, block=32, samples=10)
    assert e.value.path == gt

    c = one_area_run(run_a, tmp_path / "c")
    with pytest.raises(DataError, match="validation areas"):
        run_diff(run_a, c, block=32, samples=10)

    d = copy_run(run_a, tmp_path / "d")
    missing = d / "predictions" / "ALL" / str(AREAS[0]) / "labels.tif"
    missing.unlink()
    with pytest.raises(DataError, match="prediction of ALL") as e:
        run_diff(run_a, d, block=32, samples=10)
    assert e.value.path == missing

    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "provenance.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read the run's config"):
        run_diff(tmp_path / "e", run_a)


def test_cli_takes_the_runs_bootstrap_settings(tmp_path, capsys):
    """Without --block/--samples/--confidence the CLI uses run a's report.bootstrap (those
    of its comparisons table); an option given overrides one of them."""
    a = make_run(tmp_path / "a")
    config = {**CONFIG, "report": {"bootstrap": {"block": 32, "samples": 150, "confidence": 0.9}}}
    (a / "provenance.json").write_text(json.dumps({"config": config}))
    assert main([str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert "150 resamples (seed 0) of the 12 blocks of 32 px" in out and "(their 90 % interval" in out
    assert main([str(a), str(a), "--samples", "120"]) == 0
    assert "120 resamples (seed 0) of the 12 blocks of 32 px" in capsys.readouterr().out


def make_reference(run: Path, dst: Path, block: int = 32) -> Path:
    """A reference folder (as docs/reference): the run's per-block matrices only."""
    from vaiseg.reporting.comparisons import load_blocks, write_block_confusions

    labels = {m: {a: run / "predictions" / m / str(a) / "labels.tif" for a in AREAS} for m in ALL_MODELS}
    eroded = {a: run / "data" / str(a) / "labels_eroded.tif" for a in AREAS}
    conf, index = load_blocks(labels, eroded, block)
    dst.mkdir(parents=True)
    write_block_confusions(conf, index, block, dst / "block_confusions.csv")
    return dst


def test_a_reference_folder_stands_for_its_run(run_a, tmp_path, capsys):
    """A reference folder on either side gives the cells and intervals of the run it was
    made from: the same frame as run against run, without the reference's rasters."""
    b = copy_run(run_a, tmp_path / "b")
    for a in AREAS:  # run b's FCN misses every car
        p = b / "predictions" / "FCN" / str(a) / "labels.tif"
        lab = read_label_raster(p)
        write_raster(p, np.where(lab == CAR, 0, lab).astype(np.uint8))
    ref = make_reference(run_a, tmp_path / "ref")
    want = run_diff(run_a, b, block=32, samples=300)
    pd.testing.assert_frame_equal(run_diff(ref, b, block=32, samples=300), want)
    pd.testing.assert_frame_equal(run_diff(b, ref, block=32, samples=300),
                                  run_diff(b, run_a, block=32, samples=300))
    # the CLI: the bootstrap settings from the run's config (no config in a reference folder)
    assert main([str(ref), str(b), "--block", "32", "--samples", "300"]) == 0
    assert "the validation blocks show a difference for" in capsys.readouterr().out


def test_a_reference_of_other_data_is_refused(run_a, tmp_path):
    ref = make_reference(run_a, tmp_path / "ref")
    with pytest.raises(DataError, match="blocks of 32 px, but 16 px"):
        run_diff(ref, run_a, block=16, samples=10)
    other = make_run(tmp_path / "other", seed=5)  # other ground truth, same areas
    with pytest.raises(DataError, match="not made on the same data") as e:
        run_diff(ref, other, block=32, samples=10)
    assert e.value.path == other
    c = one_area_run(run_a, tmp_path / "c")
    with pytest.raises(DataError, match="other validation blocks"):
        run_diff(ref, c, block=32, samples=10)
