"""The reference run's per-block confusion matrices (``block_confusions.csv``) and the
paper diff's intervals against the reference (issue 12, item 2: a user checks that their
run reproduced the demo, and learns which differences the validation blocks resolve)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from vaiseg.classes import CAR, KEYS, N_CLASSES
from vaiseg.config import ALL_MODELS, SPLITS, TEST_AREAS
from vaiseg.errors import DataError
from vaiseg.reporting.comparisons import (
    BLOCK_COLUMNS,
    block_frame,
    compare,
    read_block_confusions,
    write_block_confusions,
)
from vaiseg.reporting.paper_diff import REFERENCE_BLOCKS, build_paper_diff, reference_verdict
from vaiseg.reporting.tables import TABLE1_METHODS, TABLE2_METHODS, table_row, write_csv

INDEX = [(a, r, c) for a in (11, 15) for r in range(3) for c in range(4)]  # 24 blocks


@pytest.fixture
def paper(repo_root):
    return repo_root / "paper"


def _blocks(seed: int = 0) -> dict[str, np.ndarray]:
    """Per-block matrices of the seven methods: mostly right, a few errors, ~40 car
    pixels per block of which most are found."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in ALL_MODELS:
        cms = np.zeros((len(INDEX), N_CLASSES, N_CLASSES), dtype=np.int64)
        for b in range(len(INDEX)):
            for t in range(N_CLASSES):
                n = 40 if t == CAR else int(rng.integers(300, 600))
                right = int(n * rng.uniform(0.8, 0.97))
                wrong = rng.multinomial(n - right, np.full(N_CLASSES - 1, 1 / (N_CLASSES - 1)))
                cms[b, t] = np.insert(wrong, t, right)
        out[m] = cms
    return out


def _write_run(d, conf, index=INDEX, block=256):
    """A run's (or the reference's) table1.csv, table2.csv and block_confusions.csv,
    the tables computed from the blocks as the pipeline computes them."""
    d.mkdir(parents=True, exist_ok=True)
    for name, methods in (("table1", TABLE1_METHODS), ("table2", TABLE2_METHODS)):
        write_csv(pd.DataFrame([table_row(m, conf[m].sum(0)) for m in methods]), d / f"{name}.csv")
    write_block_confusions(conf, index, block, d / REFERENCE_BLOCKS)
    return d


def _diff(paper, tmp_path, ours_dir, ref_dir, **kw):
    return build_paper_diff([ours_dir / "table1.csv", ours_dir / "table2.csv"], paper, tmp_path / "d.md",
                            tmp_path / "d.csv", source="synthetic", reference_dir=ref_dir,
                            blocks_csv=ours_dir / REFERENCE_BLOCKS, bootstrap={"samples": 400}, **kw)


def _cell(cells, method, col):
    return cells[(cells["method"] == method) & (cells["column"] == col)].iloc[0]


def test_block_confusions_round_trip(tmp_path):
    conf = _blocks()
    write_block_confusions(conf, INDEX, 128, tmp_path / "b.csv")
    df = pd.read_csv(tmp_path / "b.csv")
    assert list(df.columns) == list(BLOCK_COLUMNS)
    assert len(df) == len(ALL_MODELS) * len(INDEX) * N_CLASSES  # zeros included: every block listed
    back, index, block = read_block_confusions(tmp_path / "b.csv")
    assert block == 128 and index == INDEX and list(back) == list(ALL_MODELS)
    for m in ALL_MODELS:
        assert back[m].dtype == np.int64 and np.array_equal(back[m], conf[m])
    # rows in any order give the same matrices
    df.sample(frac=1, random_state=0).to_csv(tmp_path / "s.csv", index=False)
    shuffled, order, _ = read_block_confusions(tmp_path / "s.csv")
    assert sorted(order) == sorted(INDEX) and order != INDEX
    at = [INDEX.index(b) for b in order]
    assert all(np.array_equal(shuffled[m], conf[m][at]) for m in ALL_MODELS)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.drop(columns=["pred_car"]), "missing columns"),
        (lambda df: df.assign(pred_car=df["pred_car"].where(df.index != 3, -1)), "non-negative integers"),
        (lambda df: df.assign(pred_car=df["pred_car"].astype(float).where(df.index != 3, 0.5)), "non-negative integers"),
        (lambda df: df.assign(true=df["true"].where(df.index != 3, "boat")), "unknown classes"),
        (lambda df: df.assign(block_px=df["block_px"].where(df.index != 3, 64)), "several block sizes"),
        (lambda df: df.drop(index=[7]), "one row per true class"),
        (lambda df: df[~((df["method"] == "FCN") & (df["area"] == 15) & (df["block_row"] == 2))], "other blocks"),
        (lambda df: df.iloc[:0], "no rows"),
    ],
)
def test_bad_block_confusions_name_the_file(tmp_path, mutate, message):
    df = block_frame(_blocks(), INDEX, 256)
    mutate(df).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=message) as e:
        read_block_confusions(tmp_path / "bad.csv")
    assert "bad.csv" in str(e.value)


def test_same_run_as_reference_is_reproduced_with_zero_intervals(paper, tmp_path):
    conf = _blocks()
    run, ref = _write_run(tmp_path / "run", conf), _write_run(tmp_path / "ref", conf)
    cells = _diff(paper, tmp_path, run, ref)
    judged = cells[cells["column"].str.endswith("_f1") | (cells["column"] == "overall_acc")]
    assert len(judged) == 49 and (judged["reference_ci_low"] == 0).all() and (judged["reference_ci_high"] == 0).all()
    assert cells[cells["column"].str.endswith("_acc") & (cells["column"] != "overall_acc")]["reference_ci_low"].isna().all()
    ok, text = reference_verdict(cells)
    assert ok is True and text.startswith("reproduced: every F1/OA cell within 2 points")
    md = (tmp_path / "d.md").read_text()
    assert "Intervals: paired percentile bootstrap (400 resamples, seed 0, 95 %) over the 24 validation blocks of 256 px" in md
    assert "| ours - reference | interval |" in md


def test_a_resolved_difference_is_not_reproduced(paper, tmp_path):
    """PB finds fewer cars in every block: 8 points of car F1 lower, an interval below 0,
    the only cell beyond the tolerance; the verdict counts it as resolved."""
    ref_conf = _blocks()
    conf = {m: c.copy() for m, c in ref_conf.items()}
    conf["PB"][:, CAR, CAR] -= 6
    conf["PB"][:, CAR, 0] += 6  # cars called impervious surface
    cells = _diff(paper, tmp_path, _write_run(tmp_path / "run", conf), _write_run(tmp_path / "ref", ref_conf))
    c = _cell(cells, "PB", "car_f1")
    assert c["ours_minus_reference"] < -2 and c["reference_ci_high"] < 0
    assert c["reference_ci_low"] <= c["ours_minus_reference"] <= c["reference_ci_high"]
    # the same interval compare() gives for the pair (the resampling seed 0 of run_diff)
    want = compare({"a": conf["PB"], "b": ref_conf["PB"]}, samples=400, seed=0, specs=[("x", "car_f1", "a", ("b",))]).iloc[0]
    assert (c["reference_ci_low"], c["reference_ci_high"]) == (want["ci_low"], want["ci_high"])
    ok, text = reference_verdict(cells)
    assert ok is False
    assert "1 of 49 F1/OA cells differ from the reference by more than 2 points (1 of them by a difference the validation blocks resolve, 0 by one they do not)" in text
    md = (tmp_path / "d.md").read_text()
    assert f"| 1 | PB | car_f1 | {c['ours']:.2f} | {c['reference']:.2f} | **{c['ours_minus_reference']:+.2f}** | [" in md


def test_a_difference_in_two_blocks_is_consistent(paper, tmp_path):
    """The car pixels of two blocks of 24 all missed: car F1 drops by more than 2 points,
    but 12 % of the resamples draw neither block (0.917 ** 24), so the 95 % interval
    reaches 0: consistent with the reference."""
    ref_conf = _blocks()
    conf = {m: c.copy() for m, c in ref_conf.items()}
    for k in (5, 17):
        conf["FCN"][k, CAR, 0] += conf["FCN"][k, CAR, CAR]
        conf["FCN"][k, CAR, CAR] = 0
    cells = _diff(paper, tmp_path, _write_run(tmp_path / "run", conf), _write_run(tmp_path / "ref", ref_conf))
    c = _cell(cells, "FCN", "car_f1")
    assert c["ours_minus_reference"] < -2 and c["reference_ci_low"] < 0 < c["reference_ci_high"] + 1e-9
    off = cells[cells["column"].isin([f"{k}_f1" for k in KEYS[:5]] + ["avg_f1", "overall_acc"])]
    off = off[off["ours_minus_reference"].abs() > 2]
    ok, text = reference_verdict(cells)
    assert ok is True and text.startswith(f"consistent with the reference: {len(off)} of 49 F1/OA cells")
    assert "resolve none of these differences" in text
    # without intervals the same cells are "not reproduced", as before
    ok, text = reference_verdict(cells.assign(reference_ci_low=np.nan, reference_ci_high=np.nan))
    assert ok is False and text == f"not reproduced: {len(off)} of 49 F1/OA cells differ from the reference by more than 2 points"


def test_no_intervals_when_the_runs_do_not_match(paper, tmp_path):
    conf = _blocks()
    run = _write_run(tmp_path / "run", conf)
    cases = {}
    # other blocks (another block size)
    cases["other"] = (_write_run(tmp_path / "r1", conf, block=128), "other validation blocks (24 of 256 px against 24 of 128 px)")
    # other ground truth: one car pixel moved to another true class
    other = {m: c.copy() for m, c in conf.items()}
    for m in other:
        other[m][0, CAR, CAR] -= 1
        other[m][0, 0, 0] += 1
    cases["gt"] = (_write_run(tmp_path / "r2", other), "not made on the same data")
    # no blocks in the reference folder
    r4 = _write_run(tmp_path / "r4", conf)
    (r4 / REFERENCE_BLOCKS).unlink()
    cases["absent"] = (r4, "the reference has no `block_confusions.csv`")
    for name, (ref, message) in cases.items():
        cells = _diff(paper, tmp_path, run, ref)
        assert cells["reference_ci_low"].isna().all(), name
        assert "No intervals" in (tmp_path / "d.md").read_text() and message in (tmp_path / "d.md").read_text(), name
    # this run's blocks not given (several seeds: the rule passes none)
    cells = build_paper_diff([run / "table1.csv", run / "table2.csv"], paper, tmp_path / "d.md", tmp_path / "d.csv",
                             source="synthetic", reference_dir=tmp_path / "r1")
    assert cells["reference_ci_low"].isna().all() and "were not given" in (tmp_path / "d.md").read_text()


def test_reference_blocks_of_other_data_or_tables(paper, tmp_path):
    """The identity checks by what they compare: GT pixel counts per block and class;
    the block matrices against the tables' cells."""
    conf = _blocks()
    run = _write_run(tmp_path / "run", conf)
    ref = _write_run(tmp_path / "ref", conf)
    t1 = pd.read_csv(ref / "table1.csv")
    t1.loc[t1["method"] == "FCN", "car_f1"] += 0.5  # the tables edited, the blocks not
    write_csv(t1, ref / "table1.csv")
    _diff(paper, tmp_path, run, ref)
    md = (tmp_path / "d.md").read_text()
    assert "No intervals: the reference's block matrices give FCN car_f1" in md and "not of one run" in md
    # a malformed reference file is an error naming it
    shutil.copy(run / REFERENCE_BLOCKS, ref / REFERENCE_BLOCKS)
    pd.read_csv(ref / REFERENCE_BLOCKS).drop(columns=["true"]).to_csv(ref / REFERENCE_BLOCKS, index=False)
    with pytest.raises(DataError, match="missing columns") as e:
        _diff(paper, tmp_path, run, ref)
    assert REFERENCE_BLOCKS in str(e.value)


@pytest.mark.parametrize("folder, areas, n_blocks", [
    ("docs/reference", SPLITS["paper"]["val"], 20),
    ("docs/reference/x4", SPLITS["paper"]["val"], 20),
    ("docs/reference/wide", SPLITS["paper"]["val"] + TEST_AREAS, 88),
])
def test_the_committed_reference_is_one_run(repo_root, folder, areas, n_blocks):
    """docs/reference (the demo), docs/reference/x4 (config/budget_x4.yaml) and
    docs/reference/wide (config/eval_wide.yaml): the block matrices give every F1/OA cell of
    the committed tables (what the paper diff checks before it computes intervals), over
    the validation blocks of 256 px of the config's areas: the demo's 20 in areas 11, 15,
    28, 30, 34, and with the 17 test areas 88."""
    from vaiseg.reporting.comparisons import CELL_METRICS, point_estimate

    ref = repo_root / folder
    conf, index, block = read_block_confusions(ref / REFERENCE_BLOCKS)
    assert block == 256 and len(index) == n_blocks and sorted({a for a, _, _ in index}) == sorted(areas)
    assert list(conf) == list(ALL_MODELS)
    tables = pd.concat([pd.read_csv(ref / f"table{t}.csv") for t in (1, 2)]).set_index("method")
    for m in ALL_MODELS:
        assert np.array_equal(conf[m].sum(axis=2), conf["PB"].sum(axis=2)), m  # one ground truth
        for col in CELL_METRICS:
            assert point_estimate(conf[m].sum(0), col) == pytest.approx(tables.loc[m, col], abs=0.0051), (m, col)


def test_no_intervals_for_a_mean_over_seeds(tmp_path):
    """Tables of several seeds (mean ± std columns) are no single run: no intervals, and
    the note points to run_diff on one seed's folder."""
    from vaiseg.reporting.paper_diff import reference_intervals
    from vaiseg.reporting.tables import STD_SUFFIX, VALUE_COLUMNS

    conf = _blocks()
    ref = _write_run(tmp_path / "ref", conf)
    reference = pd.concat([pd.read_csv(ref / f"table{t}.csv") for t in (1, 2)]).set_index("method")
    seeded = reference.assign(**{c + STD_SUFFIX: 0.5 for c in VALUE_COLUMNS})
    got, note = reference_intervals(ref / REFERENCE_BLOCKS, ref, seeded, reference)
    assert got is None and "means over several seeds" in note and "run_diff" in note
    got, _ = reference_intervals(ref / REFERENCE_BLOCKS, ref, reference, reference, samples=50)
    assert got is not None and len(got) == 49 and (got["ci_low"] == 0).all()
