"""Monte-Carlo dropout inference with shared trunk and seamless tiling (§4.3).

§4.3: "uncertainty maps are computed ... by retrieving 10 Monte Carlo samples from the
networks and then computing the standard deviation over the softmax outputs of the
samples ... the mean standard deviation over all the classes". Samples are drawn with
dropout active (only in the network's dropout modules) and batch normalisation in
inference mode (running statistics), as in Gal & Ghahramani.

Shared trunk (issue 6). The inference networks of :mod:`vaiseg.models` split into
``trunk`` (every layer before the first dropout, deterministic) and ``head`` (the dropout
layers and what follows). Per tile the trunk runs once; the head runs on T copies of the
trunk features stacked along the batch dimension (in chunks that bound memory). One
extra head pass with dropout off gives the deterministic prediction ``probs_det``.

Dropout masks (choice; the paper is silent): masks are *counter-based*: the keep/drop
decision of one activation is a function of (seed, dropout layer, sample index t,
channel, absolute row, absolute column of the activation on the area's grid *at that
layer's resolution*, i.e. output pixel / the layer's stride): a 32-bit
integer hash (murmur3's bijective ``fmix32`` mixer, evaluated with wrapping int32 torch
ops) of (seed, layer, t, channel group of 4, row, col) whose 4 bytes decide the 4
channels of the group; an activation is kept when its byte is below
``round((1 - p) * 256)`` and scaled by 256 / that (inverted dropout, as ``nn.Dropout``;
p is used in steps of 1/256, exact for the paper's p = 0.5). Hence

- shared-trunk and naive (T full passes) sampling see exactly the same masks, whatever
  the batching, so they give equal samples (tests/test_mc_dropout.py);
- a tile sees the same masks as the whole area would at the same pixels, so tiled
  output equals untiled output (the MC statistics included);
- the same seed gives the same masks on any device (outputs then agree to float
  rounding) and the same output on the same device; different t give independent masks.
  Rows/columns enter modulo 65536 (areas up to 65536 px per side get distinct masks); every
  area uses the configured seed, so two areas share the mask pattern at equal pixel
  coordinates, which is harmless (the samples of one pixel are what matters).

For PB every output pixel is a separate 65x65 patch (§4.1), and the activation-wise masks
of the dense FC layers are exactly per-patch dropout of the sliding-window classifier.

FCN dropout placement (:class:`vaiseg.models.FCN` ``dropout_placement``; the paper does
not say where the FCN's dropout sits). ``"encoder_output"`` (default): one dropout on the
stride-16 encoder output; the trunk is the whole encoder, the head (score conv and
up-sampling) is cheap. ``"last_two_sets"``: dropout on set 3's stride-8 output and on
set 4's stride-16 output; the trunk is sets 1-3 and the head holds max-pool -> set 4
(BatchNorm in eval mode, as everywhere here) -> dropout -> score -> up-sampling, so set 4
(about a quarter of the encoder's multiply-adds) runs T + 1 times per tile instead of
once. Each layer's masks are hashed on its own grid (stride 8 or 16; the hook derives the
stride from the activation's size and requires the tile origin to sit on that grid, which
the 16-px tile/halo lattice guarantees), so tiled == untiled and shared trunk == naive
hold for both placements. Dropout does not widen the receptive field (149 px either way),
so the halo is the same.

Tiling. The area is cut into ``tile_size`` squares (a multiple of ``net.multiple``); each
tile is run with ``halo`` pixels of real neighbouring context on every side (the default
halo covers the full receptive field, so stitching centre crops is exact) plus the
network's ``pad`` px of context (PB: 32 px). At the area border the PB context is
reflect-padded (``pad_mode="reflect"``, default; our choice), or, as in the paper (§5,
Fig. 3), the 32-px border is left unclassified (``pad_mode="none"``: NaN in the float
outputs, ``IGNORE`` = 255 in ``labels``). FCN inputs are reflect-padded at the bottom and
right up to a multiple of 16 and cropped back. Outputs accumulate into preallocated
float32 arrays; per tile only one head batch of samples is in memory (the statistics are
running sums).

Uncertainty measures, per pixel, with samples p_t (C,) for t = 1..T:

- ``probs``: mean softmax  p̄ = (1/T) Σ_t p_t
- ``class_std``: population standard deviation over the T samples, per class (ddof 0:
  defined for T = 1, where it is 0)
- ``uncertainty``: mean over classes of ``class_std`` (the paper's measure, §4.3)
- ``entropy``: predictive entropy  H[p̄] = -Σ_c p̄_c log p̄_c  (nats)
- ``mutual_info``: BALD  H[p̄] - (1/T) Σ_t H[p_t]  (nats, clipped at 0)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .classes import IGNORE, NAMES
from .errors import DataError

log = logging.getLogger(__name__)

_M32 = 0xFFFFFFFF
OUTPUT_FILES = (
    "probs.tif",
    "uncertainty.tif",
    "labels.tif",
    "class_std.tif",
    "entropy.tif",
    "mutual_info.tif",
    "probs_deterministic.tif",
    "labels_color.tif",
)


@contextlib.contextmanager
def fp32_math(enabled: bool = True):
    """Convolutions and matrix products in full float32 for the duration (TF32 off in cuDNN
    and cuBLAS; PyTorch's default runs cuDNN convolutions in TF32 on Ampere and later
    GPUs), the flags restored after; ``enabled=False`` leaves them as they are.

    MC inference runs in it: on an H200 TF32 moved the mean softmax by up to 3.4e-3 and the
    uncertainty map by 1.1e-3 for 1.3x PB speed (4 s of a paper-config run), and made
    the FCN no faster (benchmarks/results/nvidia-h200.json); in fp32 a GPU's maps equal the
    CPU's up to float32 rounding.
    """
    if not enabled:
        yield
        return
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------- masks
def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on an int64 tensor holding values in [0, 2**32) (in place).

    A bijection of 32-bit integers; int64 products wrap, and ``& 0xFFFFFFFF`` keeps the
    exact low 32 bits, so CPU and CUDA agree bit for bit.
    """
    x.bitwise_xor_(x >> 16)
    x.mul_(0x85EBCA6B).bitwise_and_(_M32)
    x.bitwise_xor_(x >> 13)
    x.mul_(0xC2B2AE35).bitwise_and_(_M32)
    x.bitwise_xor_(x >> 16)
    return x


def _keys(seed: int, layer: int, t: torch.Tensor, n_channels: int, device) -> torch.Tensor:
    """(n, C) int64 per-(sample, channel) keys of one dropout layer."""
    s = _fmix32(torch.tensor([(seed * 0x9E3779B1 + layer * 0x632BE5AB) & _M32], dtype=torch.int64, device=device))
    k = _fmix32(s ^ t.to(device=device, dtype=torch.int64))  # (n,)
    c = torch.arange(n_channels, device=device, dtype=torch.int64).mul_(0x27D4EB2F).bitwise_and_(_M32)
    return _fmix32(k[:, None] ^ c[None, :])  # (n, C)


def _to_i32(x: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2**32) -> int32 with the same 32 bits (two's complement)."""
    return (x - ((x >> 31) << 32)).to(torch.int32)


def _fmix32_i32_(x: torch.Tensor) -> torch.Tensor:
    """:func:`_fmix32` on an int32 tensor in place: int32 products wrap mod 2**32 (the same
    bits), and ``(x >> s) & (2**(32-s) - 1)`` is the logical shift of the unsigned value."""
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    x.mul_(0x85EBCA6B - (1 << 32))
    x.bitwise_xor_((x >> 13) & 0x7FFFF)
    x.mul_(0xC2B2AE35 - (1 << 32))
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    return x


def keep_mask(
    seed: int,
    layer: int,
    t: torch.Tensor | list[int],
    shape: tuple[int, ...],
    p: float,
    origin: tuple[int, int] = (0, 0),
    device="cpu",
) -> tuple[torch.Tensor, float]:
    """Counter-based dropout keep-mask of one layer: (bool tensor of ``shape``, scale).

    ``t``: (n,) sample indices (one per batch row); ``shape``: (n, C[, h, w]) activation
    shape; ``origin``: absolute (row, col) of element (0, 0) on the layer's grid.

    One 32-bit hash of (seed, layer, t, channel group, row, col) per 4 channels: its 4
    bytes decide 4 channels, an activation is kept when its byte is below
    ``q256 = round((1 - p) * 256)``; the keep probability is q = q256 / 256 (p is used in
    steps of 1/256; exact for p = 0.5) and ``scale`` = 1 / q (inverted dropout, unbiased).
    """
    t = torch.as_tensor(t, dtype=torch.int64)
    n, C = shape[0], shape[1]
    if t.numel() != n:
        raise ValueError(f"need one sample index per batch row: {t.numel()} vs {n}")
    q256 = int(round((1.0 - p) * 256))
    if q256 >= 256:
        return torch.ones(shape, device=device, dtype=torch.bool), 1.0
    if q256 <= 0:
        return torch.zeros(shape, device=device, dtype=torch.bool), 0.0
    C4 = -(-C // 4)
    key = _keys(seed, layer, t, C4, device)  # (n, C4) int64 in [0, 2**32)
    spatial = shape[2:]
    if spatial:
        if len(spatial) != 2:
            raise ValueError(f"dropout on {len(shape)}-d activations is not supported")
        h, w = spatial
        gy = torch.arange(origin[0], origin[0] + h, device=device, dtype=torch.int64).bitwise_and_(0xFFFF)
        gx = torch.arange(origin[1], origin[1] + w, device=device, dtype=torch.int64).bitwise_and_(0xFFFF)
        pos = _fmix32((gy[:, None] << 16) | gx[None, :])  # (h, w), bijective in (row, col) < 65536
        x = _to_i32(key)[:, :, None, None] ^ _to_i32(pos)[None, None]  # (n, C4, h, w) int32
    else:
        h = w = None
        x = _to_i32(key).clone()
    _fmix32_i32_(x)
    # the 4 bytes of each hash (little-endian) decide channels 4 g + j, j = 0..3
    b = x.view(torch.uint8).reshape(*x.shape[:-1], x.shape[-1], 4) if spatial else x.view(torch.uint8).reshape(n, C4, 4)
    keep = b < q256
    if spatial:
        keep = keep.permute(0, 1, 4, 2, 3).reshape(n, 4 * C4, h, w)
    else:
        keep = keep.reshape(n, 4 * C4)
    return keep[:, :C], 256.0 / q256


def dropout_mask(
    seed: int,
    layer: int,
    t: torch.Tensor | list[int],
    shape: tuple[int, ...],
    p: float,
    origin: tuple[int, int] = (0, 0),
    device="cpu",
    dtype=torch.float32,
) -> torch.Tensor:
    """:func:`keep_mask` as a float inverted-dropout mask: 0 or 1/q, of ``shape``."""
    keep, scale = keep_mask(seed, layer, t, shape, p, origin, device)
    return keep.to(dtype).mul_(scale)


class _MaskedDropout:
    """Context manager: replaces the random masks of ``net.dropout_modules()`` by
    counter-based ones (forward hooks; the modules themselves stay in eval mode, i.e.
    identity, and the hook multiplies by the mask). BatchNorm stays in eval mode.

    State read by the hooks: ``phase`` ("det": dropout off; "mc": masks on; "trunk":
    no dropout may fire), ``t`` (sample indices of the batch rows), ``origin`` (absolute
    (row, col) on the *output* pixel grid of the tile's first output pixel) and
    ``extent`` (the tile's output size, to derive each layer's stride).
    """

    def __init__(self, net: nn.Module, seed: int):
        self.net = net
        self.seed = int(seed)
        self.modules = list(net.dropout_modules()) if hasattr(net, "dropout_modules") else [
            m for m in net.modules() if isinstance(m, nn.Dropout)
        ]
        self.phase = "det"
        self.t = torch.zeros(1, dtype=torch.int64)
        self.origin = (0, 0)
        self.extent = (1, 1)
        self._handles: list = []

    def __enter__(self):
        self._was_training = self.net.training
        self.net.eval()
        for i, m in enumerate(self.modules):
            self._handles.append(m.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.net.train(self._was_training)
        return False

    def _hook(self, layer: int):
        def hook(module, inputs, out):
            p = float(getattr(module, "p", 0.0))
            if self.phase == "det" or p == 0:
                return None
            if self.phase == "trunk":
                raise RuntimeError(
                    f"dropout layer {layer} fired inside net.trunk(): the shared-trunk MC needs every "
                    "dropout in the head (use shared_trunk=False)"
                )
            origin = (0, 0)
            if out.dim() == 4:
                # the layer's own grid: stride (sy, sx) = tile output size / activation size
                # (FCN: 16 on the encoder output, 8 after set 3 with "last_two_sets"; PB: 1),
                # origin = the tile's first output pixel in that grid's absolute coordinates
                (h, w), (eh, ew) = out.shape[-2:], self.extent
                sy, sx = max(1, eh // h), max(1, ew // w)
                if (sy * h, sx * w) != (eh, ew) or self.origin[0] % sy or self.origin[1] % sx:
                    raise RuntimeError(
                        f"dropout layer {layer}: a {h}x{w} activation for a {eh}x{ew} tile at {self.origin} is not "
                        "on an aligned grid, so its masks would depend on the tiling"
                    )
                origin = (self.origin[0] // sy, self.origin[1] // sx)
            keep, scale = keep_mask(self.seed, layer, self.t, tuple(out.shape), p, origin, out.device)
            return (out * keep).mul_(scale)

        return hook


# --------------------------------------------------------------------------- one tile
def _default_halo(net: nn.Module) -> int:
    """Context (px) that covers the receptive field of ``net`` (exact stitching), rounded
    up to ``net.multiple``; at least ``net.halo``."""
    m = int(getattr(net, "multiple", 1) or 1)
    halo = int(getattr(net, "halo", 0) or 0)
    try:
        from .models import FCN, receptive_field

        if isinstance(net, FCN):
            halo = max(halo, receptive_field(net) // 2)
    except ImportError:  # pragma: no cover
        pass
    return int(math.ceil(halo / m) * m)


class _Workspace:
    """Scratch tensors reused across sample chunks and tiles of one :func:`mc_predict` call.

    The per-sample head and statistics of a tile work on (n, A, C, B) float32 blocks of
    tens of MB. Allocated afresh for every chunk, each such block is returned to the OS
    when freed (glibc serves them by mmap/trim) and page-faulted in again on first touch:
    on the 2-core dev machine that kernel time was 40 % of an FCN MC call (56 of 144 ms
    for T = 10 on a 256 px tile, width 0.25). Reusing one buffer per role removes it
    within a call (177 -> 148 ms measured); the rest, between calls and in the PB's FFT
    trunk, goes with the process policy :func:`vaiseg.step.keep_freed_memory` that the
    mc_infer rule sets. ``get`` returns a view of the first prod(shape) elements of the
    named buffer, growing it when too small; contents are undefined.
    """

    def __init__(self, device):
        self.device = device
        self._buf: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        n = math.prod(shape)
        b = self._buf.get(name)
        if b is None or b.numel() < n or b.dtype != dtype:
            b = self._buf[name] = torch.empty(n, dtype=dtype, device=self.device)
        return b[:n].view(shape)


class _HeadPlan:
    """How the head's logits are produced and laid out (an inference-only optimisation).

    Logits come as (n, A, C, B): n samples, C classes at dim 2, A * B pixels in the plan's
    layout; every statistic is per pixel, so it is computed in that layout and only the
    final statistics are put back into image order (:meth:`to_image`), once per tile.

    Generic plan: ``logits = head(f)`` (n, C, h, w) viewed as (n, 1, C, h * w).

    Up-sampling plan (FCN, §4.2): when ``head`` is a Sequential ending in a
    ``ConvTranspose2d`` with kernel 2s, stride s, padding P <= s (the FCN's x16
    fractional-strided convolution), that layer is computed as an equivalent 2x2
    convolution on the coarse grid: the 4 taps x cin channels of every coarse position
    (one row each) times a (cin * 4, C * s * s) matrix, i.e. the output in
    "pixel-shuffled" layout (n, (h/s + 1) * (w/s + 1), C, s * s): A = coarse positions,
    B = the s x s output pixels of one coarse cell. Putting it back into image order
    moves runs of s contiguous values (cheap). Same sums as the transposed convolution,
    reordered (equal within float rounding; tested).
    Everything before the last layer (``pre`` = ``head[:-1]``) runs as is: dropout -> score
    for the FCN's default placement, dropout -> max-pool -> set 4 -> dropout -> score with
    ``dropout_placement="last_two_sets"`` (its input then is set 3's stride-8 output).
    """

    def __init__(self, net: nn.Module):
        self.net = net
        self.pre = None
        head = getattr(net, "head", None)
        if isinstance(head, nn.Sequential) and len(head) and isinstance(head[-1], nn.ConvTranspose2d):
            ct = head[-1]
            s, k, P = ct.stride[0], ct.kernel_size[0], ct.padding[0]
            if (
                ct.stride[0] == ct.stride[1] and ct.kernel_size[0] == ct.kernel_size[1] == 2 * s
                and ct.padding[0] == ct.padding[1] <= s and ct.groups == 1 and tuple(ct.dilation) == (1, 1)
                and tuple(ct.output_padding) == (0, 0)
            ):
                w = ct.weight.detach()  # (cin, cout, 2s, 2s); kernel index = a' * s + r
                cin, cout = w.shape[:2]
                # conv tap a (0: coarse q-1 after padding, 1: coarse q) uses kernel half a' = 1 - a
                wr = w.reshape(cin, cout, 2, s, 2, s).flip(2).flip(4)
                # rows (cin, tap a, tap b) + one row for the bias (a column of ones in the
                # taps), columns (cout, r, c)
                bias = torch.zeros(cout) if ct.bias is None else ct.bias.detach()
                self.w = torch.cat([
                    wr.permute(0, 2, 4, 1, 3, 5).reshape(cin * 4, cout * s * s),
                    bias.to(w.dtype).repeat_interleave(s * s)[None],
                ]).contiguous()
                self.s, self.P, self.cout = s, P, cout
                self.pre = head[:-1]

    def logits(self, f: torch.Tensor, out_hw: tuple[int, int], ws: _Workspace | None = None) -> torch.Tensor:
        """Head logits of features f (n, F, hf, wf) -> (n, A, C, B) (in ``ws``'s buffer "z" if given)."""
        if self.pre is None:
            lg = self.net.head(f)
            if lg.shape[-2:] != out_hw:
                raise RuntimeError(f"network returned {tuple(lg.shape)} for a tile of {out_hw} output pixels")
            return lg.reshape(lg.shape[0], 1, lg.shape[1], -1)
        g = self.pre(f)
        n, cin, h, w = g.shape
        s, P = self.s, self.P
        if ((h - 1) * s - 2 * P + 2 * s, (w - 1) * s - 2 * P + 2 * s) != out_hw:
            raise RuntimeError(f"up-sampled size of a {h}x{w} coarse grid does not match {out_hw}")
        gp = torch.nn.functional.pad(g, (1, 1, 1, 1))
        # 2x2 patches as (n, h+1, w+1, cin, tap a, tap b) + a 1 for the bias -> (n, A, cin * 4 + 1)
        # (small: coarse grid)
        A = (h + 1) * (w + 1)
        cols = g.new_ones((n, h + 1, w + 1, cin * 4 + 1))
        for a in (0, 1):
            for b in (0, 1):
                cols[..., 2 * a + b : cin * 4 : 4] = gp[:, :, a : a + h + 1, b : b + w + 1].permute(0, 2, 3, 1)
        cols = cols.view(n, A, cin * 4 + 1)
        wt = self.w.to(g.dtype)
        z = torch.matmul(cols, wt) if ws is None else torch.matmul(cols, wt, out=ws.get("z", (n, A, wt.shape[1]), g.dtype))
        self._coarse = (h, w)
        return z.view(n, A, self.cout, s * s)

    def to_image(self, a: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        """(..., A, K, B) planes in the plan's layout -> (..., K, H, W) in image order."""
        lead, (A, K, B) = a.shape[:-3], a.shape[-3:]
        nd = len(lead)
        if self.pre is None:
            return a.movedim(nd + 1, nd).reshape(*lead, K, *out_hw)
        h, w = self._coarse
        s, P = self.s, self.P
        a = a.reshape(*lead, h + 1, w + 1, K, s, s)
        a = a.permute(*range(nd), nd + 2, nd, nd + 3, nd + 1, nd + 4).reshape(*lead, K, (h + 1) * s, (w + 1) * s)
        return a[..., P : P + out_hw[0], P : P + out_hw[1]]


def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    """log-softmax over the class dim (-2) of (..., C, B) logits, in float32, clamped at -80.

    The clamp (choice): a class more than 80 nats below the log-sum-exp gets p = e^-80
    (1.8e-35) instead of an even smaller number, which changes probabilities by < 2e-35
    and keeps every value a normal float32: torch's CPU exp takes a slow path for
    arguments below -87 (55 ns instead of 1.5 ns per value measured here), which saturated
    softmaxes (trained networks, large logit gaps) would otherwise hit for most classes."""
    return torch.log_softmax(z.float(), -2).clamp_min_(-80.0)


def _argmax_(p: torch.Tensor, out: torch.Tensor, ws: _Workspace) -> torch.Tensor:
    """argmax over dim 1 of p (A, C, B) into the float tensor out (A, B) by a running maximum
    (first maximum wins, as ``argmax``): C vectorised passes; torch's argmax over a middle
    dimension is not vectorised on the CPU (20 ms instead of ~1 for a 256 px FCN tile)."""
    best = ws.get("best", out.shape).copy_(p[:, 0])
    out.zero_()
    gt = ws.get("gt", out.shape, torch.bool)
    for c in range(1, p.shape[1]):
        out.masked_fill_(torch.gt(p[:, c], best, out=gt), c)
        torch.maximum(best, p[:, c], out=best)
    return out


#: statistics planes of a tile, in the order of the stacked result: (name, planes per class?)
_STATS = (("probs", True), ("class_std", True), ("probs_det", True), ("uncertainty", False), ("entropy", False),
          ("mutual_info", False))


@torch.inference_mode()
def _tile_samples(
    net: nn.Module,
    x: torch.Tensor,
    T: int,
    md: _MaskedDropout,
    shared_trunk: bool,
    head_batch_elems: int,
    plan: _HeadPlan | None = None,
    trunk=None,
    ws: _Workspace | None = None,
) -> dict:
    """Run MC dropout on one input tile x (1, B, h+2p, w+2p) -> dict of (C, h, w) / (h, w) tensors
    (views of one stacked float32 tensor) plus ``labels`` (h, w) = argmax of ``probs`` (class index as float).

    Per sample chunk: log p = :func:`_log_softmax` (clamped at -80), p = exp(log p) into a
    reused buffer (``ws``); the deterministic prediction likewise. The statistics
    accumulate as shifted sums around the first sample's softmax p_0 (d = p_t - p_0: Σ d,
    Σ d², and Σ_c p log p for the expected entropy), so no (T, C, h, w) stack is kept.
    The shift keeps the variance Σd²/T - (Σd/T)² free of cancellation: (p_0 - mean)² <=
    T var, so its rounding error is ~T float32 eps relative to var (equal samples give
    exactly 0). Shifting by the deterministic softmax instead, as before, failed where the
    deterministic prediction and all samples disagree with saturated softmaxes (std
    3e-4 instead of 0; tests/test_mc_dropout.py).
    """
    pad = int(getattr(net, "pad", 0) or 0)
    hw = (x.shape[-2] - 2 * pad, x.shape[-1] - 2 * pad)
    md.extent = hw
    ws = ws or _Workspace(x.device)
    trunk = trunk or net.trunk
    if plan is None or not shared_trunk:
        plan = _HeadPlan.__new__(_HeadPlan)
        plan.pre, plan.net = None, net
    if shared_trunk:
        md.phase = "trunk"
        f = trunk(x)
        md.phase = "det"
        logits = plan.logits(f, hw, ws)
    else:
        md.phase = "det"
        logits = plan.logits(trunk(x), hw)
    A, C, B = logits.shape[1:]
    K = 3 * C + 4
    res = ws.get("res", (A, K, B))
    mean, std, det = res[:, :C], res[:, C : 2 * C], res[:, 2 * C : 3 * C]
    unc, entropy, mutual_info = res[:, 3 * C], res[:, 3 * C + 1], res[:, 3 * C + 2]
    torch.exp(_log_softmax(logits[0]), out=det)
    s1 = mean.zero_()  # Σ_t d, then the mean
    s2 = std.zero_()  # Σ_t d², then the std
    neg_ent = mutual_info.zero_()  # Σ_t Σ_c p log p, then the mutual information

    def sum0(t: torch.Tensor) -> torch.Tensor:  # Σ over the samples of a chunk
        return t[0] if t.shape[0] == 1 else torch.sum(t, 0, out=ws.get("acc", (A, C, B)))

    shift = ws.get("shift", (A, C, B))  # p_0, set by the first chunk

    def accumulate(z: torch.Tensor, first: bool) -> None:
        """Add the samples of the logits z (n, A, C, B) to the running sums."""
        lsm = _log_softmax(z)
        p = torch.exp(lsm, out=ws.get("p", tuple(z.shape)))
        neg_ent.add_(torch.sum(sum0(lsm.mul_(p)), 1, out=ws.get("px", (A, B))))
        if first:
            shift.copy_(p[0])
        d = p.sub_(shift)
        s1.add_(sum0(d))
        s2.add_(sum0(d.mul_(d)))

    if shared_trunk:
        per_sample = max(f[0].numel(), C * A * B)
        chunk = max(1, min(T, head_batch_elems // max(per_sample, 1)))
        for t0 in range(0, T, chunk):
            n = min(chunk, T - t0)
            md.t = torch.arange(t0, t0 + n)
            md.phase = "mc"
            accumulate(plan.logits(f.expand(n, *f.shape[1:]), hw, ws), t0 == 0)
    else:
        for t in range(T):
            md.t = torch.tensor([t])
            md.phase = "mc"
            accumulate(plan.logits(trunk(x), hw), t == 0)
    md.phase = "det"
    mean.div_(T)
    # population variance Σd²/T - (Σd/T)², then the std; variances below 1e-30 (rounding,
    # or exactly 0) give std 0: torch's CPU sqrt takes a slow path on 0 and subnormals
    # (2.5 ms instead of 0.25 for a 256 px FCN tile), so it never sees them
    torch.sqrt(s2.div_(T).addcmul_(mean, mean, value=-1).clamp_min_(1e-30), out=std)
    std.masked_fill_(torch.le(std, 1e-15, out=ws.get("le", (A, C, B), torch.bool)), 0.0)
    mean.add_(shift).clamp_min_(0)  # shifted sums can round a few ulp below 0
    torch.mean(std, 1, out=unc)
    # entropy of the mean: p log p with p clamped at 1e-30 (0 log 0 = 0; xlogy is 4x slower here)
    acc = torch.clamp_min(mean, 1e-30, out=ws.get("acc", (A, C, B)))
    plogp = torch.log(acc, out=acc).mul_(mean)
    torch.sum(plogp, 1, out=entropy).neg_()
    mutual_info.div_(T).add_(entropy).clamp_min_(0)
    _argmax_(mean, res[:, 3 * C + 3], ws)  # labels as exact small floats (one layout change for all)
    img = plan.to_image(res, hw)  # (K, H, W)
    out = {}
    i = 0
    for name, per_class in _STATS:
        k = C if per_class else 1
        out[name] = img[i : i + k] if per_class else img[i]
        i += k
    out["labels"] = img[i]
    return out


# --------------------------------------------------------------------------- an area
def tile_grid(height: int, width: int, tile_size: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """Output tiles (y0, y1, x0, x1) covering an (height, width) grid, sides multiples of ``multiple``."""
    ts = max(multiple, tile_size // multiple * multiple)
    return [
        (y, min(y + ts, height), x, min(x + ts, width)) for y in range(0, height, ts) for x in range(0, width, ts)
    ]


def mc_predict(
    net: nn.Module,
    image: np.ndarray,
    T: int = 10,
    *,
    seed: int = 0,
    tile_size: int = 1024,
    device: str | torch.device = "cpu",
    pad_mode: str = "reflect",
    shared_trunk: bool = True,
    halo: int | None = None,
    head_batch_elems: int = 1 << 25,
    pb_fft_block: int | None = None,
    progress: bool = False,
    allow_tf32: bool = False,
) -> dict:
    """MC-dropout prediction of a whole area (§4.3), tile by tile.

    ``net``: an inference network of :mod:`vaiseg.models` (``trunk``, ``head``,
    ``n_classes``, ``pad``, ``multiple``, ``halo``, ``dropout_modules()``), moved to
    ``device`` here. ``image``: (B, H, W) float32, the normalised bands. ``T``: MC
    samples (>= 1). ``seed``: mask seed (same seed -> identical output). ``tile_size``:
    output tile side in px. ``pad_mode``: "reflect" (classify the PB border from
    reflect-padded context) or "none" (leave ``net.pad`` px unclassified, as the paper).
    ``shared_trunk``: trunk once + batched head (default) or T full passes (naive
    reference). ``halo``: context px per tile side (default: the receptive field).
    ``pb_fft_block``: for the dense PB, compute FC1 (the 41x41 convolution, ~98 % of its
    FLOPs) by FFT overlap-save in blocks of this many output px
    (:func:`vaiseg.sliding.dense_trunk_fft`; equal to the direct convolution up to float32
    rounding, tested); None = the network's own ``trunk`` (direct convolution).
    ``allow_tf32``: False (default) computes in full float32 (:func:`fp32_math`); True
    leaves PyTorch's TF32 flags as they are (a benchmark variant).

    Returns float32 arrays ``probs`` (C, H, W), ``class_std`` (C, H, W), ``uncertainty``
    (H, W), ``entropy`` (H, W), ``mutual_info`` (H, W), ``probs_det`` (C, H, W) and
    ``labels`` (H, W) uint8 = argmax of ``probs`` (output index i = class i: PB's 5
    outputs are classes 0..4, the FCN's 6 are 0..5). Unclassified border pixels
    (``pad_mode="none"``) are NaN / ``IGNORE``.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if pad_mode not in ("reflect", "none"):
        raise ValueError(f"pad_mode must be 'reflect' or 'none', got {pad_mode!r}")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be (bands, H, W), got {image.shape}")
    n_in = getattr(net, "in_channels", image.shape[0])
    if image.shape[0] != n_in:
        raise ValueError(f"network expects {n_in} bands, image has {image.shape[0]}")
    image = image.astype(np.float32, copy=False)
    dev = resolve_device(device)
    net = net.to(dev)
    pad = int(getattr(net, "pad", 0) or 0)
    mult = int(getattr(net, "multiple", 1) or 1)
    halo = _default_halo(net) if halo is None else int(math.ceil(int(halo) / mult) * mult)
    C = int(net.n_classes)
    _, H, W = image.shape

    if pad and pad_mode == "reflect":
        src = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        off, Ho, Wo = 0, H, W
    else:
        src, off, Ho, Wo = image, pad, H - 2 * pad, W - 2 * pad
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"image {H}x{W} is smaller than the network's context ({2 * pad} px)")
    Hp, Wp = -(-Ho // mult) * mult, -(-Wo // mult) * mult
    if (Hp, Wp) != (Ho, Wo):
        src = np.pad(src, ((0, 0), (0, Hp - Ho), (0, Wp - Wo)), mode="reflect")

    out = {
        "probs": np.full((C, H, W), np.nan, np.float32),
        "class_std": np.full((C, H, W), np.nan, np.float32),
        "uncertainty": np.full((H, W), np.nan, np.float32),
        "entropy": np.full((H, W), np.nan, np.float32),
        "mutual_info": np.full((H, W), np.nan, np.float32),
        "probs_det": np.full((C, H, W), np.nan, np.float32),
        "labels": np.full((H, W), IGNORE, np.uint8),
    }
    tiles = tile_grid(Hp, Wp, tile_size, mult)
    try:
        from tqdm.auto import tqdm

        it = tqdm(tiles, desc="mc tiles", unit="tile", disable=not progress, leave=False)
    except ImportError:  # pragma: no cover
        it = tiles
    plan = _HeadPlan(net)
    trunk = None
    if pb_fft_block:
        from .models import DensePatchCNN
        from .sliding import dense_trunk_fft

        if isinstance(net, DensePatchCNN):
            trunk = lambda x: dense_trunk_fft(net, x, block=int(pb_fft_block))  # noqa: E731
    ws = _Workspace(dev)
    with _MaskedDropout(net, seed) as md, fp32_math(not allow_tf32):
        for y0, y1, x0, x1 in it:
            iy0, iy1 = max(0, y0 - halo), min(Hp, y1 + halo)
            ix0, ix1 = max(0, x0 - halo), min(Wp, x1 + halo)
            xin = torch.from_numpy(np.ascontiguousarray(src[:, iy0 : iy1 + 2 * pad, ix0 : ix1 + 2 * pad]))[None]
            md.origin = (iy0 + off, ix0 + off)
            res = _tile_samples(net, xin.to(dev), T, md, shared_trunk, head_batch_elems, plan, trunk, ws)
            yo1, xo1 = min(y1, Ho), min(x1, Wo)
            if yo1 <= y0 or xo1 <= x0:
                continue
            sy = slice(y0 - iy0, yo1 - iy0)
            sx = slice(x0 - ix0, xo1 - ix0)
            dy, dx = slice(y0 + off, yo1 + off), slice(x0 + off, xo1 + off)
            for k, v in res.items():
                out[k][..., dy, dx] = v[..., sy, sx].cpu().numpy()  # one strided copy per output
    return out


# --------------------------------------------------------------------------- files
def infer_area(
    model_path,
    image_path,
    out_dir,
    T: int = 10,
    seed: int = 0,
    tile_size: int = 1024,
    device: str = "auto",
    pb_border: str = "reflect",
    shared_trunk: bool = True,
    pb_fft_block: int | None = None,
    model: tuple | None = None,
) -> dict:
    """MC-dropout inference of one area to GeoTIFFs in ``out_dir`` (§4.3; output contract).

    Writes ``probs.tif`` (C float32 bands named by class), ``uncertainty.tif``,
    ``labels.tif`` (uint8 + ISPRS colour map), ``class_std.tif``, ``entropy.tif``,
    ``mutual_info.tif``, ``probs_deterministic.tif`` and ``labels_color.tif`` (RGB), all
    with the image's geotransform/CRS; NaN is the float nodata (PB border with
    ``pb_border="none"``). Returns a small summary dict (shape, T, device, seconds).
    ``model``: the ``(net, meta)`` of ``load_model(model_path, device)`` when the caller
    has loaded it already (:func:`infer_areas`: once per job, so that the dense PB's FC1
    spectrum, cached on the network, is computed once and not once per area).
    """
    import time

    from .models import load_model
    from .raster import read_raster, write_label_raster, write_raster

    dev = resolve_device(device)
    net, meta = load_model(model_path, dev) if model is None else model
    image, geo = read_raster(image_path)
    if image.dtype != np.float32:
        raise DataError(image_path, f"expected the normalised float32 image, found {image.dtype}")
    if not np.isfinite(image).all():
        raise DataError(image_path, "image holds NaN/inf values")
    n_in = getattr(net, "in_channels", image.shape[0])
    if image.shape[0] != n_in:
        raise DataError(image_path, f"image has {image.shape[0]} bands, model {model_path} expects {n_in}")
    t0 = time.perf_counter()
    res = mc_predict(
        net, image, T, seed=seed, tile_size=tile_size, device=dev, pad_mode=pb_border, shared_trunk=shared_trunk,
        pb_fft_block=pb_fft_block, progress=True,
    )
    seconds = time.perf_counter() - t0
    C = res["probs"].shape[0]
    names = [c["name"] for c in meta.get("classes", [])] or list(NAMES[:C])
    out_dir = Path(out_dir)
    nan = np.nan
    write_raster(out_dir / "probs.tif", res["probs"], geo, nodata=nan, band_names=names)
    write_raster(out_dir / "class_std.tif", res["class_std"], geo, nodata=nan, band_names=names)
    write_raster(out_dir / "probs_deterministic.tif", res["probs_det"], geo, nodata=nan, band_names=names)
    write_raster(out_dir / "uncertainty.tif", res["uncertainty"], geo, nodata=nan, band_names=["mean class std"])
    write_raster(out_dir / "entropy.tif", res["entropy"], geo, nodata=nan, band_names=["predictive entropy (nats)"])
    write_raster(out_dir / "mutual_info.tif", res["mutual_info"], geo, nodata=nan, band_names=["mutual information (nats)"])
    write_label_raster(out_dir / "labels.tif", res["labels"], geo, out_dir / "labels_color.tif")
    H, W = res["labels"].shape
    summary = {"height": H, "width": W, "classes": C, "T": T, "device": str(dev), "seconds": seconds,
               "mpx_per_s": H * W / seconds / 1e6}
    log.info("mc_infer %s on %s: %s", model_path, image_path, summary)
    return summary


#: the rasters :func:`infer_area` writes into an area's folder
AREA_OUTPUTS = ("probs", "uncertainty", "labels", "class_std", "entropy", "mutual_info", "probs_deterministic", "labels_color")


def _place(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src`` (a hard link where the file system allows)."""
    import os
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.utime(tmp)  # newer than the job's inputs, even when the cached file is older
    os.replace(tmp, dst)


def infer_areas(model_path, images: dict, out_dirs: dict, cache_dir=None, **kwargs) -> dict:
    """:func:`infer_area` for several areas in one process (one job per CNN instead of one
    per CNN x area: the per-job process and torch start-up, ~2 s, dominated the demo's
    0.2 Mpx areas). ``images`` and ``out_dirs``: area -> path / folder; ``kwargs`` go to
    :func:`infer_area` (T, seed, tile_size, ...). The model is loaded once, at the first
    area not in the cache, and serves every area: the dense PB keeps its FC1 spectrum
    between areas (computing it again per area cost ~40 % of PB's 0.2 Mpx areas).

    Crash-safe: each area is first written to ``cache_dir/<key>/<area>/`` (``key`` = a hash
    of the model file and the inference settings) and marked done, then linked into its
    output folder. A job killed after some areas (whose outputs Snakemake then deletes)
    resumes from the cached ones on the rerun; other weights or settings give another key.
    Without ``cache_dir`` areas are written to their output folders directly.
    """
    import hashlib
    import json

    summaries = {}
    key = None
    from .models import load_model

    # the model, loaded at the first area that is not in the cache
    model = functools.cache(lambda: load_model(model_path, resolve_device(kwargs.get("device", "auto"))))
    if cache_dir is not None:
        h = hashlib.sha256(Path(model_path).read_bytes())
        h.update(json.dumps({k: kwargs[k] for k in sorted(kwargs) if k != "device"}, sort_keys=True, default=str).encode())
        key = h.hexdigest()[:16]
    for area, image in images.items():
        out_dir = Path(out_dirs[area])
        if key is None:
            summaries[area] = infer_area(model_path, image, out_dir, model=model(), **kwargs)
            continue
        cached = Path(cache_dir) / key / str(area)
        done = cached / "done.json"
        if done.is_file():
            log.info("mc_infer: area %s from the cache %s (same model and settings)", area, cached)
            summaries[area] = json.loads(done.read_text())
        else:
            summaries[area] = infer_area(model_path, image, cached, model=model(), **kwargs)
            done.write_text(json.dumps(summaries[area]))
        for name in AREA_OUTPUTS:
            _place(cached / f"{name}.tif", out_dir / f"{name}.tif")
    return summaries
