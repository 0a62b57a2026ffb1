"""Regenerate tests/synthetic_digests.json: the sha256 of the integer arrays of the pinned
synthetic scenes and the block means of their float arrays (DSM, nDSM). Run it
deliberately after a change of the generator (and say why in the commit); a refactor must
leave the file unchanged.

    .venv/bin/python tools/pin_synthetic.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vaiseg.data.synthetic import generate_scene
from vaiseg.data.synthetic.heights import block_means

#: (area, height, width, seed) of the pinned scenes: the tiny test config's two areas
PINNED = ((3, 192, 192, 14), (11, 192, 192, 14))
OUT = Path(__file__).resolve().parents[1] / "tests" / "synthetic_digests.json"


#: integer arrays: pinned bit for bit
EXACT = ("irrg", "labels")
#: float arrays: pinned by their BLOCK x BLOCK block means (metres, 4 decimals). Their last
#: bits differ between CPUs: the DSM and nDSM of an Intel Xeon (AVX-512) and an AMD EPYC
#: (AVX2) differed in the last bits while the uint8 arrays were identical (most likely
#: numpy's float64 transcendental functions, which take other code paths with AVX-512).
FLOATS = ("dsm", "ndsm")
BLOCK = 16


def pin(args) -> dict:
    s = generate_scene(*args)
    return {
        "args": list(args),
        "sha256": {f: hashlib.sha256(np.ascontiguousarray(getattr(s, f)).tobytes()).hexdigest() for f in EXACT},
        "block": BLOCK,
        "block_means": {f: np.round(block_means(getattr(s, f), BLOCK), 4).tolist() for f in FLOATS},
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps([pin(a) for a in PINNED]) + "\n")
    print(f"wrote {OUT}")
