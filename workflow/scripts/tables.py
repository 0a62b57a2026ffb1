"""Rule tables: Tables 1-2 (csv, md, tex) and the extended tables from results/metrics/*.json."""

from vaiseg.reporting.tables import build_tables
from vaiseg.step import log_to

log_to(snakemake.log[0])

build_tables(
    dict(zip(snakemake.params.models, snakemake.input.metrics)),
    {key: path for key, path in snakemake.output.items()},
)
