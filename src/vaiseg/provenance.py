"""Provenance of a pipeline run and the per-rule benchmark table.

Two outputs (rules in workflow/rules/provenance.smk):

- ``results/benchmarks/rules.csv``: one row per Snakemake benchmark file
  ``results/benchmarks/<rule>/<wildcards...>.tsv`` with columns ``rule`` (str),
  ``wildcards`` (str: the path below the rule folder without ``.tsv``, e.g. ``FCN/11``;
  ``""`` for a rule without wildcards whose file is named after the rule), ``seconds``
  (float, wall-clock seconds), ``max_rss_mb`` (float, peak resident memory in MB as
  psutil reports it; NaN where Snakemake wrote ``NA``). A benchmark file with several
  repeats is reduced to the mean seconds and the largest max RSS.
- ``results/provenance.json``: package versions (``importlib.metadata``), the git
  commit of the workflow (or ``"unknown"``), the config as run, the device each CNN was
  trained on (``meta["training"]["device"]`` of its model.pt, written by
  :func:`vaiseg.training.train`), and the data source with the md5 of every archive the
  run used (the same code path for the real ISPRS zips and the synthetic ones).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .atomic import atomic_path, write_json
from .errors import DataError

log = logging.getLogger(__name__)

#: distributions whose versions are recorded (the pins of requirements.txt that matter
#: for the numbers, plus the workflow engine and this package)
PACKAGES = (
    "vaiseg", "torch", "numpy", "scipy", "rasterio", "scikit-image", "scikit-learn",
    "liblinear-official", "pandas", "matplotlib", "seaborn", "tqdm", "pyyaml",
    "snakemake", "snakemake-executor-plugin-slurm",
)
BENCHMARK_COLUMNS = ("rule", "wildcards", "seconds", "max_rss_mb")


# --------------------------------------------------------------------------- benchmarks
def read_benchmark(path: str | Path, root: str | Path) -> dict:
    """One row of the benchmark table from a Snakemake benchmark TSV.

    ``root`` is the benchmarks folder (``results/benchmarks``); the rule is the first
    folder below it and the wildcards are the rest of the path without ``.tsv``. A file
    directly in the rule folder named after the rule has no wildcards.
    """
    path, root = Path(path), Path(root)
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise DataError(path, f"benchmark file is not below {root}") from None
    if len(rel.parts) < 2 or rel.suffix != ".tsv":
        raise DataError(path, f"expected {root}/<rule>/<wildcards>.tsv")
    rule = rel.parts[0]
    wildcards = "/".join(rel.with_suffix("").parts[1:])
    if wildcards == rule:
        wildcards = ""
    try:
        df = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(path, f"not a Snakemake benchmark TSV ({e})") from None
    if "s" not in df.columns or "max_rss" not in df.columns or df.empty:
        raise DataError(path, f"not a Snakemake benchmark TSV (columns {list(df.columns)}, {len(df)} rows)")
    seconds = pd.to_numeric(df["s"], errors="coerce")
    if seconds.isna().all():
        raise DataError(path, "column s (seconds) has no number")
    rss = pd.to_numeric(df["max_rss"], errors="coerce")
    return {
        "rule": rule,
        "wildcards": wildcards,
        "seconds": float(seconds.mean()),
        "max_rss_mb": float(rss.max()) if rss.notna().any() else float("nan"),
    }


def benchmarks_table(paths, root: str | Path) -> pd.DataFrame:
    """The benchmark table (columns :data:`BENCHMARK_COLUMNS`), sorted by rule, wildcards."""
    rows = [read_benchmark(p, root) for p in paths]
    df = pd.DataFrame(rows, columns=list(BENCHMARK_COLUMNS))
    return df.sort_values(["rule", "wildcards"], kind="stable").reset_index(drop=True)


def find_benchmarks(root: str | Path) -> list[Path]:
    """Every ``*.tsv`` below ``root`` (recursively), sorted; hidden/partial files skipped."""
    root = Path(root)
    return sorted(p for p in root.rglob("*.tsv") if not p.name.startswith("."))


def write_benchmarks_table(root: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """Aggregate every benchmark TSV below ``root`` into ``out_csv`` (atomically).

    Seconds are written with 3 decimals, memory with 1. Returns the table.
    """
    paths = find_benchmarks(root)
    if not paths:
        raise DataError(root, "no benchmark files (*.tsv) found; did the pipeline run?")
    df = benchmarks_table(paths, root)
    with atomic_path(out_csv) as tmp:
        df.round({"seconds": 3, "max_rss_mb": 1}).to_csv(tmp, index=False)
    log.info("benchmarks: %d files -> %s", len(df), out_csv)
    return df


# --------------------------------------------------------------------------- provenance
def package_versions(names=PACKAGES) -> dict[str, str | None]:
    """{distribution: version or None when not installed}, plus ``python``."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: str | Path) -> dict:
    """{commit, dirty} of the git checkout holding ``repo``; ``"unknown"``/None without git."""
    def run(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        status = run("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": None}


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def training_device(model_pt: str | Path) -> dict:
    """{device, epochs_done, seconds} from a model.pt written by vaiseg.training.train."""
    import torch

    path = Path(model_pt)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise DataError(path, f"cannot read model file ({type(e).__name__}: {e})") from None
    training = obj.get("meta", {}).get("training") if isinstance(obj, dict) else None
    if not isinstance(training, dict) or "device" not in training:
        raise DataError(path, "model meta has no training.device (not written by vaiseg.training.train?)")
    return {"device": training["device"], "epochs_done": training.get("epochs_done"), "seconds": training.get("seconds")}


def collect_provenance(config: dict, models: dict, archives: dict, repo: str | Path) -> dict:
    """The provenance record (see module docstring).

    Args:
        config: the validated config as run (defaults filled in).
        models: {model name: path of its model.pt}.
        archives: {archive key: path of the zip the run extracted}.
        repo: a path inside the workflow's git checkout.
    """
    data = config.get("data", {})
    source = {"source": data.get("source")}
    if data.get("source") == "isprs":
        source["configured"] = data.get("isprs", {}).get("archives", {})
    else:
        source["synthetic"] = data.get("synthetic", {})
    source["archives"] = {
        key: {"file": Path(p).name, "md5": md5sum(p), "bytes": Path(p).stat().st_size}
        for key, p in sorted(archives.items())
    }
    return {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(repo),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
        "training": {m: training_device(p) for m, p in models.items()},
        "data": source,
        "config": config,
    }


def write_provenance(out_json: str | Path, config: dict, models: dict, archives: dict, repo: str | Path) -> dict:
    """:func:`collect_provenance` written atomically to ``out_json``; returns the record."""
    record = collect_provenance(config, models, archives, repo)
    write_json(out_json, record)
    log.info("provenance -> %s (commit %s)", out_json, record["git"]["commit"])
    return record
