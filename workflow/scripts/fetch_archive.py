"""Rule fetch_archive: one archive from a local path / URL (isprs) or the synthetic folder, md5-checked."""

import logging
import sys
from pathlib import Path

from vaiseg.data.archives import obtain_archive
from vaiseg.errors import VaisegError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    obtain_archive(
        snakemake.wildcards.key,
        snakemake.output.archive,
        source=snakemake.params.source,
        archives=snakemake.params.archives,
        # synthetic: the generator's folder, next to its md5.json (the rule's only input)
        synthetic_dir=Path(snakemake.input.md5).parent if snakemake.params.source == "synthetic" else None,
    )
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
