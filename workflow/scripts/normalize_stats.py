"""Rule normalize_stats: per-band mean/std of IR, R, G, DSM, nDSM over the training areas only."""

import logging
import sys

from vaiseg.data.normalize import compute_stats
from vaiseg.errors import VaisegError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    compute_stats(
        snakemake.input.manifest,
        snakemake.params.train_areas,
        out=snakemake.output.stats,
        max_nodata_fraction=snakemake.params.max_nodata_fraction,
        opening_size_px=snakemake.params.ndsm["opening_size_px"],
        smooth_sigma_px=snakemake.params.ndsm["smooth_sigma_px"],
    )
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
