"""Rule uncertainty_metrics: uncertainty as failure detection (AUROC, AUPR, AURC, E-AURC, PAvPU)."""

from vaiseg.reporting.failure import failure_detection_analysis
from vaiseg.reporting.uncertainty import by_area, by_model_area
from vaiseg.step import log_to

log_to(snakemake.log[0])
models, areas = snakemake.params.models, snakemake.params.areas

failure_detection_analysis(
    models,
    areas,
    by_model_area(snakemake.input.probs, models, areas),
    by_model_area(snakemake.input.uncertainty, models, areas),
    by_model_area(snakemake.input.entropy, models, areas),
    by_model_area(snakemake.input.mutual_info, models, areas),
    by_model_area(snakemake.input.labels, models, areas),
    by_area(snakemake.input.eroded, areas),
    snakemake.output.metrics,
    snakemake.output.curve,
    snakemake.output.plot,
    max_pixels=snakemake.params.max_pixels,
    seed=snakemake.params.seed,
)
