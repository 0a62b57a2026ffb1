"""Rule mc_infer: MC-dropout inference of one CNN on every area it is asked for (§4.3) ->
each area's prediction rasters (one job per CNN; finished areas are cached, see
vaiseg.mc_dropout.infer_areas)."""

from pathlib import Path

import torch

from vaiseg.mc_dropout import infer_areas
from vaiseg.step import keep_freed_memory, log_to

log_to(snakemake.log[0])
keep_freed_memory()  # reuse freed tile temporaries instead of page-faulting them in again
torch.set_num_threads(snakemake.threads)

p = snakemake.params
areas = list(p.areas)
infer_areas(
    snakemake.input.model,
    dict(zip(areas, snakemake.input.images, strict=True)),
    {a: Path(f).parent for a, f in zip(areas, snakemake.output.probs, strict=True)},
    cache_dir=p.cache_dir,
    T=p.T,
    seed=p.seed,
    tile_size=p.tile_size,
    device=p.device,
    pb_border=p.pb_border,
    shared_trunk=p.shared_trunk,
    pb_fft_block=p.pb_fft_block,
)
