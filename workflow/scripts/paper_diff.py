"""Rule paper_diff: every Table 1-2 cell against the paper, qualitative findings checked."""

from vaiseg.reporting.paper_diff import build_paper_diff
from vaiseg.step import log_to

log_to(snakemake.log[0])

build_paper_diff(
    [snakemake.input.table1, snakemake.input.table2],
    snakemake.params.paper_dir,
    snakemake.output.md,
    snakemake.output.csv,
    source=snakemake.params.source,
    curve_csv=snakemake.input.curve,
    summary_json=snakemake.input.summary,
    coverage_csv=snakemake.input.coverage,
    fig6_reading=snakemake.params.fig6_reading,
)
