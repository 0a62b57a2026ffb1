"""Rule fuse_apply: apply a fusion's SVMs to every area (§4.4) -> each area's probs,
scores, labels rasters (one job per fusion)."""

from pathlib import Path

from vaiseg.fusion import fuse_areas
from vaiseg.step import log_to

log_to(snakemake.log[0])

p = snakemake.params
areas, k = list(p.areas), len(p.members)
probs = list(snakemake.input.probs)  # area-major: every member of area 1, then area 2, ...
fuse_areas(
    snakemake.input.svm,
    {a: probs[i * k : (i + 1) * k] for i, a in enumerate(areas)},
    {a: Path(f).parent for a, f in zip(areas, snakemake.output.probs, strict=True)},
)
