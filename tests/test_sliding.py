"""Dense PB (one fully convolutional pass, §4.1) == the sliding-window baseline; PB's cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vaiseg.mc_dropout import mc_predict
from vaiseg.models import PatchCNN
from vaiseg.sliding import dense_logits, pb_macs_per_pixel, sliding_window_logits, sliding_window_probs


def _net(seed: int = 0) -> PatchCNN:
    """A very narrow PB (2, 4, 6, 8 kernels, FC 8) with non-trivial BatchNorm running
    statistics (eval mode uses them)."""
    torch.manual_seed(seed)
    net = PatchCNN(width=0.0625, fc_width=8)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _image(h: int = 40, w: int = 37, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((5, h, w)).astype(np.float32)


def _edges_and_sample(h: int, w: int, n_inner: int, seed: int = 0) -> np.ndarray:
    """(n, 2) pixels: the two outermost rings of an h x w image (every edge pixel) plus
    ``n_inner`` random interior pixels."""
    rr, cc = np.mgrid[0:h, 0:w]
    ring = (np.minimum(rr, h - 1 - rr) < 2) | (np.minimum(cc, w - 1 - cc) < 2)
    inner = np.flatnonzero(~ring.ravel())
    pick = np.random.default_rng(seed).choice(inner, n_inner, replace=False)
    idx = np.concatenate([np.flatnonzero(ring.ravel()), pick])
    return np.stack([rr.ravel()[idx], cc.ravel()[idx]], 1)


def test_dense_equals_sliding_window_incl_every_edge_pixel():
    net, img = _net(), _image(36, 33)
    pix = _edges_and_sample(36, 33, 40)
    slide = sliding_window_logits(net, img, pix, batch_size=97, device="cpu")  # odd batch size
    assert slide.shape == (5, len(pix)) and len(pix) > 260
    dense = dense_logits(net, img, device="cpu")
    assert dense.shape == (5, 36, 33)
    d = dense[:, pix[:, 0], pix[:, 1]]
    # logits: equal up to float32 summation order (relative 1e-5 of their scale)
    np.testing.assert_allclose(d, slide, atol=1e-5 * np.abs(slide).max(), rtol=0)
    probs = torch.softmax(torch.from_numpy(slide), 0).numpy()
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(d), 0).numpy(), probs, atol=1e-4)
    # the check is not vacuous: logits vary across pixels and classes
    assert slide.std(axis=1).min() > 1e-2
    # the pipeline's dense path (mc_predict: tiled, reflect border) gives the same softmax
    res = mc_predict(net.to_dense(), img, T=1, tile_size=16, device="cpu")
    np.testing.assert_allclose(res["probs_det"][:, pix[:, 0], pix[:, 1]], probs, atol=1e-4)
    np.testing.assert_allclose(sliding_window_probs(net, img, pix[:5], device="cpu"), probs[:, :5], atol=1e-6)


def test_pixel_subset_matches_full_map_and_is_order_independent():
    net, img = _net(2), _image(71, 69, seed=3)
    full = sliding_window_logits(net, img, pad_mode="none", device="cpu")  # 7 x 5 classified pixels
    assert np.isfinite(full[:, 32:39, 32:37]).all() and np.isnan(full).sum() == 5 * (71 * 69 - 35)
    pix = np.array([[32, 32], [38, 36], [32, 36], [38, 32], [35, 34], [33, 35]])
    tol = 1e-5 * np.nanmax(np.abs(full))
    sub = sliding_window_logits(net, img, pix, batch_size=4, pad_mode="none", device="cpu")
    np.testing.assert_allclose(sub, full[:, pix[:, 0], pix[:, 1]], atol=tol)
    rev = sliding_window_logits(net, img, pix[::-1], batch_size=1, pad_mode="none", device="cpu")
    np.testing.assert_allclose(rev[:, ::-1], sub, atol=tol)


def test_reflect_padding_is_what_the_patch_sees():
    """Pixel (0, 0)'s patch is the reflect-padded corner: the same as classifying the
    explicit 65x65 array built by np.pad(mode='reflect')."""
    net, img = _net(4), _image(40, 40, seed=5)
    patch = np.pad(img, ((0, 0), (32, 32), (32, 32)), mode="reflect")[:, :65, :65]
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(patch))[None])[0].numpy()
    got = sliding_window_logits(net, img, np.array([[0, 0]]), device="cpu")[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_pad_mode_none_leaves_border_unclassified_and_matches_dense():
    net, img = _net(6), _image(69, 67, seed=7)
    slide = sliding_window_logits(net, img, pad_mode="none", device="cpu")
    dense = dense_logits(net, img, pad_mode="none", device="cpu")
    inner = (slice(None), slice(32, 37), slice(32, 35))
    assert np.isnan(slide[:, :32]).all() and np.isnan(slide[:, :, -32:]).all()
    assert np.isfinite(slide[inner]).all()
    np.testing.assert_allclose(dense[inner], slide[inner], atol=1e-5 * np.abs(slide[inner]).max())
    with pytest.raises(ValueError, match="outside"):
        sliding_window_logits(net, img, np.array([[3, 40]]), pad_mode="none", device="cpu")


def test_eval_mode_restored_and_bad_inputs():
    net = _net().train()
    sliding_window_logits(net, _image(34, 34), np.array([[1, 1]]), device="cpu")
    assert net.training
    with pytest.raises(TypeError):
        sliding_window_logits(net.to_dense(), _image(), device="cpu")
    with pytest.raises(ValueError, match="bands"):
        sliding_window_logits(net, np.zeros((40, 40), np.float32), device="cpu")
    with pytest.raises(ValueError, match="pad_mode"):
        sliding_window_logits(net, _image(), pad_mode="zeros", device="cpu")


@pytest.mark.parametrize("width", [0.125, 0.25])
def test_mac_count_matches_torch_flop_counter(width):
    net = PatchCNN(width=width).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.zeros(2, 5, 65, 65))
    assert fc.get_total_flops() == 2 * 2 * pb_macs_per_pixel(width, dense=False)
    h, w = 9, 7
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net.to_dense()(torch.zeros(1, 5, h + 64, w + 64))
    assert fc.get_total_flops() == pytest.approx(2 * h * w * pb_macs_per_pixel(width, tile=(h, w)))
    # large tiles approach the per-pixel count from above
    big = pb_macs_per_pixel(width, tile=(2048, 2048))
    assert pb_macs_per_pixel(width) < big < 1.01 * pb_macs_per_pixel(width)


def test_paper_width_cost():
    """~55 MFLOP per pixel at paper width (issue 6); sliding costs ~40x the dense count."""
    assert pb_macs_per_pixel(1.0) == 28_074_528
    assert pb_macs_per_pixel(1.0, dense=False) == 1_134_128_928


@pytest.mark.parametrize("shape,block", [((40, 37), 16), ((20, 24), 64)])
def test_fft_fc1_trunk_equals_direct_trunk(shape, block):
    """FC1 by FFT (overlap-save, blocks not dividing the tile, one block larger than it)
    equals the 41x41 convolution up to float32 rounding."""
    from vaiseg.sliding import dense_trunk_fft

    dense = _net(8).to_dense().eval()
    x = torch.from_numpy(_image(shape[0] + 64, shape[1] + 64, seed=9))[None]
    with torch.no_grad():
        ref = dense.trunk(x)
        got = dense_trunk_fft(dense, x, block=block)
        again = dense_trunk_fft(dense, x, block=block)  # cached kernel spectrum
    assert got.shape == ref.shape == (1, 8, *shape)
    scale = ref.abs().max().item()
    assert scale > 1e-2
    torch.testing.assert_close(got, ref, atol=1e-5 * scale, rtol=0)
    assert torch.equal(got, again)
    with torch.no_grad():  # a weight change invalidates the cached spectrum
        dense.fc1.weight.mul_(2)
        torch.testing.assert_close(dense_trunk_fft(dense, x, block=block), dense.trunk(x), atol=2e-5 * scale, rtol=0)
