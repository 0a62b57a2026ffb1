"""The tiny pipeline through ``snakemake --profile profiles/slurm`` on a real one-node
SLURM cluster (tests/slurm_cluster.py), compared with the local run.

What is real: slurmctld/slurmd/munged, sbatch, squeue, srun, the executor plugin and
the repository's SLURM profile. What the test changes, and why (the test profile is
generated from profiles/slurm/config.yaml with only these edits):

- partition/account: ``debug``/``none`` (the test cluster's; the profile's are
  placeholders the user edits);
- ``max-threads`` = the node's CPUs and every ``mem_mb`` capped at half the node's
  memory, so the GPU rules' large requests can be scheduled on this small node;
- ``retries: 0`` (a failure must fail the test), first status check after 5 s instead
  of 20 s (``slurm-init-seconds-before-status-checks``; the plugin then adds 10 s per
  check until a job finishes, so with ~13 s jobs 5 s is quicker than 1 s).

GPU requests are NOT overridden: the node has no GPU, so a recording ``sbatch`` wrapper
first on PATH logs its full argument list (what the real profile asks for) and then
drops ``--gpus=…``/``--gres=gpu…`` before exec'ing the real sbatch; an ``srun`` wrapper
does the same for the job step the executor starts inside the allocation. The test
asserts on the recorded arguments: ``--gpus=1`` for train_pb, train_fcn, train_fcn_mfb
and mc_infer, and no GPU flag for any other rule.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, snakemake_log_tail, snakemake_tiny
from slurm_cluster import PARTITION, SlurmCluster, SlurmUnavailable

pytestmark = pytest.mark.slow

GPU_RULES = {"train_pb", "train_fcn", "train_fcn_mfb", "mc_infer"}
LOCAL_RULES = {"all", "benchmarks_table", "provenance"}
RECORD_VAR = "VAISEG_SLURM_RECORD"  # not SLURM_*/SBATCH_*: the job step drops those

WRAPPER = """#!{python}
# recording {tool} wrapper (tests/test_slurm.py): log argv, drop GPU requests (this test
# node has no GPU), exec the real {tool}
import json, os, sys
with open(os.environ["{var}"] + ".{tool}", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
args = [a for a in sys.argv[1:] if not (a.startswith("--gpus=") or a.startswith("--gres=gpu"))]
os.execv({real!r}, ["{tool}"] + args)
"""


def is_gpu_flag(arg: str) -> bool:
    return arg.startswith("--gpus") or arg.startswith("--gres=gpu") or arg.startswith("--gpus-per")


def write_wrappers(bindir: Path, record: Path) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("sbatch", "srun"):
        real = shutil.which(tool)
        assert real, f"{tool} not found"
        p = bindir / tool
        p.write_text(WRAPPER.format(python=os.path.realpath(shutil.which("python3") or "/usr/bin/python3"),
                                    tool=tool, var=RECORD_VAR, real=real))
        p.chmod(0o755)


def test_profile(cluster: SlurmCluster, out: Path) -> Path:
    """profiles/slurm/config.yaml with the test-only edits of the module docstring."""
    prof = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    prof.pop("x-cluster", None)
    prof["default-resources"].update(slurm_partition=PARTITION, slurm_account="none")
    cap = cluster.mem_mb // 2
    for res in [prof["default-resources"], *prof.get("set-resources", {}).values()]:
        if "mem_mb" in res:
            res["mem_mb"] = min(int(res["mem_mb"]), cap)
    prof.update({"max-threads": cluster.cpus, "retries": 0, "slurm-init-seconds-before-status-checks": 5})
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


test_profile.__test__ = False  # a helper, not a test


def rule_of(sbatch_args: list[str]) -> tuple[str, str]:
    """(rule, wildcards) from the executor's ``--comment rule_<rule>[_wildcards_<wc>]``."""
    comment = sbatch_args[sbatch_args.index("--comment") + 1]
    assert comment.startswith("rule_"), comment
    rule, _, wc = comment[len("rule_"):].partition("_wildcards_")
    return rule, wc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except SlurmUnavailable as e:
        pytest.skip(f"SLURM cannot run here: {e}")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The tiny pipeline through the SLURM profile; returns (workdir, sbatch calls, srun calls)."""
    base = tmp_path_factory.mktemp("tiny_slurm")
    workdir, record = base / "work", base / "record"
    write_wrappers(base / "bin", record)
    prof = test_profile(cluster, base / "profile")
    env = cluster.env()
    env["PATH"] = f"{base / 'bin'}{os.pathsep}{env['PATH']}"
    env[RECORD_VAR] = str(record)
    # --workflow-profile none: profiles/default (local settings) must not be layered on top
    r = snakemake_tiny(workdir, "--profile", str(prof), "--workflow-profile", "none", env=env)
    assert r.returncode == 0, f"SLURM tiny run failed:\n{snakemake_log_tail(workdir)}"

    def calls(tool):
        p = Path(f"{record}.{tool}")
        return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []

    return workdir, calls("sbatch"), calls("srun")


def target_jobs(args: list[str]) -> str | None:
    """The ``--target-jobs`` value of an sbatch (inside ``--wrap=``) or srun argument list."""
    text = " ".join(args)
    m = re.search(r"--target-jobs '?([^' ]+)'?", text)
    return m.group(1) if m else None


def benchmarked_jobs(workdir: Path) -> set[tuple[str, str]]:
    """(rule, wildcards path) of every job that ran, from its benchmark file."""
    root = workdir / "results" / "benchmarks"
    out = set()
    for p in root.rglob("*.tsv"):
        rel = p.relative_to(root)
        out.add((rel.parts[0], "/".join(rel.with_suffix("").parts[1:])))
    return out


def test_every_non_local_rule_went_through_sbatch(slurm_run, cluster):
    workdir, sbatch, srun = slurm_run
    jobs = {j for j in benchmarked_jobs(workdir) if j[0] not in LOCAL_RULES}
    submitted = [rule_of(a) for a in sbatch]
    assert jobs, "no jobs ran"
    # one submission per job (retries are off): as many sbatch calls as non-local jobs,
    # and the same rules with the same multiplicity
    assert len(submitted) == len(jobs), (sorted(submitted), sorted(jobs))
    per_rule = lambda pairs: pd.Series([r for r, _ in pairs]).value_counts().sort_index().to_dict()  # noqa: E731
    assert per_rule(submitted) == per_rule(jobs)
    assert not {r for r, _ in submitted} & LOCAL_RULES, "local rules must not be submitted"
    # each allocation ran its job step through srun (inside SLURM, not on the host)
    stepped = {target_jobs(a) for a in srun} - {None}
    assert {target_jobs(a) for a in sbatch} <= stepped
    # SLURM itself saw them all complete (MinJobAge keeps finished jobs in squeue)
    q = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], capture_output=True, text=True,
                       env=cluster.env(), timeout=30)
    states = [line.split("|") for line in q.stdout.splitlines() if "|rule_" in line]
    assert len(states) >= len(sbatch)
    assert {s for _, s, _ in states} == {"COMPLETED"}, states


def test_gpu_requested_for_training_and_inference_only(slurm_run):
    _, sbatch, srun = slurm_run
    seen = set()
    for args in sbatch:
        rule, wc = rule_of(args)
        gpu = [a for a in args if is_gpu_flag(a)]
        if rule in GPU_RULES:
            assert gpu == ["--gpus=1"], (rule, wc, gpu)
            seen.add(rule)
        else:
            assert gpu == [], (rule, wc, gpu)
    assert seen == GPU_RULES, f"GPU rules not submitted: {GPU_RULES - seen}"
    # the job step inside the allocation asks for the GPU too, for the same jobs
    step_gpu = [a for a in srun if any(is_gpu_flag(x) for x in a)]
    assert len(step_gpu) == sum(rule_of(a)[0] in GPU_RULES for a in sbatch)


def test_slurm_tables_equal_local_tables(slurm_run, tiny_local_run):
    workdir, _, _ = slurm_run
    # same data first (a difference here means different inputs, not different execution)
    md5 = lambda d: {k: a["md5"] for k, a in json.loads((d / "results" / "provenance.json").read_text())["data"]["archives"].items()}  # noqa: E731
    assert md5(workdir) == md5(tiny_local_run)
    for name in ("table1.csv", "table2.csv"):
        ours = pd.read_csv(workdir / "results" / "tables" / name)
        local = pd.read_csv(tiny_local_run / "results" / "tables" / name)
        pd.testing.assert_frame_equal(ours, local, check_exact=True)
    slurm_bench = pd.read_csv(workdir / "results" / "benchmarks" / "rules.csv")
    assert set(GPU_RULES) <= set(slurm_bench["rule"])


def test_slurm_logs_per_job(slurm_run):
    workdir, sbatch, _ = slurm_run
    logs = list((workdir / "logs" / "slurm").rglob("*.log"))
    assert len(logs) == len(sbatch)  # the profile keeps successful jobs' logs
