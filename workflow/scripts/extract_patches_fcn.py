"""Rule extract_patches_fcn: FCN patch index (overlap x 8 dihedral transforms, §4.2) -> results/patches/fcn.npz."""

import logging

from vaiseg.patches import extract_fcn

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

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
