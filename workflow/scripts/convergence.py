"""Rule convergence: has every CNN (of every seed) reached its held-out plateau?"""

from vaiseg.reporting.convergence import write_convergence
from vaiseg.step import log_to

log_to(snakemake.log[0])
p = snakemake.params
write_convergence(dict(zip([tuple(r) for r in p.runs], snakemake.input.histories, strict=True)), snakemake.output.csv, snakemake.output.md)
