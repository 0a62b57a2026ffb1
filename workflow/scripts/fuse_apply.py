"""Rule fuse_apply: apply a fusion's SVMs to one area (§4.4) -> probs, scores, labels rasters."""

import logging
import sys
from pathlib import Path

from vaiseg.errors import VaisegError
from vaiseg.fusion import fuse_area

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

try:
    fuse_area(snakemake.input.svm, list(snakemake.input.probs), Path(snakemake.output.probs).parent)
except VaisegError as e:  # a clear message, not a traceback
    logging.error("%s", e)
    sys.exit(f"error: {e}")
