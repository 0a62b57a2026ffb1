"""The config schema: every shipped config validates; a typo or a wrong type fails
before any rule runs, naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import ROOT
from vaiseg.config import split_areas
from vaiseg.errors import ConfigError

SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
CONFIGS = ["config.yaml", "config/vaihingen.yaml", "tests/config/tiny.yaml"]


def load(name):
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_validate(name):
    cfg = load(name)
    validate(cfg, schema=SCHEMA)
    train, val = split_areas(cfg)
    assert train and val and not set(train) & set(val)


def test_defaults_are_filled_in():
    cfg = {"data": {"source": "synthetic"}}
    validate(cfg, schema=SCHEMA)
    assert cfg["infer"]["mc_samples"] == 10
    assert cfg["data"]["split"] == "paper"
    assert split_areas(cfg) == ((1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37), (11, 15, 28, 30, 34))


def test_typo_in_a_key_names_the_key():
    cfg = copy.deepcopy(load("config.yaml"))
    cfg["infer"]["mc_sampels"] = 10
    with pytest.raises(WorkflowError, match="mc_sampels"):
        validate(cfg, schema=SCHEMA)


def test_wrong_type_names_the_key():
    cfg = copy.deepcopy(load("config.yaml"))
    cfg["infer"]["mc_samples"] = "ten"
    with pytest.raises(WorkflowError, match="mc_samples"):
        validate(cfg, schema=SCHEMA)


def test_overlapping_areas_are_refused():
    cfg = {"data": {"source": "synthetic", "areas": {"train": [1, 3], "val": [3]}}}
    with pytest.raises(ConfigError, match=r"\[3\]"):
        split_areas(cfg)


def test_bad_config_stops_snakemake_before_any_rule(tmp_path):
    cfg = copy.deepcopy(load("tests/config/tiny.yaml"))
    cfg["train"]["PB"]["epochz"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "epochz" in r.stdout + r.stderr
    assert "Building DAG" not in r.stdout + r.stderr


def _leaves(d, prefix=()):
    """Every leaf key path of a nested dict (lists and scalars are leaves)."""
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,)


#: sections of config.yaml a config of another data source does not use
SOURCE_ONLY = {"synthetic": ("data", "synthetic"), "isprs": ("data", "isprs")}


@pytest.mark.parametrize("name", [c for c in CONFIGS if c.startswith("config/")])
def test_shipped_config_sets_every_key_the_demo_sets(name):
    """A shipped non-default config is complete on its own: every key config.yaml sets is
    set there too, so no demo value (epochs: 3, width: 0.25, ...) can reach a paper run by
    accident, whatever the layering (sections of the other data source excepted)."""
    cfg = load(name)
    unused = SOURCE_ONLY["synthetic" if cfg["data"]["source"] == "isprs" else "isprs"]
    missing = []
    for path in _leaves(load("config.yaml")):
        if path[: len(unused)] == unused:
            continue
        node = cfg
        for k in path:
            if not isinstance(node, dict) or k not in node:
                missing.append(".".join(path))
                break
            node = node[k]
    assert not missing, f"{name} inherits demo values for {missing}"


def test_the_check_catches_an_inherited_key():
    cfg = load("config/vaihingen.yaml")
    del cfg["train"]["PB"]["epochs"]
    demo = {".".join(p) for p in _leaves(load("config.yaml"))}
    have = {".".join(p) for p in _leaves(cfg)}
    assert "train.PB.epochs" in demo - have


def test_configfile_replaces_the_demo_config(tmp_path):
    """With --configfile, config.yaml is not read (the Snakefile's explicit layering): a
    required key the given file leaves out is an error, not the demo's value; --config
    still merges over the file."""
    cfg = load("config/vaihingen.yaml")
    part = tmp_path / "partial.yaml"
    part.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(part),
                        "--config", "run_name=layering", "--", "train_fcn"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "results/layering/models/FCN/model.pt" in out  # --config merged over the file
    del cfg["data"]["source"]  # config.yaml sets it (synthetic); merged, the run would go on
    part.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(part)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "'source' is a required property" in out, out[-2000:]


def test_fusion_split_holdout():
    from vaiseg.config import fusion_split

    base = {"data": {"source": "synthetic", "areas": {"train": [1, 3, 5], "val": [11]}}}
    assert fusion_split(base) == ((1, 3, 5), (1, 3, 5))  # default: in-sample
    held = copy.deepcopy(base) | {"fusion": {"train_on": "holdout", "holdout_areas": [5]}}
    assert fusion_split(held) == ((1, 3), (5,))
    for bad, msg in (([], "give the training areas"), ([11], r"\[11\] are not training areas"),
                     ([1, 3, 5], "every training area is held out")):
        cfg = copy.deepcopy(base) | {"fusion": {"train_on": "holdout", "holdout_areas": bad}}
        with pytest.raises(ConfigError, match=msg):
            fusion_split(cfg)


def test_holdout_areas_leave_cnn_training_for_the_svms(tmp_path):
    """fusion.train_on: holdout in the DAG: the CNNs' patches come from the other training
    areas, the SVMs train on the held-out area's predictions."""
    cfg = load("tests/config/tiny.yaml")
    cfg["data"]["areas"]["train"] = [3, 5]
    cfg["fusion"] |= {"train_on": "holdout", "holdout_areas": [5]}
    path = tmp_path / "holdout.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--",
                        "results/fusion/ALL/svm.json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "results/predictions/FCN/5/probs.tif" in out  # SVM input: the held-out area
    assert "results/predictions/FCN/3/probs.tif" not in out  # not the CNNs' own training area
    assert "Sampling class-balanced 65x65 PB patch centres (cars + rotations) in areas 3\n" in out


def test_command_line_seeds_become_ints():
    from vaiseg.config import command_line_lists

    assert command_line_lists({"seeds": ["0", "1", "+2", "-3"]})["seeds"] == [0, 1, 2, -3]
    assert command_line_lists({"seeds": [0, "x"]})["seeds"] == [0, "x"]  # left for the schema
    assert command_line_lists({"seeds": None}) == {"seeds": None}


def test_seeds_on_the_command_line():
    """`--config seeds=[0,1]` (Snakemake hands the items over as strings) plans one
    training per seed, as `seeds: [0, 1]` in a config file does."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "tests/config/tiny.yaml",
                        "--config", "seeds=[0,1]", "--", "results/seeds/1/models/FCN/model.pt"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "results/seeds/1/models/FCN/model.pt" in out
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "tests/config/tiny.yaml",
                        "--config", "seeds=[0,x]"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "'x' is not of type 'integer'" in r.stdout + r.stderr


def test_the_budget_overlay_is_four_times_the_demo():
    """config/budget_x4.yaml over config.yaml: every CNN's epochs x4 and nothing else of
    the demo changed but the run's name and reference (whose tables, from a run of this
    budget, are committed beside the demo's); Snakemake plans it under results/x4/."""
    demo, merged = _overlay("config/budget_x4.yaml",
                            {"run_name", "report.reference_dir", "train.PB.epochs", "train.FCN.epochs", "train.FCN-MFB.epochs"},
                            "results/x4/models/PB/model.pt")
    for m in ("PB", "FCN", "FCN-MFB"):
        assert merged["train"][m]["epochs"] == 4 * demo["train"][m]["epochs"], m


def _overlay(name: str, changed: set[str], target: str) -> tuple[dict, dict]:
    """(config.yaml, config.yaml with the overlay ``name``) after checking that the merged
    config validates, that the overlay sets exactly the keys ``changed``, that its
    reference folder holds a reference run's three files, and that Snakemake plans
    ``target`` with it."""
    from snakemake.utils import update_config

    demo, overlay = load("config.yaml"), load(name)
    merged = copy.deepcopy(demo)
    update_config(merged, overlay)
    validate(merged, schema=SCHEMA)
    validate(demo, schema=SCHEMA)
    assert {".".join(p) for p in _leaves(overlay)} == changed
    ref = ROOT / merged["report"]["reference_dir"]
    assert {p.name for p in ref.iterdir()} >= {"table1.csv", "table2.csv", "block_confusions.csv"}
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config.yaml", name, "--", target],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and target in out, out[-2000:]
    return demo, merged


def test_the_wide_evaluation_overlay_keeps_the_demos_training():
    """config/eval_wide.yaml over config.yaml: the CNNs and the SVMs train on the paper's
    eleven training areas, as in the demo (so they are the demo's networks), and the tables
    are scored on the paper's five validation areas plus the seventeen ISPRS test areas;
    nothing else changes but the run's name and reference. Snakemake plans it under
    results/wide/ and infers the test areas there."""
    from vaiseg.config import SPLITS, TEST_AREAS, fusion_split

    demo, merged = _overlay("config/eval_wide.yaml", {"run_name", "report.reference_dir", "data.areas.train", "data.areas.val"},
                            "results/wide/predictions/PB/38/labels.tif")
    train, val = split_areas(merged)
    assert train == SPLITS["paper"]["train"] == split_areas(demo)[0]
    assert fusion_split(merged) == fusion_split(demo)
    assert val[:5] == SPLITS["paper"]["val"] and sorted(val[5:]) == sorted(TEST_AREAS)
