"""Models (§4.1, §4.2): shapes and parameter counts at the paper's widths, the dense PB
equals the patch PB, the trunk/head split, save/load."""

from __future__ import annotations

import pytest
import torch

from vaiseg.errors import DataError
from vaiseg.models import (
    FCN,
    FCN_DROPOUT_PLACEMENTS,
    DensePatchCNN,
    PatchCNN,
    SubpixelConvTranspose2d,
    load_model,
    parameter_count,
    receptive_field,
    save_model,
)


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
    assert PatchCNN(width=0.25).widths == [8, 16, 24, 32] and PatchCNN(width=0.25).fc_width == 128  # §4.1's 128 at any width
    assert PatchCNN(width=0.25, fc_width=32).fc_width == 32 and PatchCNN(width=0.25, fc_width=32).to_dense().fc_width == 32
    assert PatchCNN(width=0.25).fc1.weight.shape == (128, 32 * 41 * 41)
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


@pytest.mark.parametrize("cin,cout,s,pad,h,w", [(6, 6, 16, 8, 3, 4), (3, 4, 4, 2, 5, 7), (2, 3, 4, 4, 3, 3), (2, 2, 2, 0, 4, 5)])
def test_subpixel_upsampling_equals_the_transposed_convolution(cin, cout, s, pad, h, w):
    """The fast form (2x2 conv + pixel shuffle) gives the transposed convolution's output
    and gradients (input and weight), for the FCN's geometry and others with P <= s."""
    torch.manual_seed(0)
    m = SubpixelConvTranspose2d(cin, cout, 2 * s, stride=s, padding=pad)
    x = torch.randn(2, cin, h, w, requires_grad=True)
    fast = m(x)
    ref = torch.nn.functional.conv_transpose2d(x, m.weight, m.bias, stride=s, padding=pad)
    assert fast.shape == ref.shape
    assert torch.allclose(fast, ref, atol=1e-5)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((fast * g).sum(), (x, m.weight, m.bias)),
                    torch.autograd.grad((ref * g).sum(), (x, m.weight, m.bias))):
        assert torch.allclose(a, b, atol=1e-4)


def test_subpixel_upsampling_falls_back_for_other_geometries():
    m = SubpixelConvTranspose2d(2, 3, 3, stride=2, padding=1)  # kernel != 2 x stride
    x = torch.randn(1, 2, 4, 5)
    assert torch.equal(m(x), torch.nn.functional.conv_transpose2d(x, m.weight, m.bias, stride=2, padding=1))


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


# ------------------------------------------------------------------ FCN dropout placement
#: state_dict keys of the default FCN as they were before ``dropout_placement`` existed:
#: convs at encoder 0, 3, 7, 10, 14, 17, 21, 24, BatchNorms two layers after each, score
#: head.1, up-sampling head.2 (saved models must keep loading)
_CONVS = (0, 3, 7, 10, 14, 17, 21, 24)
_LEGACY_KEYS = (
    [f"encoder.{i}.{k}" for c in _CONVS for i, ks in ((c, ("weight", "bias")),
     (c + 2, ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))) for k in ks]
    + ["head.1.weight", "head.1.bias", "head.2.weight", "head.2.bias"]
)


def test_fcn_default_placement_keeps_the_legacy_structure():
    net = FCN(width=0.125)
    assert net.dropout_placement == "encoder_output" == FCN_DROPOUT_PLACEMENTS[0]
    assert list(net.state_dict()) == _LEGACY_KEYS
    assert [type(m) for m in net.head] == [torch.nn.Dropout, torch.nn.Conv2d, SubpixelConvTranspose2d]
    assert isinstance(net.upsample, torch.nn.ConvTranspose2d)  # same parameters, keys, MC head plan
    assert net.score is net.head[1] and net.upsample is net.head[2]
    assert net.settings()["dropout_placement"] == "encoder_output"


def test_fcn_last_two_sets_structure_trunk_and_head():
    torch.manual_seed(0)
    net = FCN(width=0.125, dropout_placement="last_two_sets").eval()
    w = net.widths
    assert net.settings()["dropout_placement"] == "last_two_sets"
    assert parameter_count(net) == parameter_count(FCN(width=0.125))  # dropout adds no parameters
    assert receptive_field(net) == 149  # nor widens the receptive field: same halo
    drops = net.dropout_modules()
    assert [net.head[0], net.head[8]] == drops and len(drops) == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.encoder.modules())
    # head = dropout -> pool -> set 4 (conv ReLU BN conv ReLU BN) -> dropout -> score -> x16
    assert isinstance(net.head[1], torch.nn.MaxPool2d)
    assert [net.head[i].out_channels for i in (2, 5)] == [w[3], w[3]]
    assert net.score is net.head[9] and net.score.in_channels == w[3] and net.upsample is net.head[10]
    x = torch.randn(2, 5, 64, 48)
    with torch.no_grad():
        f = net.trunk(x)
        assert f.shape == (2, w[2], 8, 6)  # set 3's output, stride 8
        assert torch.equal(net(x), net.head(f)) and net(x).shape == (2, 6, 64, 48)
        for d in drops:  # both dropouts sit in the head: the trunk stays deterministic, samples differ
            d.train()
        assert torch.equal(net.trunk(x), f)
        a, b = net.head(f), net.head(f)
        assert not torch.equal(a, b)
        drops[1].eval()
        assert not torch.equal(net.head(f), net.head(f))  # the set-3 dropout alone changes the output
        drops[0].eval()
        drops[1].train()
        assert not torch.equal(net.head(f), net.head(f))  # and so does the set-4 one
    with pytest.raises(ValueError, match="multiples of 16"):
        net.trunk(torch.zeros(1, 5, 40, 48))


def test_fcn_placements_share_initialisation_and_deterministic_function():
    """Same seed -> the same weights in the same creation order (only the dropouts moved),
    so with dropout off (eval) the two placements compute the same function."""
    x = torch.randn(1, 5, 48, 64)
    torch.manual_seed(5)
    a = FCN(width=0.125)
    torch.manual_seed(5)
    b = FCN(width=0.125, dropout_placement="last_two_sets")
    sa, sb = a.state_dict(), b.state_dict()
    assert len(sa) == len(sb) and list(sa) != list(sb)
    assert all(torch.equal(u, v) for u, v in zip(sa.values(), sb.values(), strict=True))
    _trained_bn(a, torch.randn(4, 5, 32, 32))
    b.load_state_dict(dict(zip(sb, a.state_dict().values(), strict=True)))
    b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_fcn_bad_dropout_placement_is_a_clear_value_error():
    msg = r"dropout_placement must be one of 'encoder_output', 'last_two_sets', got 'decoder'"
    with pytest.raises(ValueError, match=msg):
        FCN(width=0.125, dropout_placement="decoder")


def test_save_load_roundtrip_keeps_the_dropout_placement(tmp_path):
    torch.manual_seed(3)
    net = FCN(width=0.125, dropout=0.4, dropout_placement="last_two_sets")
    _trained_bn(net, torch.randn(4, 5, 32, 32))
    save_model(tmp_path / "fcn.pt", net, {"model": "FCN"})
    assert torch.load(tmp_path / "fcn.pt", weights_only=True)["arch"]["dropout_placement"] == "last_two_sets"
    got, _ = load_model(tmp_path / "fcn.pt")
    assert isinstance(got, FCN) and got.dropout_placement == "last_two_sets" and got.dropout == 0.4
    assert len(got.dropout_modules()) == 2 and not got.training
    x = torch.randn(1, 5, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(got(x), net.eval()(x), atol=0, rtol=0)


def test_old_fcn_file_without_placement_loads_as_encoder_output(tmp_path):
    torch.manual_seed(4)
    net = FCN(width=0.125)
    _trained_bn(net, torch.randn(4, 5, 32, 32))
    save_model(tmp_path / "new.pt", net, {"model": "FCN"})
    obj = torch.load(tmp_path / "new.pt", weights_only=True)
    del obj["arch"]["dropout_placement"]  # as written before the option existed
    torch.save(obj, tmp_path / "old.pt")
    got, _ = load_model(tmp_path / "old.pt")
    assert got.dropout_placement == "encoder_output" and len(got.dropout_modules()) == 1
    x = torch.randn(1, 5, 32, 32)
    with torch.no_grad():
        assert torch.equal(got(x), net.eval()(x))
    # the key matters: last_two_sets weights without it do not fit the default structure
    save_model(tmp_path / "l2.pt", FCN(width=0.125, dropout_placement="last_two_sets"), {"model": "FCN"})
    obj = torch.load(tmp_path / "l2.pt", weights_only=True)
    del obj["arch"]["dropout_placement"]
    torch.save(obj, tmp_path / "l2_stripped.pt")
    with pytest.raises(DataError, match="do not match"):
        load_model(tmp_path / "l2_stripped.pt")


def test_forward_centres_equals_the_patchwise_forward_in_eval_mode():
    # loss sampling (train.PB.sampling: tiles): shared convolutions, the same logits per patch
    torch.manual_seed(0)
    net = PatchCNN(width=0.25).eval().to(memory_format=torch.channels_last)
    x = torch.randn(3, 5, 100, 90).to(memory_format=torch.channels_last)
    tile, row, col = torch.tensor([0, 2, 1, 2]), torch.tensor([0, 35, 10, 20]), torch.tensor([25, 0, 7, 13])
    with torch.no_grad():
        dense = net.forward_centres(x, tile, row, col)
        cut = torch.cat([net(x[t : t + 1, :, r : r + 65, c : c + 65]) for t, r, c in zip(tile.tolist(), row.tolist(), col.tolist())])
    assert dense.shape == (4, 5)
    torch.testing.assert_close(dense, cut, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="patch corners"):
        net.forward_centres(x, tile, row + 1, col)  # row 35 + 1: the 65-px patch leaves the 100-px tile


def test_pb_fc_width_is_saved_and_old_files_load_with_scaled_fc_layers(tmp_path):
    torch.manual_seed(5)
    net = PatchCNN(width=0.125, fc_width=24)
    save_model(tmp_path / "pb.pt", net, {"model": "PB"})
    assert torch.load(tmp_path / "pb.pt", weights_only=True)["arch"]["fc_width"] == 24
    got, _ = load_model(tmp_path / "pb.pt")
    assert isinstance(got, DensePatchCNN) and got.fc_width == 24 and got.fc1.weight.shape[0] == 24
    # a file from before fc_width existed: FC layers of scaled(128, width) = 16 neurons
    old = PatchCNN(width=0.125, fc_width=16)
    save_model(tmp_path / "new.pt", old, {"model": "PB"})
    obj = torch.load(tmp_path / "new.pt", weights_only=True)
    del obj["arch"]["fc_width"]
    torch.save(obj, tmp_path / "old.pt")
    got, _ = load_model(tmp_path / "old.pt")
    assert got.fc_width == 16
    x = torch.randn(1, 5, 65, 66)
    with torch.no_grad():
        torch.testing.assert_close(got(x), old.to_dense().eval()(x))
    with pytest.raises(ValueError, match="fc_width must be >= 1"):
        PatchCNN(width=0.125, fc_width=0)
