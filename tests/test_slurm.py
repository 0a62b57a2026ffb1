"""The tiny pipeline through ``snakemake --profile profiles/slurm`` on a real one-node
SLURM cluster (tests/slurm_cluster.py), compared with the local run.

What is real: slurmctld/slurmd/munged, sbatch, squeue, srun, the executor plugin and
the repository's SLURM profile. What the test changes, and why (the test profile is
generated from profiles/slurm/config.yaml with only these edits):

- partition/account: ``debug``/``none`` (the test cluster's; the profile's are
  placeholders the user edits);
- ``max-threads`` and ``cores`` = the node's CPUs and every ``mem_mb`` capped at half
  the node's memory, so the GPU rules' large requests and the group jobs can be
  scheduled on this small node (``cores`` bounds the CPUs a group job asks for);
- the test node offers SLURM twice the machine's CPUs (``oversubscribe=2``), so that
  two jobs, each asking for all the machine's CPUs (``max-threads``, hence the same
  thread counts as the local run), run side by side: the tiny jobs are mostly
  Snakemake start-up, which uses one core;
- ``retries: 0`` (a failure must fail the test), first status check after 5 s instead
  of 20 s (``slurm-init-seconds-before-status-checks``; the plugin then adds 10 s per
  check until a job finishes, so with ~13 s jobs 5 s is quicker than 1 s; the only
  polling setting of plugin 2.8.0). Measured on an idle 2-core machine: the SLURM run
  (14 SLURM jobs: 4 group jobs, 6 GPU jobs — 3 trainings, 3 MC inferences — and the
  convergence, uncertainty_metrics, ablations and comparisons jobs) ~5 min, the local
  tiny run ~1 min.

The profile's job grouping (``groups:``/``group-components:``) is used as is: the data,
patch, fusion and report stages each run as ONE SLURM job. The test maps every job to
the sbatch call that ran it through Snakemake's ``--target-jobs`` in the submitted
command (a group job lists all of its jobs), checks that each non-local job was
submitted exactly once, that each grouped rule ran in a job of its group, and that
every job ran in a job step (``srun``, one per job also inside a group job).

GPU requests are NOT overridden: the node has no GPU, so a recording ``sbatch`` wrapper
first on PATH logs its full argument list (what the real profile asks for) and then
drops ``--gpus=…``/``--gres=gpu…`` before exec'ing the real sbatch; an ``srun`` wrapper
does the same for the job step the executor starts inside the allocation. The test
asserts on the recorded arguments: ``--gpus=1`` for train_pb, train_fcn, train_fcn_mfb
and mc_infer (each alone in its SLURM job, never in a group job), and no GPU flag for
any other job.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.target_jobs import parse_target_jobs_cli_args

from conftest import ROOT, snakemake_log_tail, start_snakemake_tiny
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
    prof.update({"max-threads": cluster.cpus, "cores": cluster.cpus, "retries": 0, "slurm-init-seconds-before-status-checks": 5})
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


test_profile.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"), oversubscribe=2)
    try:
        c.start()
    except SlurmUnavailable as e:
        pytest.skip(f"SLURM cannot run here: {e}")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, request):
    """The tiny pipeline through the SLURM profile; returns (workdir, sbatch calls, srun calls).

    The session's local tiny run (``tiny_local_run``, compared with this one) is computed
    while the SLURM run waits for its jobs: the two together take little longer than the
    SLURM run alone."""
    base = tmp_path_factory.mktemp("tiny_slurm")
    workdir, record = base / "work", base / "record"
    write_wrappers(base / "bin", record)
    prof = test_profile(cluster, base / "profile")
    env = cluster.env()
    env["PATH"] = f"{base / 'bin'}{os.pathsep}{env['PATH']}"
    env[RECORD_VAR] = str(record)
    # --workflow-profile none: profiles/default (local settings) must not be layered on top
    proc = start_snakemake_tiny(workdir, "--profile", str(prof), "--workflow-profile", "none", env=env)
    try:
        request.getfixturevalue("tiny_local_run")
    finally:
        rc = proc.wait(timeout=3600)
    assert rc == 0, f"SLURM tiny run failed:\n{snakemake_log_tail(workdir)}"

    def calls(tool):
        p = Path(f"{record}.{tool}")
        return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []

    return workdir, calls("sbatch"), calls("srun")


def cli_tokens(args: list[str]) -> list[str]:
    """An sbatch/srun argument list with the command inside ``--wrap=`` split into words."""
    out = []
    for a in args:
        out.extend(shlex.split(a[len("--wrap="):]) if a.startswith("--wrap=") else [a])
    return out


def target_jobs(args: list[str]) -> list[tuple[str, tuple]]:
    """The jobs an sbatch (inside ``--wrap=``) or srun call runs, from Snakemake's
    ``--target-jobs rule:wc=v,... rule:...`` (one entry per job; a group job lists
    all of its jobs): sorted (rule, sorted wildcard items) pairs."""
    toks = cli_tokens(args)
    if "--target-jobs" not in toks:
        return []
    i = toks.index("--target-jobs") + 1
    entries = []
    while i < len(toks) and not toks[i].startswith("--"):
        entries.append(toks[i])
        i += 1
    return sorted((t.rulename, tuple(sorted(t.wildcards_dict.items())))
                  for t in parse_target_jobs_cli_args(entries))


def profile_groups() -> dict[str, str]:
    """rule -> group of the real profile's ``groups:``."""
    return yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text()).get("groups", {})


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
    assert jobs, "no jobs ran"
    # what each sbatch call ran: its --target-jobs (one job, or all jobs of a group job)
    submitted = [target_jobs(a) for a in sbatch]
    assert all(submitted), "an sbatch call without --target-jobs"
    flat = [j for s in submitted for j in s]
    # one submission per job or group job (retries are off): every non-local job in
    # exactly one sbatch call, the same rules with the same multiplicity, no duplicates
    assert len(flat) == len(set(flat)) == len(jobs), (sorted(flat), sorted(jobs))
    per_rule = lambda rules: pd.Series(rules).value_counts().sort_index().to_dict()  # noqa: E731
    assert per_rule([r for r, _ in flat]) == per_rule([r for r, _ in jobs])
    # ... and each submitted job's wildcard values are in the path of a benchmark of its rule
    for rule, wc in flat:
        assert any(r == rule and all(str(v) in p.split("/") or str(v) in p for _, v in wc) for r, p in jobs), (rule, wc)
    assert not {r for r, _ in flat} & LOCAL_RULES, "local rules must not be submitted"
    # the profile's groups were used: every grouped rule ran in an sbatch call whose
    # jobs all belong to its group, named after the group in the comment and log dir
    groups = profile_groups()
    assert groups, "profiles/slurm/config.yaml defines no groups"
    n_group_jobs = 0
    for args, sub in zip(sbatch, submitted):
        grp = {groups.get(r) for r, _ in sub}
        comment = args[args.index("--comment") + 1]
        if grp == {None}:
            assert len(sub) == 1 and comment.startswith(f"rule_{sub[0][0]}"), (comment, sub)
            continue
        assert len(grp) == 1 and None not in grp, f"one sbatch mixes groups/ungrouped rules: {sub}"
        (g,) = grp
        assert comment.startswith(f"rule_{g}_"), comment
        assert f"/group_{g}_" in args[args.index("--output") + 1]
        n_group_jobs += 1
    assert {groups[r] for r, _ in flat if r in groups} == set(groups.values())
    assert len(sbatch) < len(jobs) and n_group_jobs == len(set(groups.values())), \
        f"{len(sbatch)} sbatch calls for {len(jobs)} jobs, {n_group_jobs} group jobs"
    # every job ran in a job step through srun inside its allocation (not on the host);
    # inside a group job, the job-step executor starts one srun per job of the group
    stepped = {j for a in srun for j in target_jobs(a)}
    assert set(flat) <= stepped, sorted(set(flat) - stepped)
    # SLURM itself saw them all complete (MinJobAge keeps finished jobs in squeue)
    q = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], capture_output=True, text=True,
                       env=cluster.env(), timeout=30)
    states = [line.split("|") for line in q.stdout.splitlines() if "|rule_" in line]
    assert len(states) >= len(sbatch)
    assert {s for _, s, _ in states} == {"COMPLETED"}, states


def test_gpu_requested_for_training_and_inference_only(slurm_run):
    _, sbatch, srun = slurm_run
    seen = set()
    n_gpu_jobs = 0
    for args in sbatch:
        sub = target_jobs(args)
        rules = {r for r, _ in sub}
        gpu = [a for a in args if is_gpu_flag(a)]
        if rules & GPU_RULES:
            # a GPU job is never grouped (jobs side by side in a group add up their GPUs)
            assert len(sub) == 1, f"GPU rule in a group job: {sub}"
            assert gpu == ["--gpus=1"], (sub, gpu)
            seen |= rules
            n_gpu_jobs += 1
        else:
            assert gpu == [], (sub, gpu)
    assert seen == GPU_RULES, f"GPU rules not submitted: {GPU_RULES - seen}"
    # the job step inside the allocation asks for the GPU too, for the same jobs
    step_gpu = [a for a in srun if any(is_gpu_flag(x) for x in a)]
    assert len(step_gpu) == n_gpu_jobs
    assert all({r for r, _ in target_jobs(a)} <= GPU_RULES for a in step_gpu)


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
