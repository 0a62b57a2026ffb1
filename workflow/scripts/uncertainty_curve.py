"""Rule uncertainty_curve: accuracy vs. uncertainty threshold, coverage at 97.5/95/90 % (§5, Figs. 6-7)."""

from vaiseg.reporting.uncertainty import by_area, by_model_area, uncertainty_analysis
from vaiseg.step import log_to

log_to(snakemake.log[0])
models, areas = snakemake.params.models, snakemake.params.areas

uncertainty_analysis(
    models,
    areas,
    by_model_area(snakemake.input.uncertainty, models, areas),
    by_model_area(snakemake.input.labels, models, areas),
    by_area(snakemake.input.eroded, areas),
    by_area(snakemake.input.full, areas),
    snakemake.params.paper_dir,
    snakemake.output.curve,
    snakemake.output.plot,
    snakemake.output.coverage,
    snakemake.output.summary,
    n_thresholds=snakemake.params.thresholds,
    figure_area=snakemake.params.figure_area,
)
