"""Adapter: rule benchmarks_table -> vaiseg.provenance.write_benchmarks_table."""

from vaiseg.provenance import write_benchmarks_table
from vaiseg.step import log_to

log_to(snakemake.log[0])
write_benchmarks_table(snakemake.params.root, snakemake.output.table)
