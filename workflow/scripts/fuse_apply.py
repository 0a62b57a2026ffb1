"""Rule fuse_apply: apply a fusion's SVMs to one area (§4.4) -> probs, scores, labels rasters."""

from pathlib import Path

from vaiseg.fusion import fuse_area
from vaiseg.step import log_to

log_to(snakemake.log[0])

fuse_area(snakemake.input.svm, list(snakemake.input.probs), Path(snakemake.output.probs).parent)
