"""Rule mc_infer: MC-dropout inference of one CNN on one area (§4.3) -> the prediction rasters."""

from pathlib import Path

import torch

from vaiseg.mc_dropout import infer_area
from vaiseg.step import keep_freed_memory, log_to

log_to(snakemake.log[0])
keep_freed_memory()  # reuse freed tile temporaries instead of page-faulting them in again
torch.set_num_threads(snakemake.threads)

p = snakemake.params
infer_area(
    snakemake.input.model,
    snakemake.input.image,
    Path(snakemake.output.probs).parent,
    T=p.T,
    seed=p.seed,
    tile_size=p.tile_size,
    device=p.device,
    pb_border=p.pb_border,
    shared_trunk=p.shared_trunk,
    pb_fft_block=p.pb_fft_block,
)
