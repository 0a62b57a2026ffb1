"""Rule evaluate: ISPRS metrics (§3) of one model on the validation areas -> metrics JSON + confusion CSV."""

import logging
import sys

from vaiseg.errors import VaisegError
from vaiseg.metrics import evaluate_model, write_metrics

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    result = evaluate_model(
        list(snakemake.input.pred), list(snakemake.input.eroded), list(snakemake.input.full), areas=snakemake.params.areas
    )
    result["model"] = snakemake.wildcards.model
    write_metrics(result, snakemake.output.metrics, snakemake.output.confusion)
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
