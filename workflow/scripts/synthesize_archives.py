"""Rule synthesize_archives: synthetic Vaihingen-like areas written as ISPRS archives."""

import logging
import sys
from pathlib import Path

from vaiseg.data.synthetic import write_archives
from vaiseg.errors import VaisegError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    write_archives(
        Path(snakemake.output.md5).parent,
        snakemake.params.areas,
        snakemake.params.height,
        snakemake.params.width,
        snakemake.params.seed,
    )
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
