"""Rule history_plots: training curves of each CNN from results/models/{cnn}/history.csv."""

import logging

from vaiseg.reporting.figures import history_plots

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
models = snakemake.params.models

history_plots(dict(zip(models, snakemake.input.histories)), dict(zip(models, snakemake.output.plots)))
