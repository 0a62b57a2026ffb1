"""Adapter: rule provenance -> vaiseg.provenance.write_provenance."""

import logging

from vaiseg.provenance import write_provenance

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
p = snakemake.params
write_provenance(
    snakemake.output.provenance,
    config=dict(p.config),
    models=dict(zip(p.models, snakemake.input.models)),
    archives=dict(zip(p.archive_keys, snakemake.input.archives)),
    repo=p.repo,
)
