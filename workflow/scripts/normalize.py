"""Rule normalize: standardised 5-band image.tif, labels.tif and labels_eroded.tif of one area."""

from vaiseg.data.normalize import normalize_from_manifest
from vaiseg.step import log_to

log_to(snakemake.log[0])

normalize_from_manifest(
    snakemake.input.manifest,
    int(snakemake.wildcards.area),
    snakemake.input.stats,
    snakemake.output.image,
    snakemake.output.labels,
    snakemake.output.labels_eroded,
    max_nodata_fraction=snakemake.params.max_nodata_fraction,
    opening_size_px=snakemake.params.ndsm["opening_size_px"],
    smooth_sigma_px=snakemake.params.ndsm["smooth_sigma_px"],
)
