"""benchmarks/fcn_bands.py on the tiny run: the run's FCN retrained on subsets of its bands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT
from vaiseg.models import load_model

SCRIPT = ROOT / "benchmarks" / "fcn_bands.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import fcn_bands  # noqa: E402

pytestmark = pytest.mark.slow


def test_all_five_bands_retrain_the_runs_fcn_and_a_subset_its_own(tiny_local_run, tmp_path):
    """With the run's thread count (Snakemake's all cores, at most the rule's 8) the five
    bands give the run's own FCN cells exactly; IR-R-G + nDSM trains a four-band FCN."""
    results = tiny_local_run / "results"
    threads = min(8, len(os.sched_getaffinity(0)))
    out = tmp_path / "bands.csv"
    r = subprocess.run([sys.executable, str(SCRIPT), "--run", str(results), "--bands", "0,1,2,3,4", "0,1,2,4",
                        "--work", str(tmp_path / "work"), "--out", str(out), "--threads", str(threads)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    df = pd.read_csv(out)
    assert list(df.bands) == ["IR+R+G+DSM+nDSM", "IR+R+G+nDSM"] and set(df.seed) == {0}
    own = json.loads((results / "metrics" / "FCN.json").read_text())["eroded"]["pooled"]
    five = df.iloc[0]
    for key in ("overall_acc", "avg_f1", "car_f1", "imp_surf_f1"):
        assert five[key] == pytest.approx(100 * own[key], abs=0.006), key
    net, meta = load_model(tmp_path / "work" / "bands0124_seed0" / "model.pt")
    assert net.in_channels == 4 and list(meta["bands"]) == [0, 1, 2, 4]
    assert df.train_s.notna().all()
    # a rerun keeps the models: scored again, not trained (no time)
    r = subprocess.run([sys.executable, str(SCRIPT), "--run", str(results), "--bands", "0,1,2,4",
                        "--work", str(tmp_path / "work"), "--out", str(out), "--threads", str(threads)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and pd.read_csv(out).train_s.isna().all()


@pytest.mark.parametrize("text", ["0,1,5", "2,1", "0,0,1", "", "a,b"])
def test_bad_band_sets_are_config_errors(text):
    from vaiseg.errors import ConfigError

    with pytest.raises(ConfigError, match="band indices 0..4"):
        fcn_bands.parse_bands(text)
    assert fcn_bands.parse_bands("0,1,2,4") == (0, 1, 2, 4)
