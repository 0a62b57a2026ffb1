"""The SLURM profile asks for a GPU for every rule that declares one (set-resources and
set-threads go by rule name: a rule left out would run on a node without a GPU)."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT

RULE = re.compile(r"^(?:rule (\w+)|use rule (\w+) as (\w+) with):\n((?:[ \t]+.*\n|\n)*)", re.M)


def gpu_rules() -> set[str]:
    """Rules of workflow/rules/*.smk whose resources hold gpu=1, own or by `use rule`."""
    own, derived = {}, {}
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for m in RULE.finditer(path.read_text()):
            name, base, alias, body = m.groups()
            has_gpu = re.search(r"^\s+gpu=1,?\s*$", body, re.M) is not None
            if name:
                own[name] = has_gpu
            else:
                derived[alias] = (base, has_gpu)
    gpu = {n for n, g in own.items() if g}
    gpu |= {a for a, (base, g) in derived.items() if g or own.get(base, False)}
    return gpu


def test_rule_parser_sees_the_known_gpu_rules():
    rules = gpu_rules()
    assert {"train_pb", "train_fcn", "train_fcn_mfb", "mc_infer", "train_fcn_ablation", "realism_train_fcn"} <= rules
    assert "fuse_train" not in rules and "mfb_weights_ablation" not in rules


def test_slurm_profile_requests_a_gpu_for_every_gpu_rule():
    prof = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    res, threads = prof["set-resources"], prof["set-threads"]
    for rule in sorted(gpu_rules()):
        assert res.get(rule, {}).get("gpu") == 1, f"profiles/slurm: {rule} declares gpu=1 but set-resources asks no GPU"
        assert "runtime" in res[rule] and "mem_mb" in res[rule], rule
    # and no rule asks for a GPU on SLURM that does not declare one (the local run would not serialise it)
    assert {r for r, v in res.items() if v.get("gpu")} <= gpu_rules()
    assert set(threads) <= gpu_rules() | set(res)
