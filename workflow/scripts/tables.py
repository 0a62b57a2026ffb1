"""Rule tables: Tables 1-2 (csv, md, tex) and the extended tables from results/metrics/*.json."""

import logging

from vaiseg.reporting.tables import build_tables

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

build_tables(
    dict(zip(snakemake.params.models, snakemake.input.metrics)),
    {key: path for key, path in snakemake.output.items()},
)
