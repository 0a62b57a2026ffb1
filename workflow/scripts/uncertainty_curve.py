"""Rule uncertainty_curve: accuracy vs. uncertainty threshold, coverage at 97.5/95/90 % (§5, Figs. 6-7)."""

import logging

from vaiseg.reporting.uncertainty import uncertainty_analysis

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

uncertainty_analysis(
    snakemake.params.models,
    snakemake.params.areas,
    snakemake.params.pred_dir,
    snakemake.params.data_dir,
    snakemake.params.paper_dir,
    snakemake.output.curve,
    snakemake.output.plot,
    snakemake.output.coverage,
    snakemake.output.summary,
    n_thresholds=snakemake.params.thresholds,
)
