"""Rule mfb_weights: median-frequency class weights (§4.2 eq. 2) -> results/models/mfb_weights.json."""

from vaiseg.mfb import compute_mfb_weights
from vaiseg.step import log_to

log_to(snakemake.log[0])

compute_mfb_weights(list(snakemake.input.labels), snakemake.output.weights, median_over=snakemake.params.median_over)
