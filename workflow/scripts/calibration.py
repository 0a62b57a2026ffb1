"""Rule calibration: ECE, NLL, Brier and reliability diagrams, MC mean vs. deterministic pass."""

import logging

from vaiseg.reporting.calibration import calibration_analysis

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

calibration_analysis(
    snakemake.params.models,
    snakemake.params.areas,
    snakemake.params.pred_dir,
    snakemake.params.data_dir,
    snakemake.output.metrics,
    snakemake.output.bins,
    snakemake.output.plot,
    n_bins=snakemake.params.bins,
)
