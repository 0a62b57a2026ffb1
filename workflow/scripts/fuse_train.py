"""Rule fuse_train: one-vs-all linear SVMs (LIBLINEAR) on the members' training-area softmax (§4.4)."""

import logging
import sys

from vaiseg.errors import VaisegError
from vaiseg.fusion import train_fusion

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

p = snakemake.params
probs, n_areas = list(snakemake.input.probs), len(p.areas)
# input.probs is member-major (see the probs input of rule fuse_train)
by_model = {m: probs[i * n_areas : (i + 1) * n_areas] for i, m in enumerate(p.members)}
try:
    model = train_fusion(by_model, list(snakemake.input.labels), n=p.samples, balanced=p.balanced, C=p.C, seed=p.seed,
                         solver=p.solver)
    model.info["train_areas"] = list(p.areas)
    model.save(snakemake.output.svm)
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
