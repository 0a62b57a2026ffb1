"""The ablation table (vaiseg.reporting.ablations) on small hand-made rasters."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from vaiseg.classes import IGNORE
from vaiseg.fusion import apply_fusion, fuse_area, train_fusion
from vaiseg.metrics import confusion_matrix
from vaiseg.models import PB_PAD
from vaiseg.raster import read_raster, write_raster
from vaiseg.reporting.ablations import (
    COLUMNS,
    FusionRecipe,
    ablations,
    blank_border,
    fig6_rows,
    fusion_confusion,
    label_confusion,
    precompute_fusions,
    write_ablations,
)
from vaiseg.reporting.tables import table_row

SHAPE = (80, 80)  # > 2 x the PB's 32-px border
TRAIN, VAL = (1, 3), (11, 15)
FUSIONS = {"PB+FCN": ("PB", "FCN"), "FCN+FCN-MFB": ("FCN", "FCN-MFB")}


def _softmax(z):
    e = np.exp(z - z.max(0, keepdims=True))
    return (e / e.sum(0, keepdims=True)).astype(np.float32)


def _probs(lab, n_out, strength, rng):
    logits = rng.normal(0, 1, (n_out,) + lab.shape)
    target = np.where(lab < n_out, lab, 0).astype(np.int64)[None]
    np.put_along_axis(logits, target, np.take_along_axis(logits, target, 0) + strength, 0)
    return _softmax(logits)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fake run: eroded GT, CNN probs/labels on 4 areas, fusion labels on the validation areas."""
    root = tmp_path_factory.mktemp("abl")
    rng = np.random.default_rng(3)
    probs, labels, eroded = {m: {} for m in ("PB", "FCN", "FCN-MFB")}, {}, {}
    for a in TRAIN + VAL:
        lab = rng.integers(0, 6, SHAPE).astype(np.uint8)
        ero = lab.copy()
        ero[rng.random(SHAPE) < 0.05] = IGNORE
        eroded[a] = root / f"{a}_eroded.tif"
        write_raster(eroded[a], ero[None])
        for m, n_out, s in (("PB", 5, 2.0), ("FCN", 6, 2.5), ("FCN-MFB", 6, 1.5)):
            p = _probs(lab, n_out, s, rng)
            probs[m][a] = root / f"{a}_{m}_probs.tif"
            write_raster(probs[m][a], p)
            if a in VAL:
                labels.setdefault(m, {})[a] = root / f"{a}_{m}_labels.tif"
                write_raster(labels[m][a], p.argmax(0).astype(np.uint8)[None])
    return root, probs, labels, eroded


def _cm(pred: np.ndarray, ero_path) -> np.ndarray:
    return confusion_matrix(read_raster(ero_path)[0][0], pred)


def test_blank_border():
    a = np.ones((2, 10, 12), np.float32)
    b = blank_border(a, 3, np.nan)
    assert np.isnan(b[:, :3]).all() and np.isnan(b[:, :, -3:]).all()
    assert np.isfinite(b[:, 3:-3, 3:-3]).all() and np.isfinite(a).all()  # a copy
    assert (blank_border(a, 0, np.nan) == a).all()


def test_label_confusion_leaves_the_border_out(run):
    _, _, labels, eroded = run
    full = label_confusion(labels["PB"], eroded, VAL)
    inner = label_confusion(labels["PB"], eroded, VAL, border_px=PB_PAD)
    manual = np.zeros_like(full)
    for a in VAL:
        pred = read_raster(labels["PB"][a])[0][0]
        ero = read_raster(eroded[a])[0][0]
        s = (slice(PB_PAD, -PB_PAD),) * 2
        manual += confusion_matrix(ero[s], pred[s])
    assert (inner == manual).all()
    assert full.sum() > inner.sum() > 0


def test_fusion_confusion_equals_the_pipeline_fusion(run, tmp_path):
    """The in-memory fusion of the ablations is the rules' fusion (train_fusion + fuse_area)."""
    _, probs, _, eroded = run
    recipe = FusionRecipe(samples=2000, balanced=False, C=1.0, solver=2, seed=0)
    got = fusion_confusion(("PB", "FCN"), recipe, probs, eroded, TRAIN, VAL)
    model = train_fusion({m: [probs[m][a] for a in TRAIN] for m in ("PB", "FCN")}, [eroded[a] for a in TRAIN],
                         n=2000, balanced=False, seed=0)
    model.save(tmp_path / "svm.json")
    want = np.zeros_like(got)
    for a in VAL:
        fuse_area(tmp_path / "svm.json", [probs["PB"][a], probs["FCN"][a]], tmp_path / str(a))
        want += _cm(read_raster(tmp_path / str(a) / "labels.tif")[0][0], eroded[a])
    assert (got == want).all()
    # the recipe matters: balanced sampling gives another confusion matrix
    other = fusion_confusion(("PB", "FCN"), FusionRecipe(2000, True, 1.0, 2, 0), probs, eroded, TRAIN, VAL)
    assert not (other == got).all()


def test_crossfit_trains_each_validation_area_on_the_others(run):
    _, probs, _, eroded = run
    recipe = FusionRecipe(samples=1500, balanced=True, C=1.0, solver=2, seed=1, crossfit=True)
    got = fusion_confusion(("FCN", "FCN-MFB"), recipe, probs, eroded, TRAIN, VAL)
    want = np.zeros_like(got)
    for held, others in ((11, [15]), (15, [11])):
        model = train_fusion({m: [probs[m][a] for a in others] for m in ("FCN", "FCN-MFB")}, [eroded[a] for a in others],
                             n=1500, balanced=True, seed=1)
        _, lab = apply_fusion(model, [read_raster(probs[m][held])[0] for m in ("FCN", "FCN-MFB")])
        want += _cm(lab, eroded[held])
    assert (got == want).all()
    with pytest.raises(ValueError, match="two validation areas"):
        fusion_confusion(("FCN", "FCN-MFB"), recipe, probs, eroded, TRAIN, VAL[:1])


def test_pb_border_none_equals_a_run_with_nan_borders(run, tmp_path):
    """Blanking the reflect run's PB border = what a pb_border: none run feeds the SVMs."""
    _, probs, _, eroded = run
    nan_probs = {"FCN": probs["FCN"], "PB": {}}
    for a, p in probs["PB"].items():
        nan_probs["PB"][a] = tmp_path / f"{a}_pb_none.tif"
        write_raster(nan_probs["PB"][a], blank_border(read_raster(p)[0], PB_PAD, np.nan), nodata=np.nan)
    plain = FusionRecipe(samples=2000, balanced=True, C=1.0, solver=2, seed=0)
    want = fusion_confusion(("PB", "FCN"), plain, nan_probs, eroded, TRAIN, VAL)
    got = fusion_confusion(("PB", "FCN"), FusionRecipe(2000, True, 1.0, 2, 0, pb_border_px=PB_PAD), probs, eroded, TRAIN, VAL)
    assert (got == want).all()
    assert got.sum() < fusion_confusion(("PB", "FCN"), plain, probs, eroded, TRAIN, VAL).sum()
    # the shared raster cache of ablations(): each file read once, the blanking does not
    # reach the cached arrays (the plain recipe after the blanked one is unchanged)
    rasters: dict = {}
    bordered = FusionRecipe(2000, True, 1.0, 2, 0, pb_border_px=PB_PAD)
    assert (fusion_confusion(("PB", "FCN"), bordered, probs, eroded, TRAIN, VAL, rasters) == got).all()
    assert (fusion_confusion(("PB", "FCN"), plain, probs, eroded, TRAIN, VAL, rasters)
            == fusion_confusion(("PB", "FCN"), plain, probs, eroded, TRAIN, VAL)).all()
    assert len(rasters) == 2 * (len(TRAIN) + len(VAL))


def test_fusion_variants_in_worker_processes_equal_the_serial_ones(run):
    """The ablation's SVM trainings forked into processes give the serial confusions, and
    a recipe that cannot run comes back as its ValueError (the row's note)."""
    _, probs, _, eroded = run
    plain = FusionRecipe(samples=2000, balanced=True, C=1.0, solver=2, seed=0)
    keys = [(("PB", "FCN"), plain), (("FCN", "FCN-MFB"), replace(plain, balanced=False)),
            (("PB", "FCN"), replace(plain, pb_border_px=PB_PAD)), (("FCN", "FCN-MFB"), replace(plain, crossfit=True))]
    memo: dict = {}
    precompute_fusions(keys + keys[:1], probs, eroded, TRAIN, VAL[:1], workers=2, memo=memo)
    assert list(memo) == keys
    for members, recipe in keys[:3]:
        assert (memo[members, recipe] == fusion_confusion(members, recipe, probs, eroded, TRAIN, VAL[:1])).all()
    assert isinstance(memo[keys[3]], ValueError) and "two validation areas" in str(memo[keys[3]])
    one: dict = {}
    precompute_fusions(keys, probs, eroded, TRAIN, VAL[:1], workers=1, memo=one)
    assert one == {}  # one worker: fusion_rows trains them in this process


def _coverage_csv(path):
    rows = []
    for reading, shift in (("two_thresholds", 0.0), ("one_threshold", 1.0)):
        for m in ("PB", "FCN", "FCN-MFB"):
            for t, k in ((97.5, 60.0), (95.0, 75.0), (90.0, 93.0)):
                for scope in ("validation", "area 11"):
                    rows.append(dict(model=m, scope=scope, reading=reading, target_overall_acc=t,
                                     pixels_classified_pct=k + shift + (50 if scope != "validation" else 0),
                                     pixels_classified_pct_ignoring_boundaries=k + shift + 2))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_fig6_rows(tmp_path):
    rows = fig6_rows(_coverage_csv(tmp_path / "cov.csv"), "one_threshold", ["FCN"])
    assert [(r["option"], r["configured"]) for r in rows] == [("two_thresholds", False), ("one_threshold", True)]
    two, one = rows
    assert two["kept_pct_at_97_5"] == 60.0 and two["kept_pct_nonboundary_at_97_5"] == 62.0  # validation scope only
    assert one["kept_pct_at_90"] == 94.0 and one["kept_pct_nonboundary_at_95"] == 78.0
    assert math.isnan(one["overall_acc"])


def test_whole_table(run, tmp_path):
    _, probs, labels, eroded = run
    fusion = dict(samples=1500, balanced=True, C=1.0, solver=2, train_on="train_areas")
    for name, members in FUSIONS.items():
        model = train_fusion({m: [probs[m][a] for a in TRAIN] for m in members}, [eroded[a] for a in TRAIN], n=1500,
                             balanced=True, seed=0)
        labels[name] = {}
        for a in VAL:
            _, lab = apply_fusion(model, [read_raster(probs[m][a])[0] for m in members])
            labels[name][a] = tmp_path / f"{name}_{a}.tif"
            write_raster(labels[name][a], lab[None])
    other = {m: {a: labels["FCN"][a] for a in VAL} for m in ("FCN-MFB",)}  # a stand-in "retrained" FCN-MFB
    df = ablations(
        val_areas=list(VAL), svm_areas=list(TRAIN), probs=probs, labels=labels, eroded=eroded, fusion=fusion, seed=0,
        pb_border="reflect", pb_reflect_probs=probs["PB"], pb_reflect_labels=labels["PB"],
        coverage_csv=_coverage_csv(tmp_path / "cov.csv"), fig6_reading="two_thresholds",
        retrained=[dict(choice="mfb_median", configured="with_clutter", other="without_clutter", methods=["FCN-MFB"],
                        labels=other)],
        fusions=FUSIONS,
    )
    assert list(df.columns) == COLUMNS
    assert set(df["choice"]) == {"fusion_sample", "svm_training", "pb_border", "fig6_reading", "mfb_median"}
    # every configured fusion row equals the fusion the run itself made
    for name in FUSIONS:
        want = table_row(name, sum(_cm(read_raster(labels[name][a])[0][0], eroded[a]) for a in VAL))
        for choice in ("fusion_sample", "svm_training"):
            row = df[(df.choice == choice) & (df.method == name) & df.configured].iloc[0]
            assert row["overall_acc"] == want["overall_acc"] and row["car_f1"] == want["car_f1"], (choice, name)
    pb = df[(df.choice == "pb_border") & (df.method == "PB")].set_index("option")
    assert pb.loc["reflect", "configured"] and not pb.loc["none", "configured"]
    assert set(df[df.choice == "pb_border"]["method"]) == {"PB", "PB+FCN"}  # fusions with the PB only
    mfb = df[df.choice == "mfb_median"].set_index("option")
    fcn = table_row("FCN", label_confusion(labels["FCN"], eroded, VAL))
    assert mfb.loc["without_clutter", "overall_acc"] == fcn["overall_acc"]
    write_ablations(df, tmp_path / "ablations.csv", tmp_path / "ablations.md")
    back = pd.read_csv(tmp_path / "ablations.csv")
    assert len(back) == len(df) and list(back.columns) == COLUMNS
    md = (tmp_path / "ablations.md").read_text()
    assert "## fusion_sample" in md and "## fig6_reading" in md and "val_crossfit" in md


def test_crossfit_with_one_validation_area_is_a_note(run, tmp_path):
    _, probs, labels, eroded = run
    fusion = dict(samples=800, balanced=True, C=1.0, solver=2)
    df = ablations(
        val_areas=[11], svm_areas=list(TRAIN), probs=probs, labels=labels, eroded=eroded, fusion=fusion, seed=0,
        pb_border="none", pb_reflect_probs=probs["PB"], pb_reflect_labels=labels["PB"],
        coverage_csv=_coverage_csv(tmp_path / "cov.csv"), fig6_reading="two_thresholds", fusions={"PB+FCN": ("PB", "FCN")},
        workers=2,
    )
    cf = df[df.option == "val_crossfit"].iloc[0]
    assert "two validation areas" in cf["note"] and math.isnan(cf["overall_acc"])
    assert df[(df.choice == "pb_border") & (df.option == "none") & (df.method == "PB")].iloc[0]["configured"]
