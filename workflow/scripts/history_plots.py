"""Rule history_plots: training curves of one CNN from results/models/{cnn}/history.csv."""

import logging

from vaiseg.reporting.figures import history_plot

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

history_plot(snakemake.input.history, snakemake.output.plot, snakemake.wildcards.cnn)
