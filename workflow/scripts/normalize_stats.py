"""Rule normalize_stats: per-band mean/std of IR, R, G, DSM, nDSM over the training areas only."""

from vaiseg.data.normalize import compute_stats
from vaiseg.step import log_to

log_to(snakemake.log[0])

compute_stats(
    snakemake.input.manifest,
    snakemake.params.train_areas,
    out=snakemake.output.stats,
    max_nodata_fraction=snakemake.params.max_nodata_fraction,
    opening_size_px=snakemake.params.ndsm["opening_size_px"],
    smooth_sigma_px=snakemake.params.ndsm["smooth_sigma_px"],
)
