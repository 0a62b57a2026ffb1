"""Rule comparisons: paired bootstrap intervals of the paper's claims (results/tables/comparisons.csv and .md)
and the per-block confusion matrices they resample (block_confusions.csv)."""

from vaiseg.reporting.comparisons import comparisons, write_comparisons
from vaiseg.reporting.uncertainty import by_area, by_model_area
from vaiseg.step import log_to

log_to(snakemake.log[0])

p, i = snakemake.params, snakemake.input
pairs = by_model_area(i.labels, p.models, p.areas)
labels = {m: {a: pairs[m, int(a)] for a in p.areas} for m in p.models}

df = comparisons(
    labels,
    by_area(i.eroded, p.areas),
    block=int(p.block),
    samples=int(p.samples),
    confidence=float(p.confidence),
    seed=int(p.seed),
    blocks_csv=snakemake.output.blocks,
)
write_comparisons(df, snakemake.output.csv, snakemake.output.md, block=int(p.block), samples=int(p.samples), seed=int(p.seed))
