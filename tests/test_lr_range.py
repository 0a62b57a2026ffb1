"""Learning-rate range test (vaiseg.lr_range): the rate schedule, the reading of a curve,
the test on tiny data, and its outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaiseg.errors import ConfigError, DataError
from vaiseg.lr_range import COLUMNS, TABLE_COLUMNS, centred_mean, lr_range_test, rates, read_summary, summarise, write_outputs, write_table
from vaiseg.training import TrainSettings, _build, _optimizer


def test_rates_rise_geometrically_from_lr_min_to_lr_max():
    r = rates(1e-4, 1e-1, 4)
    np.testing.assert_allclose(r, [1e-4, 1e-3, 1e-2, 1e-1])
    for bad in ((0.0, 1.0, 10), (1.0, 1e-3, 10), (1e-4, 1.0, 1)):
        with pytest.raises(ConfigError):
            rates(*bad)


def test_summarise_finds_the_minimum_and_the_steepest_fall_of_a_known_curve():
    lrs = np.geomspace(1e-5, 1.0, 101)  # 20 steps per decade
    x = np.log10(lrs)
    # a logistic fall centred at 1e-3 (steepest there), then a rise from 1e-1 (minimum near it)
    curve = 1 / (1 + np.exp(4 * (x + 3))) + np.clip(x + 1, 0, None) ** 2
    s = summarise(lrs, curve)
    assert abs(np.log10(s["lr_steepest"]) - (-3)) <= 0.05 + 1e-9
    i_min = int(np.argmin(curve))
    assert s["lr_min_loss"] == pytest.approx(lrs[i_min])
    assert -1.2 <= np.log10(s["lr_min_loss"]) <= -0.95
    assert s["lr_suggested"] == pytest.approx(s["lr_min_loss"] / 10)
    assert s["diverged_at_lr"] is None and s["steps_done"] == 101
    assert summarise(lrs, curve, diverged_at=0.5)["diverged_at_lr"] == 0.5


def test_summarise_ignores_the_moving_averages_warm_up():
    """A steep first few steps (the average settling on a few noisy losses) are not taken
    for the steepest fall: that is sought after the first tenth of the steps."""
    lrs = np.geomspace(1e-5, 1.0, 100)
    x = np.log10(lrs)
    curve = 2.0 - 0.1 * (x + 5) + 0.3 * (x > -1) * (x + 1) ** 2  # gentle fall, rise after 1e-1
    curve[:3] += [3.0, 1.5, 0.5]  # warm-up: a steep fall over the first three steps
    s = summarise(lrs, curve)
    assert s["lr_steepest"] > lrs[9]


def test_centred_mean_does_not_lag():
    """On a falling ramp the centred mean sits on the ramp (an exponential average trails it)."""
    ramp = np.linspace(3.0, 1.0, 41)
    np.testing.assert_allclose(centred_mean(ramp, 9)[4:-4], ramp[4:-4])
    np.testing.assert_allclose(centred_mean([2.0, 4.0, 9.0], 3), [8 / 3, 5.0, 22 / 3])  # edges: nearest value repeated


def test_summarise_rejects_mismatched_input():
    with pytest.raises(ValueError):
        summarise([1e-3, 1e-2], [1.0])


def _test(data, model, **kw):
    s = TrainSettings(batch_size=8, lr=1e-3, width=0.125, seed=0, clip_grad_norm=40.0)
    index = data / ("pb.npz" if model == "PB" else "fcn.npz")
    return lr_range_test(model, index, data / "data", s, cache_dir=data / "cache", mfb_weights=data / "mfb.json", device="cpu", **kw)


@pytest.mark.parametrize("model", ["PB", "FCN-MFB"])
def test_range_test_on_tiny_data(tiny_training_data, model):
    rows, s = _test(tiny_training_data, model, lr_min=1e-4, lr_max=1e-2, steps=12)
    assert [r["step"] for r in rows] == list(range(1, 13))  # more steps than an epoch of batches: epochs repeat
    np.testing.assert_allclose([r["lr"] for r in rows], np.geomspace(1e-4, 1e-2, 12))
    assert all(np.isfinite(r["loss"]) for r in rows)
    # the divergence check's average: bias-corrected, so its first value is the first loss
    assert rows[0]["ema_loss"] == pytest.approx(rows[0]["loss"])
    m = 0.0
    for k, r in enumerate(rows, start=1):
        m = 0.98 * m + 0.02 * r["loss"]
        assert r["ema_loss"] == pytest.approx(m / (1 - 0.98**k))
    # the curve that is read: a centred mean over 0.25 decades (2 decades, 11 steps -> 3 steps)
    assert s["window_steps"] == 3
    assert rows[5]["smoothed_loss"] == pytest.approx(np.mean([r["loss"] for r in rows[4:7]]))
    assert s["model"] == model and s["configured_lr"] == 1e-3 and s["steps_done"] == 12 and s["diverged_at_lr"] is None
    assert 1e-4 <= s["lr_min_loss"] <= 1e-2
    # deterministic on CPU: the same seed gives the same curve
    again, _ = _test(tiny_training_data, model, lr_min=1e-4, lr_max=1e-2, steps=12)
    assert [r["loss"] for r in again] == [r["loss"] for r in rows]


def test_range_test_stops_when_the_loss_diverges(tiny_training_data):
    rows, s = _test(tiny_training_data, "FCN", lr_min=1e-3, lr_max=1e6, steps=60, stop_factor=1.5)
    assert s["diverged_at_lr"] is not None and len(rows) < 60
    assert s["diverged_at_lr"] == rows[-1]["lr"]


def test_range_test_keeps_pbs_fc1_factor(tiny_training_data, monkeypatch):
    """PB's FC1 sweeps at the training's fan-in factor times the base rate."""
    seen = []
    import torch

    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        seen.append([g["lr"] for g in self.param_groups])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    _test(tiny_training_data, "PB", lr_min=1e-4, lr_max=1e-2, steps=3)
    s = TrainSettings(batch_size=8, lr=1e-3, width=0.125, seed=0)
    factor = _optimizer(_build("PB", s), s).param_groups[1]["lr"] / 1e-3
    assert factor < 0.1
    for (base, fc1), lr in zip(seen, np.geomspace(1e-4, 1e-2, 3)):
        assert base == pytest.approx(lr) and fc1 == pytest.approx(lr * factor)


def test_outputs_and_table(tiny_training_data, tmp_path):
    rows, s = _test(tiny_training_data, "FCN", lr_min=1e-4, lr_max=1e-2, steps=4)
    write_outputs(rows, s, tmp_path / "c.csv", tmp_path / "s.json", tmp_path / "p.png")
    assert list(pd.read_csv(tmp_path / "c.csv").columns) == list(COLUMNS)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    other = dict(json.loads((tmp_path / "s.json").read_text()), model="PB", seed=1, lr_suggested=2e-4)
    (tmp_path / "o.json").write_text(json.dumps(other))
    df = write_table([tmp_path / "s.json", tmp_path / "o.json"], tmp_path / "t.csv", tmp_path / "t.md")
    assert list(df["model"]) == ["PB", "FCN"] and list(pd.read_csv(tmp_path / "t.csv").columns) == list(TABLE_COLUMNS)
    md = (tmp_path / "t.md").read_text()
    assert "| PB | 1 | adam | 8 | 0.001 | 0.0002 |" in md and "- PB: `min / 10` is 0.2–0.2x the configured rate, the configured rate" in md


def test_unreadable_summary_names_the_file(tmp_path):
    bad = tmp_path / "seed0.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="seed0.json"):
        read_summary(bad)
    bad.write_text(json.dumps({"model": "PB"}))
    with pytest.raises(DataError, match="lacks"):
        read_summary(bad)


@pytest.mark.slow
def test_lr_range_target(tiny_local_run):
    """`snakemake lr_range` on the tiny run: a test per CNN and seed, and the table."""
    from conftest import snakemake_log_tail, snakemake_tiny
    from vaiseg.config import MODELS

    r = snakemake_tiny(tiny_local_run, "lr_range", config={"lr_range": {"steps": 5, "seeds": [0, 1]}})
    assert r.returncode == 0, snakemake_log_tail(tiny_local_run)
    out = tiny_local_run / "results" / "lr_range"
    df = pd.read_csv(out / "summary.csv")
    assert list(df.columns) == list(TABLE_COLUMNS)
    assert sorted(zip(df["model"], df["seed"])) == sorted((m, s) for m in MODELS for s in (0, 1))
    assert (df["steps_done"] <= 5).all() and (df["lr_suggested"] > 0).all()
    for m in MODELS:
        for s in (0, 1):
            assert len(pd.read_csv(out / m / f"seed{s}.csv")) == json.loads((out / m / f"seed{s}.json").read_text())["steps_done"]
            assert (out / m / f"seed{s}.png").stat().st_size > 0
            assert (tiny_local_run / "logs" / "lr_range" / f"{m}_seed{s}.log").is_file()
    assert "# Learning-rate range tests" in (out / "summary.md").read_text()
