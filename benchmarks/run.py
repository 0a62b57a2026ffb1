#!/usr/bin/env python
"""Speed and memory benchmark of the inference path (issue 6); see benchmarks/README.md.

    python benchmarks/run.py --quick --out results/benchmarks.json   # <= 3 min on 2 CPU cores
    python benchmarks/run.py --full  --out results/benchmarks_full.json   # GPU, paper widths
    python benchmarks/run.py --quick --tiny --out /tmp/b.json          # seconds (the test)

Every ratio is measured in the same run: each timed call is run once as a warm-up, then
``reps`` times; the median is reported. The networks are randomly initialised (He init,
eval mode): speed does not depend on the weights. Inputs are standard-normal 5-band
images (the normalised bands have that scale). What each number means is in
benchmarks/README.md; the JSON also holds the sizes and repetitions used (``setup``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from vaiseg.atomic import write_json
from vaiseg.config import LABELLED_AREAS
from vaiseg.mc_dropout import mc_predict, resolve_device
from vaiseg.models import FCN, PatchCNN, parameter_count
from vaiseg.sliding import dense_trunk_fft, pb_macs_per_pixel, sliding_window_logits
from vaiseg.step import keep_freed_memory

#: sizes per mode. mc_*: side of the square area timed for the MC ratios (one tile);
#: slide_px: pixels the sliding window classifies (scaled per pixel); eval/fuse/rss: (H, W).
MODES = {
    "quick": dict(width=0.25, T=10, reps=3, naive_reps=2, mc_pb=48, mc_fcn=256, slide_px=192, slide_batch=64,
                  fcn_width1=128, dense_pb=128,
                  eval=(2500, 2000), fuse=(2500, 2000), rss=(2500, 2000), rss_models=("FCN", "PB"), tile=512,
                  pb_fft_block=64, gen_side=448, gen_areas=LABELLED_AREAS),
    "full": dict(width=1.0, T=10, reps=5, naive_reps=3, mc_pb=512, dense_pb=512, mc_fcn=1024, slide_px=4096, slide_batch=512,
                 eval=(2500, 2000), fuse=(2500, 2000), rss=(2500, 2000), rss_models=("PB", "FCN"), tile=1024,
                 rss_width=0.25, area=(2500, 2000), train_pb_batch=128, train_fcn_batch=16, train_fcn_size=256,
                 train_steps=10, pb_fft_block=64, gen_side=448, gen_areas=LABELLED_AREAS),
}
#: --tiny: the same code paths in seconds (tests); merged over the mode's settings.
TINY = dict(width=0.0625, T=4, reps=2, naive_reps=1, mc_pb=34, mc_fcn=64, fcn_width1=32, dense_pb=34, slide_px=16, slide_batch=8,
            eval=(300, 200), fuse=(300, 200), rss=(160, 128), rss_models=("FCN", "PB"), tile=64, rss_width=0.0625,
            area=(96, 80), train_pb_batch=4, train_fcn_batch=2, train_fcn_size=64, train_steps=2,
            gen_side=96, gen_areas=(1, 3))
#: the synthetic generator's speed goal (issue 11): CPU seconds per 448 x 448 area, one core
GENERATOR_GOAL_S = 1.0

#: dense peak FLOP/s of known accelerators (NVIDIA data sheets; SXM parts, no sparsity)
PEAK_FLOPS = {
    "H100": {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12},
    "H200": {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers
def machine(device: torch.device) -> dict:
    """CPU model (lscpu / /proc/cpuinfo), cores usable by this process, torch version, device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, reps: int, device: torch.device, warmup: int = 1, clock: str = "wall") -> dict:
    """Median seconds of ``fn()`` over ``reps`` runs after ``warmup`` runs.

    ``clock="wall"``: elapsed time (``time.perf_counter``); ``"cpu"``: CPU time of this
    process (``time.process_time``, all its threads), used for the one-thread benchmarks:
    on a shared machine it counts the core-seconds the work took, not the time spent
    waiting for a core."""
    timer = time.process_time if clock == "cpu" else time.perf_counter
    for _ in range(warmup):
        fn()
        sync(device)
    times = []
    for _ in range(max(1, reps)):
        sync(device)
        t0 = timer()
        fn()
        sync(device)
        times.append(timer() - t0)
    return {"median_s": statistics.median(times), "times_s": [round(t, 6) for t in times], "clock": clock}


def timeit_interleaved(fns: dict, reps: int, device: torch.device, warmup: int = 1) -> dict:
    """Like :func:`timeit` for several callables, run round-robin (a, b, c, a, b, c, ...)
    after one warm-up each, so that a change of machine load during the run (a shared
    machine) hits all of them alike; returns {name: {median_s, min_s, cpu_median_s,
    times_s}} (wall clock; ``cpu_median_s``: process CPU time, all threads)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(max(1, reps)):
        for k, fn in fns.items():
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "cpu_median_s": statistics.median(cpu[k]),
                "times_s": [round(t, 6) for t in v], "fn": fns[k]} for k, v in times.items()}


def image(shape: tuple[int, int], seed: int = 0, bands: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((bands, *shape), dtype=np.float32)


def nets(width: float, device: torch.device) -> dict:
    """The two inference networks: PB (dense, §4.1) and FCN (§4.2, FCN-MFB is the same net)."""
    torch.manual_seed(0)
    pb = PatchCNN(width=width).eval()
    return {"PB": pb.to_dense().eval().to(device), "FCN": FCN(width=width).eval().to(device), "_patch": pb.to(device)}


def deterministic_pass(net, img: np.ndarray, device: torch.device):
    """One deterministic pass producing probabilities: softmax(net(x)) on the whole area
    (PB: reflect-padded by 32 px like mc_predict; FCN: area sides multiples of 16)."""
    pad = int(getattr(net, "pad", 0) or 0)
    src = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode="reflect") if pad else img
    x = torch.from_numpy(np.ascontiguousarray(src))[None].to(device)

    @torch.inference_mode()
    def run():
        return torch.softmax(net(x).float(), 1)

    return run


def mc_flop_floor(net, side: int, T: int) -> dict:
    """The least possible MC/deterministic time ratio if time were proportional to FLOPs.

    Counted with ``torch.utils.flop_counter`` on the network's own ``trunk`` and ``head``
    for a side x side output tile (convolutions, transposed convolution and matrix
    products; PB's trunk as its direct 41x41 convolution): MC with a shared trunk runs the
    trunk once and the head T + 1 times (T samples and the deterministic prediction), one
    deterministic pass runs each once, so floor = (trunk + (T + 1) head) / (trunk + head).
    Softmax, statistics and memory traffic come on top, so a measured ``mc_ratio`` cannot
    go below it on any device. Per output pixel: ``trunk_mac_per_px``, ``head_mac_per_px``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from vaiseg.models import SubpixelConvTranspose2d

    pad = int(getattr(net, "pad", 0) or 0)
    p = next(net.parameters())
    x = torch.zeros((1, int(getattr(net, "in_channels", 5)), side + 2 * pad, side + 2 * pad), dtype=p.dtype,
                    device=p.device)
    # the architecture's arithmetic: the FCN's up-sampling counted as the transposed
    # convolution, not as its sub-pixel form (which also computes a border ring it crops)
    subpixel, SubpixelConvTranspose2d.subpixel = SubpixelConvTranspose2d.subpixel, False
    try:
        with torch.inference_mode():
            with FlopCounterMode(display=False) as fc:
                f = net.trunk(x)
            trunk = fc.get_total_flops()
            with FlopCounterMode(display=False) as fc:
                net.head(f)
            head = fc.get_total_flops()
    finally:
        SubpixelConvTranspose2d.subpixel = subpixel  # as it was, not necessarily True
    px = side * side
    return {"floor": (trunk + (T + 1) * head) / (trunk + head), "trunk_mac_per_px": trunk / 2 / px,
            "head_mac_per_px": head / 2 / px, "T": T}


# --------------------------------------------------------------------------- parts
def bench_mc(name: str, net, side: int, cfg: dict, device: torch.device, naive: bool = True) -> dict:
    """T-sample MC (shared trunk and naive) vs one deterministic pass on a side x side area."""
    img = image((side, side), seed=1)
    T, reps = cfg["T"], cfg["reps"]
    kw = dict(tile_size=max(side, 16), device=device)
    log(f"[mc] {name}: {side}x{side} px, T={T}, {reps} reps")
    tt = timeit_interleaved({
        "det": deterministic_pass(net, img, device),
        "shared": lambda: mc_predict(net, img, T, shared_trunk=True, **kw),
        "T1": lambda: mc_predict(net, img, 1, shared_trunk=True, **kw),
    }, reps, device)
    det, shared, one = tt["det"], tt["shared"], tt["T1"]
    if naive:  # paired with deterministic passes (already warm), round-robin like the rest
        tn = timeit_interleaved({"det": tt["det"]["fn"], "naive": lambda: mc_predict(net, img, T, shared_trunk=False,
                                                                                      **kw)},
                                cfg["naive_reps"], device, warmup=0)
        naive, det_n = tn["naive"], tn["det"]["median_s"]
    else:
        naive, det_n = {"median_s": math.nan, "times_s": []}, math.nan
    d = det["median_s"]
    floor = mc_flop_floor(net, side, T)
    return {
        "area_px": side * side,
        "flop_floor": floor["floor"],
        "flops": floor,
        "det_s": d,
        "mc_shared_s": shared["median_s"],
        "mc_shared_T1_s": one["median_s"],
        "mc_naive_s": naive["median_s"],
        "mc_ratio": shared["median_s"] / d,
        "naive_mc_ratio": naive["median_s"] / det_n,
        "mc_ratio_best": shared["min_s"] / det["min_s"],
        # the same ratio in CPU time of this process (all threads): robust to waiting for a core
        "mc_ratio_cpu_time": shared["cpu_median_s"] / det["cpu_median_s"],
        # cost of one more MC sample (head + statistics) relative to the deterministic pass
        "per_sample_ratio": (shared["median_s"] - one["median_s"]) / max(T - 1, 1) / d,
        # fixed cost of mc_predict at T=1 (tiling, one det + one sampled head, statistics, copies)
        "T1_ratio": one["median_s"] / d,
        "times": {"det": det["times_s"], "shared": shared["times_s"], "T1": one["times_s"], "naive": naive["times_s"]},
    }


def bench_sliding(nets_: dict, cfg: dict, device: torch.device) -> dict:
    """Sliding window (one 65x65 patch per pixel) vs dense PB, per classified pixel.

    The dense pass classifies a dense_pb x dense_pb area; the sliding window classifies
    ``slide_px`` pixels of the same area (a random subset) and its time is scaled per
    pixel. Outputs are compared on those pixels."""
    side = cfg.get("dense_pb", cfg["mc_pb"])
    n = min(cfg["slide_px"], side * side)
    img = image((side, side), seed=2)
    pix = np.random.default_rng(3).choice(side * side, n, replace=False)
    pix = np.stack([pix // side, pix % side], 1)
    log(f"[sliding] {n} of {side}x{side} px, batch {cfg['slide_batch']}")
    pb, dense = nets_["_patch"], nets_["PB"]
    run_dense = deterministic_pass(dense, img, device)
    x = torch.from_numpy(np.pad(img, ((0, 0), (32, 32), (32, 32)), mode="reflect"))[None].to(device)
    block = min(64, side)

    @torch.inference_mode()
    def run_fft():
        return torch.softmax(dense.head(dense_trunk_fft(dense, x, block=block)).float(), 1)

    tt = timeit_interleaved({"dense": run_dense, "fft": run_fft}, cfg["reps"], device)
    td, tf = tt["dense"], tt["fft"]
    ts = timeit(lambda: sliding_window_logits(pb, img, pix, batch_size=cfg["slide_batch"], device=device),
                max(1, cfg["reps"] - 1), device)
    p_dense = run_dense()[0][:, pix[:, 0], pix[:, 1]].cpu().numpy()
    p_fft = run_fft()[0][:, pix[:, 0], pix[:, 1]].cpu().numpy()
    p_slide = torch.softmax(torch.from_numpy(
        sliding_window_logits(pb, img, pix, batch_size=cfg["slide_batch"], device=device)), 0).numpy()
    dense_s_px = td["median_s"] / (side * side)
    fft_s_px = tf["median_s"] / (side * side)
    slide_s_px = ts["median_s"] / n
    w = cfg["width"]
    return {
        "dense_s_per_px": dense_s_px,
        "sliding_s_per_px": slide_s_px,
        "speedup": slide_s_px / dense_s_px,
        "flop_ratio": pb_macs_per_pixel(w, dense=False) / pb_macs_per_pixel(w, tile=(side, side)),
        "max_abs_prob_diff": float(np.abs(p_dense - p_slide).max()),
        # the pipeline default (infer.pb_fft_block): FC1 (41x41 conv) by FFT, vaiseg.sliding.dense_trunk_fft
        "fft_dense_s_per_px": fft_s_px,
        "fft_speedup": slide_s_px / fft_s_px,
        "fft_over_direct_dense": dense_s_px / fft_s_px,
        "fft_max_abs_prob_diff": float(np.abs(p_fft - p_slide).max()),
        "fft_block": block,
        "sliding_pixels_timed": int(n),
        "dense_pixels_timed": side * side,
        "note": "sliding-window time measured on a random subset of the dense area's pixels and scaled per pixel",
    }


@contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bench_eval(shape: tuple[int, int], reps: int) -> dict:
    """Confusion matrix (vaiseg.metrics.confusion_matrix) of a whole area on ONE thread."""
    from threadpoolctl import threadpool_limits

    from vaiseg.metrics import confusion_matrix

    rng = np.random.default_rng(4)
    gt = rng.integers(0, 6, shape, dtype=np.uint8)
    gt[rng.random(shape) < 0.1] = 255  # eroded boundaries
    pred = rng.integers(0, 6, shape, dtype=np.uint8)
    cpu = torch.device("cpu")
    with torch_threads(1), threadpool_limits(1):
        t = timeit(lambda: confusion_matrix(gt, pred), max(reps, 3), cpu, clock="cpu")
        tw = timeit(lambda: confusion_matrix(gt, pred), max(reps, 3), cpu)
        cm = confusion_matrix(gt, pred)
    assert cm.sum() == (gt != 255).sum()
    return {"mpx_per_s": gt.size / t["median_s"] / 1e6, "wall_mpx_per_s": gt.size / tw["median_s"] / 1e6,
            "clock": "cpu (process_time, 1 thread)", "area": list(shape), "threads": 1, "times_s": t["times_s"]}


def bench_generator(side: int, areas, seed: int = 2016) -> dict:
    """The synthetic scene generator (``vaiseg.data.synthetic.generate_scene``) on ONE core.

    The first area is generated once as a warm-up; then each area (``side`` x ``side``,
    the demo's data seed) is generated once, timed in process CPU time with torch and
    BLAS limited to one thread (the generator is numpy/scipy). Goal (issue 11): every
    area <= 1 s at 448 x 448. Writing the archives (GeoTIFF/zip) is not included.
    """
    from threadpoolctl import threadpool_limits

    from vaiseg.data.synthetic import generate_scene

    per_area, wall = {}, {}
    with torch_threads(1), threadpool_limits(1):
        generate_scene(areas[0], side, side, seed)  # warm-up (imports, caches)
        for a in areas:
            t, w = time.process_time(), time.perf_counter()
            generate_scene(a, side, side, seed)
            per_area[str(a)] = time.process_time() - t
            wall[str(a)] = time.perf_counter() - w
    worst = max(per_area.values())
    return {"side": side, "seed": seed, "clock": "cpu (process_time, 1 thread)", "s_per_area": per_area,
            "wall_s_per_area": wall, "mean_s": statistics.fmean(per_area.values()), "max_s": worst,
            "max_s_per_448_area": worst * (448 * 448) / (side * side),
            "goal_s_per_448_area": GENERATOR_GOAL_S}


def bench_fuse(shape: tuple[int, int], reps: int) -> dict:
    """apply_fusion of the ALL fusion (PB 5 + FCN 6 + FCN-MFB 6 = 17 features, 6 SVMs),
    one thread; also with the calibrated softmax fuse_area writes."""
    from threadpoolctl import threadpool_limits

    from vaiseg.fusion import FusionModel, apply_fusion, calibrated_probs

    rng = np.random.default_rng(5)
    members, ncls = ("PB", "FCN", "FCN-MFB"), (5, 6, 6)
    model = FusionModel(rng.standard_normal((6, sum(ncls))), rng.standard_normal(6), np.arange(6), members, ncls, 1.3)
    probs = []
    for c in ncls:
        p = rng.random((c, *shape), dtype=np.float32)
        probs.append(p / p.sum(0, keepdims=True))
    cpu = torch.device("cpu")
    with torch_threads(1):
        with threadpool_limits(1):
            t = timeit(lambda: apply_fusion(model, probs), max(reps, 3), cpu, clock="cpu")
            tw = timeit(lambda: apply_fusion(model, probs), max(reps, 3), cpu)
            tc = timeit(lambda: calibrated_probs(model, apply_fusion(model, probs)[0]), max(reps, 3), cpu, clock="cpu")
        # where the time goes: the labels' argmax over classes (axis 0) vs a running maximum
        sc = apply_fusion(model, probs)[0].reshape(6, -1)[:, : 1 << 18]
        ta = timeit(lambda: sc.argmax(0), 5, cpu, clock="cpu")
        tr = timeit(lambda: _running_argmax(sc), 5, cpu, clock="cpu")
        Wf, X = model.W.astype(np.float32), np.ones((sum(ncls), 1 << 16), np.float32)
        out = np.empty((6, 1 << 16), np.float32)
        tm = timeit(lambda: np.matmul(Wf, X, out=out), 20, cpu, clock="cpu")  # one 64k-pixel block
    assert np.array_equal(sc.argmax(0), _running_argmax(sc))
    n = shape[0] * shape[1]
    m = sc.shape[1]
    return {"mpx_per_s": n / t["median_s"] / 1e6, "wall_mpx_per_s": n / tw["median_s"] / 1e6,
            "argmax_axis0_mpx_per_s": m / ta["median_s"] / 1e6, "running_argmax_mpx_per_s": m / tr["median_s"] / 1e6,
            "matmul_mpx_per_s": (1 << 16) / tm["median_s"] / 1e6,
            "clock": "cpu (process_time, 1 thread)", "with_calibration_mpx_per_s": n / tc["median_s"] / 1e6,
            "features": sum(ncls), "area": list(shape), "threads": 1, "times_s": t["times_s"]}


def _running_argmax(scores: np.ndarray) -> np.ndarray:
    """argmax over axis 0 of (K, n) scores as a running maximum (first maximum wins, as
    ``argmax``): K vectorised passes instead of numpy's strided axis-0 argmax."""
    best = scores[0].copy()
    lab = np.zeros(scores.shape[1], np.uint8)
    for k in range(1, scores.shape[0]):
        m = scores[k] > best
        lab[m] = k
        np.maximum(best, scores[k], out=best)
    return lab


def rss_child(args) -> None:
    """Runs in the subprocess: MC inference of one synthetic area; prints a JSON line."""
    device = resolve_device(args.device)
    torch.manual_seed(0)
    net = PatchCNN(width=args.width).to_dense() if args.model == "PB" else FCN(width=args.width)
    img = image((args.height, args.width_px), seed=6)
    t0 = time.perf_counter()
    res = mc_predict(net.eval(), img, args.T, tile_size=args.tile, device=device, pb_fft_block=args.pb_fft_block)
    sync(device)
    dt = time.perf_counter() - t0
    ok = all(np.isfinite(v).all() for k, v in res.items() if k != "labels")
    print(json.dumps({"seconds": dt, "finite": bool(ok), "device": str(device)}), flush=True)


def bench_rss(model: str, shape: tuple[int, int], width: float, cfg: dict, device: torch.device) -> dict:
    """Peak RSS of MC inference of a (H, W) 5-band area in its own subprocess.

    Peak = the child's ``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark of
    that process alone, KiB), cross-checked by polling ``psutil`` every 50 ms."""
    import psutil

    block = (cfg.get("pb_fft_block") or None) if model == "PB" else None  # the pipeline's PB path
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", "--model", model, "--height", str(shape[0]),
           "--width-px", str(shape[1]), "--net-width", str(width), "--T", str(cfg["T"]), "--tile", str(cfg["tile"]),
           "--device", str(device), "--pb-fft-block", str(block or 0)]
    log(f"[rss] {model} {shape[0]}x{shape[1]} width {width} T={cfg['T']} tile {cfg['tile']} (subprocess)")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    polled = [0]

    def poll() -> None:
        try:
            ps = psutil.Process(proc.pid)
            while ps.status() != psutil.STATUS_ZOMBIE:
                polled[0] = max(polled[0], ps.memory_info().rss)
                time.sleep(0.05)
        except psutil.Error:
            pass

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    poller.join()
    maxrss_kb = usage.ru_maxrss  # KiB on Linux
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child failed ({proc.returncode}): {' '.join(cmd)}")
    child = json.loads(out.strip().splitlines()[-1])
    return {
        "model": model, "area": list(shape), "width": width, "T": cfg["T"], "tile": cfg["tile"],
        "pb_fft_block": block,
        "peak_rss_mb": max(maxrss_kb / 1024, polled[0] / 2**20), "polled_peak_rss_mb": polled[0] / 2**20,
        "infer_s": child["seconds"], "wall_s": time.perf_counter() - t0, "finite": child["finite"],
        "mpx_per_s": shape[0] * shape[1] / child["seconds"] / 1e6,
    }


# --------------------------------------------------------------------------- full mode
def bench_training(cfg: dict, device: torch.device) -> dict:
    """Training samples/s (forward + backward + SGD step, batch of random samples)."""
    out = {}
    w = cfg["width"]
    specs = {
        "PB": (PatchCNN(width=w), (cfg["train_pb_batch"], 5, 65, 65), (cfg["train_pb_batch"],), 5),
        "FCN": (FCN(width=w), (cfg["train_fcn_batch"], 5, cfg["train_fcn_size"], cfg["train_fcn_size"]),
                (cfg["train_fcn_batch"], cfg["train_fcn_size"], cfg["train_fcn_size"]), 6),
    }
    for name, (net, xs, ys, k) in specs.items():
        net = net.to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(xs, device=device)
        y = torch.randint(0, k, ys, device=device)

        def step():
            for _ in range(cfg["train_steps"]):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(x), y).backward()
                opt.step()

        log(f"[train] {name}: batch {xs}")
        t = timeit(step, max(1, cfg["reps"] - 2), device)
        out[name] = {"samples_per_s": xs[0] * cfg["train_steps"] / t["median_s"], "batch": list(xs),
                     "steps": cfg["train_steps"]}
    return out


# --------------------------------------------------------------------------- training throughput
def _train_demo() -> dict:
    """The default demo run's training settings, read from config.yaml (models.width,
    .dropout and .pb_fc_width, train.PB / train.FCN, patches.pb/fcn.size); --train-width, --pb-batch,
    --fcn-batch, --fcn-patch override them."""
    import yaml

    from vaiseg.training import TrainSettings

    cfg = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    out = {}
    for m, patch in (("PB", cfg["patches"]["pb"]["size"]), ("FCN", cfg["patches"]["fcn"]["size"])):
        st = TrainSettings.from_config(cfg, m)  # what the train rules derive from the config
        out[m] = dict(batch=st.batch_size, patch=patch, optimizer=st.optimizer, lr=st.lr)
        if m != "PB":
            continue
        out["pb_fc_width"] = st.pb_fc_width
        if st.sampling == "tiles":  # the demo's PB step; "PB" times the patchwise one
            out["PB_tiles"] = dict(batch=st.batch_size, tile=st.tile_size, centres=st.centres_per_tile)
            out[m]["batch"] = PB_PATCHWISE_BATCH
        else:
            out["PB_tiles"] = dict(PB_TILES)
    out.update(width=st.width, dropout=st.dropout)
    return out


#: PB's patchwise batch in the section when the demo trains PB by loss sampling
PB_PATCHWISE_BATCH = 32
#: PB's loss-sampling step when the demo trains patch by patch: the setting measured in the
#: docs/results.md ("Convergence": 5 tiles of 64 x 64 centres, 64 centres each)
PB_TILES = dict(batch=5, tile=64, centres=64)


#: sizes of the section: matmul side, products per timed call, training steps per timed
#: call, timed rounds (round-robin matmul, PB, FCN after one warm-up round each)
TT_SIZES = dict(matmul_n=2048, matmul_k=3, steps=10, rounds=5)
TT_TINY = dict(matmul_n=256, matmul_k=3, steps=2, rounds=2, width=0.0625, PB_batch=4, FCN_batch=2, FCN_patch=64,
               PB_tiles_batch=5, PB_tiles_tile=8, PB_tiles_centres=4)


def train_throughput_setup(tiny: bool, args=None) -> dict:
    """Sizes of the train_throughput section: CLI overrides > --tiny sizes > the demo config."""
    demo = _train_demo()
    s = dict(TT_SIZES, width=demo["width"], dropout=demo["dropout"], pb_fc_width=demo["pb_fc_width"])
    for m in ("PB", "FCN", "PB_tiles"):
        for k, v in demo.get(m, {}).items():
            s[f"{m}_{k}"] = v
    if tiny:
        s.update(TT_TINY)
    for key, arg in (("width", "train_width"), ("PB_batch", "pb_batch"), ("FCN_batch", "fcn_batch"),
                     ("FCN_patch", "fcn_patch"), ("steps", "train_steps"), ("matmul_n", "matmul_n")):
        v = getattr(args, arg, None) if args is not None else None
        if v is not None:
            s[key] = v
    if s["FCN_patch"] % 16:
        raise SystemExit(f"--fcn-patch must be a multiple of 16, got {s['FCN_patch']}")
    return s


def bench_train_throughput(s: dict, device: torch.device) -> dict:
    """Training samples/s of PB and FCN and the share of this machine's matmul rate they reach.

    - matmul rate: ``torch.mm`` of two fp32 n x n matrices (2 n^3 FLOP per product),
      ``matmul_k`` products per timed call, at torch's current thread count;
    - training step (as in vaiseg.training): ``net.train()``, forward, ``_loss`` of the model
      on random targets, backward, ``optimizer.step()`` with ``_optimizer`` at the demo
      config's optimiser and rate (PB: FC1 at its scaled learning rate), ``steps`` steps per
      timed call on one random batch already on the device (no loading, no held-out
      evaluations: the training job's samples/s is lower, benchmarks/README.md);
    - each step also in NCHW and under bf16 autocast (``channels_last_speedup``,
      ``bf16_speedup``: ratios of step times);
    - the timed calls run round-robin (one warm-up round, then ``rounds`` rounds;
      medians), so a change of load on a shared machine hits them alike;
    - FLOP per sample: ``torch.utils.flop_counter.FlopCounterMode`` over one forward +
      loss + backward of a batch / batch (convolutions, transposed convolutions and matrix
      products; elementwise ops, BN, pooling and the optimiser step are not counted).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from vaiseg.training import TrainSettings, _build, _loss, _optimizer

    threads = torch.get_num_threads()
    n, k = s["matmul_n"], s["matmul_k"]
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    c = torch.empty(n, n, device=device)

    def matmul():
        for _ in range(k):
            torch.mm(a, b, out=c)

    fns, flops, info = {"matmul": matmul}, {}, {}
    for model in ("PB", "FCN"):
        batch, patch = s[f"{model}_batch"], s[f"{model}_patch"]
        st = TrainSettings(optimizer=s[f"{model}_optimizer"], lr=s[f"{model}_lr"], width=s["width"],
                           dropout=s["dropout"], batch_size=batch, pb_fc_width=s["pb_fc_width"])
        torch.manual_seed(0)
        probe = _build(model, st)
        x = torch.randn(batch, probe.in_channels, patch, patch, device=device)
        ys = (batch,) if model == "PB" else (batch, patch, patch)
        y = torch.randint(0, probe.n_classes, ys, device=device)
        # as vaiseg.training: weights and batches channels-last; "<model>_nchw" times the
        # same step in the default layout, for the layout's speed-up, and "<model>_bf16"
        # the channels-last step under bf16 autocast (train.amp on CUDA, train.amp_cpu on
        # the CPU), for whether that switch pays on this machine. The fp32 channels-last
        # step comes last: its net and batch are counted below.
        for key, fmt, amp in ((f"{model}_nchw", torch.contiguous_format, False), (f"{model}_bf16", torch.channels_last, True),
                              (model, torch.channels_last, False)):
            torch.manual_seed(0)
            net = _build(model, st).to(device, memory_format=fmt).train()
            opt = _optimizer(net, st)
            xf = x.contiguous(memory_format=fmt)

            def step(net=net, opt=opt, x=xf, y=y, model=model, amp=amp):
                for _ in range(s["steps"]):
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                        logits = net(x)
                    _loss(model, logits, y, None).backward()
                    opt.step()

            fns[key] = step
        x = xf
        with FlopCounterMode(display=False) as fc:
            _loss(model, net(x), y, None).backward()
        opt.zero_grad(set_to_none=True)
        flops[model] = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            with torch.no_grad():
                net(x)
        info[model] = {"batch": batch, "patch": patch, "optimizer": st.optimizer, "lr": st.lr,
                       "forward_gflop_per_sample": fc.get_total_flops() / batch / 1e9,
                       "parameters": parameter_count(net)}
    if "PB_tiles_batch" in s:  # PB by loss sampling (vaiseg.training, sampling "tiles")
        from vaiseg.training import balanced_cross_entropy

        nt, side, kc = s["PB_tiles_batch"], s["PB_tiles_tile"], s["PB_tiles_centres"]
        st = TrainSettings(optimizer=s["PB_optimizer"], lr=s["PB_lr"], width=s["width"], dropout=s["dropout"], batch_size=nt,
                           pb_fc_width=s["pb_fc_width"])
        torch.manual_seed(0)
        net = _build("PB", st).to(device, memory_format=torch.channels_last).train()
        opt = _optimizer(net, st)
        xt = torch.randn(nt, net.in_channels, side + 64, side + 64, device=device).contiguous(memory_format=torch.channels_last)
        tile = torch.arange(nt, device=device).repeat_interleave(kc)
        row = torch.randint(0, side, (nt * kc,), generator=g).to(device)
        col = torch.randint(0, side, (nt * kc,), generator=g).to(device)
        yt = torch.arange(nt * kc, device=device) % net.n_classes  # the even class split

        def step_tiles(net=net, opt=opt):
            for _ in range(s["steps"]):
                opt.zero_grad(set_to_none=True)
                balanced_cross_entropy(net.forward_centres(xt, tile, row, col), yt).backward()
                opt.step()

        fns["PB_tiles"] = step_tiles
        with FlopCounterMode(display=False) as fc:
            balanced_cross_entropy(net.forward_centres(xt, tile, row, col), yt).backward()
        opt.zero_grad(set_to_none=True)
        flops["PB_tiles"] = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            with torch.no_grad():
                net.forward_centres(xt, tile, row, col)
        info["PB_tiles"] = {"batch": nt * kc, "tiles": nt, "tile": side, "centres_per_tile": kc, "optimizer": st.optimizer,
                            "lr": st.lr, "forward_gflop_per_sample": fc.get_total_flops() / (nt * kc) / 1e9,
                            "parameters": parameter_count(net)}
    log(f"[train_throughput] matmul {n}^2 x{k}, PB batch {s['PB_batch']}, FCN batch {s['FCN_batch']} "
        f"({s['FCN_patch']}^2), width {s['width']}, {s['steps']} steps x {s['rounds']} rounds, {threads} threads")
    t = timeit_interleaved(fns, s["rounds"], device)
    mm = 2 * n**3 * k / t["matmul"]["median_s"] / 1e9
    out = {
        "threads": threads,
        "device": str(device),
        "matmul_gflops": mm,
        "matmul_gflops_best": 2 * n**3 * k / t["matmul"]["min_s"] / 1e9,
        "matmul_n": n,
        "width": s["width"],
        "pb_fc_width": s["pb_fc_width"],
        "steps": s["steps"],
        "rounds": s["rounds"],
        # CPU time of this process per wall second of the timed calls (medians, all of them):
        # ~threads when the cores were ours, less when another process took them
        "cpu_s_per_wall_s": sum(v["cpu_median_s"] for v in t.values()) / sum(v["median_s"] for v in t.values()),
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
    }
    for model in [m for m in ("PB", "FCN", "PB_tiles") if m in fns]:
        tm = t[model]
        batch = info[model]["batch"]  # samples per step (PB_tiles: the batch's centres)
        sps = batch * s["steps"] / tm["median_s"]
        gf = flops[model] / batch / 1e9
        out[model] = {
            "samples_per_s": sps,
            "samples_per_s_best": batch * s["steps"] / tm["min_s"],
            "gflop_per_sample": gf,
            "achieved_gflops": sps * gf,
            "share_of_matmul": 100 * sps * gf / mm,
            "step_s": tm["median_s"] / s["steps"],
            "cpu_s_per_wall_s": tm["cpu_median_s"] / tm["median_s"],
            "times_s": tm["times_s"],
            # step time in NCHW / in channels-last (the layout vaiseg.training uses)
            "channels_last_speedup": t[f"{model}_nchw"]["median_s"] / tm["median_s"] if f"{model}_nchw" in t else None,
            # step time in fp32 / under bf16 autocast (both channels-last)
            "bf16_speedup": tm["median_s"] / t[f"{model}_bf16"]["median_s"] if f"{model}_bf16" in t else None,
            **info[model],
        }
    out["matmul_times_s"] = t["matmul"]["times_s"]
    out["matmul_cpu_s_per_wall_s"] = t["matmul"]["cpu_median_s"] / t["matmul"]["median_s"]
    return out


def train_throughput_summary(tt: dict) -> str:
    lines = [f"training throughput ({tt['threads']} torch threads, {tt['device']}, width {tt['width']}): "
             f"matmul fp32 {tt['matmul_n']}^2 = {tt['matmul_gflops']:.1f} GFLOP/s "
             f"(best {tt['matmul_gflops_best']:.1f}); CPU s per wall s {tt['cpu_s_per_wall_s']:.2f}",
             f"  {'model':<8} {'batch':>5} {'patch':>5} {'samples/s':>10} {'GFLOP/sample':>13} {'GFLOP/s':>9} "
             f"{'% of matmul':>11} {'NHWC/NCHW':>9} {'fp32/bf16':>9}"]
    for m in [m for m in ("PB", "FCN", "PB_tiles") if m in tt]:
        v = tt[m]
        cl = "-" if v["channels_last_speedup"] is None else f"{v['channels_last_speedup']:.2f}x"
        bf = "-" if v.get("bf16_speedup") is None else f"{v['bf16_speedup']:.2f}x"
        patch = v.get("patch", f"{v.get('tile', '')}+64")
        lines.append(f"  {m:<8} {v['batch']:>5} {patch:>5} {v['samples_per_s']:>10.1f} "
                     f"{v['gflop_per_sample']:>13.4f} {v['achieved_gflops']:>9.2f} {v['share_of_matmul']:>10.1f}% "
                     f"{cl:>9} {bf:>9}")
    if "PB_tiles" in tt:
        lines.append("  PB_tiles: PB by loss sampling (batch = centres per step, patch = tile side + context); "
                     f"{tt['PB_tiles']['samples_per_s'] / tt['PB']['samples_per_s']:.1f}x PB's patchwise samples/s")
    lines.append("  fp32/bf16: step time in fp32 over step time under bf16 autocast (above 1: train.amp_cpu "
                 "would train faster here; it changes the numbers, the reference is fp32)")
    return "\n".join(lines)


def peak_for(device: torch.device) -> dict | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_FLOPS.items():
        if key in name:
            return {"name": name, **peak}
    return None


def bench_variants(nets_: dict, cfg: dict, device: torch.device) -> dict:
    """Deterministic pass of PB and FCN in fp32 (TF32 off), default (cuDNN TF32 on for
    convolutions, PyTorch's default), bf16 autocast, channels-last, bf16 + channels-last;
    max |prob - prob_fp32| says whether a variant is numerically sound."""
    out = {}
    for name, side in (("PB", cfg["mc_pb"]), ("FCN", cfg["mc_fcn"])):
        net = nets_[name]
        img = image((side, side), seed=7)
        ref = None
        res = {}
        for var in ("fp32", "tf32", "bf16", "channels_last", "bf16_channels_last"):
            cl = "channels_last" in var
            amp = "bf16" in var
            tf32 = var != "fp32"
            old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            run = deterministic_pass(net, img, device)

            def call(run=run, amp=amp):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    return run()

            try:
                t = timeit(call, cfg["reps"], device)
                p = call().float()
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
                net.to(memory_format=torch.contiguous_format)
            ref = p if ref is None else ref
            res[var] = {"det_s": t["median_s"], "mpx_per_s": side * side / t["median_s"] / 1e6,
                        "max_abs_prob_diff_vs_fp32": float((p - ref).abs().max())}
        out[name] = res
    return out


def bench_full_infer(nets_: dict, cfg: dict, device: torch.device) -> dict:
    """MC inference (T samples, shared trunk, tiled) of a Vaihingen-sized area per model."""
    out = {}
    img = image(cfg["area"], seed=8)
    for name in ("PB", "FCN"):
        net = nets_[name]
        kw = dict(tile_size=cfg["tile"], device=device, pb_fft_block=cfg.get("pb_fft_block"))  # the pipeline's path
        mc_predict(net, img[:, :256, :256], cfg["T"], **kw)  # warm-up
        log(f"[infer] {name}: {cfg['area']} T={cfg['T']}")
        sync(device)
        t0 = time.perf_counter()
        mc_predict(net, img, cfg["T"], **kw)
        sync(device)
        dt = time.perf_counter() - t0
        out[name] = {"mpx_per_s": img.shape[1] * img.shape[2] / dt / 1e6, "seconds": dt, "area": list(cfg["area"]),
                     "T": cfg["T"], "tile": cfg["tile"], "pb_fft_block": kw["pb_fft_block"] if name == "PB" else None}
    return out


# --------------------------------------------------------------------------- main
def summary_table(r: dict) -> str:
    rows = [
        (f"MC T={r['T']} / 1 pass, PB (shared trunk)", r["mc_ratio_pb"], "<= 1.5"),
        (f"MC T={r['T']} / 1 pass, FCN (shared trunk)", r["mc_ratio_fcn"], "<= 1.5"),
        ("  same, FCN at paper width (width 1)", r["mc_ratio_fcn_paper_width"], "<= 1.5"),
        ("  FLOP floor of that ratio, PB", r["mc_flop_floor_pb"], "(bound)"),
        ("  FLOP floor of that ratio, FCN", r["mc_flop_floor_fcn"], "(bound)"),
        ("  FLOP floor, FCN at paper width", r["mc_flop_floor_fcn_paper_width"], "(bound)"),
        (f"MC T={r['T']} / 1 pass, PB (naive)", r["naive_mc_ratio_pb"], "(~T)"),
        (f"MC T={r['T']} / 1 pass, FCN (naive)", r["naive_mc_ratio_fcn"], "(~T)"),
        ("PB dense speed-up over sliding window", r["pb_dense_speedup"], ">= 100"),
        ("  same, FC1 by FFT (pipeline default)", r["pb_dense_fft_speedup"], ">= 100"),
        ("evaluation Mpx/s (1 thread)", r["eval_mpx_per_s"], ">= 100"),
        ("fusion apply Mpx/s (1 thread)", r["fuse_mpx_per_s"], ">= 20"),
        ("peak RSS of MC inference, MB", r["infer_peak_rss_mb"], "<= 4096"),
        ("synthetic area, s per 448^2 (1 core, max)", r["generator_s_per_area"], "<= 1"),
    ]
    for k, v in r.get("train_samples_per_s", {}).items():
        rows.append((f"training samples/s, {k}", v, ""))
    for k, v in r.get("infer_mpx_per_s", {}).items():
        rows.append((f"MC inference Mpx/s, {k}", v, ""))
    if r.get("pb_tflops") is not None:
        rows.append(("PB dense achieved TFLOP/s", r["pb_tflops"], ""))
    lines = [f"{'quantity':<42} {'value':>12}  goal", "-" * 64]
    for name, v, goal in rows:
        lines.append(f"{name:<42} {v:>12.4g}  {goal}" if v is not None else f"{name:<42} {'n/a':>12}  {goal}")
    m = r["machine"]
    lines.append(f"machine: {m['cpu_model']}, {m['cores']} cores, torch {m['torch_version']}, device {m['device']}"
                 + (f" ({m['gpu']})" if m.get("gpu") else ""))
    return "\n".join(lines)


def run(mode: str, tiny: bool, device: torch.device, threads: int | None, tt_setup: dict | None = None,
        only: str | None = None) -> dict:
    cfg = dict(MODES[mode])
    if tiny:
        cfg.update(TINY)
    if threads:
        torch.set_num_threads(threads)
    tt_setup = tt_setup or train_throughput_setup(tiny)
    t_start = time.perf_counter()
    r: dict = {"mode": mode + ("-tiny" if tiny else ""), "machine": machine(device), "setup": cfg}
    r["setup_train_throughput"] = tt_setup
    if only:
        r["only"] = only
        if only == "generator":
            r["generator"] = bench_generator(cfg["gen_side"], cfg["gen_areas"])
            r["generator_s_per_area"] = r["generator"]["max_s_per_448_area"]
        else:
            r["train_throughput"] = bench_train_throughput(tt_setup, device)
        r["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        r["elapsed_s"] = time.perf_counter() - t_start
        return r
    nets_ = nets(cfg["width"], device)
    r["parameters"] = {"PB": parameter_count(nets_["PB"]), "FCN": parameter_count(nets_["FCN"])}
    mc = {"PB": bench_mc("PB", nets_["PB"], cfg["mc_pb"], cfg, device),
          "FCN": bench_mc("FCN", nets_["FCN"], cfg["mc_fcn"], cfg, device)}
    if cfg.get("fcn_width1") and cfg["width"] != 1.0:
        # the shared-trunk ratio depends on the trunk/head cost ratio: the FCN at paper width
        torch.manual_seed(0)
        mc["FCN_width1"] = bench_mc("FCN width 1", FCN(width=1.0).eval().to(device), cfg["fcn_width1"], cfg, device,
                                    naive=False)
    sl = bench_sliding(nets_, cfg, device)
    ev = bench_eval(tuple(cfg["eval"]), cfg["reps"])
    fu = bench_fuse(tuple(cfg["fuse"]), cfg["reps"])
    rss_w = cfg.get("rss_width", cfg["width"])
    rss = {m: bench_rss(m, tuple(cfg["rss"]), rss_w, cfg, device) for m in cfg["rss_models"]}
    gen = bench_generator(cfg["gen_side"], cfg["gen_areas"])
    r.update({
        "T": cfg["T"],
        "mc_ratio_pb": mc["PB"]["mc_ratio"],
        "mc_ratio_fcn": mc["FCN"]["mc_ratio"],
        "mc_ratio_fcn_paper_width": mc["FCN_width1"]["mc_ratio"] if "FCN_width1" in mc else mc["FCN"]["mc_ratio"],
        "mc_flop_floor_pb": mc["PB"]["flop_floor"],
        "mc_flop_floor_fcn": mc["FCN"]["flop_floor"],
        "mc_flop_floor_fcn_paper_width": (mc["FCN_width1"] if "FCN_width1" in mc else mc["FCN"])["flop_floor"],
        "naive_mc_ratio_pb": mc["PB"]["naive_mc_ratio"],
        "naive_mc_ratio_fcn": mc["FCN"]["naive_mc_ratio"],
        "pb_dense_speedup": sl["speedup"],
        "pb_dense_speedup_note": sl["note"],
        "pb_dense_fft_speedup": sl["fft_speedup"],
        "eval_mpx_per_s": ev["mpx_per_s"],
        "fuse_mpx_per_s": fu["mpx_per_s"],
        "infer_peak_rss_mb": max(v["peak_rss_mb"] for v in rss.values()),
        "infer_peak_rss_models": list(rss),
        "generator_s_per_area": gen["max_s_per_448_area"],
        "details": {"mc": mc, "sliding": sl, "eval": ev, "fuse": fu, "rss": rss},
        "generator": gen,
    })
    r["train_throughput"] = bench_train_throughput(tt_setup, device)
    if mode == "full":
        tr = bench_training(cfg, device)
        r["train_samples_per_s"] = {k: v["samples_per_s"] for k, v in tr.items()}
        inf = bench_full_infer(nets_, cfg, device)
        r["infer_mpx_per_s"] = {k: v["mpx_per_s"] for k, v in inf.items()}
        var = bench_variants(nets_, cfg, device)
        side = cfg["mc_pb"]
        flop_px_useful = 2 * pb_macs_per_pixel(cfg["width"])
        flop_px_tile = 2 * pb_macs_per_pixel(cfg["width"], tile=(side, side))
        best = min(var["PB"], key=lambda k: var["PB"][k]["det_s"] if var["PB"][k]["max_abs_prob_diff_vs_fp32"] < 1e-2
                   else math.inf)
        rate = flop_px_tile * side * side / var["PB"][best]["det_s"]
        peak = peak_for(device)
        r["pb_flops_per_px"] = flop_px_useful
        r["pb_flops_per_px_note"] = ("2 x MACs of convs and FC layers per classified pixel, counted from the "
                                     "architecture (vaiseg.sliding.pb_macs_per_pixel); the timed tile also runs the "
                                     "conv layers on its 32-px context ring, counted in pb_tflops")
        r["pb_tflops"] = rate / 1e12
        r["pb_tflops_variant"] = best
        r["pb_peak"] = peak
        if peak:
            prec = "bf16" if "bf16" in best else ("tf32" if best != "fp32" else "fp32")
            r["pb_fraction_of_peak"] = rate / peak[prec]
            r["pb_fraction_of_peak_precision"] = prec
        r["details"].update({"training": tr, "infer": inf, "variants": var})
    r["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    r["elapsed_s"] = time.perf_counter() - t_start
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CPU-sized run (default), <= 3 min on 2 cores")
    g.add_argument("--full", action="store_true", help="paper widths, Vaihingen-sized areas (GPU)")
    ap.add_argument("--tiny", action="store_true", help="minimal sizes: same code paths in seconds (tests)")
    ap.add_argument("--out", default="results/benchmarks.json", help="JSON output path")
    ap.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--only", choices=("train_throughput", "generator"), default=None,
                    help="run only this section (machine info + the section; seconds to a minute)")
    t = ap.add_argument_group("train_throughput section (defaults: config.yaml's demo run; --tiny: small sizes)")
    t.add_argument("--train-width", type=float, default=None, help="network width multiplier (models.width, 0.25)")
    t.add_argument("--pb-batch", type=int, default=None, help="PB batch (train.PB.batch_size, 32)")
    t.add_argument("--fcn-batch", type=int, default=None, help="FCN batch (train.FCN.batch_size, 8)")
    t.add_argument("--fcn-patch", type=int, default=None, help="FCN patch side (patches.fcn.size, 128)")
    t.add_argument("--train-steps", type=int, default=None, help="training steps per timed round (10; tiny 2)")
    t.add_argument("--matmul-n", type=int, default=None, help="side of the fp32 matmul (2048; tiny 256)")
    # internal: the RSS subprocess
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="FCN", help=argparse.SUPPRESS)
    ap.add_argument("--height", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--width-px", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--net-width", dest="width", type=float, default=0.25, help=argparse.SUPPRESS)
    ap.add_argument("--T", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--tile", type=int, default=512, help=argparse.SUPPRESS)
    ap.add_argument("--pb-fft-block", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # the memory policy of the pipeline's mc_infer rule (vaiseg.step.keep_freed_memory), in
    # the parent (timings) and in the RSS child alike
    args.malloc_policy = keep_freed_memory()
    if args.rss_child:
        rss_child(args)
        return 0
    mode = "full" if args.full else "quick"
    device = resolve_device(args.device)
    r = run(mode, args.tiny, device, args.threads, train_throughput_setup(args.tiny, args), args.only)
    r["machine"]["malloc_keep_freed"] = args.malloc_policy
    write_json(args.out, r)
    if not args.only:
        print(summary_table(r))
    else:
        m = r["machine"]
        print(f"machine: {m['cpu_model']}, {m['cores']} cores, torch {m['torch_version']}, device {m['device']}")
    if "generator" in r:
        g = r["generator"]
        print(f"synthetic generator, {g['side']}^2 areas on 1 core: mean {g['mean_s']:.2f} s, max {g['max_s']:.2f} s "
              f"({g['max_s_per_448_area']:.2f} s per 448^2 area; goal <= {g['goal_s_per_448_area']:g})")
    if "train_throughput" in r:
        print(train_throughput_summary(r["train_throughput"]))
    print(f"wrote {args.out} ({r['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
