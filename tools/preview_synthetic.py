"""Preview synthetic Vaihingen-like scenes as PNGs (for eyeballing realism).

    .venv/bin/python tools/preview_synthetic.py --areas 1 30 --size 512 512 --out /tmp/preview

writes <out>/area<N>_{irrg,labels,ndsm}.png (nDSM scaled 0-20 m to 0-255) and, with
``--real PNG``, band statistics per class of the synthetic areas next to those of a real
ISPRS crop and its mmseg-convention label (see ../shared/real_samples/README.md), lit
(grey mean >= 60) and shadowed (< 45) pixels apart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from skimage.io import imread, imsave

from vaiseg.classes import CLASSES, index_to_rgb
from vaiseg.data.synthetic import class_frequencies, generate_scene


def band_stats(irrg: np.ndarray, labels: np.ndarray) -> dict[str, str]:
    """irrg (N, 3) uint8, labels (N,) class indices -> {class key: 'lit (..) shadow (..)'}."""
    grey = irrg.astype(float).mean(axis=1)
    out = {}
    for c in CLASSES:
        m = labels == c.index
        if not m.any():
            continue
        parts = []
        for name, sel in (("lit", grey >= 60), ("shadow", grey < 45)):
            mm = m & sel
            mean = irrg[mm].mean(axis=0).round() if mm.any() else "-"
            parts.append(f"{name} {mm.sum() / m.sum():.2f} {mean}")
        out[c.key] = "  ".join(parts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--areas", type=int, nargs="+", default=[1])
    ap.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=2016)
    ap.add_argument("--out", type=Path, default=Path("/tmp/vaiseg_preview"))
    ap.add_argument("--real", type=Path, help="real IRRG crop (its _label.png next to it, mmseg convention)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pix, labs = [], []
    for area in args.areas:
        t = time.perf_counter()
        s = generate_scene(area, *args.size, args.seed)
        dt = time.perf_counter() - t
        freq = class_frequencies(s.labels)
        print(f"area {area}: {dt:.1f} s  " + "  ".join(f"{c.key} {100 * freq[c.name]:.1f}%" for c in CLASSES))
        imsave(args.out / f"area{area}_irrg.png", np.moveaxis(s.irrg, 0, -1), check_contrast=False)
        imsave(args.out / f"area{area}_labels.png", index_to_rgb(s.labels), check_contrast=False)
        imsave(args.out / f"area{area}_ndsm.png", (np.clip(s.ndsm / 20, 0, 1) * 255).astype(np.uint8), check_contrast=False)
        pix.append(np.moveaxis(s.irrg, 0, -1).reshape(-1, 3))
        labs.append(s.labels.ravel())
    print("synthetic:")
    for k, v in band_stats(np.concatenate(pix), np.concatenate(labs)).items():
        print(f"  {k:9s} {v}")
    if args.real:
        irrg = imread(args.real)[..., :3].reshape(-1, 3)
        mm = imread(str(args.real).replace("_irrg.png", "_label.png")).ravel().astype(int)
        # mmseg: 0 ignored, 1..6 = ISPRS classes 0..5
        print(f"real ({args.real.name}):")
        for k, v in band_stats(irrg[mm > 0], mm[mm > 0] - 1).items():
            print(f"  {k:9s} {v}")
    print(f"PNGs in {args.out}")


if __name__ == "__main__":
    main()
