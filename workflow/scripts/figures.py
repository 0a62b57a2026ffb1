"""Rule figures: maps of one validation area (IRRG, GT, predictions, uncertainty, Fig. 6 thresholds)."""

from vaiseg.reporting.figures import map_figures
from vaiseg.step import log_to

log_to(snakemake.log[0])

map_figures(
    snakemake.params.area,
    snakemake.input.image,
    snakemake.input.labels,
    dict(zip(snakemake.params.models, snakemake.input.predictions)),
    dict(zip(snakemake.params.cnns, snakemake.input.uncertainty)),
    snakemake.input.summary,
    snakemake.input.coverage,
    {key: path for key, path in snakemake.output.items()},
    note=snakemake.params.note,
    reading=snakemake.params.fig6_reading,
)
