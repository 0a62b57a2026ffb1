"""Rule history_plots: training curves of each CNN from results/models/{cnn}/history.csv."""

from vaiseg.reporting.figures import history_plots
from vaiseg.step import log_to

log_to(snakemake.log[0])
models = snakemake.params.models

history_plots(dict(zip(models, snakemake.input.histories)), dict(zip(models, snakemake.output.plots)))
