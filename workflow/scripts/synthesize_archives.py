"""Rule synthesize_archives: synthetic Vaihingen-like areas written as ISPRS archives."""

import logging
from pathlib import Path

from vaiseg.data.synthetic import write_archives

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

write_archives(
    Path(snakemake.output.md5).parent,
    snakemake.params.areas,
    snakemake.params.height,
    snakemake.params.width,
    snakemake.params.seed,
)
