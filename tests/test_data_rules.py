"""The data stage's Snakemake rules: dry-run DAG shape and a tiny real run (§3), with
archives fetched over HTTP from a server on 127.0.0.1 and from local paths.

Runs happen in a temporary working directory (``--directory``) so the repository's
results/ and resources/ are never touched; the whole DAG's dry run lives with the
end-to-end tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fake_isprs import write_fake_archives
from helpers_http import serve

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
TINY = ROOT / "tests" / "data_stage_config.yaml"


def data_targets(areas) -> list[str]:
    return [f"results/data/{a}/{f}.tif" for a in areas for f in ("image", "labels", "labels_eroded")]


def data_snakefile(workdir: Path) -> Path:
    """A Snakefile with the project's config and only the data stage (common.smk +
    data.smk, the files the real Snakefile includes), so this stage is tested on its own."""
    path = workdir / "Snakefile.data"
    path.write_text(
        f'configfile: "{ROOT / "config.yaml"}"\n\n'
        f'include: "{ROOT / "workflow/rules/common.smk"}"\n'
        f'include: "{ROOT / "workflow/rules/data.smk"}"\n'
    )
    return path


def snakemake(workdir: Path, configfile: Path, targets, *extra) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "-s", str(data_snakefile(workdir)), "--directory", str(workdir), "--configfile",
           str(configfile), "--cores", "1", *extra, *targets]  # a later --cores in extra wins
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=300)


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout[stdout.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_dry_run_synthetic(tmp_path):
    res = snakemake(tmp_path, TINY, data_targets((1, 3, 11)), "-n")
    assert res.returncode == 0, res.stderr + res.stdout
    assert job_counts(res.stdout) == {
        "synthesize_archives": 1, "fetch_archive": 4, "extract_archives": 1, "normalize_stats": 1, "normalize": 3,
    }
    assert not (tmp_path / "results").exists()


def _isprs_config(tmp_path, archives: dict, areas: dict | None = None) -> Path:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["data"]["source"] = "isprs"
    cfg["data"]["isprs"] = {"archives": archives}
    if areas is not None:
        cfg["data"]["areas"] = areas
    path = tmp_path / "isprs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fetched_keys(stdout: str) -> set[str]:
    """Archive keys in a dry run's output (fetch jobs' outputs, the extraction's inputs)."""
    return set(re.findall(r"\barchives/(\w+)\.zip\b", stdout))


@pytest.mark.parametrize(
    "areas, configured, expected",
    [
        # labelled areas only (like the paper split): the gt archive is not needed even when configured
        ({"train": [1, 3], "val": [11]}, ("top", "gt", "gt_eroded"), {"top", "gt_eroded"}),
        # the main and the eroded archive only (what many users download)
        ({"train": [1, 3], "val": [11]}, ("top", "gt_eroded"), {"top", "gt_eroded"}),
        # an ISPRS test area (benchmark split, custom areas): its full GT is only in the gt archive
        ({"train": [1, 3], "val": [2]}, ("top", "gt", "gt_eroded"), {"top", "gt", "gt_eroded"}),
        ({"train": [1, 3], "val": [11]}, ("top", "gt_eroded", "ndsm"), {"top", "gt_eroded", "ndsm"}),
    ],
)
def test_dry_run_isprs_fetches_only_needed_archives(tmp_path, areas, configured, expected):
    cfg = _isprs_config(tmp_path, {k: {"path": f"/nowhere/{k}.zip"} for k in configured}, areas=areas)
    res = snakemake(tmp_path, cfg, data_targets(areas["train"] + areas["val"]), "-n")
    assert res.returncode == 0, res.stderr + res.stdout
    counts = job_counts(res.stdout)
    assert counts["fetch_archive"] == len(expected) and "synthesize_archives" not in counts
    assert fetched_keys(res.stdout) == expected


@pytest.mark.slow
def test_isprs_test_area_without_gt_archive_fails_with_instructions(tmp_path):
    """A test area (its full GT is only in the COMPLETE archive) with no gt archive
    configured: the DAG asks for it, and its fetch says how to get it."""
    paths = write_fake_archives(tmp_path / "download", areas=(1, 3, 2), with_gt=False, participants=(1, 3))
    md5s = json.loads((tmp_path / "download" / "md5.json").read_text())
    cfg = _isprs_config(tmp_path, {k: {"path": str(p), "md5": md5s[k]} for k, p in paths.items()},
                        areas={"train": [1, 3], "val": [2]})
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, cfg, data_targets((2,)), "--keep-going")
    assert res.returncode != 0
    logs = [p.read_text() for p in work.rglob("fetch_archive/gt.log")]
    assert logs, res.stderr[-3000:]
    log = logs[0] + res.stderr
    assert "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip" in log
    assert "data.isprs.archives.gt.path" in log and "isprs.org" in log
    assert "Traceback" not in res.stderr
    assert not list(work.rglob("manifest.json"))


@pytest.mark.slow
def test_real_run_on_fake_isprs_archives(tmp_path):
    # the main and the eroded archive only (no ..._ground_truth_COMPLETE.zip): the full GT
    # of the labelled areas comes from gts_for_participants/ of the main archive
    paths = write_fake_archives(tmp_path / "download", areas=(1, 3, 11), with_ndsm=True, with_gt=False,
                                participants=(1, 3, 11))
    md5s = json.loads((tmp_path / "download" / "md5.json").read_text())
    served = {f"/isprs/{p.name}": p.read_bytes() for k, p in paths.items() if k in ("top", "gt_eroded")}
    with serve(served) as (url, log):
        # top and gt_eroded over HTTP from the test's server, ndsm from a local path
        archives = {k: {"url": f"{url}/isprs/{p.name}"} if k in ("top", "gt_eroded") else {"path": str(p)}
                    for k, p in paths.items()}
        for k in archives:
            archives[k]["md5"] = md5s[k]
        cfg = _isprs_config(tmp_path, archives)
        work = tmp_path / "work"
        work.mkdir()
        res = snakemake(work, cfg, data_targets((11,)), "--cores", "2")  # the val area only: stats still need 1, 3
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p for p, _ in log.requests) == sorted(served)
    stats = json.loads((work / "results/data/stats.json").read_text())
    assert stats["areas"] == [1, 3] and stats["ndsm"] == "supplied"
    assert all((work / t).is_file() for t in data_targets((11,)))
    assert not (work / "results/data/1").exists()
    manifest = json.loads(next(work.rglob("extracted/manifest.json")).read_text())
    assert all("gts_for_participants/" in manifest[a]["gt"] for a in ("1", "3", "11"))
    assert "car" in (work / "logs/normalize/11.log").read_text()


@pytest.mark.slow
def test_missing_archive_source_fails_with_instructions(tmp_path):
    paths = write_fake_archives(tmp_path / "download", areas=(1, 3, 11))
    cfg = _isprs_config(tmp_path, {"top": {"path": str(paths["top"])}, "gt": {"path": str(paths["gt"])},
                                   "gt_eroded": {"path": None, "url": None}})
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, cfg, ["resources/archives/gt_eroded.zip"])
    assert res.returncode != 0
    log = (work / "logs/fetch_archive/gt_eroded.log").read_text() + res.stderr
    assert "data.isprs.archives.gt_eroded.path" in log and "isprs.org" in log
    assert "Traceback" not in res.stderr  # a message, not a Python traceback
    assert not (work / "resources/archives/gt_eroded.zip").exists()
