"""The synthetic generator's code digest, computed without importing the generator.

Rule ``synthesize_archives`` takes it as a param: Snakemake does not track package code,
so without it a changed generator would leave old scenes (and everything trained on them)
in place. The Snakefile computes it at parse time, and every ``snakemake`` start parses
the Snakefile — a SLURM job starts Snakemake twice (the job and its ``srun`` step) — so
this module reads the files without importing :mod:`vaiseg.data.synthetic`, whose
imports (scipy.signal, scipy.stats, scikit-image) took ~1.7 s of each start on a 2-core
CPU, as long as the rest of the Snakefile's parse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: the generator's package folder (``vaiseg/data/synthetic``)
SYNTHETIC_DIR = Path(__file__).parent / "synthetic"


def synthetic_code_digest(folder: str | Path | None = None) -> str:
    """sha256 of the generator's source files (``folder``'s ``*.py``, in name order;
    default: :data:`SYNTHETIC_DIR`)."""
    h = hashlib.sha256()
    for f in sorted(Path(folder or SYNTHETIC_DIR).glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()
