"""Rule normalize: standardised 5-band image.tif, labels.tif and labels_eroded.tif of one area."""

import logging
import sys

from vaiseg.data.normalize import normalize_from_manifest
from vaiseg.errors import VaisegError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
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
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
