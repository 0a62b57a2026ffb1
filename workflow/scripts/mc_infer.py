"""Rule mc_infer: MC-dropout inference of one CNN on one area (§4.3) -> the prediction rasters."""

import logging
import sys
from pathlib import Path

import torch

from vaiseg.errors import VaisegError
from vaiseg.mc_dropout import infer_area

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)

p = snakemake.params
try:
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
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
