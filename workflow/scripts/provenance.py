"""Adapter: rule provenance -> vaiseg.provenance.write_provenance."""

from vaiseg.provenance import write_provenance
from vaiseg.step import log_to

log_to(snakemake.log[0])
p = snakemake.params
write_provenance(
    snakemake.output.provenance,
    config=dict(p.config),
    models=dict(zip(p.models, snakemake.input.models)),
    archives=dict(zip(p.archive_keys, snakemake.input.archives)),
    repo=p.repo,
)
