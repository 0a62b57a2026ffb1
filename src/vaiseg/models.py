"""The three CNNs of the paper: patch-based (PB, §4.1) and pixel-to-pixel FCN (§4.2).

Tensors are float32, channels first. Inputs are the 5-band standardised rasters of the
data stage (IR, R, G, DSM, nDSM); outputs are *logits* (softmax is applied in the loss,
and by the inference code).

- :class:`PatchCNN` (§4.1): (N, 5, 65, 65) -> (N, 5) logits, the class of the centre pixel.
  Five outputs = classes 0..4 (impervious, building, low vegetation, tree, car): the paper's
  PB has a "5-way softmax", so clutter is never a PB training centre and PB never predicts
  clutter; in the fusion (§4.4) its 5 probabilities simply enter as 5 features.
- :class:`DensePatchCNN` (§4.1 "fully convolutional classification", Sermanet et al.): the
  same weights with FC layers as convolutions, (N, 5, H+64, W+64) -> (N, 5, H, W).
- :class:`FCN` (§4.2, Fig. 2): (N, 5, H, W) -> (N, 6, H, W) logits, H and W multiples of 16;
  its dropout sits on the encoder output (default) or after each of the last two encoder
  sets (``dropout_placement="last_two_sets"``): the paper does not say where.

The inference networks (:class:`DensePatchCNN`, :class:`FCN`) split into ``trunk`` (every
deterministic layer before the first dropout) and ``head`` (the dropout layers and what
follows), so Monte-Carlo dropout (§4.3) computes the trunk once and samples only the head.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .classes import NAMES
from .errors import DataError

#: PB patch side (§4.1) and the context the dense PB needs on each side of a pixel
PB_PATCH = 65
PB_PAD = PB_PATCH // 2  # 32
#: spatial side of PB's last feature map for a 65x65 input: 65 - 4 * (4 + 2) = 41
PB_FEATURE = PB_PATCH - 4 * (4 + 2)
#: neurons of PB's FC1 and FC2 (§4.1: "two fully connected layers with 128 neurons"). Not
#: scaled by the width multiplier: at width 0.25 FC layers of 32 neurons, each followed by
#: 50 % dropout, left PB underfit after 8 epochs (held-out OA 87 %, train loss 0.42; with
#: 128: 93 %, 0.18, on the same data and budget: docs/measurements.md, "PB's FC layers at
#: the paper's 128 neurons"), while 128 neurons add 8 % to a training sample's FLOPs at
#: width 0.25
PB_FC = 128
#: total down-sampling of the FCN encoder: first conv stride 2, then 3 max-pools of 2
FCN_STRIDE = 16

FORMAT = "vaiseg-model/1"


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels * width`` rounded, at least 1 (the config's width multiplier)."""
    return max(1, int(round(channels * width)))


def parameter_count(net: nn.Module) -> int:
    """Number of trainable parameters (weights, biases, BatchNorm scale/shift)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _he_init(module: nn.Module) -> None:
    """He et al. (2015) initialisation (§4.1, §4.2): normal, fan-in, ReLU gain; zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """(channels, channels, k, k) bilinear up-sampling filter (Long et al., FCN), channel c -> c."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.ogrid[:kernel_size, :kernel_size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = np.zeros((channels, channels, kernel_size, kernel_size), dtype=np.float32)
    weight[range(channels), range(channels)] = filt
    return torch.from_numpy(weight)


class _InferenceMixin:
    """``forward = head(trunk(x))`` and access to the dropout layers (MC dropout, §4.3)."""

    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def dropout_modules(self) -> list[nn.Dropout]:
        """The ``nn.Dropout`` layers (all in ``head``): MC code sets only these to train mode."""
        return [m for m in self.modules() if isinstance(m, nn.Dropout)]


def _pb_features(in_channels: int, widths: list[int]) -> nn.Sequential:
    """§4.1: four 5x5 convs (stride 1, no padding), each -> ReLU -> BatchNorm -> 3x3 max-pool
    stride 1 (no padding). Every block shrinks the map by 6 px: 65 -> 41."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for c in widths:
        layers += [
            nn.Conv2d(c_in, c, kernel_size=5, stride=1, padding=0),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(c),
            nn.MaxPool2d(kernel_size=3, stride=1, padding=0),
        ]
        c_in = c
    return nn.Sequential(*layers)


def _pb_init(net: nn.Module, width: float, dropout: float, n_classes: int, in_channels: int, fc_width: int) -> None:
    """Settings and the four conv blocks shared by :class:`PatchCNN` and :class:`DensePatchCNN`."""
    net.width = float(width)
    net.dropout = float(dropout)
    net.n_classes = int(n_classes)
    net.in_channels = int(in_channels)
    net.widths = [scaled(c, width) for c in (32, 64, 96, 128)]
    net.fc_width = int(fc_width)
    if net.fc_width < 1:
        raise ValueError(f"fc_width must be >= 1, got {fc_width}")
    net.features = _pb_features(in_channels, net.widths)


class PatchCNN(nn.Module):
    """Patch-based CNN (§4.1): classify the centre pixel of a 65x65x5 patch.

    features: 4 x [conv 5x5 (32, 64, 96, 128 kernels x ``width``) -> ReLU -> BN ->
    max-pool 3x3 stride 1] -> (N, 128w, 41, 41); classifier: FC ``fc_width`` -> ReLU ->
    dropout -> FC ``fc_width`` -> ReLU -> dropout -> FC ``n_classes`` (softmax in the loss).
    The paper says the two FC layers of 128 neurons "are followed by dropout layers with a
    50% drop probability" and are followed by the 5-way softmax; the ReLU after each FC
    layer is the usual choice (the paper does not name it). ``width`` scales the
    convolutions only; the FC layers keep ``fc_width`` = :data:`PB_FC` (128) neurons
    unless told otherwise. He initialisation.

    Input (N, in_channels, 65, 65) float32 -> logits (N, n_classes) float32.
    """

    def __init__(self, width: float = 1.0, dropout: float = 0.5, n_classes: int = 5, in_channels: int = 5, fc_width: int = PB_FC):
        super().__init__()
        _pb_init(self, width, dropout, n_classes, in_channels, fc_width)
        self.fc1 = nn.Linear(self.widths[-1] * PB_FEATURE * PB_FEATURE, self.fc_width)
        self.fc2 = nn.Linear(self.fc_width, self.fc_width)
        self.fc3 = nn.Linear(self.fc_width, self.n_classes)
        self.drop1 = nn.Dropout(self.dropout)
        self.drop2 = nn.Dropout(self.dropout)
        self.relu = nn.ReLU(inplace=True)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (PB_PATCH, PB_PATCH):
            raise ValueError(f"PatchCNN expects (N, C, 65, 65) patches, got {tuple(x.shape)}")
        f = torch.flatten(self.features(x), 1)
        f = self.drop1(self.relu(self.fc1(f)))
        f = self.drop2(self.relu(self.fc2(f)))
        return self.fc3(f)

    def forward_centres(self, x: torch.Tensor, tile: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Logits of many patches cut from a few tiles, sharing the convolutions ("loss
        sampling", Long et al. 2015; ``train.PB.sampling: tiles``).

        x (B, C, H, W) with H, W >= 65; ``tile``, ``row``, ``col`` (N,) int64: patch n is
        ``x[tile[n], :, row[n]:row[n]+65, col[n]:col[n]+65]`` (top-left corner; its centre
        pixel is (row + 32, col + 32)) -> logits (N, n_classes). The four conv blocks run
        once over the whole tiles (stride 1 and no padding, so a patch's 41x41 feature window
        is a window of the tile's feature map); FC1 and what follows run per patch. In eval
        mode this equals :meth:`forward` on the cut patches up to float32 summation order; in
        train mode BatchNorm normalises with the tiles' statistics instead of the patches'.
        """
        f = self.features(x)  # (B, C4, H - 24, W - 24)
        b, c4, hf, wf = f.shape
        outside = (row < 0) | (col < 0) | (row > hf - PB_FEATURE) | (col > wf - PB_FEATURE)
        if bool(outside.any()):  # one host sync per step
            raise ValueError(f"patch corners must lie in [0, {hf - PB_FEATURE}] x [0, {wf - PB_FEATURE}] for tiles of {tuple(x.shape[-2:])}")
        flat = f.permute(0, 2, 3, 1).reshape(b * hf * wf, c4)  # no copy for channels-last maps
        ar = torch.arange(PB_FEATURE, device=f.device)
        idx = tile[:, None, None] * (hf * wf) + (row[:, None] + ar)[:, :, None] * wf + (col[:, None] + ar)[:, None, :]
        win = flat.index_select(0, idx.reshape(-1)).reshape(len(tile), -1)  # (N, 41 * 41 * C4), (row, col, channel) order
        # FC1's weight is laid out (channel, row, col) (torch.flatten of NCHW): reorder it instead of the windows
        w1 = self.fc1.weight.reshape(self.fc_width, c4, PB_FEATURE, PB_FEATURE).permute(0, 2, 3, 1).reshape(self.fc_width, -1)
        h = self.drop1(self.relu(nn.functional.linear(win, w1, self.fc1.bias)))
        h = self.drop2(self.relu(self.fc2(h)))
        return self.fc3(h)

    def settings(self) -> dict:
        return {"width": self.width, "dropout": self.dropout, "n_classes": self.n_classes, "in_channels": self.in_channels, "fc_width": self.fc_width}

    def to_dense(self) -> "DensePatchCNN":
        """The fully convolutional version with copied weights (§4.1, Sermanet et al.).

        FC1 becomes a 41x41 convolution (its weight is FC1's reshaped to (out, C, 41, 41):
        ``torch.flatten`` orders features channel, row, column, exactly the conv's layout),
        FC2 and FC3 become 1x1 convolutions. The result is in the same train/eval mode and
        on the same device as ``self``.
        """
        dense = DensePatchCNN(**self.settings()).to(next(self.parameters()).device)
        dense.features.load_state_dict(self.features.state_dict())
        with torch.no_grad():
            for fc, conv in ((self.fc1, dense.fc1), (self.fc2, dense.fc2), (self.fc3, dense.fc3)):
                conv.weight.copy_(fc.weight.reshape(conv.weight.shape))
                conv.bias.copy_(fc.bias)
        dense.train(self.training)
        return dense


class DensePatchCNN(_InferenceMixin, nn.Module):
    """PB with its FC layers as convolutions: a whole tile in one pass (§4.1).

    Input (N, in_channels, H + 64, W + 64) float32 (the caller adds ``pad`` = 32 px of
    context on each side) -> logits (N, n_classes, H, W): at every pixel (i, j) the logits
    :class:`PatchCNN` gives for the 65x65 patch ``x[:, :, i:i+65, j:j+65]`` (stride 1
    everywhere, so no up-sampling is needed).

    trunk: the 4 conv blocks + FC1-as-41x41-conv + ReLU -> (N, fc_width, H, W);
    head: dropout -> FC2 (1x1) -> ReLU -> dropout -> FC3 (1x1). ``halo`` = 0: every output
    pixel depends only on its padded 65x65 window, so tiles padded by 32 px stitch exactly.
    """

    pad = PB_PAD
    multiple = 1
    halo = 0

    def __init__(self, width: float = 1.0, dropout: float = 0.5, n_classes: int = 5, in_channels: int = 5, fc_width: int = PB_FC):
        super().__init__()
        _pb_init(self, width, dropout, n_classes, in_channels, fc_width)
        self.fc1 = nn.Conv2d(self.widths[-1], self.fc_width, kernel_size=PB_FEATURE)
        self.head = nn.Sequential(
            nn.Dropout(self.dropout),
            nn.Conv2d(self.fc_width, self.fc_width, kernel_size=1),  # FC2
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Conv2d(self.fc_width, self.n_classes, kernel_size=1),  # FC3
        )
        _he_init(self)

    @property
    def fc2(self) -> nn.Conv2d:
        return self.head[1]

    @property
    def fc3(self) -> nn.Conv2d:
        return self.head[4]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H+64, W+64) -> (N, fc_width, H, W) features before the first dropout."""
        return torch.relu(self.fc1(self.features(x)))

    def settings(self) -> dict:
        return {"width": self.width, "dropout": self.dropout, "n_classes": self.n_classes, "in_channels": self.in_channels, "fc_width": self.fc_width}


#: where the FCN's dropout sits (:class:`FCN` ``dropout_placement``); the first is the default
FCN_DROPOUT_PLACEMENTS = ("encoder_output", "last_two_sets")


class SubpixelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with kernel 2s, stride s, padding P <= s, computed as a 2x2
    convolution on the coarse grid (zero-padded by 1) with ``cout * s * s`` output channels,
    then ``pixel_shuffle(s)`` and a crop of P pixels: the same sums as the transposed
    convolution, reordered (Shi et al. 2016's sub-pixel view; :class:`_HeadPlan` in
    ``mc_dropout`` uses the same identity at inference). Same parameters and ``state_dict``
    as ``nn.ConvTranspose2d``, so saved models load either way; other geometries fall back
    to the transposed convolution.

    Why: on CPU, PyTorch runs this layer (the FCN's x16 up-sampling, 6 -> 6 channels,
    kernel 32) through its slow col2im path: 17 ms of forward + backward per batch of eight
    128 x 128 patches at width 0.25 (2 threads), ~30 % of an FCN training step; the 2x2
    convolution + pixel shuffle ~7 ms (most of it the shuffle's copies), measured alone.

    ``subpixel`` (class attribute, default True): False computes every instance as the
    plain transposed convolution (to count the architecture's multiply-adds, which the
    sub-pixel form exceeds by its cropped border ring, or to reproduce results of the
    code before this layer existed).
    """

    subpixel = True

    def _subpixel(self) -> bool:
        s, k, p = self.stride[0], self.kernel_size[0], self.padding[0]
        return self.subpixel and (
            self.stride[1] == s and self.kernel_size[1] == k == 2 * s and self.padding[1] == p <= s
            and self.groups == 1 and tuple(self.dilation) == (1, 1) and tuple(self.output_padding) == (0, 0)
        )

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None or not self._subpixel():
            return super().forward(x, output_size)
        s, p = self.stride[0], self.padding[0]
        cin, cout = self.weight.shape[:2]
        # kernel index = half * s + r; conv tap a (0: coarse q - 1, 1: coarse q) uses half 1 - a
        w = self.weight.reshape(cin, cout, 2, s, 2, s).flip(2, 4)
        w = w.permute(1, 3, 5, 0, 2, 4).reshape(cout * s * s, cin, 2, 2)
        b = None if self.bias is None else self.bias.repeat_interleave(s * s)
        z = torch.nn.functional.conv2d(x, w, b, padding=1)  # (n, cout*s*s, h+1, w+1)
        y = torch.nn.functional.pixel_shuffle(z, s)  # (n, cout, (h+1)s, (w+1)s)
        h, wd = x.shape[-2:]
        return y[..., p : p + (h - 1) * s - 2 * p + 2 * s, p : p + (wd - 1) * s - 2 * p + 2 * s]


def _fcn_set(c_in: int, c: int, first: bool) -> list[nn.Module]:
    """One FCN encoder set: two 3x3 convs (padding 1), each -> ReLU -> BatchNorm; the very
    first conv of the network has stride 2."""
    layers: list[nn.Module] = []
    for k in range(2):
        stride = 2 if (first and k == 0) else 1
        layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(c)]
        c_in = c
    return layers


class FCN(_InferenceMixin, nn.Module):
    """Pixel-to-pixel FCN (§4.2, Fig. 2).

    Encoder: 4 sets of two 3x3 convs (padding 1), each conv -> ReLU -> BatchNorm (the
    paper's order); widths 64, 128, 256, 512 x ``width`` (the paper does not state them;
    VGG-like widths follow its "inspired by Simonyan and Zisserman"); stride 1 except the
    very first conv (stride 2); 2x2 max-pool stride 2 between the sets -> (N, 512w, H/16, W/16).
    Then dropout(p), a 1x1 conv with one kernel per class -> learned fractional-strided
    convolution (ConvTranspose2d, kernel 32, stride 16, padding 8, initialised bilinear)
    back to H x W. He initialisation elsewhere. Softmax in the loss.

    Where the dropout sits (``dropout_placement``). The paper (§4.2) does not say where
    the FCN's dropout sits (§4.3 only needs dropout layers to sample from); this is our
    choice, one of :data:`FCN_DROPOUT_PLACEMENTS`:

    - ``"encoder_output"`` (default): one dropout on the encoder output, before the 1x1
      score conv. ``trunk`` = ``encoder`` = all 4 sets (deterministic), ``head`` =
      dropout -> score -> up-sampling. MC dropout (§4.3) runs the whole encoder once per
      tile and only the cheap head T times.
    - ``"last_two_sets"`` (Bayesian SegNet style, Kendall et al. 2015: dropout after the
      deepest encoder units only): dropout after set 3 (on its stride-8 output, before the
      max-pool into set 4) and after set 4 (the encoder output). ``trunk`` = ``encoder`` =
      sets 1-3 (deterministic), ``head`` = dropout -> max-pool -> set 4 -> dropout ->
      score -> up-sampling. MC cost: set 4 (13824 w^2 of the encoder's 720 w + 50688 w^2
      multiply-adds per input pixel, ~27 %) runs T + 1 times per tile (T samples and the
      deterministic pass) instead of once: at width 0.25 and T = 10 an MC tile costs
      13605 instead of 4965 network MACs per pixel (x2.7). (Bayesian SegNet's own layers
      put each encoder dropout *after* that unit's pooling; here the first one precedes
      the pool, as specified for this project.)

    The default keeps the module structure and ``state_dict`` keys of models saved before
    this option existed (``encoder.*``, ``head.1.*`` score, ``head.2.*`` up-sampling).
    With ``"last_two_sets"`` set 4's layers are ``head.2`` .. ``head.7``, the score conv
    ``head.9`` and the up-sampling ``head.10`` (use :attr:`score` / :attr:`upsample`).

    Input (N, in_channels, H, W) float32 with H, W multiples of 16 -> logits (N, n_classes, H, W).

    ``halo`` = 64 px: the receptive field of an output pixel is 149 px wide (encoder 133 px,
    plus the 2-tap up-sampling), i.e. +-74 px, for both placements (dropout does not widen
    it); with 64 px of real context on each side only the outermost ring of the field
    (where the weights are small and the training patches themselves were zero-padded)
    differs, and 64 is a multiple of 16 so tile grids stay aligned with the stride-16
    lattice. ``pad`` = 0, ``multiple`` = 16.
    """

    pad = 0
    multiple = FCN_STRIDE
    halo = 64

    def __init__(
        self,
        width: float = 1.0,
        dropout: float = 0.5,
        n_classes: int = 6,
        in_channels: int = 5,
        dropout_placement: str = "encoder_output",
    ):
        super().__init__()
        if dropout_placement not in FCN_DROPOUT_PLACEMENTS:
            raise ValueError(
                f"FCN dropout_placement must be one of {', '.join(map(repr, FCN_DROPOUT_PLACEMENTS))}, "
                f"got {dropout_placement!r}"
            )
        self.width = float(width)
        self.dropout = float(dropout)
        self.n_classes = int(n_classes)
        self.in_channels = int(in_channels)
        self.dropout_placement = dropout_placement
        self.widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        last_two = dropout_placement == "last_two_sets"
        n_trunk_sets = 3 if last_two else 4
        layers: list[nn.Module] = []
        c_in = in_channels
        for s, c in enumerate(self.widths[:n_trunk_sets]):
            if s > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            layers += _fcn_set(c_in, c, s == 0)
            c_in = c
        self.encoder = nn.Sequential(*layers)
        head: list[nn.Module] = []
        if last_two:
            head += [nn.Dropout(self.dropout), nn.MaxPool2d(kernel_size=2, stride=2)]
            head += _fcn_set(c_in, self.widths[3], False)
            c_in = self.widths[3]
        head += [
            nn.Dropout(self.dropout),
            nn.Conv2d(c_in, self.n_classes, kernel_size=1),  # class scores
            SubpixelConvTranspose2d(  # fractional-strided convolution, x16 (same sums, fast on CPU)
                self.n_classes, self.n_classes, kernel_size=2 * FCN_STRIDE, stride=FCN_STRIDE, padding=FCN_STRIDE // 2
            ),
        ]
        self.head = nn.Sequential(*head)
        _he_init(self)
        with torch.no_grad():
            self.upsample.weight.copy_(bilinear_kernel(self.n_classes, 2 * FCN_STRIDE))
            nn.init.zeros_(self.upsample.bias)

    @property
    def score(self) -> nn.Conv2d:
        return self.head[-2]

    @property
    def upsample(self) -> nn.ConvTranspose2d:
        return self.head[-1]

    def encoder_layers(self) -> list[nn.Module]:
        """All encoder layers (4 sets and the pools between them) in order, wherever they sit
        (set 4 is in ``head`` with ``"last_two_sets"``); dropout layers excluded."""
        return [m for m in (*self.encoder, *self.head[:-2]) if not isinstance(m, nn.Dropout)]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> encoder features before the first dropout: (N, 512w, H/16, W/16)
        (``"encoder_output"``) or set 3's (N, 256w, H/8, W/8) (``"last_two_sets"``)."""
        if x.shape[-1] % FCN_STRIDE or x.shape[-2] % FCN_STRIDE:
            raise ValueError(f"FCN input height and width must be multiples of 16, got {tuple(x.shape)}")
        return self.encoder(x)

    def settings(self) -> dict:
        return {"width": self.width, "dropout": self.dropout, "n_classes": self.n_classes,
                "in_channels": self.in_channels, "dropout_placement": self.dropout_placement}


ARCHITECTURES = {"PatchCNN": PatchCNN, "DensePatchCNN": DensePatchCNN, "FCN": FCN}


def default_classes(n_classes: int) -> list[dict]:
    """Output index -> class: PB's 5 outputs are classes 0..4, the FCN's 6 are 0..5."""
    return [{"index": i, "name": NAMES[i]} for i in range(n_classes)]


def save_model(path: str | Path, net: nn.Module, meta: dict) -> None:
    """Write ``net`` and ``meta`` to ``path`` (model.pt), atomically.

    The file is a dict: ``format``, ``arch`` ({class, width, dropout, n_classes,
    in_channels}, ``fc_width`` for PB and ``dropout_placement`` for the FCN),
    ``state_dict`` (CPU tensors) and ``meta`` (JSON-able: e.g. ``model`` name,
    ``classes`` [{index, name}] — filled in from ``n_classes`` when absent — ``stats`` path
    of the normalisation statistics, ``training`` info). ``meta`` must be
    JSON-serialisable so that loading works with ``torch.load(weights_only=True)``.
    """
    name = type(net).__name__
    if name not in ARCHITECTURES:
        raise TypeError(f"save_model: unsupported network {name}")
    meta = json.loads(json.dumps(meta, default=str))
    meta.setdefault("classes", default_classes(net.n_classes))
    obj = {
        "format": FORMAT,
        "arch": {"class": name, **net.settings()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a model.pt -> (inference network in eval mode on ``device``, meta dict).

    A saved :class:`PatchCNN` comes back converted to :class:`DensePatchCNN`. An FCN file
    without ``dropout_placement`` (written before the option existed) loads as
    ``"encoder_output"``, the only placement there was; a PB file without ``fc_width``
    (written when the FC layers scaled with ``width``) with ``scaled(128, width)``
    neurons. Raises DataError naming the file when it is missing, unreadable or not a vaiseg model.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found (run the train rule first)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / truncated / foreign pickle
        raise DataError(path, f"cannot read model file ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DataError(path, f"not a vaiseg model file (expected format {FORMAT!r})")
    arch = dict(obj["arch"])
    cls = ARCHITECTURES.get(arch.pop("class"))
    if cls is None:
        raise DataError(path, f"unknown architecture {obj['arch'].get('class')!r}")
    if cls in (PatchCNN, DensePatchCNN):
        arch.setdefault("fc_width", scaled(PB_FC, arch.get("width", 1.0)))
    net = cls(**arch)
    try:
        net.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise DataError(path, f"weights do not match the architecture settings ({e})") from e
    if isinstance(net, PatchCNN):
        net = net.to_dense()
    return net.to(device).eval(), obj["meta"]


def receptive_field(net: nn.Module) -> int:
    """Side in pixels of the receptive field of one output pixel (for documentation/tests)."""
    if isinstance(net, (PatchCNN, DensePatchCNN)):
        return PB_PATCH
    rf, jump = 1, 1
    for m in net.encoder_layers():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            rf += (k - 1) * jump
            jump *= s
    # the up-sampling kernel (32, stride 16) mixes ceil(32 / 16) = 2 coarse positions per axis
    return rf + (math.ceil(2 * FCN_STRIDE / FCN_STRIDE) - 1) * jump
