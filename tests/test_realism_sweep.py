"""benchmarks/realism_sweep.{py,sh} (issue 11's generator sweep): variants reach the
generator in every process, the overlay config and the report, and the whole script on
the tiny config with a stand-in "real" crop (a synthetic area in mmseg's label indices),
so that it runs without ../shared. The sweep's GPU figures: benchmarks/results/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from PIL import Image

from conftest import SNAPSHOT_PATHS, copy_project
from fake_isprs import erode_boundary
from vaiseg.data.synthetic import generate_scene
from vaiseg.data.synthetic import render, scene, town

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import realism_sweep as rs  # noqa: E402


@pytest.fixture
def restore():
    saved = (scene.HOUR_ANGLE, render.BLUR_SIGMA, render.TEXTURE, town.KIND_P)
    yield
    scene.HOUR_ANGLE, render.BLUR_SIGMA, render.TEXTURE, town.KIND_P = saved


def test_apply_sets_the_constants_and_returns_the_old_ones(restore):
    old_blur, old_kind = render.BLUR_SIGMA, town.KIND_P
    old = rs.apply("blur_more_urban")
    assert old == {"render:BLUR_SIGMA": old_blur, "town:KIND_P": old_kind}
    assert render.BLUR_SIGMA == (1.3, 2.0) and town.KIND_P is rs._DENSER
    assert rs.apply("base") == {} and render.BLUR_SIGMA == (1.3, 2.0)  # base changes nothing
    with pytest.raises(KeyError, match="unknown generator variant 'sharp'.*'all'"):
        rs.apply("sharp")


def test_every_variant_names_real_constants_of_the_same_shape(restore):
    for name, overrides in rs.VARIANTS.items():
        for key, value in overrides.items():
            mod, const = key.split(":")
            current = getattr(sys.modules[rs.PKG + mod], const)
            assert np.shape(value) == np.shape(current), (name, key)
    probs = rs._DENSER / rs._DENSER.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, rs._DENSER, atol=1e-9)  # rows are distributions
    assert (rs._DENSER[:, 0] >= town.KIND_P[:, 0]).all()  # more old-town centre at every density


def test_the_in_domain_bounds_change_the_ndsm_and_nothing_else(monkeypatch):
    """dsm_flat and no_crowns (bounds for issue 11's in-domain goal, not realism variants):
    the same images and labels, an nDSM without any object or without the crowns;
    ``applied`` sees a replaced function set (across processes: the check test below)."""
    from vaiseg.data.synthetic.labels import BUILDING, TREE

    base = generate_scene(3, 256, 256, 2016)
    building, tree = base.labels == BUILDING, base.labels == TREE
    assert np.median(base.ndsm[building]) > 3 and np.median(base.ndsm[tree]) > 3
    got = {}
    for name in ("dsm_flat", "no_crowns"):
        assert rs.applied(name)  # the defaults are in force
        for key, mod, const, value in rs._constants(name):
            monkeypatch.setattr(mod, const, value)
        assert rs.applied(name) == []
        got[name] = generate_scene(3, 256, 256, 2016)
        monkeypatch.undo()
        assert np.array_equal(got[name].irrg, base.irrg) and np.array_equal(got[name].labels, base.labels)
    assert np.median(got["dsm_flat"].ndsm[building]) < 0.5 and np.median(got["dsm_flat"].ndsm[tree]) < 0.5
    assert np.median(got["no_crowns"].ndsm[tree]) < 0.5
    assert np.median(got["no_crowns"].ndsm[building]) == pytest.approx(np.median(base.ndsm[building]), abs=0.5)


def test_the_hook_applies_the_variant_in_a_new_process(tmp_path):
    rs.write_hook(tmp_path / "hook")
    code = ("from vaiseg.data.synthetic import render, scene, generate_scene; import hashlib;"
            "s = generate_scene(3, 96, 96, 14);"
            "print(render.BLUR_SIGMA, scene.HOUR_ANGLE, hashlib.sha256(s.irrg.tobytes()).hexdigest()[:12],"
            " hashlib.sha256(s.labels.tobytes()).hexdigest()[:12])")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "hook"), str(ROOT / "benchmarks"), str(ROOT / "src")]))
    out = {}
    for v in ("", "base", "blur_more", "sun_low"):
        e = dict(env, **{rs.ENV: v})
        out[v] = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout.split()
    # tokens: BLUR_SIGMA (2), HOUR_ANGLE (2), image digest, label digest
    assert out[""] == out["base"]
    assert out["blur_more"][:2] == ["(1.3,", "2.0)"] and out["blur_more"][4] != out["base"][4]  # the image blurred...
    assert out["blur_more"][5] == out["base"][5]  # ... the labels as they were
    assert out["sun_low"][2:4] == ["(-72.0,", "-40.0)"] and out["sun_low"][4] != out["base"][4]


def test_overlay_config_and_finished_seeds(tmp_path):
    cfg = rs.overlay("blur", [0, 2], "a/irrg.png", "a/label.png")
    assert cfg["run_name"] == "sweep_blur" and cfg["realism"]["seeds"] == [0, 2]
    assert Path(cfg["realism"]["reference"]["crop"]["irrg"]).is_absolute()
    res = tmp_path / "results" / "sweep_blur"
    for s in (0, 2):
        (res / "realism" / "fcn_irrg" / f"seed{s}").mkdir(parents=True)
    (res / "realism" / "fcn_irrg" / "seed2" / "model.pt").write_bytes(b"x")
    assert rs.finished_seeds(res, [0, 1, 2]) == [2]


def test_overlay_and_run_name_of_a_town():
    cfg = rs.overlay("base", [1], "a/irrg.png", "a/label.png", town=2017)
    assert cfg["run_name"] == "sweep_base_t2017" == rs.run_name("base", 2017)
    assert cfg["data"] == {"synthetic": {"seed": 2017}} and cfg["realism"]["seeds"] == [1]
    assert "data" not in rs.overlay("base", [1], "a/irrg.png", "a/label.png")  # no town: the config's
    assert rs.run_name("base") == "sweep_base"


def _summary(folder: Path, oas, boundary=0.12):
    folder.mkdir(parents=True)
    seeds = [{"seed": i, "sim_to_real_oa": oa, "sim_to_real_avg_f1": 50.0, "sim_to_real_car_f1": 30.0 + i} for i, oa in enumerate(oas)]
    (folder / "summary.json").write_text(json.dumps({"sim_to_real_oa": float(np.mean(oas)), "sim_to_real_seeds": seeds,
                                                     "boundary_fraction_synthetic": boundary, "boundary_fraction_real": 0.08}))


def test_collect_pools_a_variant_over_its_towns(tmp_path):
    _summary(tmp_path / "sweep_base_t1" / "realism", [70.0, 74.0], boundary=0.10)
    _summary(tmp_path / "sweep_base_t2" / "realism", [80.0, 84.0], boundary=0.14)
    rep = rs.collect(tmp_path, ["base", "blur"], towns=[1, 2, 3])
    base = rep["base"]
    oa = base["sim_to_real_oa"]  # over all four FCNs of the towns that finished
    assert oa["n"] == 4 and oa["mean"] == 77.0 and np.isclose(oa["std"], np.std([70, 74, 80, 84], ddof=1))
    assert [(r["town"], r["seed"]) for r in base["seeds"]] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert base["towns"]["1"]["sim_to_real_oa"]["mean"] == 72.0 and base["towns"]["2"]["sim_to_real_oa"]["mean"] == 82.0
    assert base["towns"]["3"] == {"missing": str(tmp_path / "sweep_base_t3" / "realism" / "summary.json")}
    tm = base["town_means"]["sim_to_real_oa"]  # the spread between the towns' means
    assert tm["n"] == 2 and tm["mean"] == 77.0 and np.isclose(tm["std"], np.sqrt(50))
    assert np.isclose(base["yardstick"]["boundary_fraction_synthetic"], 0.12)  # the towns' mean
    assert len(rep["blur"]["missing"]) == 3  # no town of it finished: every path named
    md = rs.markdown({"variants": rep})
    assert "OA per town (std of the town means)" in md
    assert "| 1: 72.0, 2: 82.0, 3: missing (7.1) |" in md and "| blur | missing |" in md


def test_paired_compares_each_variant_with_base_town_by_town(tmp_path):
    # base towns 1-3 (town 4 missing); shrubs towns 1, 2, 4: common towns 1 and 2
    for t, oas in ((1, [70.0, 74.0]), (2, [80.0, 84.0]), (3, [60.0, 60.0])):
        _summary(tmp_path / f"sweep_base_t{t}" / "realism", oas)
    for t, oas in ((1, [75.0, 77.0]), (2, [81.0, 85.0]), (4, [90.0, 90.0])):
        _summary(tmp_path / f"sweep_shrubs_t{t}" / "realism", oas)
    rep = rs.collect(tmp_path, ["base", "shrubs", "blur"], towns=[1, 2, 3, 4])
    pr = rs.paired(rep)
    assert set(pr) == {"shrubs"}  # blur has no town: nothing to pair
    oa = pr["shrubs"]["sim_to_real_oa"]
    assert oa["towns"] == [1, 2] and np.allclose(oa["diffs"], [4.0, 1.0]) and oa["up"] == 2
    assert oa["mean"] == 2.5 and np.isclose(oa["std"], np.std([4.0, 1.0], ddof=1))
    # the paired t-test by hand: t = mean / (std / sqrt n) = 2.5 / (2.1213 / 1.4142) = 1.667, 1 df
    assert np.isclose(oa["t_p"], 2 * (0.5 - np.arctan(2.5 / (np.std([4.0, 1.0], ddof=1) / np.sqrt(2))) / np.pi))
    assert np.isclose(oa["wilcoxon_p"], 0.5)  # exact: both signs +, n 2: p = 2 / 2**2
    car = pr["shrubs"]["sim_to_real_car_f1"]  # the same per-seed car F1 in every town: no difference, no test
    assert car["diffs"] == [0.0, 0.0] and car["up"] == 0 and "t_p" not in car
    md = rs.markdown({"variants": rep, "paired": pr})
    assert "| shrubs | 1, 2 | +2.5 ± 2.1 (2 of 2 up; p 0.344, 0.500) |" in md
    assert rs.paired({"shrubs": rep["shrubs"]}) == {}  # no base: nothing to compare with


def test_report_pairs_a_variant_run_alone_with_a_stored_baseline(tmp_path, capsys):
    # shrubs run alone in towns 1, 2; base town 1 run here too, towns 1-3 from a stored file
    _summary(tmp_path / "sweep_shrubs_t1" / "realism", [75.0, 77.0])
    _summary(tmp_path / "sweep_shrubs_t2" / "realism", [81.0, 85.0])
    _summary(tmp_path / "sweep_base_t1" / "realism", [72.0, 74.0])
    stored = tmp_path / "base.json"
    stored.write_text(json.dumps({"base_town_means": {"1": [60.0, 50.0, 30.0], "2": [82.0, 50.0, 30.0],
                                                      "3": [70.0, 50.0, 30.0]}}))
    out = tmp_path / "rep.json"
    argv = ["report", "--variants", "base", "shrubs", "--towns", "1", "2", "--results", str(tmp_path), "--out", str(out)]
    assert rs.main(argv + ["--baseline", str(stored)]) == 0
    rep = json.loads(out.read_text())
    oa = rep["paired"]["shrubs"]["sim_to_real_oa"]
    # town 1: base run here (73) wins over the file's 60; town 2 from the file (82)
    assert oa["towns"] == [1, 2] and np.allclose(oa["diffs"], [3.0, 1.0]) and rep["baseline"] == str(stored)
    assert "base towns not run here from" in capsys.readouterr().out
    # an earlier report is a baseline too: its variants.base.towns, missing towns left out
    assert rs.main(["report", "--variants", "shrubs", "--towns", "1", "2", "--results", str(tmp_path),
                    "--out", str(tmp_path / "alone.json"), "--baseline", str(out)]) == 0
    alone = json.loads((tmp_path / "alone.json").read_text())
    assert alone["paired"]["shrubs"]["sim_to_real_oa"]["towns"] == [1]  # the report's base had town 1 only
    assert np.allclose(alone["paired"]["shrubs"]["sim_to_real_oa"]["diffs"], [3.0])
    for bad, says in (("{\"base_town_means\": {\"1\": [60.0]}}", "neither a sweep report"),
                      ("{\"base_town_means\": {\"1\": [60.0, \"x\", null]}}", "(numbers)"), ("[", "not a readable JSON")):
        stored.write_text(bad)
        with pytest.raises(SystemExit):
            rs.main(argv + ["--baseline", str(stored)])
        err = capsys.readouterr().err
        assert says in err and str(stored) in err


def test_report_meta_from_a_file_and_bad_meta(tmp_path, capsys):
    _summary(tmp_path / "sweep_base_t1" / "realism", [70.0, 74.0])
    meta = tmp_path / "meta.json"
    meta.write_text('{"machine": "test VM"}')
    out = tmp_path / "rep.json"
    assert rs.main(["report", "--variants", "base", "--towns", "1", "--results", str(tmp_path),
                    "--meta", str(meta), "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["machine"] == "test VM" and rep["towns"] == [1] and rep["paired"] == {}
    long = json.dumps({"note": "x" * 400})  # longer than a file name may be: still JSON
    assert rs.main(["report", "--variants", "base", "--results", str(tmp_path), "--meta", long, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["note"] == "x" * 400
    for bad, says in (("not json", "neither a JSON object"), ("[1, 2]", "a JSON object")):
        with pytest.raises(SystemExit):
            rs.main(["report", "--variants", "base", "--results", str(tmp_path), "--meta", bad, "--out", str(out)])
        assert says in capsys.readouterr().err


def test_collect_and_markdown(tmp_path):
    d = tmp_path / "sweep_blur" / "realism"
    d.mkdir(parents=True)
    seeds = [{"seed": 0, "sim_to_real_oa": 70.0, "sim_to_real_avg_f1": 60.0, "sim_to_real_car_f1": None},
             {"seed": 1, "sim_to_real_oa": 80.0, "sim_to_real_avg_f1": 62.0, "sim_to_real_car_f1": 40.0}]
    (d / "summary.json").write_text(json.dumps({"sim_to_real_oa": 75.0, "sim_to_real_oa_std": 7.07, "sim_to_real_seeds": seeds,
                                                "boundary_fraction_synthetic": 0.12, "boundary_fraction_real": 0.08,
                                                "band_w1_max_at": "car/IR"}))
    rep = rs.collect(tmp_path, ["blur", "base"])
    assert rep["base"] == {"missing": str(tmp_path / "sweep_base" / "realism" / "summary.json")}
    oa = rep["blur"]["sim_to_real_oa"]
    assert oa["n"] == 2 and oa["mean"] == 75.0 and np.isclose(oa["std"], np.sqrt(50)) and np.isclose(oa["se"], 5.0)
    assert rep["blur"]["sim_to_real_car_f1"] == {"n": 1, "mean": 40.0}  # a seed without a car F1 left out
    assert rep["blur"]["yardstick"] == {"boundary_fraction_synthetic": 0.12, "boundary_fraction_real": 0.08}
    assert rep["blur"]["overrides"] == {"render:BLUR_SIGMA": [0.9, 1.5]}
    md = rs.markdown({"variants": rep})
    assert "| blur | 75.0 ± 7.1 (se 5.0, n 2) | 61.0 ± 1.4 (se 1.0, n 2) | 40.0 (n 1) | — | 0.12 |" in md
    assert "| base | missing |" in md and "| real crop | | | | — | 0.08 |" in md


def _stand_in_crop(folder: Path) -> tuple[Path, Path]:
    """A synthetic area written as an mmseg-style crop (IR-R-G PNG, labels 1..6, 0 on a
    2-px band around every class edge), to play the real crop in the tests."""
    s = generate_scene(11, 160, 160, 99)
    lab = s.labels.astype(np.uint8) + 1
    lab[erode_boundary(lab, radius=1)] = 0
    folder.mkdir(parents=True)
    irrg, labels = folder / "crop_irrg.png", folder / "crop_label.png"
    Image.fromarray(np.moveaxis(s.irrg, 0, -1)).save(irrg)
    Image.fromarray(lab).save(labels)
    return irrg, labels


def test_the_script_on_the_tiny_config(tmp_path):
    project = copy_project(tmp_path / "project", (*SNAPSHOT_PATHS, "benchmarks", "tests/config"))
    irrg, labels = _stand_in_crop(tmp_path / "crop")
    env = dict(os.environ, PYTHON=sys.executable, VARIANTS="base blur_more", SEEDS="0", JOBS="1", CORES="2", TRAIN_SECONDS="300",
               EXTRA_CONFIG="tests/config/tiny.yaml", IRRG=str(irrg), LABELS=str(labels), PYTHONPATH=str(project / "src"))
    proc = subprocess.run(["bash", str(project / "benchmarks" / "realism_sweep.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "out" / "realism_sweep.json").read_text())
    assert rep["seeds_asked"] == [0] and rep["jobs_per_variant"] == 1 and rep["train_wall_s"] <= rep["wall_s"]
    base, blur = rep["variants"]["base"], rep["variants"]["blur_more"]
    for v in (base, blur):
        assert v["sim_to_real_oa"]["n"] == 1 and 0 <= v["sim_to_real_oa"]["mean"] <= 100
        assert [s["seed"] for s in v["seeds"]] == [0]
    # the variant reached the data stage's processes: blurrier areas, the same labels
    y0, y1 = base["yardstick"], blur["yardstick"]
    assert y1["gradient_median_synthetic"] < y0["gradient_median_synthetic"]
    assert y1["boundary_fraction_synthetic"] == y0["boundary_fraction_synthetic"]
    assert y0["gradient_median_real"] == y1["gradient_median_real"]
    # the same FCNs on the run's validation areas, a column of the report
    assert 0 <= y0["sim_to_real_in_domain_oa"] <= 100 and 0 <= y1["sim_to_real_in_domain_oa"] <= 100
    for v in ("base", "blur_more"):  # each variant's run in its own run_name
        assert (project / "results" / f"sweep_{v}" / "realism" / "real_crop_pred.tif").is_file()
        assert yaml.safe_load((project / "results" / f"sweep_{v}" / "realism" / "summary.json").read_text())
    md = (tmp_path / "out" / "realism_sweep.md").read_text()
    assert "| blur_more |" in md and "sim_to_real_in_domain_oa" in md.splitlines()[0]
    assert (tmp_path / "out" / "realism_sweep_logs.tar.gz").is_file()


def test_the_script_over_towns_on_the_tiny_config(tmp_path):
    """TOWNS: one run per town (run_name sweep_VARIANT_tTOWN) whose data stage draws that
    town's areas, and the report pooled over the towns (one town here, to keep the suite
    short; the pooling of several is test_collect_pools_a_variant_over_its_towns)."""
    project = copy_project(tmp_path / "project", (*SNAPSHOT_PATHS, "benchmarks", "tests/config"))
    irrg, labels = _stand_in_crop(tmp_path / "crop")
    env = dict(os.environ, PYTHON=sys.executable, VARIANTS="base", TOWNS="15", SEEDS="0", JOBS="1", CORES="2",
               TRAIN_SECONDS="300", EXTRA_CONFIG="tests/config/tiny.yaml", IRRG=str(irrg), LABELS=str(labels),
               PYTHONPATH=str(project / "src"))
    proc = subprocess.run(["bash", str(project / "benchmarks" / "realism_sweep.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "out" / "realism_sweep.json").read_text())
    base = rep["variants"]["base"]
    assert rep["towns"] == [15] and [r["town"] for r in base["seeds"]] == [15]
    res = project / "results" / "sweep_base_t15"
    summary = json.loads((res / "realism" / "summary.json").read_text())
    assert base["towns"]["15"]["sim_to_real_oa"]["mean"] == summary["sim_to_real_oa"] == base["sim_to_real_oa"]["mean"]
    assert (res / "realism" / "real_crop_pred.tif").is_file()
    # the town reached the data stage: the training area is the generator's area 3 of town 15
    # (the tiny config's own town is 14)
    with rasterio.open(res / "data" / "3" / "labels.tif") as src:
        assert np.array_equal(src.read(1), generate_scene(3, 192, 192, 15).labels)
    assert not np.array_equal(generate_scene(3, 192, 192, 14).labels, generate_scene(3, 192, 192, 15).labels)
    assert "OA per town" in (tmp_path / "out" / "realism_sweep.md").read_text()
    with tarfile.open(tmp_path / "out" / "realism_sweep_logs.tar.gz") as tar:
        assert any(n.startswith("logs_sweep_base_t15/") for n in tar.getnames())
    # prior-shift re-predicts the crop as the realism rule did (the tiny config's T 3, 128-px
    # tiles): the summary's OA again; base against base has one class mix, so moving the
    # prediction to it changes nothing; the crop's own mix is an oracle
    ps = rs.prior_shift(project / "results", "base", [15, 16], irrg, labels, T=3, tile_size=128)
    assert ps["towns"]["16"] == {"missing": str(project / "results" / "sweep_base_t16" / "data" / "stats.json"), "seeds": []}
    town = ps["towns"]["15"]
    assert [r["seed"] for r in town["seeds"]] == [0]
    assert np.isclose(town["seeds"][0]["raw"], summary["sim_to_real_seeds"][0]["sim_to_real_oa"])
    assert np.allclose(town["prior_variant"], town["prior_base"]) and np.isclose(town["mean_to_base"], town["mean_raw"])
    assert 0 <= town["mean_to_crop"] <= 100 and np.isclose(sum(ps["crop_prior"]), 1.0)


def test_check_fails_where_the_hook_is_missing(tmp_path):
    """The script's guard: without the hook on PYTHONPATH the variant is not applied and
    `check` says so (Python itself only warns when a sitecustomize fails)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), **{rs.ENV: "blur_more"})
    cmd = [sys.executable, str(ROOT / "benchmarks" / "realism_sweep.py"), "check", "blur_more"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "'blur_more' not applied" in r.stderr and "render:BLUR_SIGMA" in r.stderr
    rs.write_hook(tmp_path / "hook")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "hook"), str(ROOT / "benchmarks"), str(ROOT / "src")])
    assert subprocess.run(cmd, env=env, capture_output=True, text=True).returncode == 0
    assert rs.applied("base") == []
    # a replaced function: the hook's copy of the module is not the script's __main__
    env[rs.ENV] = "dsm_flat"
    r = subprocess.run(cmd[:-1] + ["dsm_flat"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
