"""Rule synthesize_archives: synthetic Vaihingen-like areas written as ISPRS archives."""

from pathlib import Path

from vaiseg.data.synthetic import write_archives
from vaiseg.step import log_to

log_to(snakemake.log[0])

write_archives(
    Path(snakemake.output.md5).parent,
    snakemake.params.areas,
    snakemake.params.height,
    snakemake.params.width,
    snakemake.params.seed,
)
