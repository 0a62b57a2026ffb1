"""Rule extract_archives: safe extraction of the members of the configured areas + manifest.json."""

from pathlib import Path

from vaiseg.data.archives import extract_archives
from vaiseg.step import log_to

log_to(snakemake.log[0])

archives = {key: Path(path) for key, path in snakemake.input.items()}
extract_archives(archives, Path(snakemake.output.manifest).parent, snakemake.params.areas)
