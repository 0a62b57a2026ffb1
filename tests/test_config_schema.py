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
