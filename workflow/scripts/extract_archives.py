"""Rule extract_archives: safe extraction of the members of the configured areas + manifest.json."""

import logging
import sys
from pathlib import Path

from vaiseg.data.archives import extract_archives
from vaiseg.errors import VaisegError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    archives = {key: Path(path) for key, path in snakemake.input.items()}
    extract_archives(archives, Path(snakemake.output.manifest).parent, snakemake.params.areas)
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
