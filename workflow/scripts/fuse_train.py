"""Rule fuse_train: one-vs-all linear SVMs (LIBLINEAR) on the members' training-area softmax (§4.4)."""

from vaiseg.fusion import train_fusion
from vaiseg.step import log_to

log_to(snakemake.log[0])

p = snakemake.params
probs, n_areas = list(snakemake.input.probs), len(p.areas)
# input.probs is member-major (see the probs input of rule fuse_train)
by_model = {m: probs[i * n_areas : (i + 1) * n_areas] for i, m in enumerate(p.members)}
model = train_fusion(by_model, list(snakemake.input.labels), n=p.samples, balanced=p.balanced, C=p.C, seed=p.seed,
                     solver=p.solver)
model.info["train_areas"] = list(p.areas)
model.save(snakemake.output.svm)
