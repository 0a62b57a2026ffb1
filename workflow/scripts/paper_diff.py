"""Rule paper_diff: every Table 1-2 cell against the paper, qualitative findings checked.

Optional ``params.reference_dir`` (``report.reference_dir``): the default run's committed
Tables 1-2 (``table1.csv``, ``table2.csv``); every cell is also compared with them (an
absent folder or files is noted in the md, no error). Tables with ``<col>_std`` columns
(``seeds``: mean ± std) add ``ours_std`` and ``within_2std`` per cell, and
``reference_within_2std``, by which the reference verdict judges the means. With one
seed and the reference's ``block_confusions.csv``, ``input.blocks`` (this run's) gives
every cell its paired bootstrap interval against the reference.
"""

from vaiseg.reporting.paper_diff import build_paper_diff
from vaiseg.step import log_to

log_to(snakemake.log[0])

reference_dir = snakemake.params.get("reference_dir")

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
    reference_dir=reference_dir,
    blocks_csv=snakemake.input.get("blocks") or None,
    bootstrap=dict(snakemake.params.get("bootstrap") or {}),
)
