"""benchmarks/more_validation.py on the tiny run: a run's networks scored on its own
validation area, with test areas of its town and on another town's areas."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from vaiseg.config import ALL_MODELS
from vaiseg.metrics import read_label_raster
from vaiseg.reporting.comparisons import CELL_METRICS

SCRIPT = ROOT / "benchmarks" / "more_validation.py"


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_a_run_against_itself_on_more_areas(tiny_local_run, tmp_path):
    """The tiny run under two names: the ``orig`` cells are its Tables 1-2, every
    difference is 0 on every set of areas, and ``wide`` and ``towns`` score the areas
    asked for (synthesized by the data stage in --work, not in the project)."""
    results = tiny_local_run / "results"
    work, out = tmp_path / "work", tmp_path / "mv.csv"
    r = _run("--work", work, "--run", f"a={results}", "--run", f"b={results}", "--town", 15,
             "--town-areas", 1, 3, "--test-areas", 2, "--threads", 1, "--out", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert not (ROOT / "resources" / "more_validation_15").exists()
    df = pd.read_csv(out)
    assert list(df["areas"].unique()) == ["orig", "wide", "towns"]
    assert set(df["pair"]) == {"a-b"} and len(df) == 3 * len(ALL_MODELS) * len(CELL_METRICS)
    both = df["a_value"].notna() & df["b_value"].notna()
    assert both.any() and (df.loc[both, "difference"] == 0).all() and (df["a_value"].isna() == df["b_value"].isna()).all()
    # orig: the run's own cells
    tables = pd.concat([pd.read_csv(results / "tables" / f"table{t}.csv") for t in (1, 2)]).set_index("method")
    orig = df[df["areas"] == "orig"]
    for _, row in orig.iterrows():
        method = row["a"].split(":", 1)[1]
        if pd.notna(row["a_value"]):
            assert row["a_value"] == pytest.approx(tables.loc[method, row["metric"]], abs=0.0051), (method, row["metric"])
    # the extra areas: 192 px, one 256-px block each; the test area of town 14, areas 1 and 3 of town 15
    blocks = df.groupby("areas")["n_blocks"].first()
    assert blocks["wide"] == blocks["orig"] + 1 and blocks["towns"] == 2
    for key in ("14_2", "15_1", "15_3"):
        gt = read_label_raster(work / "data" / key / "labels_eroded.tif")
        assert gt.shape == (192, 192)
        for m in ALL_MODELS:
            assert (work / "pred" / "a" / m / key / "labels.tif").is_file(), (m, key)
    assert "a-b" in r.stdout and "beyond 2 points" in r.stdout
    # a rerun scores again from the cached predictions
    again = _run("--work", work, "--run", f"a={results}", "--run", f"b={results}", "--town", 15,
                 "--town-areas", 1, 3, "--test-areas", 2, "--threads", 1, "--out", tmp_path / "again.csv")
    assert again.returncode == 0 and "0 areas inferred" in again.stdout
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), df)


def test_bad_arguments_are_refused(tmp_path):
    """One run, or a folder that is no finished run: exit 2 naming the problem, nothing written."""
    r = _run("--work", tmp_path / "w", "--run", f"a={tmp_path}", "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and "two or more" in r.stderr
    r = _run("--work", tmp_path / "w", "--run", f"a={tmp_path}", "--run", f"b={tmp_path}", "--out", tmp_path / "x.csv")
    assert r.returncode != 0 and "not a finished run" in r.stderr and str(tmp_path) in r.stderr
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "w").exists()
