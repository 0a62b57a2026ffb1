"""Rule fetch_archive: one archive from a local path / URL (isprs) or the synthetic folder, md5-checked."""

import logging

from vaiseg.data.archives import obtain_archive

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

obtain_archive(
    snakemake.wildcards.key,
    snakemake.output.archive,
    source=snakemake.params.source,
    archives=snakemake.params.archives,
    synthetic_dir=snakemake.params.synthetic_dir,
)
