"""Rule extract_patches_pb: class-balanced PB patch index (§4.1) -> results/patches/pb.npz."""

from vaiseg.patches import extract_pb
from vaiseg.step import log_to

log_to(snakemake.log[0])

p = snakemake.params
extract_pb(
    p.data_dir,
    p.areas,
    snakemake.output.index,
    per_class=p.per_class,
    car_rotations=p.car_rotations,
    seed=p.seed,
    val_fraction=p.val_fraction,
)
