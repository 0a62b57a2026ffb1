"""Rule mfb_weights: median-frequency class weights (§4.2 eq. 2) -> results/models/mfb_weights.json."""

import logging

from vaiseg.mfb import compute_mfb_weights

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

compute_mfb_weights(list(snakemake.input.labels), snakemake.output.weights)
