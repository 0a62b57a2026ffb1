"""Tables 1-2 over several seeds (mean ± std, vaiseg.reporting.tables) and the paper
diff's seed and reference-run columns (vaiseg.reporting.paper_diff), on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaiseg.errors import DataError
from vaiseg.reporting.paper_diff import (
    REFERENCE_TOLERANCE,
    REFERENCE_TOP,
    build_paper_diff,
    diff_cells,
    read_paper_results,
    reference_verdict,
)
from vaiseg.reporting.tables import (
    TABLE1_METHODS,
    TABLE2_METHODS,
    TABLE_COLUMNS,
    VALUE_COLUMNS,
    aggregate_seed_tables,
    to_markdown_seeds,
    write_csv,
    write_seed_tables,
)


def _table(methods, base=80.0):
    """A contract table: every value ``base``, rows ``methods``."""
    return pd.DataFrame([[m] + [base] * len(VALUE_COLUMNS) for m in methods], columns=TABLE_COLUMNS)


def _three_seeds(methods=TABLE1_METHODS):
    """Seeds 0, 1, 2 with every value 80, 82, 84 (mean 82, sample std 2), car_f1 50, 50, 53."""
    out = {}
    for seed, v, car in ((0, 80.0, 50.0), (1, 82.0, 50.0), (2, 84.0, 53.0)):
        df = _table(methods, v)
        df["car_f1"] = car
        out[seed] = df
    return out


def test_aggregate_mean_std_columns():
    agg = aggregate_seed_tables(_three_seeds())
    assert list(agg["method"]) == list(TABLE1_METHODS)
    want = ["method"] + [c for v in VALUE_COLUMNS for c in (v, f"{v}_std")] + ["n_seeds"]
    assert list(agg.columns) == want  # <col>_std right after <col>
    assert np.allclose(agg["imp_surf_f1"], 82.0) and np.allclose(agg["imp_surf_f1_std"], 2.0)
    assert np.allclose(agg["car_f1"], 51.0) and np.allclose(agg["car_f1_std"], round(np.std([50, 50, 53], ddof=1), 2))
    assert (agg["n_seeds"] == 3).all()
    # two seeds: std of (80, 84) with ddof=1 = 2.83
    two = aggregate_seed_tables({k: v for k, v in _three_seeds().items() if k != 1})
    assert np.allclose(two["overall_acc"], 82.0) and np.allclose(two["overall_acc_std"], 2.83)


def test_aggregate_one_seed_and_nan():
    one = aggregate_seed_tables({7: _table(TABLE1_METHODS, 81.0)})
    assert np.allclose(one["avg_f1"], 81.0) and one["avg_f1_std"].isna().all() and (one["n_seeds"] == 1).all()
    seeds = _three_seeds()
    seeds[1].loc[0, "car_f1"] = np.nan  # undefined in one seed: NaN, not the mean of the others
    agg = aggregate_seed_tables(seeds)
    assert np.isnan(agg.loc[0, "car_f1"]) and np.isfinite(agg.loc[1, "car_f1"])


def test_aggregate_rows_must_match():
    seeds = _three_seeds()
    seeds[2] = seeds[2].iloc[[1, 0, 2]]  # order differs
    with pytest.raises(DataError, match="seed 2: rows"):
        aggregate_seed_tables(seeds)
    seeds = _three_seeds()
    seeds[1] = seeds[1].iloc[:2]
    with pytest.raises(DataError, match="seed 1"):
        aggregate_seed_tables(seeds)
    seeds = _three_seeds()
    seeds[1] = seeds[1].drop(columns=["car_acc"])
    with pytest.raises(DataError, match="seed 1: columns"):
        aggregate_seed_tables(seeds)
    with pytest.raises(DataError, match="no per-seed tables"):
        aggregate_seed_tables({})


def test_markdown_shows_plus_minus():
    md = to_markdown_seeds(aggregate_seed_tables(_three_seeds()), "Table 1; mean ± std over seeds 0, 1, 2")
    assert "| PB | 82.00 ± 2.00 | 82.00 ± 2.00 |" in md
    assert "| method | imp_surf_f1 |" in md and "_std" not in md.split("\n\n")[1]


def _write_per_seed(tmp_path, seeds):
    per_seed = {}
    for seed, (t1, t2) in seeds.items():
        d = tmp_path / "seeds" / str(seed) / "tables"
        d.mkdir(parents=True)
        paths = {}
        for name, df in (("table1", t1), ("table2", t2)):
            write_csv(df, d / f"{name}.csv")
            ext = df[["method", "car_f1", "avg_f1"]].rename(columns={"car_f1": "car_iou"})
            write_csv(ext, d / f"{name}_extended.csv")
            paths[name], paths[f"{name}_extended"] = d / f"{name}.csv", d / f"{name}_extended.csv"
        per_seed[seed] = paths
    return per_seed


def _out(d):
    out = {f"{t}_{e}": d / f"{t}.{e}" for t in ("table1", "table2") for e in ("csv", "md", "tex")}
    return out | {f"{t}_extended": d / f"{t}_extended.csv" for t in ("table1", "table2")}


def test_write_seed_tables_files(tmp_path):
    t1, t2 = _three_seeds(TABLE1_METHODS), _three_seeds(TABLE2_METHODS)
    per_seed = _write_per_seed(tmp_path, {s: (t1[s], t2[s]) for s in (0, 1, 2)})
    out = _out(tmp_path / "tables")
    frames = write_seed_tables(per_seed, out)
    assert all(p.is_file() for p in out.values())
    assert not list((tmp_path / "tables").glob(".*part*"))  # atomic: no temporaries left
    csv = pd.read_csv(out["table1_csv"])
    assert list(csv.columns) == list(frames["table1"].columns) and list(csv["method"]) == list(TABLE1_METHODS)
    assert csv.loc[0, "imp_surf_f1"] == 82.0 and csv.loc[0, "imp_surf_f1_std"] == 2.0
    assert out["table1_csv"].read_text().splitlines()[1].startswith("PB,82.00,2.00,")  # numbers, 2 decimals
    md = out["table2_md"].read_text()
    assert "over seeds 0, 1, 2" in md and "| ALL | 82.00 ± 2.00 |" in md
    tex = out["table1_tex"].read_text()
    assert r"82.00 $\pm$ 2.00" in tex and r"mean $\pm$ std over seeds 0, 1, 2" in tex and r"\label{tab:table1}" in tex
    ext = pd.read_csv(out["table2_extended"])
    assert list(ext.columns) == ["method", "car_iou", "car_iou_std", "avg_f1", "avg_f1_std", "n_seeds"]
    assert ext.loc[0, "avg_f1"] == 82.0 and ext.loc[0, "avg_f1_std"] == 2.0


def test_write_seed_tables_errors_name_seed(tmp_path):
    t1, t2 = _three_seeds(TABLE1_METHODS), _three_seeds(TABLE2_METHODS)
    bad = t1[1].assign(method=["PB", "FCN", "OTHER"])
    per_seed = _write_per_seed(tmp_path, {0: (t1[0], t2[0]), 1: (bad, t2[1])})
    out = _out(tmp_path / "tables")
    with pytest.raises(DataError, match="seed 1: rows"):
        write_seed_tables(per_seed, out)
    assert not out["table1_csv"].exists()
    per_seed[1]["table1"].unlink()
    with pytest.raises(DataError, match="seed 1: table not found"):
        write_seed_tables(per_seed, out)


# ---- paper diff: within mean ± 2 std, reference run -------------------------------------


@pytest.fixture
def paper(repo_root):
    return repo_root / "paper"


def _paper_tables(paper_dir):
    p = read_paper_results(paper_dir / "paper_results.csv")
    return {t: p[p["table"] == t][TABLE_COLUMNS].reset_index(drop=True) for t in (1, 2)}


def _write_tables(paper_dir, d, shifts, std=None):
    """Our tables = the paper's + shift per seed (several shifts: the mean ± std tables)."""
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, df in _paper_tables(paper_dir).items():
        seeds = {i: df.assign(**{c: df[c] + s for c in VALUE_COLUMNS}) for i, s in enumerate(shifts)}
        out = aggregate_seed_tables(seeds) if len(shifts) > 1 or std == "one-seed" else seeds[0]
        write_csv(out, d / f"table{t}.csv")
        paths.append(d / f"table{t}.csv")
    return paths


def _cell(cells, method, column):
    return cells[(cells["method"] == method) & (cells["column"] == column)].iloc[0]


def test_within_2std_true_and_false(paper, tmp_path):
    # shifts 0, 1, 2: mean = paper + 1, std = 1 -> |delta| 1 <= 2: within
    tables = _write_tables(paper, tmp_path / "a", [0.0, 1.0, 2.0])
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    assert list(cells.columns)[:7] == ["table", "method", "column", "ours", "paper", "paper_printed", "delta"]
    assert {"ours_std", "within_2std", "reference", "ours_minus_reference"} <= set(cells.columns)
    assert np.allclose(cells["delta"], 1.0) and np.allclose(cells["ours_std"], 1.0)
    assert cells["within_2std"].all()
    md = (tmp_path / "d.md").read_text()
    assert "| PB | imp_surf_f1 | 91.45 | 90.45 | 90.45 | +1.00 | 1.00 | yes |" in md
    assert "within our mean ± 2 std in 84 of 84 cells" in md and "mean over 3 seeds" in md
    # shifts 4, 5, 6: mean = paper + 5, std = 1 -> 5 > 2: not within
    tables = _write_tables(paper, tmp_path / "b", [4.0, 5.0, 6.0])
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    assert not cells["within_2std"].any()
    assert "| +5.00 | 1.00 | no |" in (tmp_path / "d.md").read_text()
    back = pd.read_csv(tmp_path / "d.csv")
    assert len(back) == 84 and set(back["within_2std"].astype(str)) == {"False"}


def test_within_2std_boundary_and_one_seed(paper, tmp_path):
    # mean = paper + 2, std = 1: |delta| == 2 std exactly -> within (<=)
    tables = _write_tables(paper, tmp_path / "a", [1.0, 2.0, 3.0])
    assert build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")["within_2std"].all()
    # one seed in the mean ± std form: std undefined -> within_2std NA, md "n/a"
    tables = _write_tables(paper, tmp_path / "b", [1.0], std="one-seed")
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    assert cells["ours_std"].isna().all() and cells["within_2std"].isna().all()
    assert "| +1.00 | NaN | n/a |" in (tmp_path / "d.md").read_text()
    # plain single-run tables: no seed columns at all
    tables = _write_tables(paper, tmp_path / "c", [1.0])
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs")
    assert "ours_std" not in cells.columns and "within_2std" not in cells.columns


def _reference(paper_dir, d, shift=0.0, car_shift=0.0):
    d.mkdir(parents=True, exist_ok=True)
    for t, df in _paper_tables(paper_dir).items():
        df = df.assign(**{c: df[c] + shift for c in VALUE_COLUMNS})
        df["car_f1"] = df["car_f1"] + car_shift
        write_csv(df, d / f"table{t}.csv")
    return d


def test_reference_difference_reproduced(paper, tmp_path):
    tables = _write_tables(paper, tmp_path / "ours", [1.0])  # ours = paper + 1
    ref = _reference(paper, tmp_path / "ref", shift=-0.5)  # reference = paper - 0.5
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    c = _cell(cells, "FCN", "car_f1")
    assert c["reference"] == 42.53 and c["ours_minus_reference"] == 1.5
    assert np.allclose(cells["ours_minus_reference"], 1.5)
    md = (tmp_path / "d.md").read_text()
    assert "## Against the reference run" in md
    assert f"reproduced: every F1/OA cell within {REFERENCE_TOLERANCE:g} points of the reference" in md
    assert "Largest differences among the judged F1/OA cells" in md
    assert list(pd.read_csv(tmp_path / "d.csv").columns)[-4:] == ["reference", "ours_minus_reference",
                                                                  "reference_ci_low", "reference_ci_high"]
    # a reference without per-block matrices: no intervals, and the section says why
    assert cells["reference_ci_low"].isna().all() and "No intervals: the reference has no `block_confusions.csv`" in md


def test_reference_difference_not_reproduced(paper, tmp_path):
    tables = _write_tables(paper, tmp_path / "ours", [0.0])
    ref = _reference(paper, tmp_path / "ref", car_shift=-3.0)  # car F1 3 points lower in the reference
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert _cell(cells, "PB", "car_f1")["ours_minus_reference"] == 3.0
    ok, text = reference_verdict(cells)
    assert ok is False and text.startswith("not reproduced: 7 of 49 F1/OA cells")
    md = (tmp_path / "d.md").read_text()
    assert "not reproduced: 7 of 49 F1/OA cells differ from the reference by more than 2 points" in md
    section = md.split("## Against the reference run")[1].split("## Table 1")[0]
    # all seven failing cells are listed, in bold, however many there are
    listed = [line for line in section.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(listed) == 7 and all(line.endswith("| **+3.00** |") for line in listed)
    assert "| 1 | PB | car_f1 | 77.72 | 74.72 | **+3.00** |" in section


def test_reference_section_lists_the_judged_cells_not_recall(paper, tmp_path):
    """The cells the verdict judges are the ones listed: a recall (``_acc``) column that
    moved most is not, and a judged cell within the tolerance is listed without bold."""
    tables = _write_tables(paper, tmp_path / "ours", [0.0])
    ref = tmp_path / "ref"
    ref.mkdir()
    for t, df in _paper_tables(paper).items():
        df = df.copy()
        df["car_acc"] = df["car_acc"] - 9.0  # recall: not judged
        df.loc[df["method"] == "FCN", "car_f1"] -= 2.5  # judged, off
        df.loc[df["method"] == "PB", "tree_f1"] -= 1.0  # judged, within
        write_csv(df, ref / f"table{t}.csv")
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert reference_verdict(cells)[1].startswith("not reproduced: 1 of 49")
    section = (tmp_path / "d.md").read_text().split("## Against the reference run")[1].split("## Table 1")[0]
    rows = [line for line in section.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == REFERENCE_TOP and "car_acc" not in "".join(rows)
    assert rows[0] == "| 1 | FCN | car_f1 | 43.03 | 40.53 | **+2.50** |"
    assert rows[1] == "| 1 | PB | tree_f1 | 88.39 | 87.39 | +1.00 |"
    # an acc cell off by more than 2 points does not break the F1/OA verdict
    ref2 = _reference(paper, tmp_path / "ref2")
    df = pd.read_csv(ref2 / "table1.csv")
    df.loc[0, "car_acc"] += 10
    write_csv(df, ref2 / "table1.csv")
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref2)
    assert reference_verdict(cells)[0] is True


def test_reference_absent_no_error(paper, tmp_path):
    tables = _write_tables(paper, tmp_path / "ours", [0.0, 1.0])
    for ref in (None, tmp_path / "nowhere", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
        assert cells["reference"].isna().all() and cells["ours_minus_reference"].isna().all()
        md = (tmp_path / "d.md").read_text()
        section = md.split("## Against the reference run")[1].split("## Table 1")[0].splitlines()[1:]
        lines = [x for x in section if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("No reference"), lines  # one line under the heading
        assert "Verdict" not in md
    # one of the two files present: its cells compared, the other noted
    ref = _reference(paper, tmp_path / "half")
    (ref / "table2.csv").unlink()
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert cells[cells["table"] == 1]["reference"].notna().all() and cells[cells["table"] == 2]["reference"].isna().all()
    assert "Absent: table2.csv" in (tmp_path / "d.md").read_text()


def test_diff_cells_without_reference_argument(paper):
    """diff_cells keeps its old call (ours, paper) and its first seven columns."""
    p = read_paper_results(paper / "paper_results.csv")
    ours = p[TABLE_COLUMNS].set_index("method")
    cells = diff_cells(ours, p)
    assert list(cells.columns) == ["table", "method", "column", "ours", "paper", "paper_printed", "delta",
                                   "reference", "ours_minus_reference", "reference_ci_low", "reference_ci_high"]
    assert np.allclose(cells["delta"], 0.0)


def test_seed_means_against_the_reference_judged_by_the_seeds_spread(paper, tmp_path):
    """Several seeds against the one-draw reference: a cell beyond the tolerance whose
    reference lies within mean ± 2 std is explained by the seeds' spread (consistent);
    one outside it is not (not reproduced); a one-seed mean ± std table has no std to
    judge by."""
    # shifts 0, 2, 4: mean = paper + 2, sample std 2 -> mean ± 2 std = paper + [-2, +6]
    tables = _write_tables(paper, tmp_path / "ours", [0.0, 2.0, 4.0])
    # reference = paper + 1 (car: paper - 1.5): car 3.5 points off, within 2 std (4)
    ref = _reference(paper, tmp_path / "ref", shift=1.0, car_shift=-2.5)
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert list(cells.columns)[-1] == "reference_within_2std" and cells["reference_within_2std"].all()
    assert _cell(cells, "FCN", "car_f1")["ours_minus_reference"] == 3.5
    ok, text = reference_verdict(cells)
    assert ok is True and text == ("consistent with the reference: 7 of 49 F1/OA cells differ from it by more than "
                                   "2 points, but the reference lies within the seeds' mean ± 2 std in each of them")
    md = (tmp_path / "d.md").read_text()
    section = md.split("## Against the reference run")[1].split("## Table 1")[0]
    assert "No block intervals: the tables are means over several seeds" in section
    assert "| table | method | column | ours | reference | ours - reference | ours std | " \
           "reference within mean ± 2 std |" in section
    car = [line for line in section.splitlines() if line.startswith("| 1 | PB | car_f1 |")]
    assert car == ["| 1 | PB | car_f1 | 79.72 | 76.22 | **+3.50** | 2.00 | yes |"]
    back = pd.read_csv(tmp_path / "d.csv")
    assert set(back["reference_within_2std"].astype(str)) == {"True"}
    # the cell tables print it as within_2std is printed: yes / no / n/a
    assert "| PB | car_f1 | 79.72 | 77.72 | 77.72 | +2.00 | 2.00 | yes | 76.22 | +3.50 | NaN | NaN | yes |" in md

    # car 5 points off (reference = paper - 3): outside mean ± 2 std on the seven car cells
    ref = _reference(paper, tmp_path / "ref_far", shift=1.0, car_shift=-4.0)
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    car = cells["column"] == "car_f1"
    assert not cells.loc[car, "reference_within_2std"].any() and cells.loc[~car, "reference_within_2std"].all()
    ok, text = reference_verdict(cells)
    assert ok is False and text == ("not reproduced: 7 of 49 F1/OA cells differ from the reference by more than "
                                    "2 points (7 of them with the reference outside the seeds' mean ± 2 std, "
                                    "0 within it)")
    assert "| 1 | PB | car_f1 | 79.72 | 74.72 | **+5.00** | 2.00 | no |" in (tmp_path / "d.md").read_text()

    # one seed in the mean ± std form: no std, so a cell beyond the tolerance is not explained
    one = _write_tables(paper, tmp_path / "one", [2.0], std="one-seed")
    ref = _reference(paper, tmp_path / "ref_one", shift=1.0, car_shift=-2.5)
    cells = build_paper_diff(one, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert cells["reference_within_2std"].isna().all()
    ok, text = reference_verdict(cells)
    assert ok is False and text.endswith("more than 2 points (0 of them with the reference outside the seeds' "
                                         "mean ± 2 std, 0 within it, 7 without a std)")
    # within the tolerance everywhere: reproduced, whatever the std says
    ref = _reference(paper, tmp_path / "ref_near", shift=1.0)
    cells = build_paper_diff(tables, paper, tmp_path / "d.md", tmp_path / "d.csv", source="isprs", reference_dir=ref)
    assert reference_verdict(cells) == (True, "reproduced: every F1/OA cell within 2 points of the reference (49 cells)")
