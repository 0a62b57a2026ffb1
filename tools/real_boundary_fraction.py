"""The eroded-boundary fraction of the real ISPRS crops, each also at Vaihingen's 9 cm
(issue 11's boundary goal; docs/realism.md, "the boundary gap").

    .venv/bin/python tools/real_boundary_fraction.py [--dir ../shared/real_samples] \
        [--synthetic results/realism/summary.json]

For each crop of ``--dir`` (the mmseg fixtures of ../shared/real_samples: Vaihingen area 1
at 9 cm, Potsdam 2_10 at 5 cm) prints the class mix, the fraction as published (its
label PNG's ignored share), and the fraction by this project's erosion rule at its own
pixel size and at 9 cm (:func:`vaiseg.realism.measures.boundary_fraction_at_pixel_size`).
``--synthetic`` adds the synthetic areas' fraction from a realism run's summary.json.
Only the labels are read (the Potsdam image is R-G-B, not IR-R-G).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vaiseg.classes import KEYS, SCORED
from vaiseg.errors import DataError
from vaiseg.realism.measures import PIXEL_SIZE_M, boundary_fraction, boundary_fraction_at_pixel_size, boundary_rates
from vaiseg.realism.reference import load_mmseg_crop

#: (image, label, pixel size in metres) of the crops in ../shared/real_samples
CROPS = {
    "Vaihingen area 1": ("vaihingen_area1_0_0_512_irrg.png", "vaihingen_area1_0_0_512_label.png", 0.09),
    "Potsdam 2_10": ("potsdam_2_10_0_0_512_rgb.png", "potsdam_2_10_0_0_512_label.png", 0.05),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "real_samples")
    ap.add_argument("--synthetic", type=Path, help="a realism run's summary.json")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        print(f"{args.dir}: no such folder (the real ISPRS crops; give --dir)", file=sys.stderr)
        return 2
    print(f"| crop | pixel size | {' | '.join(KEYS[c] for c in SCORED)} | published | this rule | "
          f"this rule at {PIXEL_SIZE_M * 100:g} cm |")
    print("|---|---|" + "---:|" * (len(SCORED) + 3))
    try:
        for name, (img, lab, px) in CROPS.items():
            labels = load_mmseg_crop(args.dir / img, args.dir / lab).labels
            mix, _ = boundary_rates(labels)
            own, at9 = boundary_fraction_at_pixel_size(labels, px, px), boundary_fraction_at_pixel_size(labels, px)
            print(f"| {name} | {px * 100:g} cm | " + " | ".join(f"{100 * mix[c]:.1f} %" for c in SCORED)
                  + f" | {boundary_fraction(labels):.3f} | {own:.3f} | {at9:.3f} |")
    except DataError as e:
        print(e, file=sys.stderr)
        return 2
    if args.synthetic:
        s = json.loads(args.synthetic.read_text())
        print(f"\nsynthetic areas ({args.synthetic}): {s['boundary_fraction_synthetic']:.3f} (this rule, 9 cm)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
