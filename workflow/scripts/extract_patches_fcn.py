"""Rule extract_patches_fcn: FCN patch index (overlap x 8 dihedral transforms, §4.2) -> results/patches/fcn.npz."""

from vaiseg.patches import extract_fcn
from vaiseg.step import log_to

log_to(snakemake.log[0])

p = snakemake.params
extract_fcn(
    p.data_dir,
    p.areas,
    snakemake.output.index,
    size=p.size,
    overlap=p.overlap,
    seed=p.seed,
    val_fraction=p.val_fraction,
)
