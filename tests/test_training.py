"""Training (§4, §5): a tiny run lowers the loss; killed after epoch k + resumed ==
uninterrupted, bit for bit on CPU; outputs and checkpoint contents."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch

from vaiseg.errors import ConfigError, DataError
from vaiseg.models import FCN, DensePatchCNN, load_model
from vaiseg.raster import read_raster, write_raster
from vaiseg.training import (
    HISTORY_COLUMNS,
    TRAINING_VERSION,
    TrainSettings,
    _build,
    _fingerprint,
    autocast_enabled,
    convergence,
    epoch_order,
    evaluate,
    resolve_device,
    train,
)


@pytest.fixture(scope="module")
def data(tiny_training_data):
    return tiny_training_data


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
    assert [float(r["epoch"]) for r in rows] == [1, 2, 3, 4] and tuple(rows[0]) == HISTORY_COLUMNS
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
    s = TrainSettings(epochs=3, batch_size=8, lr=1e-3, width=0.125, seed=3, evals_per_epoch=2)
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


def test_other_pixels_with_the_same_patch_index_do_not_resume(data, tmp_path, caplog):
    """The FCN index is a grid of positions: new pixels of the same size (another
    generator, seed or archive) leave it unchanged, so the checkpoint's data digest must
    stop the resume — else the old final model would come back as the new one."""
    import shutil

    s = TrainSettings(epochs=1, batch_size=8, width=0.125, seed=0)
    moved = tmp_path / "data"
    shutil.copytree(data, moved, ignore=shutil.ignore_patterns("cache"))
    _run(moved, tmp_path / "old", "FCN", s)
    image, meta = read_raster(moved / "data" / "3" / "image.tif")
    write_raster(moved / "data" / "3" / "image.tif", (image[:, ::-1] * 0.5).copy(), meta)  # other pixels, same size
    caplog.set_level(logging.INFO, logger="vaiseg.training")
    ckpt = tmp_path / "old" / "ckpt"
    shutil.copytree(ckpt, tmp_path / "new" / "ckpt")  # the old run's final checkpoint
    _run(moved, tmp_path / "new", "FCN", s)
    assert "from other pixels or labels; starting afresh" in caplog.text and "resuming" not in caplog.text
    ref = tmp_path / "ref"
    _run(moved, ref, "FCN", s)  # no checkpoint at all
    sa, sb, so = _state(tmp_path / "new" / "model.pt"), _state(ref / "model.pt"), _state(tmp_path / "old" / "model.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], so[k]) for k in sa)
    # identical pixels rewritten (new file, same content): still resumes
    caplog.clear()
    write_raster(moved / "data" / "1" / "labels.tif", read_raster(moved / "data" / "1" / "labels.tif")[0])
    _run(moved, ref, "FCN", s)
    assert "resuming from" in caplog.text


def test_evaluations_per_epoch_give_evenly_spaced_history_rows(data, tmp_path):
    s = TrainSettings(epochs=2, batch_size=8, lr=1e-3, width=0.125, seed=0, evals_per_epoch=3)
    summary = _run(data, tmp_path, "FCN", s)
    rows = _history(tmp_path / "history.csv")
    n = summary["train_samples"]
    nb = -(-n // 8)  # optimiser steps per epoch
    assert len(rows) == 6
    steps = [int(r["step"]) for r in rows]
    assert steps[2] == nb and steps[-1] == 2 * nb and steps == sorted(steps)
    assert int(rows[-1]["samples"]) == 2 * n
    assert float(rows[-1]["epoch"]) == 2.0
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] <= 1e-3 and all(b < a for a, b in zip(lrs, lrs[1:]))  # cosine, stepped per step
    assert summary["convergence"]["evaluations"] == 6


@pytest.mark.parametrize("model", ["FCN-MFB", "PB"])
def test_the_number_of_held_out_evaluations_does_not_change_the_model(data, tmp_path, model):
    # monitoring must not alter the experiment: an evaluation once drew a DataLoader base
    # seed from the global RNG and so shifted every later dropout mask
    runs = {}
    for evals in (1, 3):
        s = TrainSettings(epochs=2, batch_size=8, lr=1e-3, width=0.125, seed=5, evals_per_epoch=evals)
        _run(data, tmp_path / str(evals), model, s)
        runs[evals] = _state(tmp_path / str(evals) / "model.pt")
    assert len(_history(tmp_path / "3" / "history.csv")) == 6
    assert all(torch.equal(runs[1][k], runs[3][k]) for k in runs[1])


def test_convergence_criterion_on_made_up_histories():
    flat = [{"val_oa": 0.9 + 0.001 * (i % 2), "val_loss": 0.3} for i in range(20)]
    c = convergence(flat)
    assert c["converged"] is True and c["window"] == 4 and abs(c["oa_gain_points"]) < 0.2
    rising = [{"val_oa": 0.5 + 0.02 * i, "val_loss": 1.0 - 0.02 * i} for i in range(20)]
    c = convergence(rising)
    # last 4 rows (16..19) vs 12..15: mean OA gains 4 x 2 = 8 points
    assert c["converged"] is False and c["oa_gain_points"] == pytest.approx(8.0)
    falling_loss = [{"val_oa": 0.9, "val_loss": 1.0 if i < 16 else 0.8} for i in range(20)]
    c = convergence(falling_loss)
    assert c["converged"] is False and c["loss_fall"] == pytest.approx(0.2)
    assert convergence(flat[:3])["converged"] is None  # too few evaluations to judge
    # the car F1 gain is reported, not judged: OA and loss flat, car F1 climbing 1 point a row
    cars = [{"val_oa": 0.9, "val_loss": 0.3, "val_car_f1": 0.3 + 0.01 * i} for i in range(20)]
    c = convergence(cars)
    assert c["converged"] is True and c["car_f1_gain_points"] == pytest.approx(4.0)
    assert np.isnan(convergence(flat)["car_f1_gain_points"])


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
    assert s.pb_fc_width == 128  # §4.1's FC width whatever models.width is
    assert TrainSettings.from_config({**cfg, "models": {**cfg["models"], "pb_fc_width": 48}}, "PB").pb_fc_width == 48
    assert _build("PB", TrainSettings(width=0.125, pb_fc_width=48)).fc1.out_features == 48
    with pytest.raises(ConfigError):
        TrainSettings.from_config(cfg, "XYZ")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert epoch_order(10, 0, 1) == epoch_order(10, 0, 1) != epoch_order(10, 0, 2)
    assert sorted(epoch_order(10, 0, 1)) == list(range(10))


def test_bf16_on_the_cpu_is_opt_in_recorded_and_trains(data, tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert not autocast_enabled(TrainSettings(), cpu) and not autocast_enabled(TrainSettings(), cuda)
    assert not autocast_enabled(TrainSettings(amp=True), cpu) and autocast_enabled(TrainSettings(amp=True), cuda)
    assert autocast_enabled(TrainSettings(amp_cpu=True), "cpu") and not autocast_enabled(TrainSettings(amp_cpu=True), cuda)
    # held-out evaluation: without autograd, under autocast when asked (a forward hook sees it)
    net, seen = _build("PB", TrainSettings(width=0.125)), []
    net.register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), o.dtype)))
    batch = [(torch.randn(4, net.in_channels, 65, 65), torch.tensor([0, 1, 2, 4]))]
    evaluate(net, batch, "PB", cpu, amp=True)
    evaluate(net, batch, "PB", cpu)
    assert seen == [(False, torch.bfloat16), (False, torch.float32)]
    cfg = {"models": {"width": 0.25}, "train": {"amp_cpu": True}}
    assert TrainSettings.from_config(cfg, "PB").amp_cpu and not TrainSettings.from_config({"train": {}}, "PB").amp_cpu
    index = data / "fcn.npz"
    fp32, bf16 = TrainSettings(epochs=1, batch_size=8, width=0.125), TrainSettings(epochs=1, batch_size=8, width=0.125, amp_cpu=True)
    assert _fingerprint("FCN", bf16, index, None) != _fingerprint("FCN", fp32, index, None)  # another run: no resume across
    for name, s in (("fp32", fp32), ("bf16", bf16)):
        _run(data, tmp_path / name, "FCN", s)
        rows = _history(tmp_path / name / "history.csv")
        assert rows and all(np.isfinite(float(r["train_loss"])) and np.isfinite(float(r["val_loss"])) for r in rows)
    sa, sb = _state(tmp_path / "fp32" / "model.pt"), _state(tmp_path / "bf16" / "model.pt")
    assert sa.keys() == sb.keys()
    # the same data, order and initial weights: bf16 arithmetic is what moves the weights
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if sa[k].is_floating_point())
    assert all(sb[k].dtype == sa[k].dtype == torch.float32 for k in sa if sa[k].is_floating_point())  # fp32 master weights


@pytest.mark.parametrize("model", ["PB", "FCN-MFB"])
def test_deterministic_mode_without_the_nan_fill_trains_bit_identical_weights(data, tmp_path, monkeypatch, model):
    import contextlib

    import vaiseg.training as training

    cpu = torch.device("cpu")
    was = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    with training.deterministic_on_cpu(cpu):
        assert torch.are_deterministic_algorithms_enabled() and not torch.utils.deterministic.fill_uninitialized_memory
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == was
    s = TrainSettings(epochs=2, batch_size=8, lr=1e-3, width=0.125, seed=5, evals_per_epoch=2)
    _run(data, tmp_path / "skip", model, s)

    filled = []

    @contextlib.contextmanager
    def with_fill(dev):  # deterministic mode as torch sets it: every new tensor NaN-filled first
        filled.append(dev)
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        assert torch.utils.deterministic.fill_uninitialized_memory
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before)

    monkeypatch.setattr(training, "deterministic_on_cpu", with_fill)
    _run(data, tmp_path / "fill", model, s)
    assert filled  # the training ran under the filling mode
    # an op reading memory it never wrote would have read NaN in the filled run
    sa, sb = _state(tmp_path / "skip" / "model.pt"), _state(tmp_path / "fill" / "model.pt")
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ha, hb = _history(tmp_path / "skip" / "history.csv"), _history(tmp_path / "fill" / "history.csv")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in ha] == [{k: v for k, v in r.items() if k != "seconds"} for r in hb]


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
    legacy = {k: v for k, v in asdict(base).items() if k not in ("fcn_dropout", "bands", "clip_grad_norm", "sampling", "tile_size", "centres_per_tile", "pb_fc_width", "amp_cpu")}  # fields of then
    h = hashlib.sha256(json.dumps(["FCN", legacy, None, TRAINING_VERSION], sort_keys=True).encode())
    h.update(index.read_bytes())
    assert _fingerprint("FCN", base, index, None) == h.hexdigest()
    l2 = TrainSettings(width=0.125, fcn_dropout="last_two_sets")
    assert _fingerprint("FCN", l2, index, None) != _fingerprint("FCN", base, index, None)
    assert _fingerprint("PB", l2, index, None) == _fingerprint("PB", base, index, None)
    # PB's FC width is PB's alone: another width is another PB run, the FCNs' are unchanged
    fc = TrainSettings(width=0.125, pb_fc_width=16)
    assert _fingerprint("PB", fc, index, None) != _fingerprint("PB", base, index, None)
    assert _fingerprint("FCN", fc, index, None) == _fingerprint("FCN", base, index, None)


def test_convergence_table_and_history_plot_from_history_files(tmp_path):
    import pandas as pd

    from vaiseg.reporting.convergence import convergence_table, write_convergence
    from vaiseg.reporting.figures import history_plot

    n = 20
    flat = pd.DataFrame({"epoch": [(i + 1) / 2 for i in range(n)], "samples": [100 * (i + 1) for i in range(n)],
                         "val_oa": [0.95] * n, "val_loss": [0.2] * n, "train_loss": [0.3] * n})
    rising = flat.assign(val_oa=[0.5 + 0.02 * i for i in range(n)])
    flat.to_csv(tmp_path / "flat.csv", index=False)
    rising.to_csv(tmp_path / "rising.csv", index=False)
    df = convergence_table({("PB", 0): tmp_path / "flat.csv", ("FCN", 1): tmp_path / "rising.csv"})
    assert list(df["converged"]) == ["yes", "no"] and list(df["seed"]) == [0, 1]
    assert df.loc[1, "oa_gain_points"] == pytest.approx(8.0) and df.loc[0, "samples"] == 2000
    write_convergence({("PB", 0): tmp_path / "flat.csv"}, tmp_path / "c.csv", tmp_path / "c.md")
    assert "1 of 1 trainings reached their held-out plateau" in (tmp_path / "c.md").read_text()
    history_plot(tmp_path / "rising.csv", tmp_path / "h.png", "FCN")
    assert (tmp_path / "h.png").stat().st_size > 1000
    pd.DataFrame({"epoch": [1], "train_loss": [1.0]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(DataError, match="val_oa"):
        convergence_table({("PB", 0): tmp_path / "old.csv"})


def test_gradient_clipping_bounds_the_steps_and_is_off_by_default(data, tmp_path, caplog):
    base = dict(epochs=1, batch_size=8, lr=0.05, optimizer="sgd", width=0.125, seed=0, schedule="constant")
    _run(data, tmp_path / "none", "PB", TrainSettings(**base))
    _run(data, tmp_path / "huge", "PB", TrainSettings(**base, clip_grad_norm=1e9))
    with caplog.at_level(logging.INFO, logger="vaiseg.training"):
        summary = _run(data, tmp_path / "tiny", "PB", TrainSettings(**base, clip_grad_norm=1e-3))
    none, huge, tiny = (_state(tmp_path / d / "model.pt") for d in ("none", "huge", "tiny"))
    # a bound above every gradient norm scales by exactly 1: the same weights
    assert all(torch.equal(none[k], huge[k]) for k in none)
    # a bound far below them: every step clipped, the weights move a small part as far
    steps = -(-summary["train_samples"] // 8)
    assert f"clipped to 0.001 in {steps} of {steps} steps" in caplog.text
    torch.manual_seed(0)
    init = _build("PB", TrainSettings(**base)).state_dict()

    def moved(state):
        return sum(float((state[k].float() - init[k].float()).norm()) for k in init if init[k].is_floating_point())

    assert 0 < moved(tiny) < 0.2 * moved(none)
    # unclipped settings keep their fingerprint (None is not recorded)
    assert "clip_grad_norm" not in load_model(tmp_path / "none" / "model.pt")[1]["training"]["settings"]
    assert load_model(tmp_path / "tiny" / "model.pt")[1]["training"]["settings"]["clip_grad_norm"] == 1e-3
    with pytest.raises(ConfigError, match="clip_grad_norm"):
        TrainSettings(clip_grad_norm=0)


def test_balanced_cross_entropy_weights_the_present_classes_equally():
    from vaiseg.training import balanced_cross_entropy

    logits = torch.log(torch.tensor([[0.5, 0.5, 1e-9], [0.5, 0.5, 1e-9], [0.5, 0.5, 1e-9], [0.25, 0.75, 1e-9]]))
    y = torch.tensor([0, 0, 0, 1])
    # class 0: three rows of -log 0.5; class 1: one row of -log 0.75; class 2 absent
    expected = (np.log(2) + -np.log(0.75)) / 2
    assert float(balanced_cross_entropy(logits, y)) == pytest.approx(expected, rel=1e-5)
    assert float(balanced_cross_entropy(logits, y)) != pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)))


def test_pb_tile_sampling_trains_resumes_and_is_recorded(data, tmp_path):
    tiles = dict(sampling="tiles", tile_size=24, centres_per_tile=3)
    s = TrainSettings(epochs=3, batch_size=5, lr=1e-3, optimizer="sgd", width=0.125, seed=3, evals_per_epoch=2, **tiles)
    a, b = tmp_path / "a", tmp_path / "b"
    summary = _run(data, a, "PB", s)
    assert _run(data, b, "PB", s, stop_after=1) == {"stopped_after": 1}
    _run(data, b, "PB", s)  # resumes at epoch 2 with the same tiles and centres
    sa, sb = _state(a / "model.pt"), _state(b / "model.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = _history(a / "history.csv")
    # an epoch = batches of 5 tiles x 3 centres, as many as give a patchwise epoch's patches
    steps = -(-summary["train_samples"] // 15)
    assert int(rows[-1]["step"]) == 3 * steps and int(rows[-1]["samples"]) == 3 * steps * 15
    net, meta = load_model(a / "model.pt")
    assert isinstance(net, DensePatchCNN) and meta["training"]["settings"]["sampling"] == "tiles"
    assert meta["training"]["settings"]["centres_per_tile"] == 3
    # patchwise runs keep the fingerprint and settings record they had; tiles are another run
    index = data / "pb.npz"
    patchwise = TrainSettings(width=0.125)
    assert _fingerprint("PB", patchwise, index, None) == _fingerprint("PB", TrainSettings(width=0.125, tile_size=7), index, None)
    assert _fingerprint("PB", patchwise, index, None) != _fingerprint("PB", TrainSettings(width=0.125, **tiles), index, None)
    with pytest.raises(ConfigError, match="sampling 'tiles' is a PB setting"):
        _run(data, tmp_path / "fcn", "FCN", TrainSettings(width=0.125, **tiles))
    cfg = {"train": {"PB": {"sampling": "tiles", "tile_size": 64, "centres_per_tile": 32}}, "models": {"width": 0.25}}
    assert TrainSettings.from_config(cfg, "PB") == TrainSettings(width=0.25, sampling="tiles", tile_size=64, centres_per_tile=32)
    with pytest.raises(ConfigError, match="sampling must be one of patches, tiles"):
        TrainSettings(sampling="pixels")
    with pytest.raises(ConfigError, match="centres_per_tile"):
        TrainSettings(centres_per_tile=0)


def test_loader_workers_get_the_rotated_car_copies_made_once(tiny_training_data, tmp_path):
    """With loader workers, datasets() rotates PB's car copies in this process (the forked
    workers, made anew each epoch, inherit them; without it every epoch rotated them
    again); without workers they are made on first access, as before."""
    from vaiseg.training import datasets

    root = tiny_training_data
    s = TrainSettings(epochs=1, batch_size=8, width=1 / 16, pb_fc_width=8)
    args = ("PB", s, root / "pb.npz", root / "data", tmp_path / "cache")
    _, lazy, _ = datasets(*args)
    _, ready, ready_val = datasets(*args, workers=2)
    rotated = int((ready.angle != 0).sum())
    assert rotated > 0 and len(lazy._rotated) == 0 and len(ready._rotated) == rotated
    assert len(ready_val._rotated) == int((ready_val.angle != 0).sum())
    _, fcn, _ = datasets("FCN", s, root / "fcn.npz", root / "data", tmp_path / "cache", workers=2)  # no PB copies
    assert len(fcn) > 0


def test_spawned_loader_workers_rotate_on_access(tiny_training_data, tmp_path, monkeypatch):
    """Workers started by spawn or forkserver get the dataset pickled: no copies made up front."""
    from vaiseg.training import datasets

    monkeypatch.setattr(torch.multiprocessing, "get_start_method", lambda *a, **k: "spawn")
    root = tiny_training_data
    s = TrainSettings(epochs=1, batch_size=8, width=1 / 16, pb_fc_width=8)
    _, ds, _ = datasets("PB", s, root / "pb.npz", root / "data", tmp_path / "cache", workers=2)
    assert len(ds._rotated) == 0
