"""Adapter: rule benchmarks_table -> vaiseg.provenance.write_benchmarks_table."""

import logging

from vaiseg.provenance import write_benchmarks_table

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
write_benchmarks_table(snakemake.params.root, snakemake.output.table)
