"""Smoke test of inference on real ISPRS pixels: the Vaihingen area-1 crop of
../shared/real_samples (IRRG, no DSM) through both CNN families with MC dropout.
(Ingestion of the same crop through the archive/normalisation code is tested in
tests/test_normalize.py.) Skips, saying why, where the crop is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaiseg.mc_dropout import mc_predict
from vaiseg.models import FCN, PatchCNN
from vaiseg.raster import read_raster

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_samples" / "vaihingen_area1_0_0_512_irrg.png"
pytestmark = pytest.mark.skipif(not REAL.exists(), reason="../shared/real_samples (real Vaihingen crop) is absent")


def real_image(size: int = 192) -> np.ndarray:
    """(5, size, size) float32: the crop's IR, R, G standardised, flat DSM and nDSM (zeros)."""
    irrg = read_raster(REAL)[0][:3, :size, :size].astype(np.float32)
    irrg = (irrg - irrg.mean(axis=(1, 2), keepdims=True)) / irrg.std(axis=(1, 2), keepdims=True)
    return np.concatenate([irrg, np.zeros((2, size, size), np.float32)])


@pytest.mark.parametrize("kind", ["PB", "FCN"])
def test_mc_inference_on_the_real_crop(kind):
    torch.manual_seed(0)
    net = (PatchCNN(width=0.125).to_dense() if kind == "PB" else FCN(width=0.125)).eval()
    img = real_image()
    out = mc_predict(net, img, T=4, seed=1, tile_size=128, pb_fft_block=64 if kind == "PB" else None)
    n = 5 if kind == "PB" else 6
    assert out["probs"].shape == (n, 192, 192)
    assert np.isfinite(out["probs"]).all()
    np.testing.assert_allclose(out["probs"].sum(0), 1, atol=1e-4)
    assert (out["uncertainty"] > 0).mean() > 0.99  # dropout active: the samples differ
    assert out["labels"].max() < n
    # tiled (128 px) equals one tile: the real image exercises the stitching too
    whole = mc_predict(net, img, T=4, seed=1, tile_size=256, pb_fft_block=64 if kind == "PB" else None)
    np.testing.assert_allclose(out["probs"], whole["probs"], atol=1e-4)
