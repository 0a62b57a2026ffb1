"""Models (§4.1, §4.2): shapes and parameter counts at the paper's widths, the dense PB
equals the patch PB, the trunk/head split, save/load."""

from __future__ import annotations

import pytest
import torch

from vaiseg.errors import DataError
from vaiseg.models import FCN, DensePatchCNN, PatchCNN, load_model, parameter_count, receptive_field, save_model


def _conv(k, c_in, c_out):  # weights + biases
    return k * k * c_in * c_out + c_out


def _bn(c):  # scale + shift
    return 2 * c


def test_patchcnn_paper_width_shape_and_parameters():
    net = PatchCNN().eval()
    # §4.1 by hand: 5x5 convs 5->32->64->96->128, each with BN; every conv (no padding)
    # and every 3x3 max-pool (stride 1) shrinks by 4 + 2 px: 65 - 4*6 = 41.
    convs = _conv(5, 5, 32) + _conv(5, 32, 64) + _conv(5, 64, 96) + _conv(5, 96, 128)
    bns = _bn(32) + _bn(64) + _bn(96) + _bn(128)
    fc = (128 * 41 * 41 * 128 + 128) + (128 * 128 + 128) + (128 * 5 + 5)
    assert convs + bns + fc == 28_075_749
    assert parameter_count(net) == 28_075_749
    with torch.no_grad():
        assert net.features(torch.zeros(1, 5, 65, 65)).shape == (1, 128, 41, 41)
        assert net(torch.zeros(2, 5, 65, 65)).shape == (2, 5)
    # the dense version has exactly the same parameters
    assert parameter_count(net.to_dense()) == 28_075_749


def test_fcn_paper_width_shape_and_parameters():
    net = FCN().eval()
    w = (64, 128, 256, 512)
    enc = _conv(3, 5, 64) + _bn(64) + _conv(3, 64, 64) + _bn(64)
    for a, b in zip(w[:-1], w[1:]):
        enc += _conv(3, a, b) + _bn(b) + _conv(3, b, b) + _bn(b)
    head = _conv(1, 512, 6) + (6 * 6 * 32 * 32 + 6)  # 1x1 scores + ConvTranspose 32x32
    assert enc + head == 4_730_316
    assert parameter_count(net) == 4_730_316
    with torch.no_grad():
        assert net.trunk(torch.zeros(1, 5, 256, 256)).shape == (1, 512, 16, 16)
        assert net(torch.zeros(1, 5, 256, 256)).shape == (1, 6, 256, 256)
    assert net.pad == 0 and net.multiple == 16 and net.n_classes == 6
    assert receptive_field(net) == 149 and net.halo >= 64
    with pytest.raises(ValueError, match="multiples of 16"):
        net.trunk(torch.zeros(1, 5, 40, 48))


def test_width_multiplier_scales_channels():
    assert PatchCNN(width=0.25).widths == [8, 16, 24, 32] and PatchCNN(width=0.25).fc_width == 32
    assert FCN(width=0.25).widths == [16, 32, 64, 128]
    with torch.no_grad():
        assert FCN(width=0.25).eval()(torch.zeros(1, 5, 48, 32)).shape == (1, 6, 48, 32)


def _trained_bn(net, x):
    """A few train-mode passes so BatchNorm running statistics are not the defaults."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x)
    return net.eval()


def test_dense_pb_equals_patch_pb_at_sampled_pixels_including_edges():
    torch.manual_seed(0)
    net = PatchCNN(width=0.25)
    _trained_bn(net, torch.randn(16, 5, 65, 65))
    dense = net.to_dense().eval()
    h, w = 9, 7
    tile = torch.randn(1, 5, h + 64, w + 64)
    with torch.no_grad():
        out = dense(tile)
        assert out.shape == (1, 5, h, w)
        pixels = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (4, 3), (0, 3), (h - 1, 5)]
        patches = torch.cat([tile[:, :, i : i + 65, j : j + 65] for i, j in pixels])
        ref = net(patches)
    got = torch.stack([out[0, :, i, j] for i, j in pixels])
    assert torch.allclose(got, ref, atol=1e-4, rtol=0), (got - ref).abs().max()


def test_trunk_head_split_and_dropout_modules():
    torch.manual_seed(1)
    for net, x in ((PatchCNN(width=0.125).to_dense(), torch.randn(1, 5, 70, 70)), (FCN(width=0.125), torch.randn(1, 5, 32, 32))):
        net.eval()
        with torch.no_grad():
            assert torch.equal(net(x), net.head(net.trunk(x)))
        drops = net.dropout_modules()
        assert len(drops) >= 1 and all(isinstance(d, torch.nn.Dropout) for d in drops)
        # every dropout sits in the head: the trunk is deterministic even with dropout on
        assert all(any(d is m for m in net.head.modules()) for d in drops)
        for d in drops:
            d.train()
        with torch.no_grad():
            f1, f2 = net.trunk(x), net.trunk(x)
            assert torch.equal(f1, f2)
            assert not torch.equal(net.head(f1), net.head(f1))  # MC samples differ


def test_fcn_upsampling_initialised_bilinear():
    net = FCN(width=0.125).eval()
    # a constant score map up-samples to the same constant away from the border
    coarse = torch.ones(1, 6, 4, 4)
    with torch.no_grad():
        up = net.upsample(coarse)
    assert up.shape == (1, 6, 64, 64)
    assert torch.allclose(up[:, :, 16:48, 16:48], torch.ones(1, 6, 32, 32), atol=1e-6)


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(2)
    pb = PatchCNN(width=0.125, dropout=0.3)
    _trained_bn(pb, torch.randn(8, 5, 65, 65))
    save_model(tmp_path / "pb.pt", pb, {"model": "PB", "stats": "results/data/stats.json"})
    net, meta = load_model(tmp_path / "pb.pt")
    assert isinstance(net, DensePatchCNN) and not net.training
    assert net.pad == 32 and net.n_classes == 5 and net.dropout == 0.3
    assert [c["index"] for c in meta["classes"]] == [0, 1, 2, 3, 4]
    assert meta["stats"] == "results/data/stats.json"
    x = torch.randn(1, 5, 66, 65)
    with torch.no_grad():
        assert torch.allclose(net(x), pb.to_dense().eval()(x), atol=1e-6)

    fcn = FCN(width=0.125)
    save_model(tmp_path / "fcn.pt", fcn, {"model": "FCN"})
    net, meta = load_model(tmp_path / "fcn.pt")
    assert isinstance(net, FCN) and len(meta["classes"]) == 6
    assert not list(tmp_path.glob(".*part*"))


def test_load_model_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="bad.pt"):
        load_model(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a vaiseg model"):
        load_model(tmp_path / "other.pt")
