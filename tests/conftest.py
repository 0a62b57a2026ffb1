"""Shared test fixtures. Tests run on 2 CPU cores: keep tensors tiny."""

from __future__ import annotations

import ast
import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from vaiseg.classes import CAR, IGNORE
from vaiseg.mfb import compute_mfb_weights
from vaiseg.patches import extract_fcn, extract_pb
from vaiseg.raster import write_raster

ROOT = Path(__file__).resolve().parents[1]


# --- two pytest-xdist workers (pyproject: ``-n 2``). The SLURM test mostly waits for the
# --- executor's status checks, so the other worker runs the CPU-bound tests meanwhile.
#: the tests that must share one worker: the SLURM tests (one cluster per machine; their
#: run is compared with the local tiny run) and every test using the tiny run, so that
#: the run happens once per session
TINY_RUN_GROUP = "tiny_run"


@functools.lru_cache(maxsize=None)
def _tests_using_tiny_run(path: str) -> frozenset[str]:
    """Names of the test functions in ``path`` that take the ``tiny_local_run`` fixture."""
    tree = ast.parse(Path(path).read_text())
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef)
                     and "tiny_local_run" in [a.arg for a in n.args.args])


def _scope(nodeid: str) -> str:
    """Work unit of a test: ``TINY_RUN_GROUP`` for the SLURM tests and the tests taking
    ``tiny_local_run`` (found in the test file's source: the xdist controller sees node
    ids only), else the test itself."""
    file, _, name = nodeid.partition("::")
    path = ROOT / file
    if path.name == "test_slurm.py" or (path.is_file() and name.split("[")[0] in _tests_using_tiny_run(str(path))):
        return TINY_RUN_GROUP
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    """Like xdist's ``--dist load``, but ``TINY_RUN_GROUP`` is one work unit (xdist's own
    ``loadgroup`` does not group under pytest 9: it renames ``item._nodeid``, which
    pytest 9 no longer reads)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TinyRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return TinyRunScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The SLURM tests first: the first work unit goes out first, and their run starts the
    SLURM jobs and computes the local tiny run while it waits for them
    (tests/test_slurm.py ``slurm_run``)."""
    items[:] = sorted(items, key=lambda i: i.path.name != "test_slurm.py")  # stable


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


# --- the tiny end-to-end run (tests/config/tiny.yaml), shared by the pipeline, report
# --- and SLURM tests. Runs in a temporary working directory: the repository is used
# --- only through --snakefile, so nothing is written into the checkout.
TINY_CONFIG = ROOT / "tests" / "config" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def write_tiny_config(workdir: Path, **overrides) -> Path:
    """tests/config/tiny.yaml (plus top-level ``overrides``) -> workdir/tiny.yaml. Nothing
    in it points outside the project: the paper's numbers come from the shipped paper/."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg.update(overrides)
    out = Path(workdir) / "tiny.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


#: what a user's clone holds that a run needs (no ../shared: a user never has it)
SNAPSHOT_PATHS = ("Snakefile", "config.yaml", "config", "paper", "workflow", "src", "envs", "profiles")


@functools.lru_cache(maxsize=None)
def repo_snapshot() -> Path:
    """A copy of the workflow and the package, taken once per test session.

    End-to-end runs (local and SLURM, compared with each other) use it, so edits to the
    checkout while a long test runs cannot make two runs of one session use different
    code. ``PYTHONPATH`` points the runs at the snapshot's ``src``. The copy sits alone in
    a fresh temporary folder (``<tmp>/project``, nothing beside it), like a user's clone
    without ``../shared``: every end-to-end run checks that nothing it needs comes from
    there. Removed at exit.
    """
    parent = Path(tempfile.mkdtemp(prefix="vaiseg-snapshot-"))
    atexit.register(shutil.rmtree, parent, True)
    return copy_project(parent / "project")


def copy_project(dest: Path, paths=SNAPSHOT_PATHS) -> Path:
    """``paths`` of the checkout copied into the new folder ``dest`` (caches left out)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake")
    for name in paths:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def start_snakemake_tiny(workdir: Path, *args: str, env: dict | None = None,
                         config: dict | None = None) -> subprocess.Popen:
    """Start snakemake (from :func:`repo_snapshot`) on the tiny config (plus top-level
    ``config`` overrides) in ``workdir``, output to workdir/snakemake.out; returns the
    running process (see :func:`snakemake_tiny`)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_tiny_config(workdir, **(config or {}))
    snap = repo_snapshot()
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(snap / "src"), *filter(None, [env.get("PYTHONPATH")])])
    # the targets/options first: --configfile takes every word after it
    cmd = [*SNAKEMAKE, "--snakefile", str(snap / "Snakefile"), "--directory", str(workdir), *args,
           "--configfile", str(cfg)]
    with open(workdir / "snakemake.out", "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)


def snakemake_tiny(workdir: Path, *args: str, env: dict | None = None, timeout: float = 3600,
                   config: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake (from :func:`repo_snapshot`) on the tiny config (plus top-level
    ``config`` overrides) in ``workdir``; output captured in workdir/snakemake.out."""
    proc = start_snakemake_tiny(workdir, *args, env=env, config=config)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode)


def snakemake_log_tail(workdir: Path, n: int = 60) -> str:
    return "\n".join((Path(workdir) / "snakemake.out").read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="session")
def tiny_local_run(tmp_path_factory) -> Path:
    """The whole DAG on tests/config/tiny.yaml, run locally (profiles/default: all cores,
    gpu=1) once per session. Returns the working directory holding results/."""
    workdir = tmp_path_factory.mktemp("tiny_local")
    r = snakemake_tiny(workdir)
    assert r.returncode == 0, f"local tiny run failed:\n{snakemake_log_tail(workdir)}"
    return workdir


def _scene(h, w, seed):
    """Blocky classes 0..3 + clutter + cars; image bands = noisy class-dependent means."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, size=(h // 16 + 1, w // 16 + 1))
    full = np.kron(coarse, np.ones((16, 16), dtype=np.int64))[:h, :w].astype(np.uint8)
    full[4:14, 4:14] = 5
    for _ in range(5):
        r, c = rng.integers(0, h - 8), rng.integers(0, w - 14)
        full[r : r + 7, c : c + 13] = CAR
    means = rng.normal(size=(6, 5)) * 2
    image = (means[full].transpose(2, 0, 1) + rng.normal(size=(5, h, w))).astype(np.float32)
    edges = ndimage.grey_dilation(full, size=3) != ndimage.grey_erosion(full, size=3)
    eroded = full.copy()
    eroded[edges] = IGNORE
    return image, full, eroded


@pytest.fixture(scope="session")
def tiny_training_data(tmp_path_factory):
    """Two 96x96 areas of blocky classes (:func:`_scene`) with their FCN and PB patch
    indexes and MFB weights (training and learning-rate range tests)."""
    root = tmp_path_factory.mktemp("train")
    d = root / "data"
    for a, seed in ((1, 0), (3, 1)):
        image, full, eroded = _scene(96, 96, seed)
        write_raster(d / str(a) / "image.tif", image)
        write_raster(d / str(a) / "labels.tif", full)
        write_raster(d / str(a) / "labels_eroded.tif", eroded)
    extract_fcn(d, [1, 3], root / "fcn.npz", size=32, overlap=0.5, seed=0, val_fraction=0.2)
    extract_pb(d, [1, 3], root / "pb.npz", per_class=12, car_rotations=1, seed=0, val_fraction=0.2)
    compute_mfb_weights([d / "1" / "labels.tif", d / "3" / "labels.tif"], root / "mfb.json")
    return root
