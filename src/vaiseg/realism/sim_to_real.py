"""Sim-to-real: the pipeline's FCN trained on synthetic areas, scored on a real crop (issue 11).

The headline realism number. An FCN is trained exactly as the pipeline trains it (rule
``train_fcn``: :func:`vaiseg.training.train` with model "FCN" on the FCN patch index
``results/patches/fcn.npz``), except that it sees only the bands a real IR-R-G crop has:
bands 0, 1, 2 (IR, R, G) of ``results/data/{area}/image.tif``
(``TrainSettings.bands = (0, 1, 2)``; the crop has no DSM). It is then run with the
pipeline's MC-dropout inference (:func:`vaiseg.mc_dropout.mc_predict`, T samples, tiled;
label = argmax of the mean softmax) on the real Vaihingen crop, whose raw digital numbers
are standardised with the SYNTHETIC training statistics (``results/data/stats.json``,
the formula of :mod:`vaiseg.data.normalize`), and scored with :mod:`vaiseg.metrics`
under the ISPRS protocol: eroded ground truth (boundaries ignored), overall accuracy over
all non-ignored pixels, average F1 over the five scored classes (clutter not scored).

The crop (``vaihingen_area1_0_0_512_irrg.png`` + ``..._label.png`` of
open-mmlab/mmsegmentation's test fixtures, see ``../shared/real_samples/README.md``) is
ISPRS data: it is read from where the user keeps it and never copied into the project.

Functions: :func:`read_real_crop`, :func:`standardise_real`, :func:`predict_crop`,
:func:`sim_to_real` (prediction GeoTIFF + scores), :func:`train_sim_to_real`, and
:func:`label_shift` (how much of a score is the training class mix), :func:`car_objects`
(which of the reference's cars a model finds).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from ..classes import CAR, IGNORE, KEYS, N_CLASSES
from ..errors import ConfigError, DataError
from ..training import TrainSettings

log = logging.getLogger(__name__)

#: the bands of the pipeline's image.tif a real IR-R-G crop has: IR, R, G
REAL_BANDS = (0, 1, 2)
#: their names in stats.json (vaiseg.data.normalize.BAND_NAMES[:3])
REAL_BAND_NAMES = ("IR", "R", "G")
#: the default run's sim-to-real FCN settings (config.yaml: train.FCN's batch 8, Adam lr
#: 3e-3, 8 held-out evaluations per epoch, at realism.epochs 12; models.width 0.25, dropout
#: 0.5; seed 0) on the real crop's bands (tests/test_sim_to_real.py checks them against
#: config.yaml)
DEMO_SETTINGS = TrainSettings(epochs=12, batch_size=8, lr=3e-3, optimizer="adam", width=0.25, dropout=0.5, seed=0,
                              evals_per_epoch=8, bands=REAL_BANDS)


def read_real_crop(irrg_png: str | Path, label_png: str | Path, shape: tuple[int, int] | None = None):
    """A real mmseg-style crop -> (irrg (3, H, W) uint8 IR-R-G, labels (H, W) uint8).

    ``labels``: the crop's eroded ground truth in our class indices (mmseg 1..6 -> 0..5,
    mmseg 0 = eroded boundary -> ``IGNORE`` = 255). Reads with
    :func:`vaiseg.realism.reference.load_mmseg_crop`. ``shape``: the (H, W) the crop must
    have (None: any). DataError naming the file for a missing file, a wrong band count,
    dtype or size, or a label index above 6.
    """
    from .reference import load_mmseg_crop

    sample = load_mmseg_crop(irrg_png, label_png)
    if shape is not None and tuple(sample.shape) != tuple(shape):
        raise DataError(irrg_png, f"crop is {sample.shape[0]}x{sample.shape[1]} px, expected {shape[0]}x{shape[1]}")
    return sample.irrg, sample.labels


def _load_stats(stats_json) -> tuple[dict, str]:
    if isinstance(stats_json, dict):
        return stats_json, "stats"
    p = Path(stats_json)
    if not p.is_file():
        raise DataError(p, "statistics file not found (run the pipeline's data stage first)")
    try:
        return json.loads(p.read_text()), str(p)
    except (OSError, ValueError) as e:
        raise DataError(p, f"cannot read statistics ({e})") from e


def standardise_real(irrg: np.ndarray, stats_json) -> np.ndarray:
    """Raw IR-R-G digital numbers (3, H, W) -> float32 (3, H, W) standardised with the
    training-area statistics of bands 0..2 (IR, R, G) in ``stats_json`` (path of the
    pipeline's stats.json or its dict): ``(x - mean) / std`` computed in float32, the
    formula of :func:`vaiseg.data.normalize.normalize_area`."""
    stats, where = _load_stats(stats_json)
    bands = list(stats.get("bands", []))[: len(REAL_BAND_NAMES)]
    if bands != list(REAL_BAND_NAMES) or len(stats.get("mean", [])) < 3 or len(stats.get("std", [])) < 3:
        raise DataError(where, f"statistics must start with bands {list(REAL_BAND_NAMES)} (with mean and std), got {bands}")
    irrg = np.asarray(irrg)
    if irrg.ndim != 3 or irrg.shape[0] != 3:
        raise ValueError(f"irrg must be (3, H, W), got {irrg.shape}")
    mean = np.asarray(stats["mean"][:3], dtype=np.float32)[:, None, None]
    std = np.asarray(stats["std"][:3], dtype=np.float32)[:, None, None]
    return ((irrg.astype(np.float32) - mean) / std).astype(np.float32)


def _load(model_path, device):
    from ..mc_dropout import resolve_device
    from ..models import load_model

    dev = resolve_device(device)
    net, meta = load_model(model_path, dev)
    return net, meta, dev


def _model_input(net, meta: dict, image: np.ndarray, model_path) -> np.ndarray:
    """``image`` as the network's input: a full 5-band image is cut to the model's
    ``meta.bands``; otherwise the band count must match ``net.in_channels``."""
    bands = meta.get("bands")
    n_in = int(getattr(net, "in_channels", image.shape[0]))
    if bands is not None and image.shape[0] == 5 and n_in != 5:
        image = image[list(bands)]
    if image.shape[0] != n_in:
        trained = f" (trained on bands {bands})" if bands is not None else ""
        raise DataError(model_path, f"model expects {n_in} input bands{trained}, the image has {image.shape[0]}")
    return image


def predict_crop(
    model_path, image: np.ndarray, *, T: int = 10, seed: int = 0, tile_size: int = 512, device: str = "auto",
    return_all: bool = False,
):
    """The pipeline's MC-dropout inference (:func:`vaiseg.mc_dropout.mc_predict`) of a
    standardised image -> labels (H, W) uint8, classes 0..5 (argmax of the mean softmax
    over ``T`` samples; mask ``seed``; ``tile_size`` px tiles).

    ``image``: (bands, H, W) float32 with the model's input bands (or the full 5-band
    image, cut to the model's ``meta.bands``). ``return_all``: return mc_predict's whole
    dict instead (``labels``, ``probs``, ``uncertainty``, ...).
    """
    net, meta, dev = _load(model_path, device)
    image = _model_input(net, meta, np.asarray(image, dtype=np.float32), model_path)
    res = _predict(net, image, T, seed, tile_size, dev)
    return res if return_all else res["labels"]


def _predict(net, image, T, seed, tile_size, dev) -> dict:
    from ..mc_dropout import mc_predict

    return mc_predict(net, image, T, seed=seed, tile_size=tile_size, device=dev)


def label_shift(probs: np.ndarray, prior_from, prior_to) -> np.ndarray:
    """A prediction moved from one class prior to another (label-shift correction, Saerens,
    Latinne & Decaestecker 2002): ``p'(c | x) ∝ p(c | x) · prior_to(c) / prior_from(c)``,
    renormalised over the classes. ``probs``: (C, H, W) mean softmax of a model trained
    where the classes had the shares ``prior_from`` (length C); returns float64 (C, H, W).
    It changes only the prior term of the posterior, not what the model learned from the
    images, so scoring the corrected prediction says how much of a score difference
    between two training sets is their class mix (README, "How realistic the default
    data are"). ``prior_to`` may hold zeros (a class absent there is never predicted);
    ValueError for mismatched lengths, a ``prior_from`` share that is not positive, a
    negative ``prior_to`` share or one summing to 0."""
    p = np.asarray(probs, dtype=np.float64)
    a, b = np.asarray(prior_from, dtype=np.float64), np.asarray(prior_to, dtype=np.float64)
    if p.ndim != 3 or a.shape != (p.shape[0],) or b.shape != (p.shape[0],):
        raise ValueError(f"probs (C, H, W) and two priors of length C needed, got {p.shape}, {a.shape}, {b.shape}")
    if not (np.all(a > 0) and np.all(b >= 0) and b.sum() > 0):
        raise ValueError(f"prior_from must be positive and prior_to non-negative, not all 0; got {a.tolist()} and {b.tolist()}")
    q = p * (b / a)[:, None, None]
    return q / np.maximum(q.sum(axis=0, keepdims=True), np.finfo(np.float64).tiny)


def _pct(v):
    return None if v is None else 100.0 * float(v)


def crop_scores(truth: np.ndarray, pred: np.ndarray, path=None) -> dict:
    """ISPRS scores of a prediction against eroded ground truth (both (H, W) uint8), in
    percent: ``sim_to_real_oa``, ``sim_to_real_avg_f1`` (five scored classes),
    ``sim_to_real_car_f1``; per class ``f1``, ``precision``, ``recall``; the class shares
    of the prediction and of the truth over the scored (non-ignored) pixels
    (``predicted_share`` / ``true_share``) and of the prediction over the whole crop
    (``predicted_share_all``); ``confusion_matrix`` (rows true), ``n_pixels``,
    ``ignored_pixels``. Undefined numbers (0/0) are None."""
    from ..metrics import confusion_matrix, scores

    cm = confusion_matrix(truth, pred, N_CLASSES, path=path)
    sc = scores(cm)
    n = int(cm.sum())
    all_counts = np.bincount(pred[pred < N_CLASSES].ravel(), minlength=N_CLASSES)
    return {
        "units": "percent",
        "sim_to_real_oa": _pct(sc["overall_acc"]),
        "sim_to_real_avg_f1": _pct(sc["avg_f1"]),
        "sim_to_real_car_f1": _pct(sc["car_f1"]),
        "f1": {k: _pct(sc[f"{k}_f1"]) for k in KEYS},
        "precision": {k: _pct(sc[f"{k}_precision"]) for k in KEYS},
        "recall": {k: _pct(sc[f"{k}_recall"]) for k in KEYS},
        "predicted_share": {k: 100.0 * float(v) / n if n else None for k, v in zip(KEYS, cm.sum(0))},
        "true_share": {k: 100.0 * float(v) / n if n else None for k, v in zip(KEYS, cm.sum(1))},
        "predicted_share_all": {k: 100.0 * float(v) / pred.size for k, v in zip(KEYS, all_counts)},
        "confusion_matrix": cm.tolist(),
        "n_pixels": n,
        "ignored_pixels": int((truth == IGNORE).sum()),
    }


#: a car of the reference counts as found when at least this share of its scored pixels
#: is called car (the usual 50 % rule of object-level detection rates)
CAR_FOUND = 0.5
#: its surroundings: the scored, non-car pixels more than CAR_RING[0] and at most
#: CAR_RING[1] px from its eroded label (the ISPRS erosion, a disk of radius 3, leaves a
#: band of about 3 px around the label that holds the car's own edge)
CAR_RING = (3.0, 8.0)
#: the smallest car counted in the share of cars found (scored px): an eroded car is about
#: 44 x 14 px, so smaller components are slivers the erosion or the tile edge left
CAR_MIN_PIXELS = 50


def car_objects(truth: np.ndarray, irrg: np.ndarray, preds, seeds) -> list[dict]:
    """Each car of a reference and whether the models find it: one dict per car.

    A car is a 4-connected component of the eroded car label of ``truth`` ((H, W) uint8,
    ``IGNORE`` on the eroded boundaries; two cars whose labels touch count as one).
    ``irrg``: the reference's (3, H, W) uint8 IR-R-G digital numbers; ``preds``: one (H, W)
    prediction per seed of ``seeds``. Keys: ``car`` (1..n in label order), ``row``/``col``
    (centroid, px), ``pixels`` (scored), ``brightness`` (mean of IR, R, G over the car,
    DN), ``brightness_std`` (std of that mean over its pixels: how much structure the car
    shows), ``surroundings`` (mean brightness of the scored non-car pixels of its
    :data:`CAR_RING`; None where there are none), ``contrast`` (brightness −
    surroundings), ``recall_seed{s}`` (share of its pixels called car) per seed,
    ``recall`` (their mean) and ``found`` (share of the seeds whose recall is at least
    :data:`CAR_FOUND`). A dark car in shadow, within a few DN of the asphalt around it
    and without structure, is near-invisible in IR-R-G: ``contrast`` and
    ``brightness_std`` say which missed cars are such (docs/realism.md).
    """
    from scipy import ndimage

    from .measures import brightness

    preds = [np.asarray(p) for p in preds]
    seeds = [int(s) for s in seeds]
    if len(preds) != len(seeds) or any(p.shape != truth.shape for p in preds) or irrg.shape[1:] != truth.shape:
        raise ValueError(f"car_objects: one {truth.shape} prediction per seed and a (3, {truth.shape}) image "
                         f"(got {[p.shape for p in preds]} for seeds {seeds}, image {irrg.shape})")
    bright = brightness(irrg)
    comp, n = ndimage.label(truth == CAR)
    lo, hi = CAR_RING
    pad = int(np.ceil(hi)) + 1
    scored_other = (truth != CAR) & (truth != IGNORE)
    out = []
    for i, sl in enumerate(ndimage.find_objects(comp), start=1):
        box = tuple(slice(max(s.start - pad, 0), s.stop + pad) for s in sl)
        car = comp[box] == i
        dist = ndimage.distance_transform_edt(~car)
        ring = (dist > lo) & (dist <= hi) & scored_other[box]
        b = bright[box][car].astype(np.float64)
        ys, xs = np.nonzero(car)
        rec = {f"recall_seed{s}": float((p[box][car] == CAR).mean()) for s, p in zip(seeds, preds)}
        sur = float(bright[box][ring].mean(dtype=np.float64)) if ring.any() else None
        out.append({
            "car": i,
            "row": float(ys.mean() + box[0].start),
            "col": float(xs.mean() + box[1].start),
            "pixels": int(car.sum()),
            "brightness": float(b.mean()),
            "brightness_std": float(b.std()),
            "surroundings": sur,
            "contrast": None if sur is None else float(b.mean()) - sur,
            **rec,
            "recall": float(np.mean(list(rec.values()))) if rec else None,
            "found": float(np.mean([v >= CAR_FOUND for v in rec.values()])) if rec else None,
        })
    return out


def sim_to_real(
    model_path, stats_json, irrg_png, label_png, out_tif, *, T: int = 10, seed: int = 0, tile_size: int = 512,
    device: str = "auto", rgb_tif=None, json_out=None,
) -> dict:
    """Score a model trained on synthetic IR-R-G bands on a real crop (the sim-to-real number).

    Reads the crop (:func:`read_real_crop`), standardises it with the synthetic training
    statistics (:func:`standardise_real`), predicts it (:func:`predict_crop`, T MC
    samples) and writes ``out_tif``: (H, W) uint8 class indices 0..5 with the ISPRS colour
    table, no georeferencing (``rgb_tif``: also an RGB rendering). Returns
    :func:`crop_scores` (percent) plus ``model``, ``crop``, ``prediction``, ``T``, ``seed``,
    ``shape``, and writes it to ``json_out`` when given.

    The model must take IR, R, G in that order (``meta.bands`` == [0, 1, 2], or a 3-band
    model without ``meta.bands``); a 5-band pipeline model is a DataError naming it.
    """
    from ..atomic import write_json
    from ..raster import write_label_raster

    irrg, truth = read_real_crop(irrg_png, label_png)
    net, meta, dev = _load(model_path, device)
    bands = meta.get("bands")
    if int(getattr(net, "in_channels", 0)) != len(REAL_BANDS) or (bands is not None and list(bands) != list(REAL_BANDS)):
        raise DataError(
            model_path,
            f"the real crop has IR, R, G only: the model must be trained on bands {list(REAL_BANDS)} "
            f"(TrainSettings.bands), it has {getattr(net, 'in_channels', '?')} input bands (meta bands {bands})",
        )
    image = standardise_real(irrg, stats_json)
    pred = _predict(net, image, T, seed, tile_size, dev)["labels"]
    write_label_raster(out_tif, pred, None, rgb_tif)
    result = crop_scores(truth, pred, path=label_png)
    result.update(model=str(model_path), crop=str(irrg_png), labels=str(label_png), prediction=str(out_tif), T=int(T),
                  seed=int(seed), shape=list(pred.shape))
    log.info(
        "sim-to-real %s on %s: OA %.1f %%, avg F1 %.1f %%, car F1 %s", model_path, irrg_png,
        result["sim_to_real_oa"], result["sim_to_real_avg_f1"] or float("nan"), result["sim_to_real_car_f1"],
    )
    if json_out is not None:
        write_json(json_out, result)
    return result


def train_sim_to_real(
    index_path, data_dir, out_dir, settings: TrainSettings | None = None, *, cache_dir=None, stats=None,
    device: str = "auto", workers: int = 0,
) -> dict:
    """Train the pipeline's FCN on the synthetic training areas' IR, R, G bands.

    :func:`vaiseg.training.train` with model "FCN" on ``index_path`` (the pipeline's
    ``results/patches/fcn.npz``) and ``data_dir`` (``results/data``), as rule
    ``train_fcn`` calls it, with ``settings`` (default :data:`DEMO_SETTINGS`, the default
    run's FCN settings; use ``TrainSettings.from_config(config, "FCN")`` for a config's)
    and ``bands`` = (0, 1, 2) (set when ``settings.bands`` is None; other bands are a
    ConfigError). Writes ``out_dir/model.pt``, ``out_dir/history.csv`` and the
    checkpoint ``out_dir/checkpoint/last.pt`` (a rerun resumes); memory-mapped raster
    copies go to ``cache_dir`` (default ``out_dir/cache``, so the run's own results/cache
    is not touched). ``stats``: the stats.json path recorded in the model's meta (default
    ``data_dir/stats.json``). Returns train's summary.
    """
    from ..training import train

    s = settings or DEMO_SETTINGS
    if s.bands is None:
        s = dataclasses.replace(s, bands=REAL_BANDS)
    if tuple(s.bands) != REAL_BANDS:
        raise ConfigError(f"sim-to-real trains on bands {REAL_BANDS} (IR, R, G), got bands {s.bands}")
    out_dir = Path(out_dir)
    return train(
        "FCN", index_path, data_dir, out_dir / "model.pt", out_dir / "history.csv", out_dir / "checkpoint", s,
        cache_dir=cache_dir if cache_dir is not None else out_dir / "cache",
        stats=str(stats if stats is not None else Path(data_dir) / "stats.json"),
        device=device, workers=workers,
    )
