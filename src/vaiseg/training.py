"""Training of the three CNNs (§4.1, §4.2, §5) with per-epoch checkpoints and resume.

``train(...)`` trains one model — "PB" (:class:`~vaiseg.models.PatchCNN`, plain
cross-entropy on the PB index), "FCN" (plain cross-entropy, eq. 1 with w = 1) or
"FCN-MFB" (eq. 1 with the median-frequency weights of eq. 2) — and writes
``model.pt`` (:func:`~vaiseg.models.save_model`) and ``history.csv`` (epoch,
train_loss, val_loss, val_oa, val_car_f1, seconds).

Choices where the paper is silent (documented here and in the README):
- Optimiser: Adam (default lr 1e-3; used for the FCNs) or SGD with momentum 0.9 (used
  for the PB, lr 0.01); a cosine learning-rate schedule over all optimiser steps (to 0 at
  the end); weight decay 1e-4. PB's huge-fan-in FC1 gets a scaled learning rate
  (:func:`param_groups`): without it the PB diverged with both optimisers.
- Every epoch visits every training row of the index once in a seeded random order (a
  fresh permutation per epoch from ``seed`` and the epoch number): for the FCN that is
  every patch in all 8 dihedral transforms (§4.2).
- PB by loss sampling (``TrainSettings.sampling = "tiles"``, not the paper's recipe; off in
  both configs: measured and not taken, docs/results.md "Convergence"): a batch is ``batch_size`` tiles (:class:`~vaiseg.patches.PBTiles`)
  whose ``batch_size * centres_per_tile`` class-balanced centres share the convolutions
  (:meth:`~vaiseg.models.PatchCNN.forward_centres`); the loss is
  :func:`balanced_cross_entropy` (every class present in the batch weighted equally; with
  the even split it is the plain mean). An epoch has as many centres as the index has
  training patches. The held-out history still uses the held-out 65x65 patches.
- FCN dropout placement (``TrainSettings.fcn_dropout``, the paper does not say; see
  :class:`~vaiseg.models.FCN`): on the encoder output (default) or after each of the last
  two encoder sets; recorded in the model file's ``arch`` (``dropout_placement``) and in
  ``meta.training.settings``.
- Band subset (``TrainSettings.bands``, not in the paper; for the sim-to-real check of
  :mod:`vaiseg.realism.sim_to_real`, whose real crop has no DSM): the network is built
  with ``len(bands)`` input channels and the patch datasets yield only those bands of
  ``image.tif``; the bands are recorded in the model file's ``meta.bands``. ``None`` (the
  default) = all five, the pipeline's training unchanged (same fingerprint, same meta).
- The validation numbers in the history (held-out patches, see :mod:`vaiseg.patches`)
  monitor training only: ``evals_per_epoch`` rows per epoch, so :func:`convergence` can
  compare window means (issue 12); the model after the last step is the one written (no
  early stopping / model selection: the cosine schedule, stepped per optimiser step,
  brings the rate to 0, so the last stretch of training sits on its plateau). val_loss
  uses the model's own training loss.
- Determinism: seeded; on CPU ``torch.use_deterministic_algorithms`` is on (without its
  NaN fill of new tensors, :func:`deterministic_on_cpu`), data are
  loaded in a fixed order, so a run killed after epoch k and resumed from its checkpoint
  ends with bit-identical weights. On CUDA cuDNN autotuning is on (fast, not bitwise).
- Checkpoint ``{checkpoint_dir}/last.pt`` after every epoch (weights, optimiser,
  scheduler, RNG states, epoch, history, a fingerprint of the settings + patch index and
  a digest of the pixels and labels, :func:`data_digest`). It is not a Snakemake output,
  so a failed or killed job keeps it; a rerun with the same fingerprint and data digest
  resumes, anything else starts afresh.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from .atomic import atomic_path
from .classes import CAR, IGNORE
from .config import MODELS
from .errors import ConfigError
from .mfb import load_mfb_weights, weighted_cross_entropy
from .models import FCN, FCN_DROPOUT_PLACEMENTS, PB_FC, PatchCNN, save_model
from .patches import FCNPatches, PBPatches, PBTiles, ensure_cache, load_index

log = logging.getLogger(__name__)

#: one row per held-out evaluation (``evals_per_epoch`` per epoch): ``epoch`` is the
#: training progress in epochs (fractional mid-epoch), ``step`` the optimiser steps and
#: ``samples`` the training samples seen so far, ``lr`` the base learning rate in use,
#: ``train_loss`` the mean training loss since the previous row, ``seconds`` the wall time
#: since the previous row (evaluation included).
HISTORY_COLUMNS = ("epoch", "step", "samples", "lr", "train_loss", "val_loss", "val_oa", "val_car_f1", "seconds")
#: bumped when the meaning of a setting changes, so old checkpoints are not resumed
#: (2: the cosine schedule steps per optimiser step, not per epoch; 3: held-out evaluations
#: no longer draw from the global RNG, so every training's dropout masks changed)
TRAINING_VERSION = 3

#: memory layout of the weights and of every batch in training and held-out evaluation:
#: channels-last (NHWC) computes the same sums as NCHW in another order, and on CPU PB's
#: 3x3 stride-1 max-pools and the convolutions make a training step 1.6x (PB) / 1.2x (FCN)
#: faster (benchmarks/run.py train_throughput, ``channels_last_speedup``)
MEMORY_FORMAT = torch.channels_last
CHECKPOINT = "last.pt"
#: PB training modes (``TrainSettings.sampling``)
SAMPLINGS = ("patches", "tiles")
#: bands of image.tif: IR, R, G, DSM, nDSM (vaiseg.data.normalize.BAND_NAMES)
N_BANDS = 5


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a training run (config ``train``/``models``/``seed``)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (per optimiser step, to 0 at the end) | constant
    #: held-out evaluations (history rows) per epoch; the convergence check
    #: (:func:`convergence`) compares windows of these rows
    evals_per_epoch: int = 1
    amp: bool = False  # bf16 autocast on CUDA
    #: bf16 autocast on the CPU as well (config ``train.amp_cpu``). Faster only on CPUs
    #: with native bf16 arithmetic: on an AMD Zen 4 (AVX-512 BF16) the demo's training
    #: steps ran 1.43x (PB) and 1.32x (FCN) faster, on an Intel Xeon with AVX-512 BF16
    #: 0.8x and 0.9-1.0x (docs/measurements.md). Off by default: the tables are made in fp32.
    amp_cpu: bool = False
    width: float = 1.0
    dropout: float = 0.5
    #: PB's FC1/FC2 neurons (config ``models.pb_fc_width``; the paper's 128, not scaled by
    #: ``width``: :data:`vaiseg.models.PB_FC`). Ignored for the FCNs.
    pb_fc_width: int = PB_FC
    seed: int = 0
    fcn_labels: str = "labels"  # labels (full GT) | labels_eroded
    #: where the FCNs' dropout sits (``FCN(dropout_placement=...)``): "encoder_output" |
    #: "last_two_sets"; the paper does not say. Ignored for PB.
    fcn_dropout: str = "encoder_output"
    #: input bands of image.tif (0 IR, 1 R, 2 G, 3 DSM, 4 nDSM) the network sees, in this
    #: order; None = all five (the pipeline). Not in the paper: for the sim-to-real check.
    bands: tuple[int, ...] | None = None
    #: clip the gradient's global L2 norm to this before each optimiser step
    #: (``torch.nn.utils.clip_grad_norm_``); None = no clipping (the paper's recipe)
    clip_grad_norm: float | None = None
    #: PB only: "patches" (the paper: a batch of 65x65 patches) or "tiles" (loss sampling,
    #: Long et al. 2015: ``batch_size`` tiles of ``tile_size``^2 centres plus 32 px of context,
    #: ``centres_per_tile`` class-balanced centres each, convolutions shared;
    #: :class:`~vaiseg.patches.PBTiles`)
    sampling: str = "patches"
    tile_size: int = 128
    centres_per_tile: int = 128

    def __post_init__(self):
        if int(self.evals_per_epoch) < 1:
            raise ConfigError(f"evals_per_epoch must be >= 1, got {self.evals_per_epoch!r}")
        if self.fcn_dropout not in FCN_DROPOUT_PLACEMENTS:
            raise ConfigError(
                f"fcn_dropout must be one of {', '.join(FCN_DROPOUT_PLACEMENTS)}, got {self.fcn_dropout!r}"
            )
        if self.bands is not None:
            bands = tuple(self.bands)
            ok = all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and 0 <= b < N_BANDS for b in bands)
            if not bands or not ok or len(set(bands)) != len(bands):
                raise ConfigError(f"bands must be distinct band indices in 0..{N_BANDS - 1}, got {self.bands!r}")
            object.__setattr__(self, "bands", tuple(int(b) for b in bands))
        if self.clip_grad_norm is not None and not float(self.clip_grad_norm) > 0:
            raise ConfigError(f"clip_grad_norm must be > 0 or null, got {self.clip_grad_norm!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if int(self.tile_size) < 1 or int(self.centres_per_tile) < 1:
            raise ConfigError(f"tile_size and centres_per_tile must be >= 1, got {self.tile_size!r}, {self.centres_per_tile!r}")

    @property
    def in_channels(self) -> int:
        """Input channels of the network: ``len(bands)``, or all five bands."""
        return N_BANDS if self.bands is None else len(self.bands)

    @classmethod
    def from_config(cls, config: dict, model: str) -> "TrainSettings":
        """Settings of ``model`` from a validated config dict."""
        if model not in MODELS:
            raise ConfigError(f"unknown model {model!r} (choose from {MODELS})")
        t = dict(config.get("train", {}).get(model, {}))
        m = config.get("models", {})
        fcn = config.get("patches", {}).get("fcn", {})
        known = {k for k in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in t.items() if k in known}
        return cls(
            **kwargs,
            amp=bool(config.get("train", {}).get("amp", False)),
            amp_cpu=bool(config.get("train", {}).get("amp_cpu", False)),
            width=float(m.get("width", 1.0)),
            dropout=float(m.get("dropout", 0.5)),
            pb_fc_width=int(m.get("pb_fc_width", PB_FC)),
            seed=int(config.get("seed", 0)),
            fcn_labels="labels_eroded" if fcn.get("labels", "full") == "eroded" else "labels",
        )


def convergence(history, window: float = 0.2, max_oa_gain: float = 1.0, max_loss_fall: float = 0.10) -> dict:
    """Has training reached its held-out plateau? (issue 12's criterion)

    Compares the mean of the last ``window`` share of the history rows (held-out
    evaluations, evenly spaced in training samples) with the mean of the same number of
    rows before them: converged when held-out OA gains less than ``max_oa_gain`` points
    and held-out loss falls by less than ``max_loss_fall`` (relative). One held-out value
    is too noisy to judge by; window means are not. The held-out car F1's gain between the
    windows is reported too (``car_f1_gain_points``) but not judged. ``history``: rows with ``val_oa``
    (fraction) and ``val_loss`` (a list of dicts or a DataFrame). With fewer than two
    rows per window the verdict is None ("too few evaluations").
    """
    rows = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    n = len(rows)
    w = max(1, int(round(window * n)))
    out = {"evaluations": n, "window": w, "oa_prev": float("nan"), "oa_last": float("nan"), "oa_gain_points": float("nan"),
           "loss_prev": float("nan"), "loss_last": float("nan"), "loss_fall": float("nan"),
           "car_f1_gain_points": float("nan"), "converged": None}
    if n < 4 or 2 * w > n:
        return out
    last, prev = rows[n - w:], rows[n - 2 * w:n - w]

    def mean(rs, key):
        v = np.array([float(r[key]) for r in rs], dtype=float)
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    oa_prev, oa_last = mean(prev, "val_oa"), mean(last, "val_oa")
    loss_prev, loss_last = mean(prev, "val_loss"), mean(last, "val_loss")
    gain = 100.0 * (oa_last - oa_prev)
    fall = (loss_prev - loss_last) / loss_prev if loss_prev > 0 else float("nan")
    ok = bool(np.isfinite(gain) and np.isfinite(fall) and gain < max_oa_gain and fall < max_loss_fall)
    if all("val_car_f1" in r for r in rows):
        # reported, not judged: car pixels are ~1 % of the held-out pixels, so OA and loss
        # can sit on their plateau while the car F1 still climbs
        out["car_f1_gain_points"] = 100.0 * (mean(last, "val_car_f1") - mean(prev, "val_car_f1"))
    out.update(oa_prev=oa_prev, oa_last=oa_last, oa_gain_points=gain, loss_prev=loss_prev, loss_last=loss_last, loss_fall=fall, converged=ok)
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA when available else CPU; "cuda" without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available (use auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


class _Order(Sampler):
    """Fixed index order (one epoch's seeded permutation)."""

    def __init__(self, order: list[int]):
        self.order = order

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The seeded permutation of ``range(n)`` for ``epoch`` (independent of other RNG use)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _settings_record(s: TrainSettings, model: str) -> dict:
    """``asdict(s)`` without ``bands`` and ``clip_grad_norm`` when they are None (the
    defaults), without the tile settings when ``sampling`` is "patches" and without
    ``pb_fc_width`` for the FCNs, so the fingerprint and the model meta of a five-band,
    unclipped, patchwise run (and every FCN's) are the same as before the fields existed.
    PB's carry ``pb_fc_width``: a PB checkpoint from when the FC layers scaled with the
    width is not resumed."""
    settings = asdict(s)
    if model != "PB":
        settings.pop("pb_fc_width")
    if settings["sampling"] == "patches":
        for k in ("sampling", "tile_size", "centres_per_tile"):
            settings.pop(k)
    if settings["clip_grad_norm"] is None:  # unclipped runs keep the fingerprint they had
        settings.pop("clip_grad_norm")
    if not settings["amp_cpu"]:  # fp32 on the CPU (the default) keeps the fingerprint it had
        settings.pop("amp_cpu")
    if settings["bands"] is None:
        settings.pop("bands")
    else:
        settings["bands"] = list(settings["bands"])
    return settings


def _fingerprint(model: str, s: TrainSettings, index_path: Path, mfb: list | None) -> str:
    settings = _settings_record(s, model)
    # fcn_dropout enters only where it matters (an FCN with a non-default placement), so
    # checkpoints written before the field existed, and PB's, keep their fingerprints
    if model == "PB" or s.fcn_dropout == "encoder_output":
        settings.pop("fcn_dropout")
    h = hashlib.sha256()
    h.update(json.dumps([model, settings, mfb, TRAINING_VERSION], sort_keys=True).encode())
    h.update(Path(index_path).read_bytes())
    return h.hexdigest()


#: the rasters of an area whose content a checkpoint is tied to (those present are hashed)
DATA_RASTERS = ("image", "labels", "labels_eroded")


def data_digest(index: dict, data_dir: str | Path, cache_dir: str | Path) -> str:
    """sha256 of the decoded rasters training reads: image, labels and eroded labels of
    every area in ``index`` (through the memory-mapped cache of :func:`ensure_cache`).

    A checkpoint resumes only when its :func:`_fingerprint` (settings + patch index) AND
    this digest match. The index alone does not pin the data: the FCN index is a grid of
    positions that depends on the areas' sizes only, so without this a changed generator,
    another ``data.synthetic.seed`` or a repaired archive would have resumed the old final
    checkpoint and silently returned a model trained on other pixels. Decoded arrays, not
    file bytes: identical pixels with other TIFF metadata still resume.
    """
    h = hashlib.sha256()
    for a in sorted({int(x) for x in np.unique(index["area"])}):
        for name in DATA_RASTERS:
            if name != "image" and not (Path(data_dir) / str(a) / f"{name}.tif").is_file():
                continue
            arr = ensure_cache(data_dir, cache_dir, a, name)
            h.update(f"{a}/{name}:{arr.dtype}{arr.shape}".encode())
            h.update(np.ascontiguousarray(arr))
    return h.hexdigest()


def balanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with every class present in ``target`` weighted equally: the mean over
    the present classes of each class's mean loss (PB's class-balanced objective, §4.1, for
    loss-sampled batches whose class mix is not exactly balanced). (N, K) logits, (N,) int64."""
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    counts = torch.bincount(target, minlength=logits.shape[1])
    return (ce / (counts[target] * (counts > 0).sum())).sum()


def _loss(model: str, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if model == "PB":
        return F.cross_entropy(logits.float(), target)
    return weighted_cross_entropy(logits, target, weights if model == "FCN-MFB" else None, ignore_index=IGNORE)


def _build(model: str, s: TrainSettings):
    if model == "PB":
        return PatchCNN(width=s.width, dropout=s.dropout, in_channels=s.in_channels, fc_width=s.pb_fc_width)
    return FCN(width=s.width, dropout=s.dropout, dropout_placement=s.fcn_dropout, in_channels=s.in_channels)


def param_groups(net, lr: float) -> list[dict]:
    """Optimiser parameter groups: PB's FC1 gets ``lr * fan_in(conv4) / fan_in(FC1)``.

    FC1 of the PB sees 128w x 41 x 41 inputs (215,168 at paper width), ~90x the fan-in of
    conv4 (5 x 5 x 96w); one optimiser step moves its pre-activations ~90x as far as those
    of the conv layers, and at a common learning rate the PB diverged in every trial (loss
    > 10, then a dead network). Scaling FC1's rate by the fan-in ratio (~1/90 at every
    width) keeps the steps comparable. The paper gives no optimiser details.
    """
    if isinstance(net, PatchCNN):
        factor = 25 * net.widths[2] / net.fc1.in_features
        fc1 = list(net.fc1.parameters())
        ids = {id(p) for p in fc1}
        rest = [p for p in net.parameters() if id(p) not in ids]
        return [{"params": rest, "lr": lr}, {"params": fc1, "lr": lr * factor}]
    return [{"params": list(net.parameters()), "lr": lr}]


def _optimizer(net, s: TrainSettings):
    groups = param_groups(net, s.lr)
    if s.optimizer == "adam":
        return torch.optim.Adam(groups, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    raise ConfigError(f"train.optimizer must be adam or sgd, got {s.optimizer!r}")


def _scheduler(opt, s: TrainSettings, steps_per_epoch: int):
    """Stepped once per optimiser step: cosine decays every group's rate to 0 over
    ``epochs * steps_per_epoch`` steps (smooth, so the last epochs settle on a plateau)."""
    if s.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, s.epochs * steps_per_epoch))
    if s.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    raise ConfigError(f"train.schedule must be cosine or constant, got {s.schedule!r}")


def autocast_enabled(s: TrainSettings, device) -> bool:
    """Whether training and held-out evaluation run under bf16 autocast on ``device``:
    ``s.amp`` on CUDA, ``s.amp_cpu`` on the CPU."""
    device = torch.device(device)
    return (s.amp and device.type == "cuda") or (s.amp_cpu and device.type == "cpu")


@torch.no_grad()
def evaluate(net, loader, model: str, device, weights=None, amp: bool = False) -> dict:
    """Loss, overall accuracy and car F1 on ``loader`` (eval mode: no dropout).
    ``amp``: under bf16 autocast (the caller's :func:`autocast_enabled`).

    OA is over non-ignored pixels (FCN) or patches (PB, whose held-out set is class
    balanced); car F1 = 2 TP / (2 TP + FP + FN) for class 4, NaN when undefined.
    """
    net.eval()
    loss_sum, n_sum, correct, tp, fp, fn = 0.0, 0, 0, 0, 0, 0
    for x, y in loader:
        x, y = x.to(device, memory_format=MEMORY_FORMAT), y.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        valid = y != IGNORE
        n = int(valid.sum())
        if n == 0:
            continue
        loss_sum += float(_loss(model, logits, y, weights)) * n
        n_sum += n
        pred = logits.argmax(1)
        correct += int((pred[valid] == y[valid]).sum())
        tp += int(((pred == CAR) & (y == CAR)).sum())
        fp += int(((pred == CAR) & (y != CAR) & valid).sum())
        fn += int(((pred != CAR) & (y == CAR)).sum())
    if n_sum == 0:
        return {"val_loss": float("nan"), "val_oa": float("nan"), "val_car_f1": float("nan")}
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {"val_loss": loss_sum / n_sum, "val_oa": correct / n_sum, "val_car_f1": f1}


def _write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: r[k] for k in HISTORY_COLUMNS})


def _rng_state(device) -> dict:
    st = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, device) -> None:
    torch.set_rng_state(st["torch"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state_all(st["cuda"])


def steps_per_epoch(s: TrainSettings, n_train: int) -> tuple[int, int]:
    """(samples per optimiser step, optimiser steps per epoch): ``batch_size`` patches, or in
    tile mode ``batch_size x centres_per_tile`` centres; an epoch has as many samples as the
    index has training rows."""
    step_samples = s.batch_size * (s.centres_per_tile if s.sampling == "tiles" else 1)
    return step_samples, math.ceil(n_train / step_samples)


def loss_weights(model: str, mfb_weights, dev) -> torch.Tensor | None:
    """The class weights of ``model``'s loss on ``dev``: FCN-MFB's median-frequency weights
    (from ``mfb_weights``), None for the others."""
    if model != "FCN-MFB":
        return None
    if mfb_weights is None:
        raise ConfigError("FCN-MFB needs mfb_weights (results/models/mfb_weights.json)")
    return load_mfb_weights(mfb_weights).to(dev)


@contextlib.contextmanager
def deterministic_on_cpu(dev):
    """``torch.use_deterministic_algorithms(True)`` on the CPU for the duration, restored after.

    Without filling uninitialised memory (``torch.utils.deterministic.fill_uninitialized_memory``,
    which deterministic mode turns on by default: every new tensor is written with NaN
    first, so that an op reading memory it never wrote shows up). No op of the pipeline's
    training reads it: the weights after a training stretch are bit-identical with and
    without the fill (tests/test_training.py), and the fill cost 3.5 % of PB's training
    step and 4-5 % of the FCNs' on the 2-core CPU (docs/measurements.md).
    """
    before = torch.are_deterministic_algorithms_enabled()
    fill_before = torch.utils.deterministic.fill_uninitialized_memory
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.utils.deterministic.fill_uninitialized_memory = fill_before


def datasets(model: str, s: TrainSettings, index_path: str | Path, data_dir: str | Path, cache_dir: str | Path,
             workers: int = 0):
    """(index, training dataset, held-out dataset) of ``model`` from its patch index: PB's
    65x65 patches (or, with ``sampling: tiles``, its tiles), the FCNs' windows. With loader
    ``workers`` forked from this process (Linux's default), PB's rotated car copies are made
    here once (:meth:`PBPatches.prepare`)."""
    index, meta = load_index(index_path, "pb" if model == "PB" else "fcn")
    tiles = s.sampling == "tiles"
    if tiles and model != "PB":
        raise ConfigError(f"{model}: sampling 'tiles' is a PB setting (the FCNs train on whole patches)")
    if tiles:
        train_ds = PBTiles(index, data_dir, cache_dir, tile_size=s.tile_size, centres=s.centres_per_tile, seed=s.seed, bands=s.bands)
        val_ds = PBPatches(index, data_dir, cache_dir, "val", bands=s.bands)
    elif model == "PB":
        train_ds = PBPatches(index, data_dir, cache_dir, "train", bands=s.bands)
        val_ds = PBPatches(index, data_dir, cache_dir, "val", bands=s.bands)
    else:
        size = int(meta["size"])
        train_ds = FCNPatches(index, size, data_dir, cache_dir, "train", labels=s.fcn_labels, bands=s.bands)
        val_ds = FCNPatches(index, size, data_dir, cache_dir, "val", labels=s.fcn_labels, bands=s.bands)
    if len(train_ds) == 0:
        raise ConfigError(f"{index_path}: no training patches (val_fraction too high?)")
    # forked workers are made anew each epoch and lose what they rotate; they inherit what
    # is made here. Workers started otherwise (spawn, forkserver) receive the dataset
    # pickled, up to PB_ROTATED_KEEP_BYTES per worker per epoch: there, rotate on access
    if workers > 0 and torch.multiprocessing.get_start_method() == "fork":
        for ds in (train_ds, val_ds):
            if isinstance(ds, PBPatches):
                ds.prepare(progress=True)
    return index, train_ds, val_ds


def epoch_loader(train_ds, s: TrainSettings, epoch: int, nb: int, workers: int = 0, pin: bool = False) -> DataLoader:
    """The training batches of ``epoch`` (1-based): every training row once in the epoch's
    seeded order, or in tile mode ``nb`` class-stratified batches of tiles."""
    if s.sampling == "tiles":  # class-stratified batches of tiles, centres drawn per batch
        return DataLoader(
            train_ds, batch_sampler=train_ds.epoch_batches(epoch, nb, s.batch_size),
            collate_fn=train_ds.collate, num_workers=workers, pin_memory=pin,
        )
    return DataLoader(train_ds, batch_size=s.batch_size, sampler=_Order(epoch_order(len(train_ds), s.seed, epoch)), num_workers=workers, pin_memory=pin)


def batch_loss(net, batch, model: str, s: TrainSettings, dev, weights=None, pin: bool = False):
    """(training loss of one batch, its targets): the forward pass of a training step."""
    x, y = batch[0].to(dev, non_blocking=pin, memory_format=MEMORY_FORMAT), batch[-1].to(dev, non_blocking=pin)
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=autocast_enabled(s, dev)):
        if s.sampling == "tiles":
            logits = net.forward_centres(x, *(t.to(dev, non_blocking=pin) for t in batch[1:4]))
        else:
            logits = net(x)
    loss = balanced_cross_entropy(logits, y) if s.sampling == "tiles" else _loss(model, logits, y, weights)
    return loss, y


def optimiser_step(net, opt, loss, clip_grad_norm: float | None = None, sched=None):
    """Backward pass of ``loss`` and one optimiser step (gradient clipped to
    ``clip_grad_norm`` first, when set), then ``sched.step()``. Returns the gradient norm
    before clipping (a device tensor), or None without clipping."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = None if clip_grad_norm is None else torch.nn.utils.clip_grad_norm_(net.parameters(), clip_grad_norm)
    opt.step()
    if sched is not None:
        sched.step()
    return norm


def train(
    model: str,
    index_path: str | Path,
    data_dir: str | Path,
    model_out: str | Path,
    history_out: str | Path,
    checkpoint_dir: str | Path,
    settings: TrainSettings,
    *,
    cache_dir: str | Path = "results/cache",
    mfb_weights: str | Path | None = None,
    stats: str | None = "results/data/stats.json",
    device: str = "auto",
    workers: int = 0,
    stop_after: int | None = None,
) -> dict:
    """Train ``model`` ("PB", "FCN" or "FCN-MFB") and write ``model_out`` + ``history_out``.

    ``index_path``: results/patches/pb.npz (PB) or fcn.npz (FCN models); ``data_dir``:
    results/data (rasters of the data stage); ``mfb_weights``: mfb_weights.json (needed
    for FCN-MFB). Resumes from ``checkpoint_dir/last.pt`` when its fingerprint matches.
    ``stop_after``: return after checkpointing that epoch, without writing outputs (a
    simulated kill, for tests). Returns the summary stored in the model's meta.
    """
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r} (choose from {MODELS})")
    s = settings
    dev = resolve_device(device)
    checkpoint_dir = Path(checkpoint_dir)
    ckpt_path = checkpoint_dir / CHECKPOINT
    weights = loss_weights(model, mfb_weights, dev)
    fingerprint = _fingerprint(model, s, Path(index_path), None if weights is None else weights.tolist())

    index, train_ds, val_ds = datasets(model, s, index_path, data_dir, cache_dir, workers)
    tiles = s.sampling == "tiles"
    data_sha = data_digest(index, data_dir, cache_dir)

    if dev.type != "cpu":
        torch.backends.cudnn.benchmark = True
    with deterministic_on_cpu(dev):
        torch.manual_seed(s.seed)
        net = _build(model, s).to(dev, memory_format=MEMORY_FORMAT)
        opt = _optimizer(net, s)
        n_train = len(train_ds)
        step_samples, nb = steps_per_epoch(s, n_train)
        sched = _scheduler(opt, s, nb)
        history: list[dict] = []
        start = 0
        if ckpt_path.is_file():
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            if ck.get("fingerprint") == fingerprint and ck.get("data_digest") == data_sha:
                net.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                sched.load_state_dict(ck["scheduler"])
                _set_rng_state(ck["rng"], dev)
                history = ck["history"]
                start = ck["epoch"]
                log.info("%s: resuming from %s after epoch %d", model, ckpt_path, start)
            else:
                what = "settings or patches" if ck.get("fingerprint") != fingerprint else "pixels or labels"
                log.warning("%s: checkpoint %s is from other %s; starting afresh", model, ckpt_path, what)
        pin = dev.type == "cuda"
        # held-out patches in batches of a training step's samples (tile mode: its centres).
        # Its own generator: every iterator of a DataLoader draws a base seed from the global
        # RNG (even with shuffle=False and no workers), which would shift the dropout masks of
        # the following steps, so the number of held-out evaluations would change the model.
        val_loader = DataLoader(val_ds, batch_size=step_samples, shuffle=False, num_workers=workers, pin_memory=pin, generator=torch.Generator())
        log.info("%s on %s: %d training / %d validation samples, %d epochs", model, dev, n_train, len(val_ds), s.epochs)
        if tiles:
            log.info("%s: loss sampling, %d batches of %d tiles (%d^2 centres) x %d centres per epoch", model, nb, s.batch_size, s.tile_size, s.centres_per_tile)
        evals = min(int(s.evals_per_epoch), nb)
        # the batch after which each of the epoch's evaluations happens (the last = epoch end)
        eval_after = {round(k * nb / evals) - 1 for k in range(1, evals + 1)}
        for epoch in range(start + 1, s.epochs + 1):
            t0 = time.perf_counter()
            loader = epoch_loader(train_ds, s, epoch, nb, workers, pin)
            net.train()
            loss_sum, n_sum = 0.0, 0
            seen = history[-1]["samples"] if history else 0  # samples before this epoch (its last row)
            clipped = steps = 0  # optimiser steps whose gradient was clipped, of steps
            bar = tqdm(loader, desc=f"{model} epoch {epoch}/{s.epochs}", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)
            for i, batch in enumerate(bar):
                loss, y = batch_loss(net, batch, model, s, dev, weights, pin)
                lr = opt.param_groups[0]["lr"]
                norm = optimiser_step(net, opt, loss, s.clip_grad_norm, sched)
                if norm is not None:
                    clipped = clipped + (norm > s.clip_grad_norm)  # on the device; read at the log line
                    steps += 1
                loss_sum += float(loss.detach()) * len(y)
                n_sum += len(y)
                seen += len(y)
                bar.set_postfix(loss=f"{loss_sum / n_sum:.4f}")
                if i in eval_after:
                    step = (epoch - 1) * nb + i + 1
                    row = {
                        "epoch": round(step / nb, 4),
                        "step": step,
                        "samples": seen,
                        "lr": lr,
                        "train_loss": loss_sum / max(n_sum, 1),
                    }
                    row.update(evaluate(net, val_loader, model, dev, weights, autocast_enabled(s, dev)) if len(val_ds) else {"val_loss": float("nan"), "val_oa": float("nan"), "val_car_f1": float("nan")})
                    row["seconds"] = time.perf_counter() - t0
                    history.append(row)
                    log.info("%s epoch %.2f: %s", model, row["epoch"], {k: round(v, 4) for k, v in row.items()})
                    if steps:
                        log.info("%s: gradient norm clipped to %g in %d of %d steps", model, s.clip_grad_norm, int(clipped), steps)
                        clipped = steps = 0
                    net.train()
                    loss_sum, n_sum, t0 = 0.0, 0, time.perf_counter()
            bar.close()
            ck = {
                "fingerprint": fingerprint,
                "data_digest": data_sha,
                "epoch": epoch,
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": _rng_state(dev),
                "history": history,
            }
            with atomic_path(ckpt_path) as tmp:
                torch.save(ck, tmp)
            _write_history(checkpoint_dir / "history.csv", history)
            if stop_after is not None and epoch >= stop_after:
                return {"stopped_after": epoch}

    summary = {
        "model": model,
        "settings": _settings_record(s, model),
        "epochs_done": history[-1]["epoch"] if history else 0,
        "convergence": convergence(history),
        "final": history[-1] if history else {},
        "train_samples": n_train,
        "val_samples": len(val_ds),
        "device": str(dev),
        "seconds": sum(r["seconds"] for r in history),
        "patches": str(index_path),
        "mfb_weights": None if weights is None else {"path": str(mfb_weights), "values": weights.tolist()},
        "torch": torch.__version__,
    }
    meta_out = {"model": model, "stats": stats, "training": summary}
    if s.bands is not None:
        meta_out["bands"] = list(s.bands)  # input bands of image.tif, in the network's order
    save_model(model_out, net.cpu(), meta_out)
    _write_history(Path(history_out), history)
    return summary
