"""Rule extract_archives: safe extraction of the members of the configured areas + manifest.json."""

import logging
from pathlib import Path

from vaiseg.data.archives import extract_archives

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

archives = {key: Path(path) for key, path in snakemake.input.items()}
extract_archives(archives, Path(snakemake.output.manifest).parent, snakemake.params.areas)
