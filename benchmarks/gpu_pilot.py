#!/usr/bin/env python
"""GPU pilot at the paper's widths (issue 13); benchmarks/gpu_pilot.sh runs it on a GPU machine.

Sections, each its own subcommand writing one JSON file into ``--dir``:

    bench    measured ceilings (bf16 / tf32 / strict fp32 matmul, device copy bandwidth) and
             the training step of PB and FCN at paper width in strict fp32, PyTorch's default
             flags (cuDNN convolutions in TF32) and bf16 autocast,
             each NCHW and channels-last: samples/s, FLOP per sample, TFLOP/s, share of peak
    pilot    one CNN trained for ``--seconds`` at the paper config's settings on the pilot's
             synthetic Vaihingen-sized areas (patches from the pipeline's own rules): a
             held-out history every ``--eval-every`` seconds, and the weights for ``mc``
    mc       MC-dropout inference (T = 10, the paper config's tiles) of a whole pilot area
             with the pilot weights, per CNN and precision (fp32, default, bf16; PB by FFT and
             by direct convolution): Mpx/s and max |p - p_fp32|, |u - u_fp32|
    dag      the tiny config's DAG run through Snakemake on the GPU: each job's time and
             device, read from its benchmark TSV and log
    resume   vaiseg.training.train killed after one epoch and resumed, against an
             uninterrupted run
    report   all of it in one JSON (benchmarks/results/<device>.json) with the
             extrapolated run time of config/vaihingen.yaml, and a summary table

Sizes come from the configs (``--config`` files over the pilot's); ``--tiny`` only shrinks
the ceilings' matrices and the step timings, so that with tests/config/gpu_pilot_tiny.yaml
the same code runs on a CPU in seconds (the test).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import log, peak_for, sync, timeit  # noqa: E402  (benchmarks/run.py: data-sheet peaks, timing)

from vaiseg.atomic import write_json  # noqa: E402
from vaiseg.mc_dropout import fp32_math, mc_predict, resolve_device  # noqa: E402
from vaiseg.training import (  # noqa: E402
    CHECKPOINT,
    MEMORY_FORMAT,
    TrainSettings,
    _build,
    _loss,
    _optimizer,
    _scheduler,
    autocast_enabled,
    batch_loss,
    datasets,
    epoch_loader,
    evaluate,
    loss_weights,
    optimiser_step,
    steps_per_epoch,
)

#: the pilot's configuration: the paper config, with the pilot's data (benchmarks/gpu_pilot.yaml) over it
PAPER_CONFIG = ROOT / "config" / "vaihingen.yaml"
PILOT_CONFIG = HERE / "gpu_pilot.yaml"
#: fp32: TF32 off everywhere; default: PyTorch's flags as found (cuDNN convolutions in TF32,
#: matmuls in fp32: what the pipeline runs for training without train.amp, and ran for
#: inference before mc_predict's fp32_math); bf16: autocast to bfloat16 (train.amp)
PRECISIONS = ("fp32", "default", "bf16")
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
#: ISPRS Vaihingen: 33 areas of 2494 x 2064 px on average (the benchmark's description);
#: the paper split trains on 11 of them and validates on 5 (vaiseg.config.SPLITS)
VAIHINGEN_AREA_PX = 2494 * 2064
PAPER_SPLIT = {"train": 11, "val": 5}
#: PB patches per class of config/vaihingen.yaml on the real data (§4.1's rule: every car
#: once + 8 rotations, the other classes to that count; issue 13's estimate)
PAPER_PB_PER_CLASS = 40_000


def merged_config(*paths: Path) -> dict:
    """The configs in order, later keys over earlier ones, recursively (as Snakemake merges --configfile)."""

    def merge(a: dict, b: dict) -> dict:
        out = copy.deepcopy(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        return out

    cfg: dict = {}
    for p in paths:
        cfg = merge(cfg, yaml.safe_load(Path(p).read_text()) or {})
    return cfg


@contextmanager
def precision(name: str, device: torch.device):
    """One of :data:`PRECISIONS` for the duration."""
    with fp32_math(name == "fp32"), torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
        yield


def machine(device: torch.device) -> dict:
    m = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
         "cpu_cores": os.cpu_count(), "device": str(device), "platform": platform.platform(),
         "default_tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        m.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                 capability=f"{p.major}.{p.minor}", cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return m


# --------------------------------------------------------------------------- bench
def ceilings(device: torch.device, tiny: bool) -> dict:
    """What this device does in dense matrix products and copies, measured (random data)."""
    n = 256 if tiny else 8192
    g = torch.Generator().manual_seed(0)
    out = {"matmul_n": n}
    old = torch.backends.cuda.matmul.allow_tf32
    for name, dtype in (("bf16", torch.bfloat16), ("tf32", torch.float32), ("fp32", torch.float32)):
        a = torch.randn(n, n, generator=g).to(device, dtype)
        b = torch.randn(n, n, generator=g).to(device, dtype)
        torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
        try:
            t = timeit(lambda: torch.mm(a, b), 3 if tiny else 10, device, warmup=1 if tiny else 3)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
        out[f"matmul_{name}_tflops"] = 2 * n**3 / t["median_s"] / 1e12
    nbytes = (1 if tiny else 2048) * 2**20
    src = torch.randn(nbytes // 4, generator=g).to(device)
    dst = torch.empty_like(src)
    t = timeit(lambda: dst.copy_(src), 3 if tiny else 10, device, warmup=2)
    out["copy_gb_per_s"] = 2 * nbytes / t["median_s"] / 1e9  # bytes read + written
    out["copy_bytes"] = nbytes
    return out


def train_variants(cfg: dict, device: torch.device, tiny: bool) -> dict:
    """Training step of PB and FCN at the config's width and batches (the paper's), with the
    pipeline's _build, _loss and _optimizer (PB: SGD with FC1's scaled rate; FCN: Adam), in
    each precision x layout, on one random batch on the device (no data loading)."""
    from torch.utils.flop_counter import FlopCounterMode

    pk = peak_for(device)
    steps, reps = (2, 2) if tiny else (10, 5)
    out: dict = {"steps_per_timing": steps, "timings": reps, "peak": pk}
    for model, patch in (("PB", cfg["patches"]["pb"]["size"]), ("FCN", cfg["patches"]["fcn"]["size"])):
        s = TrainSettings.from_config(cfg, model)
        batch = s.batch_size
        torch.manual_seed(0)
        x0 = torch.randn(batch, s.in_channels, patch, patch)
        y0 = torch.randint(0, 5 if model == "PB" else 6, (batch,) if model == "PB" else (batch, patch, patch))
        res = {"batch": batch, "patch": patch, "width": s.width, "optimizer": s.optimizer, "variants": {}}
        for layout, fmt in LAYOUTS.items():
            torch.manual_seed(0)
            net = _build(model, s).to(device, memory_format=fmt).train()
            opt = _optimizer(net, s)
            x, y = x0.to(device).contiguous(memory_format=fmt), y0.to(device)
            if "gflop_per_sample" not in res:
                with FlopCounterMode(display=False) as fc:
                    _loss(model, net(x), y, None).backward()
                opt.zero_grad(set_to_none=True)
                res["gflop_per_sample"] = fc.get_total_flops() / batch / 1e9  # forward + backward
            for prec in PRECISIONS:
                key = f"{prec}_{layout}"

                def step(net=net, opt=opt, x=x, y=y, prec=prec):
                    for _ in range(steps):
                        opt.zero_grad(set_to_none=True)
                        with precision(prec, device):
                            logits = net(x)
                        _loss(model, logits, y, None).backward()
                        opt.step()

                try:
                    t = timeit(step, reps, device, warmup=2)
                except Exception as e:  # a variant the device cannot run is a result too
                    res["variants"][key] = {"error": f"{type(e).__name__}: {e}"}
                    continue
                sps = batch * steps / t["median_s"]
                res["variants"][key] = {"samples_per_s": sps, "step_ms": 1e3 * t["median_s"] / steps,
                                        "tflops": sps * res["gflop_per_sample"] / 1e3}
                log(f"[train] {model} {key}: {sps:,.0f} samples/s, {res['variants'][key]['tflops']:.1f} TFLOP/s")
        ok = {k: v for k, v in res["variants"].items() if "samples_per_s" in v}
        res["fastest"] = max(ok, key=lambda k: ok[k]["samples_per_s"]) if ok else None
        out[model] = res
    return out


def shares_of_peak(res: dict, pk: dict | None) -> None:
    """Each variant's TFLOP/s as a share of the data-sheet peak of the precision its
    convolutions run in (most FLOPs: PB's FC1 is under 1 % of a 65x65 patch's); default:
    cuDNN's TF32."""
    for key, v in res["variants"].items():
        if "tflops" in v:
            prec = key.split("_")[0]
            v["peak_precision"] = "tf32" if prec == "default" else prec
            v["share_of_peak"] = v["tflops"] * 1e12 / pk[v["peak_precision"]] if pk else None


def cmd_bench(args) -> None:
    device = resolve_device(args.device)
    cfg = merged_config(PAPER_CONFIG, PILOT_CONFIG, *args.config)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    r = {"machine": machine(device), "tiny": args.tiny}
    t0 = time.perf_counter()
    r["ceilings"] = ceilings(device, args.tiny)
    r["train_variants"] = train_variants(cfg, device, args.tiny)
    r["seconds"] = time.perf_counter() - t0
    write_json(Path(args.dir) / "bench.json", r)


# --------------------------------------------------------------------------- pilot
def run_root(cfg: dict) -> Path:
    return ROOT / "results" / cfg["run_name"] if cfg.get("run_name") else ROOT / "results"


def cmd_pilot(args) -> None:
    """Train one CNN for ``--seconds`` as vaiseg.training.train does (same datasets, loader,
    loss, optimiser, cosine schedule over the configured epochs, bf16 autocast when
    train.amp), with held-out evaluations every ``--eval-every`` seconds.

    ``--loss-readback row`` keeps the running loss on the device until a history row
    instead of reading it back every step as the pipeline does (one host-GPU sync per
    step): the variant that tests why the FCN's loop ran at 35 % of its step rate on an
    H200 with its loader idle. Its JSON is ``pilot_<model>_readback_row.json``."""
    device = resolve_device(args.device)
    cfg = merged_config(PAPER_CONFIG, PILOT_CONFIG, *args.config)
    model = args.model
    s = TrainSettings.from_config(cfg, model)
    root = run_root(cfg)
    index_path = root / "patches" / ("pb.npz" if model == "PB" else "fcn.npz")
    pin = device.type == "cuda"
    if pin:
        torch.backends.cudnn.benchmark = True
    weights = loss_weights(model, root / "models" / "mfb_weights.json" if model == "FCN-MFB" else None, device)
    index, train_ds, val_ds = datasets(model, s, index_path, root / "data", root / "cache", args.workers)
    torch.manual_seed(s.seed)
    net = _build(model, s).to(device, memory_format=MEMORY_FORMAT)
    opt = _optimizer(net, s)
    step_samples, nb = steps_per_epoch(s, len(train_ds))
    sched = _scheduler(opt, s, nb)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=step_samples, num_workers=args.workers,
                                             pin_memory=pin, generator=torch.Generator())
    log(f"[pilot] {model} on {device}: {len(train_ds)} training / {len(val_ds)} held-out samples, "
        f"batch {s.batch_size}, {nb} steps per epoch, amp {s.amp}, {args.seconds} s")
    history, seen, step, epoch = [], 0, 0, 0
    t_start = t_row = time.perf_counter()
    loss_sum = n_sum = wait = 0.0
    done = False
    while not done:
        epoch += 1
        net.train()
        it = iter(epoch_loader(train_ds, s, epoch, nb, args.workers, pin))
        while True:
            tw = time.perf_counter()
            batch = next(it, None)
            wait += time.perf_counter() - tw
            if batch is None:
                break
            loss, y = batch_loss(net, batch, model, s, device, weights, pin)
            lr = opt.param_groups[0]["lr"]
            optimiser_step(net, opt, loss, s.clip_grad_norm, sched)
            step += 1
            seen += len(y)
            if args.loss_readback == "step":  # as vaiseg.training.train: a host-GPU sync per step
                loss_sum += float(loss.detach()) * len(y)
            else:  # summed on the device, read at the history rows
                loss_sum = loss_sum + loss.detach().double() * len(y)
            n_sum += len(y)
            now = time.perf_counter()
            # the time is up, or the configured epochs are done (the cosine rate at 0)
            last = now - t_start >= args.seconds or step >= s.epochs * nb
            if now - t_row >= args.eval_every or last or (args.loss_readback == "step" and not math.isfinite(loss_sum)):
                sync(device)
                loss_sum = float(loss_sum)
                dt = time.perf_counter() - t_row
                row = {"seconds": round(time.perf_counter() - t_start, 2), "step": step, "samples": seen,
                       "epoch": round(step / nb, 4), "lr": lr, "train_loss": loss_sum / max(n_sum, 1),
                       "samples_per_s": n_sum / dt, "data_wait_share": wait / dt}
                row.update(evaluate(net, val_loader, model, device, weights, autocast_enabled(s, device)))
                history.append(row)
                log(f"[pilot] {model} {row['seconds']:.0f} s: step {step}, loss {row['train_loss']:.4f}, "
                    f"held-out loss {row['val_loss']:.4f}, OA {row['val_oa']:.3f}, {row['samples_per_s']:,.0f} samples/s")
                net.train()
                loss_sum = n_sum = wait = 0.0
                t_row = time.perf_counter()
                if last or not math.isfinite(row["train_loss"]):
                    done = True
                    break
    name = model if args.loss_readback == "step" else f"{model}_readback_{args.loss_readback}"
    torch.save(net.state_dict(), Path(args.dir) / f"pilot_{name}.pt")
    k = max(1, len(history) // 5)
    first, final = history[:k], history[-k:]
    mean = lambda rows, key: statistics.fmean(r[key] for r in rows)  # noqa: E731
    finite = all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in history)
    write_json(Path(args.dir) / f"pilot_{name}.json", {
        "model": model, "device": str(device), "seconds": args.seconds, "settings": s.__dict__,
        "workers": args.workers, "loss_readback": args.loss_readback,
        "train_samples": len(train_ds), "val_samples": len(val_ds), "steps_per_epoch": nb,
        "patches": str(index_path.relative_to(ROOT)), "history": history, "finite": finite,
        "train_loss_first_last": [mean(first, "train_loss"), mean(final, "train_loss")],
        "val_loss_first_last": [mean(first, "val_loss"), mean(final, "val_loss")],
        "loss_fell": finite and mean(final, "train_loss") < mean(first, "train_loss")
        and mean(final, "val_loss") < mean(first, "val_loss"),
        "samples_per_s": seen / max(history[-1]["seconds"], 1e-9),
        "steady_samples_per_s": steady_rate(history),
    })


def steady_rate(history: list[dict]) -> float:
    """Samples/s after the first history row (start-up, cuDNN's autotuning and the first
    loader workers excluded); the whole run's rate when it has one row."""
    if len(history) < 2:
        return history[-1]["samples"] / max(history[-1]["seconds"], 1e-9)
    a, b = history[0], history[-1]
    return (b["samples"] - a["samples"]) / max(b["seconds"] - a["seconds"], 1e-9)


# --------------------------------------------------------------------------- mc
def cmd_mc(args) -> None:
    """MC inference of a whole pilot area per CNN and precision with the pilot weights."""
    from vaiseg.metrics import confusion_matrix
    from vaiseg.raster import read_raster

    device = resolve_device(args.device)
    cfg = merged_config(PAPER_CONFIG, PILOT_CONFIG, *args.config)
    root = run_root(cfg)
    area = args.area or cfg["data"]["areas"]["val"][0]
    img, _ = read_raster(root / "data" / str(area) / "image.tif")
    gt, _ = read_raster(root / "data" / str(area) / "labels_eroded.tif")
    img, gt = np.ascontiguousarray(img, dtype=np.float32), gt[0].astype(np.int64).ravel()
    T, tile = cfg["infer"]["mc_samples"], cfg["infer"]["tile_size"]
    block = cfg["infer"].get("pb_fft_block")
    paths = {"PB": {"fft": block, "direct": None}, "FCN": {"": None}}
    out = {"area": area, "shape": list(img.shape[1:]), "T": T, "tile": tile, "runs": {}}
    for model, variants in paths.items():
        s = TrainSettings.from_config(cfg, model)
        net = _build(model, s)
        net.load_state_dict(torch.load(Path(args.dir) / f"pilot_{model}.pt", map_location="cpu"))
        net = (net.to_dense() if model == "PB" else net).eval().to(device)
        refs = {}  # each path's fp32 outputs: the reference of its other precisions
        for path, fft in variants.items():
            for prec in PRECISIONS:
                key = "_".join(x for x in (model, path, prec) if x)

                # mc_predict computes in fp32 unless allowed TF32 (then the flags precision() set)
                kw = dict(tile_size=tile, device=device, pb_fft_block=fft, allow_tf32=prec != "fp32")

                def run(x, kw=kw, prec=prec):
                    with precision(prec, device):
                        return mc_predict(net, x, T, **kw)

                try:
                    run(img[:, :tile, :tile])  # warm-up: cuDNN's algorithm choice, FFT plans
                    sync(device)
                    t0 = time.perf_counter()
                    o = run(img)
                    sync(device)
                    dt = time.perf_counter() - t0
                except Exception as e:
                    out["runs"][key] = {"error": f"{type(e).__name__}: {e}"}
                    log(f"[mc] {key}: {out['runs'][key]['error']}")
                    continue
                pred = o["probs"].argmax(0)
                cm = confusion_matrix(gt, pred.ravel(), 6)
                rec = {"seconds": dt, "mpx_per_s": img.shape[1] * img.shape[2] / dt / 1e6,
                       "finite": bool(np.isfinite(o["probs"]).all() and np.isfinite(o["uncertainty"]).all()),
                       "oa_eroded": float(np.trace(cm) / max(cm.sum(), 1))}
                ref = refs.setdefault(path, o)
                if ref is not o:
                    rec.update(max_abs_prob_diff=float(np.abs(o["probs"] - ref["probs"]).max()),
                               max_abs_uncertainty_diff=float(np.abs(o["uncertainty"] - ref["uncertainty"]).max()),
                               label_changed_share=float((pred != ref["probs"].argmax(0)).mean()))
                out["runs"][key] = rec
                log(f"[mc] {key}: {rec['mpx_per_s']:.2f} Mpx/s, max |dp| {rec.get('max_abs_prob_diff', 0):.2e}")
        if {"fft", "direct"} <= set(refs):  # PB's FC1 by FFT vs direct, both in fp32
            a, b = refs["fft"], refs["direct"]
            out["pb_fft_vs_direct_fp32"] = {"max_abs_prob_diff": float(np.abs(a["probs"] - b["probs"]).max()),
                                            "max_abs_uncertainty_diff": float(np.abs(a["uncertainty"] - b["uncertainty"]).max())}
    write_json(Path(args.dir) / "mc.json", out)


# --------------------------------------------------------------------------- dag
def cmd_dag(args) -> None:
    """Each job of a finished Snakemake run: rule, wall seconds (benchmark TSV) and whether
    its log says it ran on CUDA."""
    res, logs = Path(args.results), Path(args.logs)
    jobs = []
    for tsv in sorted((res / "benchmarks").rglob("*.tsv")):
        rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
        rel = tsv.relative_to(res / "benchmarks")
        logf = logs / rel.with_suffix(".log")
        text = logf.read_text(errors="replace") if logf.is_file() else ""
        jobs.append({"job": str(rel.with_suffix("")), "rule": rel.parts[0] if len(rel.parts) > 1 else rel.stem,
                     "seconds": float(rows[0]["s"]) if rows else None,
                     "cuda": bool(re.search(r"\bcuda\b", text)), "log": logf.is_file()})
    by_rule: dict = {}
    for j in jobs:
        r = by_rule.setdefault(j["rule"], {"jobs": 0, "seconds": 0.0, "cuda_jobs": 0})
        r["jobs"] += 1
        r["seconds"] += j["seconds"] or 0.0
        r["cuda_jobs"] += j["cuda"]
    write_json(Path(args.dir) / "dag.json", {"rc": args.rc, "wall_s": args.wall, "jobs": jobs, "rules": by_rule})


# --------------------------------------------------------------------------- resume
def cmd_resume(args) -> None:
    """vaiseg.training.train killed after epoch 1 of 2 (``stop_after``) and run again: it
    must resume from the checkpoint (CUDA RNG state included) and finish; compared with an
    uninterrupted run of the same settings (equal on the CPU, tested; cuDNN may differ)."""
    from vaiseg.models import load_model
    from vaiseg.training import train

    cfg = merged_config(*args.config)
    res, d = Path(args.results), Path(args.dir)
    out = {}
    for model in ("PB", "FCN"):
        s = TrainSettings(**{**TrainSettings.from_config(cfg, model).__dict__, "epochs": 2})
        index = res / "patches" / ("pb.npz" if model == "PB" else "fcn.npz")
        kw = dict(cache_dir=res / "cache", stats=None, device=args.device, workers=0)
        runs = {}
        for name, stops in (("resumed", (1, None)), ("straight", (None,))):
            ck = d / f"resume_{model}_{name}"
            for stop in stops:
                train(model, index, res / "data", ck / "model.pt", ck / "history.csv", ck, s, stop_after=stop, **kw)
            net, meta = load_model(ck / "model.pt")
            runs[name] = (net, meta, torch.load(ck / CHECKPOINT, map_location="cpu", weights_only=False))
        (a, ma, cka), (b, _, _) = runs["resumed"], runs["straight"]
        diff = max(float((p - q).abs().max()) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
                   if p.is_floating_point())
        out[model] = {"device": ma["training"]["device"], "epochs_done": ma["training"]["epochs_done"],
                      "checkpoint_has_cuda_rng": "cuda" in cka["rng"], "history_rows": len(cka["history"]),
                      "max_abs_weight_diff_vs_uninterrupted": diff, "amp": s.amp}
        log(f"[resume] {model}: {out[model]}")
    write_json(d / "resume.json", out)


# --------------------------------------------------------------------------- report
def fcn_samples_per_epoch(cfg: dict, area_px: float, areas: int) -> float:
    """FCN training samples per epoch on ``areas`` areas of ``area_px`` (square-equivalent):
    windows of patches.fcn.size at its overlap, x 8 dihedral transforms (vaiseg.patches)."""
    size = cfg["patches"]["fcn"]["size"]
    stride = max(1, round(size * (1 - cfg["patches"]["fcn"]["overlap"])))
    h, w = 2064, area_px / 2064
    per_area = (math.floor((h - size) / stride) + 1) * (math.floor((w - size) / stride) + 1)
    return per_area * areas * 8 * (1 - cfg["patches"]["val_fraction"])


def extrapolate(r: dict, cfg: dict) -> dict:
    """config/vaihingen.yaml's run time on this device from the pilot's rates."""
    tv, mc, dag = r.get("bench", {}).get("train_variants", {}), r.get("mc", {}).get("runs", {}), r.get("dag", {})
    amp = bool(cfg["train"].get("amp"))
    prec = "bf16" if amp else "default"
    out: dict = {"assumptions": {
        "areas": f"paper split: {PAPER_SPLIT['train']} training + {PAPER_SPLIT['val']} validation areas of "
                 f"{VAIHINGEN_AREA_PX / 1e6:.2f} Mpx (ISPRS Vaihingen's mean 2494 x 2064); MC inference on all "
                 "16 (validation areas for the tables, training areas for the fusion SVMs)",
        "pb_patches_per_class": PAPER_PB_PER_CLASS,
        "training_precision": f"{prec}, channels-last (train.amp {amp}; the pipeline's layout)",
        "step_rate": "the training step on a batch already on the GPU (bench): no data loading, GPU alone; "
                     "the least time training can take",
        "solo_rate": "the data-fed training loop alone on the GPU (gpu_pilot.py pilot, run one CNN at a time "
                     "with the paper config's 8 loader workers; report --solo), after its first history row: "
                     "what the pipeline's train rule runs at; FCN-MFB at the FCN's rate (the same network)",
        "pilot_rate": "the data-fed pilot while the three pilots and the tiny DAG shared the GPU (4 loader "
                      "workers each): a pessimistic rate",
        "inference_precision": "fp32, TF32 off: what mc_predict computes in (vaiseg.mc_dropout.fp32_math)",
    }}
    train = {}
    for model in ("PB", "FCN", "FCN-MFB"):
        s = TrainSettings.from_config(cfg, model)
        n = (5 * PAPER_PB_PER_CLASS * (1 - cfg["patches"]["val_fraction"]) if model == "PB"
             else fcn_samples_per_epoch(cfg, VAIHINGEN_AREA_PX, PAPER_SPLIT["train"]))
        v = tv.get("PB" if model == "PB" else "FCN", {}).get("variants", {}).get(f"{prec}_channels_last", {})
        solo = r.get("solo", {}).get("FCN" if model == "FCN-MFB" else model, {})
        rates = {"step": v.get("samples_per_s"), "solo": solo.get("steady_samples_per_s"),
                 "pilot": r.get("pilot", {}).get(model, {}).get("steady_samples_per_s")}
        train[model] = {"samples_per_epoch": n, "epochs": s.epochs, "samples": n * s.epochs}
        for k, rate in rates.items():
            train[model][f"{k}_samples_per_s"] = rate
            train[model][f"minutes_at_{k}_rate"] = n * s.epochs / rate / 60 if rate else None
    out["training"] = train
    px = VAIHINGEN_AREA_PX * (PAPER_SPLIT["train"] + PAPER_SPLIT["val"])
    infer = {}
    for model, k in (("PB", "PB_fft_fp32"), ("FCN", "FCN_fp32"), ("FCN-MFB", "FCN_fp32")):
        rate = mc.get(k, {}).get("mpx_per_s")
        infer[model] = {"run": k, "mpx_per_s": rate, "minutes": px / 1e6 / rate / 60 if rate else None}
    out["inference"] = infer
    out["inference_px"] = px
    jobs = dag.get("rules", {})
    out["dag_tiny"] = {k: v["seconds"] / max(v["jobs"], 1) for k, v in jobs.items()}
    inf = [v["minutes"] for v in infer.values()]
    for rate in ("step", "solo", "pilot"):
        tr = [v[f"minutes_at_{rate}_rate"] for v in train.values()]
        if all(x is not None for x in tr + inf):
            out[f"training_minutes_at_{rate}_rate"] = sum(tr)
            out[f"total_gpu_minutes_at_{rate}_rate"] = sum(tr) + sum(inf)
    if all(x is not None for x in inf):
        out["inference_minutes"] = sum(inf)
    return out


def cmd_report(args) -> None:
    d = Path(args.dir)
    r: dict = {"issue": 13, "what": "GPU pilot at the paper's widths (benchmarks/gpu_pilot.py)"}
    for name in ("bench", "mc", "dag", "resume"):
        f = d / f"{name}.json"
        r[name] = json.loads(f.read_text()) if f.is_file() else {"missing": str(f.name)}
    for key, folder in (("pilot", d), ("solo", args.solo)):
        if folder is None:
            continue
        r[key] = {}
        for model in ("PB", "FCN", "FCN-MFB", "PB_readback_row", "FCN_readback_row"):
            f = Path(folder) / f"pilot_{model}.json"
            if f.is_file():
                r[key][model] = p = json.loads(f.read_text())
                p.setdefault("steady_samples_per_s", steady_rate(p["history"]))  # JSON of an older pilot
            elif key == "pilot" and "_" not in model:
                r[key][model] = {"missing": f.name}
    tv = r["bench"].get("train_variants", {})
    for model in ("PB", "FCN"):
        if model in tv:
            shares_of_peak(tv[model], tv.get("peak"))
    r["steps"] = {}
    for f in sorted(d.glob("*.rc")):  # gpu_pilot.sh: exit status and seconds of each step
        rc, secs = (int(x) for x in f.read_text().split())
        r["steps"][f.stem] = {"rc": rc, "seconds": secs}
        if rc != 0 and (d / f"{f.stem}.log").is_file():
            r["steps"][f.stem]["log_tail"] = (d / f"{f.stem}.log").read_text(errors="replace")[-3000:]
    cfg = merged_config(PAPER_CONFIG)
    r["extrapolation"] = extrapolate(r, cfg)
    write_json(args.out, r)
    print(summary(r))


def summary(r: dict) -> str:
    lines = [f"step {k}: rc {v['rc']}, {v['seconds']} s" for k, v in r.get("steps", {}).items()]
    m = r.get("bench", {}).get("machine", {})
    lines.append(f"device: {m.get('gpu', m.get('device'))}, torch {m.get('torch')}, CUDA {m.get('cuda')}")
    c = r.get("bench", {}).get("ceilings", {})
    if c:
        lines.append(f"ceilings: matmul bf16 {c['matmul_bf16_tflops']:.1f}, tf32 {c['matmul_tf32_tflops']:.1f}, "
                     f"fp32 {c['matmul_fp32_tflops']:.1f} TFLOP/s; copy {c['copy_gb_per_s']:.0f} GB/s")
    for model in ("PB", "FCN"):
        v = r.get("bench", {}).get("train_variants", {}).get(model)
        if not v:
            continue
        lines.append(f"train {model} (batch {v['batch']} of {v['patch']}^2, {v['gflop_per_sample']:.3f} GFLOP/sample):")
        for k, x in v["variants"].items():
            lines.append(f"  {k:<20} " + (f"{x['samples_per_s']:>10,.0f} samples/s {x['tflops']:>7.1f} TFLOP/s"
                                         + (f" {100 * x['share_of_peak']:5.1f} % of peak" if x.get("share_of_peak") else "")
                                         if "samples_per_s" in x else x["error"][:80]))
    for model, p in [(f"{k} {m}", p) for k in ("pilot", "solo") for m, p in r.get(k, {}).items()]:
        if "history" in p:
            lines.append(f"{model}: {p['history'][-1]['seconds']:.0f} s, {p['steady_samples_per_s']:,.0f} samples/s, "
                         f"train loss {p['train_loss_first_last'][0]:.3f} -> {p['train_loss_first_last'][1]:.3f}, "
                         f"held-out {p['val_loss_first_last'][0]:.3f} -> {p['val_loss_first_last'][1]:.3f}, "
                         f"OA {p['history'][-1]['val_oa']:.3f}, fell {p['loss_fell']}")
        else:
            lines.append(f"{model}: {p}")
    for k, x in r.get("mc", {}).get("runs", {}).items():
        lines.append(f"mc {k:<16} " + (f"{x['mpx_per_s']:7.2f} Mpx/s  max|dp| {x.get('max_abs_prob_diff', 0):.1e}  "
                                       f"max|du| {x.get('max_abs_uncertainty_diff', 0):.1e}  OA {x['oa_eroded']:.3f}"
                                       if "mpx_per_s" in x else x["error"][:80]))
    dag = r.get("dag", {})
    if "rules" in dag:
        lines.append(f"tiny DAG on the device: rc {dag['rc']}, {dag['wall_s']} s, "
                     + ", ".join(f"{k} {v['jobs']}x{v['seconds'] / max(v['jobs'], 1):.1f}s{' cuda' if v['cuda_jobs'] else ''}"
                                 for k, v in dag["rules"].items()))
    e = r.get("extrapolation", {})
    if "inference_minutes" in e:
        lines.append("config/vaihingen.yaml extrapolated: training " + ", ".join(
            f"{e[f'training_minutes_at_{k}_rate']:.0f} min at the {k} rate" for k in ("step", "solo", "pilot")
            if f"training_minutes_at_{k}_rate" in e) + f"; MC inference {e['inference_minutes']:.1f} min")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("bench", "pilot", "mc", "dag", "resume", "report"):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True, help="folder of the section JSON files")
        p.add_argument("--device", default="auto")
        p.add_argument("--tiny", action="store_true", help="minimal sizes (CPU test)")
        p.add_argument("--config", nargs="*", default=[], help="further config files over the pilot's")
        if name == "pilot":
            p.add_argument("--model", required=True, choices=("PB", "FCN", "FCN-MFB"))
            p.add_argument("--seconds", type=float, default=120.0)
            p.add_argument("--eval-every", type=float, default=10.0)
            p.add_argument("--workers", type=int, default=4)
            p.add_argument("--loss-readback", choices=("step", "row"), default="step",
                           help="read the training loss back every step (the pipeline) or at history rows")
        if name == "mc":
            p.add_argument("--area", type=int, default=None)
        if name in ("dag", "resume"):
            p.add_argument("--results", required=True)
        if name == "dag":
            p.add_argument("--logs", required=True)
            p.add_argument("--rc", type=int, default=None)
            p.add_argument("--wall", type=float, default=None)
        if name == "report":
            p.add_argument("--out", required=True)
            p.add_argument("--solo", default=None, help="folder of pilot JSONs run one CNN at a time (the solo rate)")
    args = ap.parse_args(argv)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    {"bench": cmd_bench, "pilot": cmd_pilot, "mc": cmd_mc, "dag": cmd_dag, "resume": cmd_resume,
     "report": cmd_report}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
