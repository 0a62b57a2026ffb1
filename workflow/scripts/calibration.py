"""Rule calibration: ECE, NLL, Brier and reliability diagrams, MC mean vs. deterministic pass."""

from vaiseg.reporting.calibration import calibration_analysis
from vaiseg.reporting.uncertainty import by_area, by_model_area
from vaiseg.step import log_to

log_to(snakemake.log[0])
models, areas = snakemake.params.models, snakemake.params.areas

calibration_analysis(
    models,
    areas,
    by_model_area(snakemake.input.probs, models, areas),
    by_model_area(snakemake.input.probs_deterministic, models, areas),
    by_area(snakemake.input.eroded, areas),
    snakemake.output.metrics,
    snakemake.output.bins,
    snakemake.output.plot,
    n_bins=snakemake.params.bins,
)
