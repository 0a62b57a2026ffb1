"""benchmarks/run.py end to end at --tiny sizes: the JSON has every key, finite and positive.

No speed assertions (issue 6: speed targets live in the benchmark, not in timed tests);
only the sanity relations that hold on any machine are checked."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys

import pytest

REQUIRED = (
    "mc_ratio_pb", "mc_ratio_fcn", "naive_mc_ratio_pb", "naive_mc_ratio_fcn", "pb_dense_speedup",
    "eval_mpx_per_s", "fuse_mpx_per_s", "infer_peak_rss_mb", "generator_s_per_area",
)


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("bench") / "benchmarks.json"
    cmd = [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--quick", "--tiny", "--device", "cpu",
           "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_json_has_every_number_finite_and_positive(tiny_result):
    r, _ = tiny_result
    for key in (*REQUIRED, "mc_ratio_fcn_paper_width", "pb_dense_fft_speedup", "mc_flop_floor_pb", "mc_flop_floor_fcn",
                "mc_flop_floor_fcn_paper_width"):
        v = r[key]
        assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, (key, v)
    m = r["machine"]
    assert m["cpu_model"] and m["cores"] >= 1 and m["torch_version"] and m["device"] == "cpu"
    assert r["mode"] == "quick-tiny" and "subset" in r["pb_dense_speedup_note"]


def test_details_are_consistent(tiny_result):
    r, stdout = tiny_result
    d = r["details"]
    for name in ("PB", "FCN"):
        mc = d["mc"][name]
        assert mc["mc_ratio"] == pytest.approx(mc["mc_shared_s"] / mc["det_s"])
        assert len(mc["times"]["det"]) == r["setup"]["reps"]
    # the dense PB and the sliding window agree on the timed pixels (same model, same input)
    assert d["sliding"]["max_abs_prob_diff"] < 1e-4 and d["sliding"]["fft_max_abs_prob_diff"] < 1e-4
    assert r["pb_dense_fft_speedup"] > 0
    assert d["sliding"]["sliding_pixels_timed"] <= d["sliding"]["dense_pixels_timed"]
    # the sliding window does more FLOPs per pixel than the dense pass: 40x at paper width,
    # less at narrow conv widths, where FC1 (128 neurons at any width) is a larger share
    assert 1 < d["sliding"]["flop_ratio"] < 60
    # the RSS children really ran MC inference of their area and each peak is its own (> torch import);
    # PB through the pipeline's default path (FC1 by FFT)
    assert r["infer_peak_rss_models"] == ["FCN", "PB"]
    for name, rss in d["rss"].items():
        assert rss["finite"] and rss["peak_rss_mb"] > 50 and rss["area"] == r["setup"]["rss"], name
    assert d["rss"]["PB"]["pb_fft_block"] == 64 and d["rss"]["FCN"]["pb_fft_block"] is None
    assert r["infer_peak_rss_mb"] == pytest.approx(max(v["peak_rss_mb"] for v in d["rss"].values()))
    # the mc_infer memory policy applied (glibc; elsewhere it is a no-op and says so)
    assert r["machine"]["malloc_keep_freed"] is (platform.libc_ver()[0] == "glibc")
    # the readable summary table is printed
    assert "PB dense speed-up over sliding window" in stdout and "machine:" in stdout


def test_rss_child_cli(tmp_path, repo_root):
    """The --rss-child entry point prints one JSON line (used by the parent for RSS)."""
    cmd = [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--rss-child", "--model", "PB", "--height", "40",
           "--width-px", "36", "--net-width", "0.0625", "--T", "2", "--tile", "32", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["finite"] and line["seconds"] > 0


def test_flop_floor_counts_the_architecture(tiny_result):
    """The MC FLOP floor: FCN head = class-score 1x1 conv + the x16 up-sampling (6 x 6 classes x
    2 x 2 taps per output pixel); PB trunk + head = the hand count of vaiseg.sliding; the floor
    is (trunk + (T + 1) head) / (trunk + head)."""
    from vaiseg.models import scaled
    from vaiseg.sliding import pb_macs_per_pixel

    r, _ = tiny_result
    w, T = r["setup"]["width"], r["setup"]["T"]
    fcn = r["details"]["mc"]["FCN"]["flops"]
    assert fcn["head_mac_per_px"] == pytest.approx(scaled(512, w) * 6 / 256 + 6 * 6 * 4)
    pb = r["details"]["mc"]["PB"]["flops"]
    side = r["setup"]["mc_pb"]
    assert pb["trunk_mac_per_px"] + pb["head_mac_per_px"] == pytest.approx(pb_macs_per_pixel(w, tile=(side, side)))
    for name, f in (("PB", pb), ("FCN", fcn)):
        t, h = f["trunk_mac_per_px"], f["head_mac_per_px"]
        assert f["floor"] == pytest.approx((t + (T + 1) * h) / (t + h)) and f["floor"] > 1, name
    assert r["mc_flop_floor_fcn"] == pytest.approx(fcn["floor"])
    assert r["mc_flop_floor_fcn_paper_width"] < r["mc_flop_floor_fcn"]  # wider encoder, same head


def test_full_mode_runs_on_the_cpu_at_tiny_sizes(tmp_path, repo_root):
    """The GPU mode's code paths (training rate, whole-area inference, precision/layout
    variants, FLOP rate) run end to end; here on the CPU, where no peak is known."""
    out = tmp_path / "full.json"
    cmd = [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--full", "--tiny", "--device", "cpu",
           "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["mode"] == "full-tiny"
    for key in ("train_samples_per_s", "infer_mpx_per_s"):
        assert set(r[key]) == {"PB", "FCN"} and all(v > 0 for v in r[key].values()), key
    assert r["details"]["infer"]["PB"]["pb_fft_block"] == 64  # the pipeline's PB path
    variants = r["details"]["variants"]
    for name in ("PB", "FCN"):
        v = variants[name]
        assert set(v) == {"fp32", "tf32", "bf16", "channels_last", "bf16_channels_last"}
        assert v["fp32"]["max_abs_prob_diff_vs_fp32"] == 0 and v["channels_last"]["max_abs_prob_diff_vs_fp32"] < 1e-5
        assert 0 < v["bf16"]["max_abs_prob_diff_vs_fp32"] < 0.1  # bf16 really ran in lower precision
    assert r["pb_tflops"] > 0 and r["pb_tflops_variant"] in variants["PB"]
    assert r["pb_peak"] is None and "pb_fraction_of_peak" not in r  # no data-sheet peak for a CPU
    assert "training samples/s, PB" in proc.stdout


def _check_train_throughput(tt: dict, setup: dict) -> None:
    assert isinstance(tt["threads"], int) and tt["threads"] >= 1
    for key in ("matmul_gflops", "matmul_gflops_best", "cpu_s_per_wall_s"):
        assert math.isfinite(tt[key]) and tt[key] > 0, key
    for name in ("PB", "FCN", "PB_tiles"):
        v = tt[name]
        for key in ("samples_per_s", "gflop_per_sample", "achieved_gflops", "share_of_matmul", "step_s",
                    "forward_gflop_per_sample") + (("channels_last_speedup", "bf16_speedup") if name != "PB_tiles" else ()):
            assert isinstance(v[key], (int, float)) and math.isfinite(v[key]) and v[key] > 0, (name, key, v[key])
        assert 0 < v["share_of_matmul"] <= 300, (name, v["share_of_matmul"])
        assert v["achieved_gflops"] == pytest.approx(v["samples_per_s"] * v["gflop_per_sample"])
        assert v["share_of_matmul"] == pytest.approx(100 * v["achieved_gflops"] / tt["matmul_gflops"])
        assert v["samples_per_s"] == pytest.approx(v["batch"] / v["step_s"])
        # backward ~2x forward: fwd+bwd between 2x and 3x the forward FLOPs
        assert 2 * v["forward_gflop_per_sample"] < v["gflop_per_sample"] <= 3.01 * v["forward_gflop_per_sample"]
        samples = setup[f"{name}_batch"] * (setup["PB_tiles_centres"] if name == "PB_tiles" else 1)
        assert v["batch"] == samples and len(v["times_s"]) == tt["rounds"]
    # the optimisers timed are the setup's, which test_train_throughput_setup ties to config.yaml
    assert (tt["PB"]["optimizer"], tt["FCN"]["optimizer"]) == (setup["PB_optimizer"], setup["FCN_optimizer"])


def test_train_throughput_section(tiny_result):
    """Training samples/s of PB and FCN and their share of the measured fp32 matmul rate."""
    from vaiseg.sliding import pb_macs_per_pixel

    r, stdout = tiny_result
    tt, setup = r["train_throughput"], r["setup_train_throughput"]
    assert tt["threads"] == 1 == r["machine"]["torch_threads"]  # --threads 1
    _check_train_throughput(tt, setup)
    # the forward count is PB's hand count of its convolutions and FC layers (one 65x65 patch)
    assert tt["PB"]["forward_gflop_per_sample"] * 1e9 == pytest.approx(2 * pb_macs_per_pixel(setup["width"], dense=False))
    # loss sampling: per centre the FC layers plus a share of the tiles' convolutions, less than a patch
    assert tt["PB_tiles"]["forward_gflop_per_sample"] < tt["PB"]["forward_gflop_per_sample"]
    assert "% of matmul" in stdout and "training throughput" in stdout and "fp32/bf16" in stdout


def test_train_throughput_only_cli(tmp_path, repo_root):
    """--only train_throughput runs just that section, with the CLI's sizes."""
    out = tmp_path / "tt.json"
    cmd = [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--only", "train_throughput", "--tiny",
           "--device", "cpu", "--threads", "1", "--pb-batch", "3", "--fcn-batch", "1", "--fcn-patch", "32",
           "--train-steps", "2", "--matmul-n", "128", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    tt = r["train_throughput"]
    assert r["only"] == "train_throughput" and "mc_ratio_pb" not in r
    assert tt["matmul_n"] == 128 and tt["steps"] == 2 and tt["PB"]["batch"] == 3 and tt["FCN"]["patch"] == 32
    _check_train_throughput(tt, r["setup_train_throughput"])


def _check_generator(g: dict) -> None:
    times = list(g["s_per_area"].values())
    assert times and all(t > 0 for t in times) and set(g["s_per_area"]) == set(g["wall_s_per_area"])
    assert g["max_s"] == max(times) and min(times) <= g["mean_s"] <= g["max_s"]
    # the goal is per 448 x 448 area: smaller areas are scaled up by the pixel ratio
    assert g["max_s_per_448_area"] == pytest.approx(g["max_s"] * 448**2 / g["side"] ** 2)
    assert g["goal_s_per_448_area"] == 1.0 and g["clock"].startswith("cpu")


def test_generator_section(tiny_result):
    """Issue 11's speed goal for the synthetic generator lives here (1 core, per 448^2 area)."""
    r, stdout = tiny_result
    _check_generator(r["generator"])
    assert r["generator_s_per_area"] == r["generator"]["max_s_per_448_area"]
    assert r["generator"]["side"] == 96 and "synthetic area" in stdout


def test_generator_only_cli(tmp_path, repo_root):
    """--only generator times just the generator; its default sizes are the demo's areas."""
    import importlib.util

    import yaml

    out = tmp_path / "gen.json"
    cmd = [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--only", "generator", "--tiny", "--device", "cpu",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["only"] == "generator" and "mc_ratio_pb" not in r and "train_throughput" not in r
    _check_generator(r["generator"])
    assert "goal <= 1" in proc.stdout
    spec = importlib.util.spec_from_file_location("bench_run", repo_root / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    syn = yaml.safe_load((repo_root / "config.yaml").read_text())["data"]["synthetic"]
    assert mod.MODES["quick"]["gen_side"] == syn["height"] == syn["width"] == 448
    assert r["generator"]["seed"] == syn["seed"]


def test_train_throughput_defaults_are_the_demo_config(repo_root):
    """The section's default sizes (no --tiny, no CLI overrides) are config.yaml's demo run."""
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location("bench_run", repo_root / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    s = mod.train_throughput_setup(tiny=False)
    assert s["width"] == cfg["models"]["width"] and s["dropout"] == cfg["models"]["dropout"]
    assert s["pb_fc_width"] == cfg["models"]["pb_fc_width"]  # PB timed with the demo's FC neurons
    assert s["FCN_patch"] == cfg["patches"]["fcn"]["size"] and s["PB_patch"] == cfg["patches"]["pb"]["size"]
    for name in ("PB", "FCN"):
        t = cfg["train"][name]
        assert (s[f"{name}_optimizer"], s[f"{name}_lr"]) == (t["optimizer"], t["lr"])
    assert s["FCN_batch"] == cfg["train"]["FCN"]["batch_size"]
    pb = cfg["train"]["PB"]
    if pb.get("sampling") == "tiles":  # the demo's step is timed as PB_tiles, the patchwise one at batch 32
        assert (s["PB_tiles_batch"], s["PB_tiles_tile"], s["PB_tiles_centres"]) == (pb["batch_size"], pb["tile_size"], pb["centres_per_tile"])
        assert s["PB_batch"] == 32
    else:  # patch by patch: the loss-sampling step is timed at the README's measured setting
        assert s["PB_batch"] == pb["batch_size"] and (s["PB_tiles_batch"], s["PB_tiles_tile"], s["PB_tiles_centres"]) == (5, 64, 64)
