"""Training (§4, §5): a tiny run lowers the loss; killed after epoch k + resumed ==
uninterrupted, bit for bit on CPU; outputs and checkpoint contents."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy import ndimage

from vaiseg.classes import CAR, IGNORE
from vaiseg.errors import ConfigError
from vaiseg.mfb import compute_mfb_weights
from vaiseg.models import FCN, DensePatchCNN, load_model
from vaiseg.patches import extract_fcn, extract_pb
from vaiseg.raster import write_raster
from vaiseg.training import HISTORY_COLUMNS, TrainSettings, _fingerprint, epoch_order, resolve_device, train


def _scene(h, w, seed):
    """Blocky classes 0..3 + clutter + cars; image bands = noisy class-dependent means."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, size=(h // 16 + 1, w // 16 + 1))
    full = np.kron(coarse, np.ones((16, 16), dtype=np.int64))[:h, :w].astype(np.uint8)
    full[4:14, 4:14] = 5
    for _ in range(5):
        r, c = rng.integers(0, h - 8), rng.integers(0, w - 14)
        full[r : r + 7, c : c + 13] = CAR
    means = rng.normal(size=(6, 5)) * 2
    image = (means[full].transpose(2, 0, 1) + rng.normal(size=(5, h, w))).astype(np.float32)
    edges = ndimage.grey_dilation(full, size=3) != ndimage.grey_erosion(full, size=3)
    eroded = full.copy()
    eroded[edges] = IGNORE
    return image, full, eroded


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    d = root / "data"
    for a, seed in ((1, 0), (3, 1)):
        image, full, eroded = _scene(96, 96, seed)
        write_raster(d / str(a) / "image.tif", image)
        write_raster(d / str(a) / "labels.tif", full)
        write_raster(d / str(a) / "labels_eroded.tif", eroded)
    extract_fcn(d, [1, 3], root / "fcn.npz", size=32, overlap=0.5, seed=0, val_fraction=0.2)
    extract_pb(d, [1, 3], root / "pb.npz", per_class=12, car_rotations=1, seed=0, val_fraction=0.2)
    compute_mfb_weights([d / "1" / "labels.tif", d / "3" / "labels.tif"], root / "mfb.json")
    return root


def _run(data, out, model, s, **kw):
    index = data / ("pb.npz" if model == "PB" else "fcn.npz")
    return train(
        model, index, data / "data", out / "model.pt", out / "history.csv", out / "ckpt", s,
        cache_dir=data / "cache", mfb_weights=data / "mfb.json", device="cpu", **kw,
    )


def _history(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_tiny_fcn_training_lowers_the_loss_and_writes_outputs(data, tmp_path):
    s = TrainSettings(epochs=4, batch_size=8, lr=3e-3, width=0.125, seed=0, schedule="constant")
    summary = _run(data, tmp_path, "FCN", s)
    rows = _history(tmp_path / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"] and tuple(rows[0]) == HISTORY_COLUMNS
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.8 * losses[0], losses
    assert float(rows[-1]["val_oa"]) > 0.4  # 5-6 classes; the scene is separable
    net, meta = load_model(tmp_path / "model.pt")
    assert isinstance(net, FCN) and meta["model"] == "FCN" and meta["training"]["epochs_done"] == 4
    assert summary["train_samples"] % 8 == 0  # every patch in all 8 transforms
    assert (tmp_path / "ckpt" / "last.pt").is_file()


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("model", ["FCN-MFB", "PB"])
def test_killed_and_resumed_equals_uninterrupted(data, tmp_path, model):
    s = TrainSettings(epochs=3, batch_size=8, lr=1e-3, width=0.125, seed=3)
    a, b = tmp_path / "a", tmp_path / "b"
    _run(data, a, model, s)
    assert _run(data, b, model, s, stop_after=1) == {"stopped_after": 1}
    assert not (b / "model.pt").exists() and (b / "ckpt" / "last.pt").is_file()
    _run(data, b, model, s)  # resumes at epoch 2
    sa, sb = _state(a / "model.pt"), _state(b / "model.pt")
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ha, hb = _history(a / "history.csv"), _history(b / "history.csv")
    for ra, rb in zip(ha, hb, strict=True):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}
    if model == "PB":
        net, meta = load_model(a / "model.pt")
        assert isinstance(net, DensePatchCNN) and len(meta["classes"]) == 5
    else:
        assert load_model(a / "model.pt")[1]["training"]["mfb_weights"]["values"]


def test_changed_settings_do_not_resume(data, tmp_path):
    s = TrainSettings(epochs=1, batch_size=8, width=0.125, seed=0)
    _run(data, tmp_path, "FCN", s, stop_after=1)
    s2 = TrainSettings(epochs=1, batch_size=8, width=0.125, seed=1)
    _run(data, tmp_path, "FCN", s2)
    ref = tmp_path / "ref"
    _run(data, ref, "FCN", s2)
    sa, sb = _state(tmp_path / "model.pt"), _state(ref / "model.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_settings_and_device():
    cfg = {"seed": 7, "models": {"width": 0.25, "dropout": 0.3}, "train": {"amp": True, "FCN": {"epochs": 2, "lr": 0.5, "optimizer": "sgd"}}, "patches": {"fcn": {"labels": "eroded"}}}
    s = TrainSettings.from_config(cfg, "FCN")
    assert (s.epochs, s.lr, s.optimizer, s.width, s.dropout, s.seed, s.amp, s.fcn_labels) == (2, 0.5, "sgd", 0.25, 0.3, 7, True, "labels_eroded")
    with pytest.raises(ConfigError):
        TrainSettings.from_config(cfg, "XYZ")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert epoch_order(10, 0, 1) == epoch_order(10, 0, 1) != epoch_order(10, 0, 2)
    assert sorted(epoch_order(10, 0, 1)) == list(range(10))


def test_pb_fc1_gets_the_fan_in_scaled_learning_rate():
    from vaiseg.models import PatchCNN
    from vaiseg.training import param_groups

    for width in (1.0, 0.25):
        net = PatchCNN(width=width)
        g = param_groups(net, 0.01)
        assert len(g) == 2 and sum(p.numel() for gr in g for p in gr["params"]) == sum(p.numel() for p in net.parameters())
        fc1 = {id(p) for p in net.fc1.parameters()}
        assert {id(p) for p in g[1]["params"]} == fc1
        # fan-in ratio conv4 / FC1 = 5*5*96w / (128w*41*41), ~1/90 at every width
        assert g[1]["lr"] == pytest.approx(0.01 * 25 * 96 / (128 * 41 * 41), rel=0.02)
    assert len(param_groups(FCN(width=0.125), 0.01)) == 1


def test_fcn_training_with_dropout_after_the_last_two_sets(data, tmp_path):
    # as the workflow passes them: TrainSettings(**params.settings) with the new key
    params = {"epochs": 2, "batch_size": 8, "lr": 3e-3, "width": 0.125, "seed": 0, "schedule": "constant",
              "fcn_dropout": "last_two_sets"}
    s = TrainSettings(**params)
    summary = _run(data, tmp_path, "FCN", s)
    losses = [float(r["train_loss"]) for r in _history(tmp_path / "history.csv")]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[1] < losses[0], losses
    net, meta = load_model(tmp_path / "model.pt")
    assert isinstance(net, FCN) and net.dropout_placement == "last_two_sets" and len(net.dropout_modules()) == 2
    assert meta["training"]["settings"]["fcn_dropout"] == "last_two_sets" == summary["settings"]["fcn_dropout"]
    arch = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=True)["arch"]
    assert arch["dropout_placement"] == "last_two_sets"


def test_fcn_dropout_setting_validation_config_and_fingerprint(data):
    assert TrainSettings().fcn_dropout == "encoder_output"
    with pytest.raises(ConfigError, match="fcn_dropout must be one of encoder_output, last_two_sets, got 'middle'"):
        TrainSettings(fcn_dropout="middle")
    cfg = {"seed": 1, "models": {"width": 0.25, "dropout": 0.5}, "train": {"FCN": {"fcn_dropout": "last_two_sets"}}}
    assert TrainSettings.from_config(cfg, "FCN").fcn_dropout == "last_two_sets"  # a per-model train key
    assert TrainSettings.from_config(cfg, "FCN-MFB").fcn_dropout == "encoder_output"
    # the default leaves fingerprints as they were before the field existed (checkpoints
    # keep resuming); another placement is another run; PB ignores the field
    import hashlib
    import json
    from dataclasses import asdict

    index = data / "fcn.npz"
    base = TrainSettings(width=0.125)
    legacy = {k: v for k, v in asdict(base).items() if k not in ("fcn_dropout", "bands")}  # fields of then
    h = hashlib.sha256(json.dumps(["FCN", legacy, None], sort_keys=True).encode())
    h.update(index.read_bytes())
    assert _fingerprint("FCN", base, index, None) == h.hexdigest()
    l2 = TrainSettings(width=0.125, fcn_dropout="last_two_sets")
    assert _fingerprint("FCN", l2, index, None) != _fingerprint("FCN", base, index, None)
    assert _fingerprint("PB", l2, index, None) == _fingerprint("PB", base, index, None)
