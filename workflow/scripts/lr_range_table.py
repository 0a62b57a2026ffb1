"""Rule lr_range_table: the range tests' suggested rates beside the configured ones."""

from vaiseg.lr_range import write_table
from vaiseg.step import log_to

log_to(snakemake.log[0])
write_table(snakemake.input.summaries, snakemake.output.csv, snakemake.output.md)
