"""Sliding-window PB: the baseline that dense PB inference replaces (§4.1), and PB's cost.

§4.1: the patch-based CNN classifies the centre pixel of a 65x65 patch; at test time the
paper does *not* slide it pixel by pixel but runs it "fully convolutional" on whole tiles
(Sermanet et al.), which :class:`vaiseg.models.DensePatchCNN` implements. This module is
the naive reference the dense path is checked and timed against (issue 6):

- :func:`sliding_window_logits`: one 65x65 patch per requested pixel through
  :class:`vaiseg.models.PatchCNN`, in batches. The patch of pixel (i, j) is cut from the
  image reflect-padded by 32 px on every side (``np.pad(mode="reflect")``), exactly the
  context :func:`vaiseg.mc_dropout.mc_predict` gives the dense PB with
  ``pad_mode="reflect"``, so both classify every pixel, edge pixels included, from the
  same input (tests/test_sliding.py checks equality within 1e-4).
  ``pad_mode="none"`` instead uses only real context, as the paper (§5, Fig. 3): pixels
  closer than 32 px to the border are not classified (NaN).
- :func:`pb_macs_per_pixel`: multiply-accumulates per classified pixel of PB, dense
  (each layer evaluated once per output position) and sliding (every patch recomputes its
  whole 65x65 feature pyramid), counted from the architecture; the benchmark's FLOP
  rate uses ``2 * MACs`` (tested against ``torch.utils.flop_counter``).

Arrays: ``image`` is (B, H, W) float32 (the normalised bands), outputs are float32.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from .models import PB_FC, PB_FEATURE, PB_PAD, PB_PATCH, DensePatchCNN, PatchCNN, scaled


def _device(device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def padded_image(image: np.ndarray, pad_mode: str = "reflect") -> tuple[np.ndarray, int]:
    """(B, H, W) -> (padded (B, H+64, W+64) or the image itself, offset of pixel (0, 0)'s patch).

    ``pad_mode="reflect"``: 32 px of reflected context (``np.pad(mode="reflect")``, the edge
    pixel itself is not repeated), offset 0. ``"none"``: no padding, offset -32 (the patch
    of pixel (i, j) starts at (i - 32, j - 32)).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be (bands, H, W), got shape {image.shape}")
    if pad_mode == "reflect":
        if min(image.shape[1:]) <= PB_PAD:
            raise ValueError(f"reflect padding needs H, W > {PB_PAD}, got {image.shape[1:]}")
        return np.pad(image, ((0, 0), (PB_PAD, PB_PAD), (PB_PAD, PB_PAD)), mode="reflect"), 0
    if pad_mode == "none":
        return image, -PB_PAD
    raise ValueError(f"pad_mode must be 'reflect' or 'none', got {pad_mode!r}")


@torch.inference_mode()
def sliding_window_logits(
    net: PatchCNN,
    image: np.ndarray,
    pixels: np.ndarray | None = None,
    *,
    batch_size: int = 256,
    pad_mode: str = "reflect",
    device: str | torch.device = "auto",
    progress: bool = False,
) -> np.ndarray:
    """PB logits by sliding the 65x65 patch classifier over the image (§4.1 baseline).

    ``net``: a :class:`PatchCNN` (run in eval mode: BatchNorm running statistics, no
    dropout; its mode is restored afterwards). ``image``: (B, H, W) float32.
    ``pixels``: (n, 2) int (row, col) of the pixels to classify, or None for all H*W
    pixels in row-major order. ``batch_size``: patches per forward pass.
    Returns float32 logits (n_classes, n) for ``pixels``, or (n_classes, H, W) when
    ``pixels`` is None (with ``pad_mode="none"`` the 32-px border is NaN; requesting a
    border pixel explicitly is a ValueError).

    Patches are strided views of the padded image (``sliding_window_view``); only one
    batch of patches is ever copied, (batch_size, B, 65, 65) float32.
    """
    if not isinstance(net, PatchCNN):
        raise TypeError(f"sliding_window_logits needs a PatchCNN, got {type(net).__name__}")
    image = np.asarray(image, dtype=np.float32)
    src, off = padded_image(image, pad_mode)
    _, H, W = image.shape
    full = pixels is None
    if full:
        if pad_mode == "none":
            rr, cc = np.mgrid[PB_PAD : H - PB_PAD, PB_PAD : W - PB_PAD]
        else:
            rr, cc = np.mgrid[0:H, 0:W]
        pix = np.stack([rr.ravel(), cc.ravel()], 1)
    else:
        pix = np.asarray(pixels, dtype=np.int64).reshape(-1, 2)
    lo = -off
    if pix.size and (
        pix[:, 0].min() < lo or pix[:, 1].min() < lo or pix[:, 0].max() >= H - lo or pix[:, 1].max() >= W - lo
    ):
        raise ValueError(f"pixels outside the classifiable range [{lo}, H-{lo}) x [{lo}, W-{lo}) of a {H}x{W} image")
    win = sliding_window_view(src, (PB_PATCH, PB_PATCH), axis=(1, 2))  # (B, H', W', 65, 65) view
    dev = _device(device)
    was_training = net.training
    net = net.to(dev).eval()
    out = np.empty((net.n_classes, len(pix)), np.float32)
    starts = range(0, len(pix), max(1, int(batch_size)))
    try:
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="sliding window", unit="batch", leave=False)
        for s in starts:
            p = pix[s : s + batch_size]
            patch = win[:, p[:, 0] + off, p[:, 1] + off]  # (B, n, 65, 65) copy
            x = torch.from_numpy(np.ascontiguousarray(patch.transpose(1, 0, 2, 3))).to(dev)
            out[:, s : s + len(p)] = net(x).float().cpu().numpy().T
    finally:
        net.train(was_training)
    if not full:
        return out
    res = np.full((net.n_classes, H, W), np.nan, np.float32)
    res[:, pix[:, 0], pix[:, 1]] = out
    return res


def sliding_window_probs(net: PatchCNN, image: np.ndarray, pixels: np.ndarray | None = None, **kw) -> np.ndarray:
    """Softmax over classes of :func:`sliding_window_logits` (same shapes), float32."""
    lg = torch.from_numpy(sliding_window_logits(net, image, pixels, **kw))
    return torch.softmax(lg, 0).numpy()


@torch.inference_mode()
def dense_logits(
    net: PatchCNN | DensePatchCNN, image: np.ndarray, *, pad_mode: str = "reflect", device: str | torch.device = "auto"
) -> np.ndarray:
    """PB logits of every pixel in ONE fully convolutional pass (§4.1), eval mode.

    ``net``: a :class:`PatchCNN` (converted with ``to_dense()``) or a
    :class:`DensePatchCNN`; ``image`` (B, H, W) float32 -> (n_classes, H, W) float32 with
    the same padding convention as :func:`sliding_window_logits` (``"none"``: NaN border).
    Untiled: memory grows with the image (the pipeline tiles via ``mc_predict``).
    """
    dense = net.to_dense() if isinstance(net, PatchCNN) else net
    image = np.asarray(image, dtype=np.float32)
    src, off = padded_image(image, pad_mode)
    dev = _device(device)
    was_training = dense.training
    dense = dense.to(dev).eval()
    try:
        lg = dense(torch.from_numpy(np.ascontiguousarray(src))[None].to(dev))[0].float().cpu().numpy()
    finally:
        dense.train(was_training)
    if off == 0:
        return lg
    _, H, W = image.shape
    res = np.full((lg.shape[0], H, W), np.nan, np.float32)
    res[:, PB_PAD : H - PB_PAD, PB_PAD : W - PB_PAD] = lg
    return res


def pb_macs_per_pixel(
    width: float = 1.0,
    in_channels: int = 5,
    n_classes: int = 5,
    *,
    dense: bool = True,
    tile: tuple[int, int] | None = None,
    fc_width: int = PB_FC,
) -> float:
    """Multiply-accumulates of PB (§4.1) per classified pixel, convolutions and FC layers only.

    Dense (``dense=True``): each of the 4 conv layers (5x5), FC1 (a 41x41 convolution),
    FC2 and FC3 (1x1) is evaluated once per output pixel:
    ``sum_l 25 c_{l-1} c_l + 41^2 c_4 f + f^2 + f n_classes`` with c = (32, 64, 96, 128) x
    width and f = ``fc_width`` (128 whatever the width: :data:`vaiseg.models.PB_FC`).
    Paper width: 28,074,528 MAC (56.1 MFLOP) per pixel, 98 % of it in FC1. With
    ``tile=(h, w)`` the count is that of one dense pass over an h x w output tile given
    32 px of context per side, divided by h*w: the conv layers then also run on
    the context ring (layer l's map is (h + 64 - 6 l + 2) x (w + 64 - 6 l + 2)), the
    overhead that tiling pays.

    Sliding (``dense=False``): every 65x65 patch evaluates conv l on its whole
    (65 - 6 l + 2)^2 output map (61, 55, 49, 43 px sides), FC layers once. Paper width:
    1,134,128,928 MAC (2.27 GFLOP) per pixel, 40.4x the dense count.
    Bias additions, ReLU, BatchNorm and max-pooling are not counted (< 1 %).
    """
    c = [in_channels] + [scaled(k, width) for k in (32, 64, 96, 128)]
    f = int(fc_width)
    if dense and tile is not None:
        h, w = tile
        ext = (h + 2 * PB_PAD, w + 2 * PB_PAD)
    elif dense:
        h = w = 1
        ext = None
    else:
        h = w = 1
        ext = (PB_PATCH, PB_PATCH)
    macs = 0
    shrink = 0
    for l in range(1, 5):
        shrink += 4  # 5x5 conv, no padding
        per_pos = 25 * c[l - 1] * c[l]
        n_pos = 1 if ext is None else (ext[0] - shrink) * (ext[1] - shrink)
        macs += per_pos * n_pos
        shrink += 2  # 3x3 max-pool stride 1
    assert PB_PATCH - shrink == PB_FEATURE
    macs += (PB_FEATURE * PB_FEATURE * c[4] * f + f * f + f * n_classes) * h * w
    return macs / (h * w) if tile is not None else int(macs)


def _fc1_spectrum(dense: DensePatchCNN, size: int) -> torch.Tensor:
    """conj(rfft2(FC1 kernel)) on a size x size grid as a real block matrix per frequency:
    (size * (size//2+1), 2 Cin, 2 Cout) float32 = [[Re, Im], [-Im, Re]], so that
    [Re f, Im f] @ it = [Re, Im] of f * conj(K) summed over Cin (one real batched matmul)."""
    w = dense.fc1.weight.detach().float()  # (Cout, Cin, 41, 41)
    k = torch.fft.rfft2(w, s=(size, size)).conj()  # (Cout, Cin, S, S/2+1)
    k = k.permute(2, 3, 1, 0).reshape(-1, w.shape[1], w.shape[0])  # (bins, Cin, Cout)
    kr, ki = k.real, k.imag
    return torch.cat([torch.cat([kr, ki], 2), torch.cat([-ki, kr], 2)], 1).contiguous()


@torch.inference_mode()
def dense_trunk_fft(dense: DensePatchCNN, x: torch.Tensor, block: int = 64) -> torch.Tensor:
    """``dense.trunk(x)`` with FC1 (the 41x41 convolution, 98 % of PB's dense FLOPs) computed
    by FFT, overlap-save in blocks of ``block`` x ``block`` output pixels (the pipeline's
    default PB trunk via ``infer.pb_fft_block``; timed by benchmarks/run.py).

    x (N, C, H+64, W+64) float32 -> (N, fc_width, H, W), equal to ``dense.trunk(x)`` up to
    float32 FFT rounding. Per block: rfft2 of the (block+40)^2 feature window, one complex
    matrix product per frequency (Cin x Cout), irfft2, keep the valid block x block part.
    Cost of FC1 per output pixel ~ 4 Cin Cout (block+40)^2 / (2 block^2) real MACs instead
    of 41^2 Cin Cout: ~2.6 Cin Cout at block 64, i.e. ~640x fewer.
    """
    f = dense.features(x)  # (N, Cin, H+40, W+40)
    n, cin, hf, wf = f.shape
    k = PB_FEATURE - 1  # 40
    h, w = hf - k, wf - k
    nby, nbx = -(-h // block), -(-w // block)
    f = torch.nn.functional.pad(f, (0, nbx * block - w, 0, nby * block - h))
    size = block + k
    tiles = f.unfold(2, size, block).unfold(3, size, block)  # (N, Cin, nby, nbx, S, S)
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, cin, size, size)
    spec = torch.fft.rfft2(tiles)  # (B, Cin, S, S/2+1)
    key = (size, str(f.device))
    cache = getattr(dense, "_fft_cache", None)
    version = (dense.fc1.weight.data_ptr(), dense.fc1.weight._version)
    if cache is None or cache[0] != key or cache[1] != version:
        cache = (key, version, _fc1_spectrum(dense, size).to(f.device))
        dense._fft_cache = cache
    kern = cache[2]  # (bins, 2 Cin, 2 Cout)
    nb, fy, fx = spec.shape[0], spec.shape[2], spec.shape[3]
    sp = spec.permute(2, 3, 0, 1).reshape(fy * fx, nb, cin)
    prod = torch.bmm(torch.cat([sp.real, sp.imag], 2), kern)  # (bins, B, 2 Cout)
    cout = prod.shape[2] // 2
    prod = torch.complex(prod[..., :cout], prod[..., cout:]).reshape(fy, fx, nb, cout).permute(2, 3, 0, 1)
    out = torch.fft.irfft2(prod, s=(size, size))[..., :block, :block]  # (B, Cout, b, b)
    out = out.reshape(n, nby, nbx, cout, block, block).permute(0, 3, 1, 4, 2, 5).reshape(n, cout, nby * block, nbx * block)
    out = out[:, :, :h, :w] + dense.fc1.bias.view(1, -1, 1, 1)
    return torch.relu(out)
