"""Rule seed_tables: Tables 1-2 as mean ± std over seeds (config ``seeds``), from the
per-seed tables written by rule ``tables`` under ``results/seeds/<seed>/tables/``.

Interface (the rule matches it):

- ``input.table1``, ``input.table2``, ``input.table1_extended``, ``input.table2_extended``:
  lists of the per-seed CSVs (``table1.csv``, ``table2.csv``, ``table1_extended.csv``,
  ``table2_extended.csv``), one per seed, all in the order of ``params.seeds``;
- ``params.seeds``: the seeds (ints), in that order;
- ``output.table1_csv``, ``table1_md``, ``table1_tex``, ``table1_extended`` and the same for
  ``table2`` (the keys of rule ``tables``' outputs): the aggregated tables, each value
  column ``<col>`` (mean) followed by ``<col>_std`` (sample std, ddof=1), then
  ``n_seeds``; md/tex cells read "mean ± std";
- ``log[0]``: the log file.

The science is :func:`vaiseg.reporting.tables.write_seed_tables`.
"""

from vaiseg.errors import DataError
from vaiseg.reporting.tables import write_seed_tables
from vaiseg.step import log_to

log_to(snakemake.log[0])

seeds = [int(s) for s in snakemake.params.seeds]
keys = ("table1", "table2", "table1_extended", "table2_extended")


def _paths(key: str) -> list[str]:
    """The input list of ``key`` (a single file, a str, when the rule gave one path)."""
    value = snakemake.input[key]
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


inputs = {k: _paths(k) for k in keys}
for k, paths in inputs.items():
    if len(paths) != len(seeds):
        raise DataError(None, f"seed_tables: {len(paths)} input.{k} files for {len(seeds)} seeds {seeds}")

write_seed_tables(
    {seed: {k: inputs[k][i] for k in keys} for i, seed in enumerate(seeds)},
    {key: path for key, path in snakemake.output.items()},
)
