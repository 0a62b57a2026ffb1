"""MC-dropout inference (§4.3): uncertainty, T, seeds, shared trunk == naive, tiling, files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from vaiseg import sliding
from vaiseg.classes import IGNORE
from vaiseg.mc_dropout import (
    OUTPUT_FILES,
    _argmax_,
    _HeadPlan,
    _MaskedDropout,
    _Workspace,
    dropout_mask,
    infer_area,
    keep_mask,
    mc_predict,
)
from vaiseg.models import FCN, PatchCNN, save_model
from vaiseg.raster import GeoInfo, write_raster

FLOAT_KEYS = ("probs", "class_std", "uncertainty", "entropy", "mutual_info", "probs_det")


def _fcn(p=0.5, seed=0):
    torch.manual_seed(seed)
    return FCN(width=1 / 16, dropout=p).eval()


def _pb(p=0.5, seed=0):
    torch.manual_seed(seed)
    return PatchCNN(width=1 / 16, dropout=p).to_dense().eval()


def _image(h=48, w=40, seed=0):
    return np.random.default_rng(seed).standard_normal((5, h, w)).astype(np.float32)


def _assert_close(a: dict, b: dict, tol=1e-5):
    for k in FLOAT_KEYS:
        np.testing.assert_allclose(a[k], b[k], atol=tol, rtol=0, err_msg=k)
    assert (a["labels"] != b["labels"]).mean() < 1e-3


@pytest.mark.parametrize("make", [_fcn, _pb], ids=["FCN", "PB"])
def test_zero_dropout_gives_zero_uncertainty_and_positive_dropout_does_not(make):
    img = _image(32, 32)
    r0 = mc_predict(make(p=0.0), img, T=5)
    assert r0["uncertainty"].max() < 1e-6 and r0["mutual_info"].max() < 1e-5
    np.testing.assert_allclose(r0["probs"], r0["probs_det"], atol=1e-6)
    r1 = mc_predict(make(p=0.5), img, T=5)
    assert (r1["uncertainty"] > 1e-4).mean() > 0.9
    assert r1["mutual_info"].mean() > 0
    # shapes / dtypes / ranges of the contract
    C = r1["probs"].shape[0]
    assert C == (6 if make is _fcn else 5)
    for k in FLOAT_KEYS:
        assert r1[k].dtype == np.float32 and r1[k].shape[-2:] == (32, 32)
    np.testing.assert_allclose(r1["probs"].sum(0), 1.0, atol=1e-5)
    assert r1["labels"].dtype == np.uint8 and r1["labels"].max() < C
    np.testing.assert_array_equal(r1["labels"], r1["probs"].argmax(0))
    np.testing.assert_allclose(r1["uncertainty"], r1["class_std"].mean(0), atol=1e-7)
    assert (r1["entropy"] >= r1["mutual_info"] - 1e-6).all()


def test_T_is_honoured_and_T1_has_zero_std():
    net = _fcn()
    rows = []
    h = net.head[1].register_forward_hook(lambda m, i, o: rows.append(o.shape[0]))  # class-score conv
    mc_predict(net, _image(32, 32), T=7)
    h.remove()
    assert sum(rows) == 7 + 1  # seven MC samples and one deterministic pass
    r = mc_predict(net, _image(32, 32), T=1)
    assert r["uncertainty"].max() < 1e-7
    a, b = mc_predict(net, _image(32, 32), T=2), mc_predict(net, _image(32, 32), T=8)
    assert np.abs(a["uncertainty"] - b["uncertainty"]).max() > 1e-4


def test_seeded_runs_repeat_and_seeds_differ():
    net, img = _fcn(), _image(32, 32)
    a = mc_predict(net, img, T=4, seed=3)
    b = mc_predict(net, img, T=4, seed=3)
    c = mc_predict(net, img, T=4, seed=4)
    for k in FLOAT_KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.abs(a["probs"] - c["probs"]).max() > 1e-4


def test_dropout_mask_statistics():
    m = dropout_mask(0, 0, torch.arange(4), (4, 8, 64, 64), 0.5)
    keep = (m > 0).float()
    assert set(torch.unique(m).tolist()) == {0.0, 2.0}
    assert abs(keep.mean().item() - 0.5) < 0.01
    # independent across samples, channels and positions
    assert abs((keep[0] * keep[1]).mean().item() - 0.25) < 0.01
    assert abs((keep[:, 0] * keep[:, 1]).mean().item() - 0.25) < 0.01
    assert abs((keep[..., :-1] * keep[..., 1:]).mean().item() - 0.25) < 0.01
    # counter-based: a sub-window at its absolute origin sees the same mask
    sub = dropout_mask(0, 0, torch.tensor([2]), (1, 8, 16, 16), 0.5, origin=(10, 20))
    torch.testing.assert_close(sub[0], m[2, :, 10:26, 20:36])
    assert abs((dropout_mask(0, 1, torch.arange(2), (2, 8, 64, 64), 0.2) > 0).float().mean().item() - 0.8) < 0.01


@pytest.mark.parametrize("make", [_fcn, _pb], ids=["FCN", "PB"])
def test_shared_trunk_equals_naive_loop_for_the_same_masks(make):
    net, img = make(), _image(32, 48)
    shared = mc_predict(net, img, T=4, seed=1, shared_trunk=True)
    naive = mc_predict(net, img, T=4, seed=1, shared_trunk=False)
    _assert_close(shared, naive)


def test_shared_trunk_in_small_head_batches_equals_one_batch():
    net, img = _pb(), _image(24, 24)
    a = mc_predict(net, img, T=5, seed=2)
    b = mc_predict(net, img, T=5, seed=2, head_batch_elems=1)  # one sample per head call
    _assert_close(a, b, 1e-6)


@pytest.mark.parametrize("make", [_fcn, _pb], ids=["FCN", "PB"])
def test_tiled_equals_untiled(make):
    net, img = make(), _image(56, 40)  # not multiples of the FCN's 16: exercises the padding
    whole = mc_predict(net, img, T=3, seed=5, tile_size=1024)
    tiled = mc_predict(net, img, T=3, seed=5, tile_size=16)
    _assert_close(whole, tiled)


def test_fcn_upsampling_plan_equals_transposed_convolution():
    net = _fcn(p=0.0)
    f = torch.randn(3, net.head[1].in_channels, 5, 4)
    plan = _HeadPlan(net)
    assert plan.pre is not None
    with torch.inference_mode():
        ref = net.head(f)
        z = plan.logits(f, (80, 64))
        got = plan.to_image(z, (80, 64))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["logits", "logit-gaps-beyond-80"])
def test_statistics_equal_a_float64_reference_from_the_same_samples(scale):
    """probs, class_std, uncertainty, entropy, mutual_info, probs_det and labels equal their
    definitions (module docstring) evaluated in float64 on the very logits of the T samples
    (captured from the naive loop). scale=300 makes logit gaps of hundreds: the clamp at -80
    before the exp may change probabilities by < 2e-35 only."""
    net, img, T = _fcn(seed=3), _image(32, 48, seed=3), 5
    with torch.no_grad():
        net.score.weight.mul_(scale)
    seen = []
    hook = net.upsample.register_forward_hook(lambda m, i, o: seen.append(o.detach().double().clone()))
    got = mc_predict(net, img, T=T, seed=4, shared_trunk=False)
    hook.remove()
    assert len(seen) == T + 1  # the deterministic pass, then the T samples
    det = torch.softmax(seen[0][0], 0)
    p = torch.softmax(torch.cat(seen[1:]), 1)  # (T, C, H, W)
    mean = p.mean(0)
    std = p.std(0, correction=0)
    ent = -torch.special.xlogy(mean, mean).sum(0)
    mi = ent + torch.special.xlogy(p, p).sum(1).mean(0)
    ref = {"probs": mean, "class_std": std, "uncertainty": std.mean(0), "entropy": ent, "mutual_info": mi.clamp_min(0),
           "probs_det": det}
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], v.numpy(), atol=2e-5 if k in ("entropy", "mutual_info") else 1e-5, rtol=0,
                                   err_msg=k)
    if scale > 1:
        assert (p < 1e-35).any() and (p.max(1).values > 1 - 1e-6).double().mean() > 0.5  # saturated samples
    top2 = torch.sort(mean, 0).values[-2:]
    clear = (top2[1] - top2[0] > 1e-5).numpy()
    np.testing.assert_array_equal(got["labels"][clear], mean.argmax(0).numpy()[clear])


def test_running_argmax_equals_argmax_first_maximum_wins():
    rng = np.random.default_rng(0)
    p = torch.from_numpy(rng.integers(0, 4, (7, 6, 33)).astype(np.float32))  # many exact ties
    out = torch.empty(7, 33)
    _argmax_(p, out, _Workspace("cpu"))
    np.testing.assert_array_equal(out.numpy().astype(np.int64), p.numpy().argmax(1))


def test_workspace_reuses_its_buffers_and_grows_when_needed():
    ws = _Workspace("cpu")
    a = ws.get("z", (2, 3))
    b = ws.get("z", (3, 2))
    assert a.data_ptr() == b.data_ptr() and b.shape == (3, 2)
    c = ws.get("z", (4, 5))
    assert c.shape == (4, 5) and c.numel() == 20
    assert ws.get("z", (2, 2)).data_ptr() == c.data_ptr()
    assert ws.get("m", (2, 2), torch.bool).dtype == torch.bool


def test_pb_border_none_leaves_border_unclassified_and_interior_equal():
    net, img = _pb(), _image(80, 72)
    refl = mc_predict(net, img, T=2, pad_mode="reflect")
    none = mc_predict(net, img, T=2, pad_mode="none")
    assert (none["labels"][:32] == IGNORE).all() and (none["labels"][:, -32:] == IGNORE).all()
    assert np.isnan(none["probs"][:, :, :32]).all() and np.isnan(none["uncertainty"][-32:]).all()
    inner = (slice(32, -32), slice(32, -32))
    assert (none["labels"][inner] != IGNORE).all()
    np.testing.assert_allclose(none["probs"][(slice(None),) + inner], refl["probs"][(slice(None),) + inner], atol=1e-5)
    assert not np.isnan(refl["probs"]).any()


def test_batchnorm_stays_in_eval_and_modes_restored():
    net = _fcn()
    net.train()
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    before = bn.running_mean.clone()
    a = mc_predict(net, _image(32, 32), T=2, seed=0)
    assert net.training  # restored
    torch.testing.assert_close(bn.running_mean, before)
    b = mc_predict(net.eval(), _image(32, 32), T=2, seed=0)
    _assert_close(a, b, 0)


@pytest.mark.parametrize("allow_tf32", [False, True])
def test_inference_runs_in_full_fp32_and_restores_the_tf32_flags(allow_tf32):
    """TF32 off while the network runs (PyTorch's default is cuDNN convolutions in TF32 on
    GPUs; measured on an H200, benchmarks/results/nvidia-h200.json), the flags as they were
    after; allow_tf32=True leaves them alone. The flags are globals, set on a CPU too."""
    net = _fcn()
    seen = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_pre_hook(
                lambda *_: seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        mc_predict(net, _image(32, 32), T=2, seed=0, allow_tf32=allow_tf32)
        after = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    assert seen and set(seen) == {(allow_tf32, allow_tf32)}
    assert after == (True, True)


def test_dropout_in_trunk_is_refused_for_shared_trunk():
    net = _fcn()
    net.encoder.append(torch.nn.Dropout(0.5))
    with pytest.raises(RuntimeError, match="inside net.trunk"):
        mc_predict(net, _image(32, 32), T=2)
    mc_predict(net, _image(32, 32), T=2, shared_trunk=False)  # the naive loop handles it


def test_infer_area_writes_contract_files_with_georeferencing(tmp_path):
    net = FCN(width=1 / 16, dropout=0.5)
    save_model(tmp_path / "model.pt", net, {"model": "FCN"})
    geo = GeoInfo(Affine(0.09, 0.0, 496000.0, 0.0, -0.09, 5420000.0), rasterio.crs.CRS.from_epsg(32632))
    write_raster(tmp_path / "image.tif", _image(40, 36), geo)
    summary = infer_area(tmp_path / "model.pt", tmp_path / "image.tif", tmp_path / "out", T=3, tile_size=32)
    assert summary["T"] == 3 and summary["height"] == 40
    for name in OUTPUT_FILES:
        with rasterio.open(tmp_path / "out" / name) as src:
            assert src.transform == geo.transform and src.crs == geo.crs and (src.height, src.width) == (40, 36)
    with rasterio.open(tmp_path / "out" / "probs.tif") as src:
        assert src.count == 6 and src.dtypes[0] == "float32" and src.descriptions[4] == "Car"
    with rasterio.open(tmp_path / "out" / "labels.tif") as src:
        assert src.dtypes[0] == "uint8" and src.colormap(1)[4][:3] == (255, 255, 0)
    with rasterio.open(tmp_path / "out" / "labels_color.tif") as src:
        assert src.count == 3


def test_infer_areas_equals_infer_area_and_resumes_from_its_cache(tmp_path, monkeypatch):
    """One job per CNN: several areas in one call give the files infer_area gives; a killed
    job's finished areas come from the cache (Snakemake deletes a failed job's outputs)."""
    import vaiseg.mc_dropout as mcd

    net = FCN(width=1 / 16, dropout=0.5)
    save_model(tmp_path / "model.pt", net, {"model": "FCN"})
    for a, (h, w) in {1: (40, 36), 3: (32, 48)}.items():
        write_raster(tmp_path / f"image{a}.tif", _image(h, w, seed=a))
    images = {a: tmp_path / f"image{a}.tif" for a in (1, 3)}
    outs = {a: tmp_path / "out" / str(a) for a in (1, 3)}
    kw = dict(T=3, seed=5, tile_size=32)
    mcd.infer_areas(tmp_path / "model.pt", images, outs, cache_dir=tmp_path / "cache", **kw)
    for a in (1, 3):
        infer_area(tmp_path / "model.pt", images[a], tmp_path / "ref" / str(a), **kw)
        for name in mcd.AREA_OUTPUTS:
            with rasterio.open(outs[a] / f"{name}.tif") as got, rasterio.open(tmp_path / "ref" / str(a) / f"{name}.tif") as ref:
                np.testing.assert_array_equal(got.read(), ref.read())
    # a rerun after the outputs were deleted computes nothing: every area is in the cache
    import shutil

    shutil.rmtree(tmp_path / "out")
    calls = []
    real = mcd.infer_area
    monkeypatch.setattr(mcd, "infer_area", lambda *a, **k: calls.append(a) or real(*a, **k))
    mcd.infer_areas(tmp_path / "model.pt", images, outs, cache_dir=tmp_path / "cache", **kw)
    assert calls == [] and all((outs[a] / "probs.tif").is_file() for a in (1, 3))
    # other settings (or weights) are another cache entry: computed again
    mcd.infer_areas(tmp_path / "model.pt", images, outs, cache_dir=tmp_path / "cache", **{**kw, "T": 4})
    assert len(calls) == 2


def test_infer_areas_loads_the_model_once_and_not_for_cached_areas(tmp_path, monkeypatch):
    """One job per CNN loads its model once (the dense PB's FC1 spectrum, cached on the
    network, then serves every area), and not at all when every area is in the cache."""
    import vaiseg.mc_dropout as mcd
    import vaiseg.models as models

    save_model(tmp_path / "model.pt", PatchCNN(width=1 / 16, dropout=0.5), {"model": "PB"})
    images = {}
    for a in (1, 3, 5):
        write_raster(tmp_path / f"image{a}.tif", _image(72, 70, seed=a))
        images[a] = tmp_path / f"image{a}.tif"
    outs = {a: tmp_path / "out" / str(a) for a in images}
    loads, spectra = [], []
    real_load, real_spectrum = models.load_model, sliding._fc1_spectrum
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(sliding, "_fc1_spectrum", lambda *a, **k: spectra.append(a) or real_spectrum(*a, **k))
    kw = dict(T=2, seed=1, tile_size=32, pb_fft_block=16)
    mcd.infer_areas(tmp_path / "model.pt", images, outs, cache_dir=tmp_path / "cache", **kw)
    assert len(loads) == 1 and len(spectra) == 1
    ref = tmp_path / "ref"
    infer_area(tmp_path / "model.pt", images[5], ref, **kw)  # alone: its own load, its own spectrum
    assert len(loads) == 2 and len(spectra) == 2
    for name in mcd.AREA_OUTPUTS:  # the shared model gives the files a fresh one gives
        with rasterio.open(outs[5] / f"{name}.tif") as got, rasterio.open(ref / f"{name}.tif") as want:
            np.testing.assert_array_equal(got.read(), want.read())
    mcd.infer_areas(tmp_path / "model.pt", images, outs, cache_dir=tmp_path / "cache", **kw)
    assert len(loads) == 2  # every area cached: no model loaded


def test_tiled_run_gives_identical_fused_and_evaluated_outputs():
    """Issue 6: fusion and evaluation downstream of a tiled run equal the untiled run."""
    from vaiseg.fusion import FusionModel, apply_fusion
    from vaiseg.metrics import confusion_matrix

    img = _image(48, 64, seed=4)
    pb, fcn = _pb(seed=1), _fcn(seed=2)
    runs = []
    for tile in (1024, 16):
        probs = [mc_predict(net, img, T=3, seed=9, tile_size=tile)["probs"] for net in (pb, fcn)]
        runs.append(probs)
    rng = np.random.default_rng(0)
    model = FusionModel(rng.normal(size=(6, 11)), rng.normal(size=6), np.arange(6), ("PB", "FCN"), (5, 6))
    (s_a, l_a), (s_b, l_b) = apply_fusion(model, runs[0]), apply_fusion(model, runs[1])
    np.testing.assert_allclose(s_a, s_b, atol=1e-5)
    gt = rng.integers(0, 6, l_a.shape).astype(np.uint8)
    np.testing.assert_array_equal(l_a, l_b)
    np.testing.assert_array_equal(confusion_matrix(gt, l_a), confusion_matrix(gt, l_b))


def _assert_close_fft(a: dict, b: dict, tol: float):
    """Like _assert_close, but std through the variance: FFT rounding (~1e-6 relative) of a
    near-zero variance moves sqrt(variance) by ~sqrt(1e-9..1e-7), the variance itself tightly."""
    for k in ("probs", "probs_det", "entropy", "mutual_info"):
        np.testing.assert_allclose(a[k], b[k], atol=tol, rtol=0, err_msg=k)
    np.testing.assert_allclose(a["class_std"] ** 2, b["class_std"] ** 2, atol=tol / 10, rtol=0)
    top2 = np.sort(a["probs"], 0)[-2:]
    clear = top2[1] - top2[0] > 10 * tol  # a random narrow net has exact ties where its ReLUs die
    np.testing.assert_array_equal(a["labels"][clear], b["labels"][clear])


def test_pb_fc1_by_fft_equals_direct_convolution_and_tiles_exactly():
    net, img = _pb(), _image(72, 56)
    direct = mc_predict(net, img, T=3, seed=2)
    fft = mc_predict(net, img, T=3, seed=2, pb_fft_block=24)
    _assert_close_fft(direct, fft, 1e-4)
    tiled = mc_predict(net, img, T=3, seed=2, pb_fft_block=24, tile_size=32)
    _assert_close_fft(fft, tiled, 1e-5)
    # the option is ignored for the FCN (no FC1)
    fcn = _fcn()
    _assert_close(mc_predict(fcn, img[:, :48, :48], T=2), mc_predict(fcn, img[:, :48, :48], T=2, pb_fft_block=24), 0)


def test_infer_area_bad_inputs_raise_data_error_naming_the_file(tmp_path):
    from vaiseg.errors import DataError

    save_model(tmp_path / "model.pt", FCN(width=1 / 16), {"model": "FCN"})
    write_raster(tmp_path / "four.tif", _image(32, 32)[:4])
    with pytest.raises(DataError, match="four.tif.*4 bands"):
        infer_area(tmp_path / "model.pt", tmp_path / "four.tif", tmp_path / "out", T=2)
    bad = _image(32, 32)
    bad[0, 3, 3] = np.nan
    write_raster(tmp_path / "nan.tif", bad)
    with pytest.raises(DataError, match="nan.tif.*NaN"):
        infer_area(tmp_path / "model.pt", tmp_path / "nan.tif", tmp_path / "out", T=2)
    with pytest.raises(DataError, match="missing.pt"):
        infer_area(tmp_path / "missing.pt", tmp_path / "nan.tif", tmp_path / "out", T=2)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no partial outputs


# ------------------------------------------------------------ FCN dropout after sets 3 and 4
def _fcn2(p=0.5, seed=0):
    """FCN with dropout_placement="last_two_sets" and non-default BatchNorm statistics."""
    torch.manual_seed(seed)
    net = FCN(width=1 / 16, dropout=p, dropout_placement="last_two_sets")
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(4, 5, 32, 32))
    return net.eval()


def test_last_two_sets_tiled_equals_whole_area():
    """Tiles with real neighbours (the image is wider than tile + 2 halos), so the set-3
    masks (stride 8) and the set-4 masks (stride 16) must come from each layer's own
    absolute coordinates for the stitched result to equal the whole-area run."""
    net, img = _fcn2(), _image(208, 184, seed=1)  # 184 not a multiple of 16: padded
    whole = mc_predict(net, img, T=3, seed=5, tile_size=1024)
    tiled = mc_predict(net, img, T=3, seed=5, tile_size=32)  # 7 x 6 tiles, halo 80
    _assert_close(whole, tiled)
    assert (whole["uncertainty"] > 1e-4).mean() > 0.9  # the dropouts did fire


def test_last_two_sets_shared_trunk_equals_naive_loop():
    net, img = _fcn2(seed=1), _image(48, 64, seed=2)
    shared = mc_predict(net, img, T=4, seed=1, shared_trunk=True)
    naive = mc_predict(net, img, T=4, seed=1, shared_trunk=False)
    _assert_close(shared, naive)
    # and in one-sample head batches (the trunk features are re-expanded per chunk)
    _assert_close(shared, mc_predict(net, img, T=4, seed=1, head_batch_elems=1), 1e-6)


def test_last_two_sets_both_dropouts_fire_in_mc_and_neither_in_the_deterministic_pass():
    net, img, T, seed = _fcn2(seed=2), _image(48, 64, seed=3), 4, 7
    bn4 = net.head[4]  # set 4's first BatchNorm, in the head
    stats = bn4.running_mean.clone(), bn4.running_var.clone()
    seen = {1: [], 9: []}  # inputs of the pool after dropout 0 and of the score conv after dropout 1
    hooks = [net.head[i].register_forward_pre_hook(lambda m, a, i=i: seen[i].append(a[0].clone())) for i in seen]
    res = mc_predict(net, img, T=T, seed=seed)
    for h in hooks:
        h.remove()
    assert [len(v) for v in seen.values()] == [2, 2]  # the deterministic pass, then one batch of T
    x = torch.from_numpy(img)[None]
    with torch.no_grad():
        f = net.trunk(x)  # (1, 16w, 6, 8) set 3, stride 8
        ref = net(x)
    # deterministic pass: dropout off at both layers, prediction = the eval network's
    assert torch.equal(seen[1][0], f)
    np.testing.assert_allclose(res["probs_det"], torch.softmax(ref[0], 0).numpy(), atol=1e-6, rtol=0)
    torch.testing.assert_close(bn4.running_mean, stats[0], atol=0, rtol=0)  # BN in eval mode
    torch.testing.assert_close(bn4.running_var, stats[1], atol=0, rtol=0)
    det4 = seen[9][0]
    assert (det4 == 0).float().mean() < 0.05
    # set-3 dropout: inverted-dropout masks, hashed on the stride-8 grid (layer 0), one per sample
    mc3 = seen[1][1]
    assert mc3.shape == (T, *f.shape[1:])
    keep, scale = keep_mask(seed, 0, torch.arange(T), tuple(mc3.shape), 0.5)
    assert scale == 2.0
    torch.testing.assert_close(mc3, f * keep * 2.0, atol=0, rtol=0)
    # set-4 dropout (layer 1, stride 16): about half of the activations zeroed, differently per sample
    mc4 = seen[9][1]
    assert mc4.shape == (T, *det4.shape[1:])
    zero3, zero4 = keep.logical_not(), mc4 == 0
    assert abs(zero4.float().mean().item() - 0.5) < 0.1
    for a in range(T):
        for b in range(a + 1, T):
            assert (zero3[a] != zero3[b]).any() and (zero4[a] != zero4[b]).any()
    keep4, _ = keep_mask(seed, 1, torch.arange(T), tuple(mc4.shape), 0.5)
    assert torch.equal(zero4 & keep4, torch.zeros_like(zero4))  # zeros only where layer 1 drops
    assert (zero4 == ~keep4).float().mean() > 0.95  # (a kept exact 0 is rare)


def test_masked_dropout_refuses_a_grid_the_tile_origin_is_not_on():
    net = _fcn2()
    f = torch.randn(1, net.widths[2], 4, 4)  # set-3 features of a 32 x 32 tile, stride 8
    with _MaskedDropout(net, 0) as md, torch.no_grad():
        md.phase, md.t, md.extent = "mc", torch.tensor([0]), (32, 32)
        md.origin = (16, 32)  # on the stride-16 lattice: both layers fine
        net.head(f)
        md.origin = (4, 0)  # a tile off the lattice would get tiling-dependent masks
        with pytest.raises(RuntimeError, match="aligned grid"):
            net.head(f)


def test_last_two_sets_upsampling_plan_equals_head():
    net = _fcn2(p=0.0)
    f = torch.randn(2, net.widths[2], 10, 8)  # set-3 features: stride 8
    plan = _HeadPlan(net)
    assert plan.pre is not None and len(plan.pre) == len(net.head) - 1
    with torch.inference_mode():
        ref = net.head(f)
        got = plan.to_image(plan.logits(f, (80, 64)), (80, 64))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_infer_area_with_a_saved_last_two_sets_model(tmp_path):
    net = _fcn2()
    save_model(tmp_path / "model.pt", net, {"model": "FCN"})
    write_raster(tmp_path / "image.tif", _image(40, 36))
    infer_area(tmp_path / "model.pt", tmp_path / "image.tif", tmp_path / "out", T=2, tile_size=32)
    with rasterio.open(tmp_path / "out" / "probs.tif") as src:
        probs = src.read()
    np.testing.assert_allclose(probs, mc_predict(net, _image(40, 36), T=2, tile_size=32)["probs"], atol=1e-6)
