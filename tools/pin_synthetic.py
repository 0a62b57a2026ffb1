"""Regenerate tests/synthetic_digests.json: the sha256 of every array of the pinned
synthetic scenes. Run it deliberately after a change of the generator (and say why in
the commit); a refactor must leave the file unchanged.

    .venv/bin/python tools/pin_synthetic.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vaiseg.data.synthetic import generate_scene

#: (area, height, width, seed) of the pinned scenes: the tiny test config's two areas
PINNED = ((3, 192, 192, 14), (11, 192, 192, 14))
OUT = Path(__file__).resolve().parents[1] / "tests" / "synthetic_digests.json"


def digests(args) -> dict[str, str]:
    s = generate_scene(*args)
    return {f: hashlib.sha256(np.ascontiguousarray(getattr(s, f)).tobytes()).hexdigest() for f in ("irrg", "dsm", "ndsm", "labels")}


if __name__ == "__main__":
    OUT.write_text(json.dumps([{"args": list(a), "sha256": digests(a)} for a in PINNED], indent=1) + "\n")
    print(f"wrote {OUT}")
