"""Rule evaluate: ISPRS metrics (§3) of one model on the validation areas -> metrics JSON + confusion CSV."""

from vaiseg.metrics import evaluate_model, write_metrics
from vaiseg.step import log_to

log_to(snakemake.log[0])

result = evaluate_model(
    list(snakemake.input.pred), list(snakemake.input.eroded), list(snakemake.input.full), areas=snakemake.params.areas
)
result["model"] = snakemake.wildcards.model
write_metrics(result, snakemake.output.metrics, snakemake.output.confusion)
