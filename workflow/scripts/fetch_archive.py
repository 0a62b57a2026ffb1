"""Rule fetch_archive: one archive from a local path / URL (isprs) or the synthetic folder, md5-checked."""

from pathlib import Path

from vaiseg.data.archives import obtain_archive
from vaiseg.step import log_to

log_to(snakemake.log[0])

obtain_archive(
    snakemake.wildcards.key,
    snakemake.output.archive,
    source=snakemake.params.source,
    archives=snakemake.params.archives,
    # synthetic: the generator's folder, next to its md5.json (the rule's only input)
    synthetic_dir=Path(snakemake.input.md5).parent if snakemake.params.source == "synthetic" else None,
)
