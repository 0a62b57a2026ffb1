"""Rule lr_range_test: one CNN's learning-rate range test (vaiseg.lr_range)."""

import torch

from vaiseg.lr_range import lr_range_test, write_outputs
from vaiseg.step import log_to
from vaiseg.training import TrainSettings

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
rows, summary = lr_range_test(
    snakemake.wildcards.model,
    snakemake.input.index,
    p.data_dir,
    TrainSettings(**p.settings),
    cache_dir=p.cache_dir,
    mfb_weights=snakemake.input.get("mfb"),
    device=p.device,
    workers=p.workers,
    **p.test,
)
out = snakemake.output
write_outputs(rows, summary, out.curve, out.summary, out.plot)
