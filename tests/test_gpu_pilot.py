"""benchmarks/gpu_pilot.sh (issue 13's GPU pilot) at CPU sizes: every step runs, the JSON
holds every section, and the sections read runs correctly. No speed assertions; the GPU
figures come from running it on a GPU (benchmarks/results/)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SNAPSHOT_PATHS, copy_project

ROOT = Path(__file__).resolve().parent.parent
PILOT = [sys.executable, str(ROOT / "benchmarks" / "gpu_pilot.py")]


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    """The whole script with TINY=1 (CPU sizes, tests/config/gpu_pilot_tiny.yaml), without
    the tiny DAG (tested below on the session's tiny run)."""
    tmp = tmp_path_factory.mktemp("gpu_pilot")
    # what the pilot needs of a clone, so that its results/ go to a temporary folder
    project = copy_project(tmp / "project", (*SNAPSHOT_PATHS, "benchmarks", "tests/config"))
    env = dict(os.environ, TINY="1", DAG="0", PILOT_SECONDS="3", SOLO_SECONDS="2", PYTHON=sys.executable, CORES="2",
               PYTHONPATH=str(project / "src"))
    proc = subprocess.run(["bash", str(project / "benchmarks" / "gpu_pilot.sh"), str(tmp / "out")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / "out" / "gpu_pilot.json").read_text()), proc, tmp, project


def test_every_step_ran(pilot):
    r, proc, tmp, project = pilot
    assert set(r["steps"]) == {"data", "bench", "pilot_PB", "pilot_FCN", "pilot_FCN-MFB", "mc", "solo_PB_step",
                               "solo_FCN_step", "solo_FCN_row"}
    assert all(s["rc"] == 0 for s in r["steps"].values()), r["steps"]
    assert (tmp / "out" / "gpu_pilot_logs.tar.gz").is_file()
    # the pilot's data came from the pipeline's rules, into the copy's results/
    assert (project / "results" / "gpu_pilot_tiny" / "patches" / "pb.npz").is_file()
    assert "config/vaihingen.yaml extrapolated" in proc.stdout


def test_bench_section(pilot):
    r = pilot[0]["bench"]
    c = r["ceilings"]
    assert all(c[k] > 0 for k in ("matmul_bf16_tflops", "matmul_tf32_tflops", "matmul_fp32_tflops", "copy_gb_per_s"))
    for model, batch in (("PB", 8), ("FCN", 4)):  # tests/config/gpu_pilot_tiny.yaml's batches
        v = r["train_variants"][model]
        assert v["batch"] == batch and v["gflop_per_sample"] > 0
        assert set(v["variants"]) == {f"{p}_{l}" for p in ("fp32", "default", "bf16") for l in ("nchw", "channels_last")}
        for x in v["variants"].values():
            assert x["samples_per_s"] > 0 and math.isclose(x["tflops"], x["samples_per_s"] * v["gflop_per_sample"] / 1e3)
            assert x["share_of_peak"] is None  # no GPU, no data-sheet peak
        assert v["fastest"] in v["variants"]
    assert r["machine"]["device"] == "cpu"


def test_pilot_histories(pilot):
    r = pilot[0]["pilot"]
    for model in ("PB", "FCN", "FCN-MFB"):
        p = r[model]
        assert p["model"] == model and p["train_samples"] > 0 and p["history"]
        h = p["history"]
        assert h[-1]["seconds"] >= 3 and all(math.isfinite(x["train_loss"]) for x in h) and p["finite"]
        assert [x["step"] for x in h] == sorted(x["step"] for x in h) and h[-1]["samples"] > 0
        assert isinstance(p["loss_fell"], bool) and len(p["train_loss_first_last"]) == 2
    assert r["PB"]["settings"]["optimizer"] == "sgd"  # the paper config's recipe, not the demo's
    assert r["FCN"]["settings"]["width"] == 0.0625  # over it, the tiny widths
    # alone, with the config's loader workers; the FCN also with its loss read back at rows only
    solo = pilot[0]["solo"]
    assert set(solo) == {"PB", "FCN", "FCN_readback_row"}
    assert solo["FCN"]["loss_readback"] == "step" and solo["FCN_readback_row"]["loss_readback"] == "row"
    assert all(p["workers"] == 0 and p["finite"] and p["steady_samples_per_s"] > 0 for p in solo.values())


def test_mc_section(pilot):
    m = pilot[0]["mc"]
    assert m["T"] == 3 and m["shape"] == [192, 192]
    runs = m["runs"]
    for key in ("PB_fft_fp32", "PB_direct_fp32", "FCN_fp32"):
        assert runs[key]["finite"] and runs[key]["mpx_per_s"] > 0 and 0 <= runs[key]["oa_eroded"] <= 1
    for key in ("PB_direct_default", "FCN_default", "FCN_bf16", "PB_direct_bf16"):
        x = runs[key]
        assert 0 <= x["max_abs_prob_diff"] <= 1 and 0 <= x["label_changed_share"] <= 1
    # on the CPU the default flags are fp32: identical outputs
    assert runs["FCN_default"]["max_abs_prob_diff"] == 0
    # FC1 by FFT equals the direct convolution up to float32 rounding
    assert m["pb_fft_vs_direct_fp32"]["max_abs_prob_diff"] < 1e-4


def test_extrapolation(pilot):
    e = pilot[0]["extrapolation"]
    # config/vaihingen.yaml: 30 PB epochs of 5 x 40,000 patches less the held-out 5 %
    assert e["training"]["PB"]["samples"] == pytest.approx(30 * 5 * 40_000 * 0.95)
    fcn = e["training"]["FCN"]
    assert fcn["epochs"] == 40 and fcn["samples_per_epoch"] > 0
    assert fcn["minutes_at_step_rate"] == pytest.approx(fcn["samples"] / fcn["step_samples_per_s"] / 60)
    assert e["inference"]["PB"]["run"] == "PB_fft_fp32"  # what mc_predict computes in
    assert e["total_gpu_minutes_at_step_rate"] == pytest.approx(e["training_minutes_at_step_rate"] + e["inference_minutes"])
    assert e["training"]["FCN-MFB"]["solo_samples_per_s"] == e["training"]["FCN"]["solo_samples_per_s"] > 0
    assert e["training_minutes_at_solo_rate"] == pytest.approx(sum(v["minutes_at_solo_rate"] for v in e["training"].values()))


def test_report_with_solo_rates(pilot, tmp_path):
    """`report --solo`: the training extrapolated at the rates of pilots run one at a time
    (here the same folder, so solo = pilot rates; FCN-MFB at the FCN's)."""
    import tarfile

    tmp = pilot[2]
    with tarfile.open(tmp / "out" / "gpu_pilot_logs.tar.gz") as t:
        t.extractall(tmp_path / "logs", filter="data")
    d = tmp_path / "logs"
    subprocess.run([*PILOT, "report", "--dir", str(d), "--solo", str(d), "--out", str(tmp_path / "r.json")],
                   check=True, capture_output=True)
    e = json.loads((tmp_path / "r.json").read_text())["extrapolation"]
    pb, mfb = e["training"]["PB"], e["training"]["FCN-MFB"]
    assert pb["solo_samples_per_s"] == pb["pilot_samples_per_s"] > 0
    assert mfb["solo_samples_per_s"] == e["training"]["FCN"]["pilot_samples_per_s"]
    assert e["training_minutes_at_solo_rate"] == pytest.approx(sum(v["minutes_at_solo_rate"] for v in e["training"].values()))


def test_dag_and_resume_sections(tiny_local_run, tmp_path):
    """`dag` reads every job of a finished run; `resume` kills training after one epoch and
    resumes it (on the CPU: the same weights as an uninterrupted run)."""
    res, logs = tiny_local_run / "results", tiny_local_run / "logs"
    subprocess.run([*PILOT, "dag", "--dir", str(tmp_path), "--results", str(res), "--logs", str(logs), "--rc", "0",
                    "--wall", "1"], check=True, capture_output=True)
    d = json.loads((tmp_path / "dag.json").read_text())
    assert d["rules"]["mc_infer"]["jobs"] == 3 and d["rules"]["train_pb"]["jobs"] == 1
    assert all(j["log"] and j["seconds"] > 0 for j in d["jobs"]) and not any(j["cuda"] for j in d["jobs"])
    subprocess.run([*PILOT, "resume", "--dir", str(tmp_path), "--results", str(res), "--config",
                    str(tiny_local_run / "tiny.yaml"), "--device", "cpu"], check=True, capture_output=True)
    r = json.loads((tmp_path / "resume.json").read_text())
    for model in ("PB", "FCN"):
        assert r[model]["epochs_done"] == 2 and r[model]["device"] == "cpu"
        assert r[model]["max_abs_weight_diff_vs_uninterrupted"] == 0
