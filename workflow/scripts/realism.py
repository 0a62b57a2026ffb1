"""Rule realism: the realism yardstick and the sim-to-real check (vaiseg.realism.run)."""

from pathlib import Path

import torch

from vaiseg.realism.run import realism_target
from vaiseg.step import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p, i = snakemake.params, snakemake.input
realism_target(
    manifest=i.manifest,
    synthetic_areas=p.synthetic_areas,
    validation_areas=p.validation_areas,
    model=list(i.models),
    stats=i.stats,
    out_dir=Path(snakemake.output.summary).parent,
    crop=p.crop,
    reference_manifest=i.get("reference"),
    reference_areas=p.reference_areas,
    T=p.T,
    seeds=p.seeds,
    tile_size=p.tile_size,
    device=p.device,
)
