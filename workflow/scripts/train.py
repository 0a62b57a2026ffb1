"""Rules train_pb, train_fcn, train_fcn_mfb: train one CNN (§4.1, §4.2) with checkpoints/resume."""

import torch

from vaiseg.training import TrainSettings, train
from vaiseg.step import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
train(
    p.model,
    snakemake.input.index,
    p.data_dir,
    snakemake.output.model,
    snakemake.output.history,
    p.checkpoint_dir,
    TrainSettings(**p.settings),
    cache_dir=p.cache_dir,
    mfb_weights=snakemake.input.get("mfb"),
    stats=p.stats,
    device=p.device,
    workers=p.workers,
)
