"""Rule paper_diff: every Table 1-2 cell against the paper, qualitative findings checked."""

import logging

from vaiseg.reporting.paper_diff import build_paper_diff

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

build_paper_diff(
    [snakemake.input.table1, snakemake.input.table2],
    snakemake.params.paper_dir,
    snakemake.output.md,
    snakemake.output.csv,
    source=snakemake.params.source,
    curve_csv=snakemake.input.curve,
    summary_json=snakemake.input.summary,
    coverage_csv=snakemake.input.coverage,
)
