"""Patch extraction (§4.1, §4.2): PB sampler properties, FCN index (50 % overlap, 8
transforms applied identically to image and labels), memory-mapped datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.utils.data import DataLoader

import vaiseg.patches as patches_module
from vaiseg.classes import CAR, IGNORE
from vaiseg.errors import DataError
from vaiseg.patches import (
    FCNPatches,
    PBPatches,
    PBTiles,
    car_centres,
    cut_pb_patch,
    cut_window,
    dihedral,
    extract_fcn,
    extract_pb,
    fcn_grid,
    fcn_heldout_mask,
    fcn_val_candidates,
    heldout_mask,
    index_fcn,
    load_index,
    sample_pb,
)
from vaiseg.raster import write_raster


def make_labels(h=160, w=176, seed=0):
    """Hand-made scene: 4 horizontal bands of classes 0..3, clutter blob, 6 cars (one at the
    image edge, one L-shaped), eroded GT = boundaries (3 px) set to IGNORE."""
    rng = np.random.default_rng(seed)
    full = np.zeros((h, w), np.uint8)
    full[h // 4 : h // 2] = 1
    full[h // 2 : 3 * h // 4] = 2
    full[3 * h // 4 :] = 3
    full[5:20, 100:130] = 5
    cars = [(10, 10), (60, 40), (100, 120), (130, 60), (0, 150)]
    for r, c in cars:
        full[r : r + 12, c : c + 20] = CAR
    full[30:50, 60:68] = CAR  # L-shaped car
    full[42:50, 60:80] = CAR
    edges = ndimage.grey_dilation(full, size=3) != ndimage.grey_erosion(full, size=3)
    eroded = full.copy()
    eroded[ndimage.binary_dilation(edges, iterations=2)] = IGNORE
    image = rng.normal(size=(5, h, w)).astype(np.float32)
    image[0] += full  # some signal
    return image, full, eroded


def write_area(data_dir, area, image, full, eroded):
    d = data_dir / str(area)
    write_raster(d / "image.tif", image)
    write_raster(d / "labels.tif", full)
    write_raster(d / "labels_eroded.tif", eroded)


def test_car_centres_every_car_is_centred_on_a_car_pixel():
    _, full, eroded = make_labels()
    centres, skipped = car_centres(full, eroded)
    assert skipped == 0 and len(centres) == 6
    comp, n = ndimage.label(full == CAR, structure=np.ones((3, 3)))
    assert sorted(comp[centres[:, 0], centres[:, 1]].tolist()) == list(range(1, n + 1))
    assert (eroded[centres[:, 0], centres[:, 1]] == CAR).all()


def test_pb_sampler_properties():
    _, full, eroded = make_labels()
    _, full2, eroded2 = make_labels(seed=1)
    idx = sample_pb([1, 3], [full, full2], [eroded, eroded2], per_class=50, car_rotations=3, seed=0)
    counts = np.bincount(idx["label"], minlength=6)
    # equal counts per class, T = max(50, 12 cars * (1 + 3)) = 50; clutter never sampled
    assert counts.tolist() == [50, 50, 50, 50, 50, 0]
    # no ignored centre, every centre has its patch's label in the eroded GT
    lab = {1: eroded, 3: eroded2}
    for a, r, c, l in zip(idx["area"], idx["row"], idx["col"], idx["label"]):
        assert lab[int(a)][r, c] == l != IGNORE
    car = idx["label"] == CAR
    # every car has an unrotated centred patch; the others are rotated copies
    unrot = car & (idx["angle"] == 0)
    assert unrot.sum() == 12
    assert len(set(zip(idx["area"][unrot], idx["row"][unrot], idx["col"][unrot]))) == 12
    assert (np.bincount(idx["group"][car]) >= 4).all()  # each car + >= 3 rotations
    assert (idx["angle"][~car] == 0).all()
    # rotated copies of a car are all held in or all held out
    for g in np.unique(idx["group"][car]):
        assert len(set(idx["val"][idx["group"] == g])) == 1
    # more cars than per_class: every car still present and counts still balanced
    idx2 = sample_pb([1], [full], [eroded], per_class=5, car_rotations=2, seed=0)
    assert np.bincount(idx2["label"]).tolist() == [18] * 5


def test_pb_paper_rule_without_floor():
    """per_class=None: every class gets cars x (1 + car_rotations) patches (§4.1), so
    car_rotations sets the size; a floor above it would only repeat rotated cars."""
    _, full, eroded = make_labels()  # 6 cars
    for rot in (0, 1, 4):
        idx = sample_pb([1], [full], [eroded], per_class=None, car_rotations=rot, seed=0)
        assert np.bincount(idx["label"]).tolist() == [6 * (1 + rot)] * 5
        car = idx["label"] == CAR
        assert (np.bincount(idx["group"][car]) == 1 + rot).all()  # each car exactly once + rot copies
    # with a floor of 50 the rotation count no longer changes the set's size
    sizes = {len(sample_pb([1], [full], [eroded], per_class=50, car_rotations=r, seed=0)["label"]) for r in (0, 1, 4)}
    assert sizes == {250}


def test_rotated_car_patches_keep_the_car_at_the_centre():
    image, full, eroded = make_labels()
    centres, _ = car_centres(full, eroded)
    for r, c in centres:
        for angle in (0.0, 33.0, 90.0, 217.5):
            img, lab = cut_pb_patch(image, full, int(r), int(c), angle)
            assert img.shape == (5, 65, 65) and img.dtype == np.float32 and lab.shape == (65, 65)
            assert lab[32, 32] == CAR
            assert np.isfinite(img).all()
    # 90 degrees = exact np.rot90 of the unrotated patch (no empty corners)
    r, c = map(int, centres[1])
    p0, l0 = cut_pb_patch(image, full, r, c, 0.0)
    p90, l90 = cut_pb_patch(image, full, r, c, 90.0)
    assert np.array_equal(l90, np.rot90(l0)) or np.array_equal(l90, np.rot90(l0, -1))
    assert np.allclose(p90, np.rot90(p0, axes=(1, 2)), atol=1e-5) or np.allclose(p90, np.rot90(p0, -1, axes=(1, 2)), atol=1e-5)


def test_cut_window_reflects_at_edges():
    a = np.arange(5 * 6).reshape(1, 5, 6)
    w = cut_window(a, -2, -1, 4)
    ref = np.pad(a, ((0, 0), (2, 2), (1, 1)), mode="reflect")[:, 0:4, 0:4]
    assert np.array_equal(w, ref)
    assert np.array_equal(cut_window(a, 1, 2, 3), a[:, 1:4, 2:5])


def test_fcn_grid_half_overlap_and_coverage():
    g = fcn_grid(448, 128, 0.5)
    assert g.tolist() == [0, 64, 128, 192, 256, 320]
    assert np.all(np.diff(g) == 64)  # 50 % overlap
    g = fcn_grid(300, 128, 0.5)
    assert g[-1] == 300 - 128 and g.tolist()[:3] == [0, 64, 128]
    with pytest.raises(ValueError):
        fcn_grid(100, 128, 0.5)


def test_dihedral_group():
    x = np.arange(16).reshape(4, 4)
    outs = [dihedral(x, t) for t in range(8)]
    assert np.array_equal(outs[0], x)
    assert len({o.tobytes() for o in outs}) == 8  # all 8 distinct
    assert np.array_equal(outs[4], x[:, ::-1]) and np.array_equal(outs[1], np.rot90(x))


def test_extract_and_datasets(tmp_path, monkeypatch):
    data = tmp_path / "data"
    image, full, eroded = make_labels(h=160, w=176)
    write_area(data, 1, image, full, eroded)
    write_area(data, 3, *make_labels(h=144, w=160, seed=1))

    s = extract_pb(data, [1, 3], tmp_path / "pb.npz", per_class=30, car_rotations=2, seed=0, val_fraction=0.2)
    assert s["per_class"] == [36] * 5 and s["cars"] == 12
    idx, meta = load_index(tmp_path / "pb.npz", "pb")
    ds = PBPatches(idx, data, tmp_path / "cache", split="train")
    dv = PBPatches(idx, data, tmp_path / "cache", split="val")
    assert len(ds) + len(dv) == 180 and len(dv) > 0
    x, y = ds[0]
    assert x.shape == (5, 65, 65) and x.dtype.is_floating_point and 0 <= int(y) <= 4
    assert (tmp_path / "cache" / "1" / "image.npy").is_file()
    # an unrotated patch equals the raster window
    k = int(np.flatnonzero((~idx["val"]) & (idx["angle"] == 0) & (idx["area"] == 1))[0])
    j = int(np.flatnonzero(~idx["val"])[: k + 1].size - 1)
    r, c = int(idx["row"][k]), int(idx["col"][k])
    assert np.array_equal(ds[j][0].numpy(), cut_window(image, r - 32, c - 32, 65))
    # a rotated car copy is rotated once and then served from memory, unchanged
    rot = np.flatnonzero(ds.angle != 0)
    assert rot.size > 0
    first = [ds[int(i)][0].numpy().copy() for i in rot]
    ds[int(rot[0])][0].zero_()  # what a caller does to an item does not reach the kept copy
    calls = []
    real = patches_module.cut_pb_patch
    monkeypatch.setattr(patches_module, "cut_pb_patch", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = [ds[int(i)][0].numpy() for i in rot]
    ds[int(np.flatnonzero(ds.angle == 0)[0])]  # unrotated patches are cut each time
    monkeypatch.undo()
    assert len(calls) == 1 and all(np.array_equal(a, b) for a, b in zip(first, again))
    fresh = PBPatches(idx, data, tmp_path / "cache", split="train")
    assert all(np.array_equal(fresh[int(i)][0].numpy(), a) for i, a in zip(rot, first))
    # a memory bound: room for two copies keeps two, the others are rotated each time
    small = PBPatches(idx, data, tmp_path / "cache", split="train", keep_bytes=2 * first[0].nbytes)
    assert all(np.array_equal(small[int(i)][0].numpy(), a) for i, a in zip(rot, first))
    calls.clear()
    monkeypatch.setattr(patches_module, "cut_pb_patch", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert all(np.array_equal(small[int(i)][0].numpy(), a) for i, a in zip(rot, first))
    assert len(small._rotated) == 2 and len(calls) == rot.size - 2
    monkeypatch.undo()
    # prepare(): every rotated copy made up front (DataLoader workers, forked anew each
    # epoch, inherit them), the same pixels; within the memory bound, two
    ready = PBPatches(idx, data, tmp_path / "cache", split="train")
    assert ready.prepare() == rot.size and sorted(ready._rotated) == sorted(int(i) for i in rot)
    assert all(np.array_equal(ready._rotated[int(i)], a) for i, a in zip(rot, first))
    bounded = PBPatches(idx, data, tmp_path / "cache", split="train", keep_bytes=2 * first[0].nbytes)
    assert bounded.prepare() == 2
    loaders = [[b[0] for b in DataLoader(ready, batch_size=7, num_workers=w)] for w in (0, 2)]
    assert all(torch.equal(a, b) for a, b in zip(*loaders, strict=True))

    s = extract_fcn(data, [1, 3], tmp_path / "fcn.npz", size=64, overlap=0.5, seed=0, val_fraction=0.25)
    fidx, fmeta = load_index(tmp_path / "fcn.npz", "fcn")
    assert int(fmeta["size"]) == 64
    # area 1 (160 x 176): rows 0,32,64,96, cols 0,32,64,96,112 (last = 176 - 64): 4 x 5;
    # area 3 (144 x 160): rows 0,32,64,80 (last = 144 - 64), cols 0,32,64,96: 4 x 4
    assert s["positions"] == 4 * 5 + 4 * 4 and s["rows"] == 8 * s["positions"]
    for pos in range(s["positions"]):
        assert sorted(fidx["transform"][pos * 8 : pos * 8 + 8].tolist()) == list(range(8))
        assert len(set(fidx["val"][pos * 8 : pos * 8 + 8])) == 1
    ftrain = FCNPatches(fidx, 64, data, tmp_path / "cache", split="train")
    fval = FCNPatches(fidx, 64, data, tmp_path / "cache", split="val")
    assert len(ftrain) == 8 * (s["positions"] - s["val_positions"]) and len(fval) == s["val_positions"]
    # the 8 transforms are applied identically to image and labels: band 0 carries
    # (noise + label); recover the label from an untransformed window and compare
    for i in range(8):
        x, y = ftrain[i]
        a, r, c, t = (int(v[i]) for v in (ftrain.area, ftrain.row, ftrain.col, ftrain.transform))
        src_img = image if a == 1 else make_labels(h=144, w=160, seed=1)[0]
        src_lab = full if a == 1 else make_labels(h=144, w=160, seed=1)[1]
        assert t == i % 8
        assert np.array_equal(x.numpy(), dihedral(src_img[:, r : r + 64, c : c + 64], t))
        assert np.array_equal(y.numpy(), dihedral(src_lab[r : r + 64, c : c + 64], t).astype(np.int64))
        # image and label move together: the label-driven signal aligns pixel by pixel
        assert np.array_equal(np.argwhere(y.numpy() == CAR), np.argwhere(dihedral(src_lab[r : r + 64, c : c + 64] == CAR, t)))


def test_fcn_held_out_positions_are_disjoint_and_their_labels_unseen_in_training(tmp_path):
    # held-out windows come from a non-overlapping sub-grid, and every training patch that
    # overlaps one sees those pixels as ignored (255); held-out patches keep their labels
    data = tmp_path / "data"
    areas = {1: make_labels(h=160, w=176), 3: make_labels(h=144, w=160, seed=1)}
    for a, (img, full, ero) in areas.items():
        write_area(data, a, img, full, ero)
    s = extract_fcn(data, [1, 3], tmp_path / "fcn.npz", size=64, overlap=0.5, seed=3, val_fraction=0.25)
    idx, _ = load_index(tmp_path / "fcn.npz", "fcn")
    assert s["val_positions"] >= 1
    masks = {a: fcn_heldout_mask(idx, a, areas[a][1].shape, 64) for a in areas}
    held = sum(int(m.sum()) for m in masks.values())
    assert held == s["val_positions"] * 64 * 64  # no two held-out windows share a pixel
    assert s["val_pixel_fraction"] == round(held / (160 * 176 + 144 * 160), 4)
    ftrain = FCNPatches(idx, 64, data, tmp_path / "cache", split="train")
    touched = 0
    for i in range(len(ftrain)):
        a, r, c, t = (int(v[i]) for v in (ftrain.area, ftrain.row, ftrain.col, ftrain.transform))
        want = np.where(masks[a], IGNORE, areas[a][1])[r : r + 64, c : c + 64]
        assert np.array_equal(ftrain[i][1].numpy(), dihedral(want, t).astype(np.int64))
        touched += bool(masks[a][r : r + 64, c : c + 64].any())
    assert touched > 0  # the masking was exercised
    fval = FCNPatches(idx, 64, data, tmp_path / "cache", split="val")
    for i in range(len(fval)):
        a, r, c = int(fval.area[i]), int(fval.row[i]), int(fval.col[i])
        assert masks[a][r : r + 64, c : c + 64].all()
        assert np.array_equal(fval[i][1].numpy(), areas[a][1][r : r + 64, c : c + 64].astype(np.int64))


def test_fcn_held_out_share_is_a_share_of_pixels():
    assert fcn_val_candidates(fcn_grid(448, 128, 0.5), 128).tolist() == [0, 128, 256]
    assert fcn_val_candidates(fcn_grid(160, 64, 0.5), 64).tolist() == [0, 64]
    shapes = [(2000, 2500), (1900, 2600), (2500, 2000)]
    for seed in range(3):
        idx = index_fcn([1, 2, 3], shapes, 128, 0.5, seed, 0.1)
        held = sum(int(fcn_heldout_mask(idx, a, hw, 128).sum()) for a, hw in zip([1, 2, 3], shapes))
        assert 0.07 < held / sum(h * w for h, w in shapes) < 0.13
    assert not index_fcn([1], shapes[:1], 128, 0.5, 0, 0.0)["val"].any()


def test_datasets_yield_the_selected_bands(tmp_path):
    # TrainSettings.bands: the datasets cut the same windows and keep only those bands, in order
    data = tmp_path / "data"
    image, full, eroded = make_labels(h=96, w=112)
    write_area(data, 1, image, full, eroded)
    extract_pb(data, [1], tmp_path / "pb.npz", per_class=8, car_rotations=1, seed=0, val_fraction=0.2)
    extract_fcn(data, [1], tmp_path / "fcn.npz", size=32, overlap=0.5, seed=0, val_fraction=0.2)
    pidx, _ = load_index(tmp_path / "pb.npz", "pb")
    fidx, _ = load_index(tmp_path / "fcn.npz", "fcn")
    bands = (2, 0)
    for split in ("train", "val"):
        pa, pb = PBPatches(pidx, data, tmp_path / "c", split), PBPatches(pidx, data, tmp_path / "c", split, bands=bands)
        fa = FCNPatches(fidx, 32, data, tmp_path / "c", split)
        fb = FCNPatches(fidx, 32, data, tmp_path / "c", split, bands=bands)
        for full_ds, sub_ds in ((pa, pb), (fa, fb)):
            assert len(full_ds) == len(sub_ds) > 0
            for i in range(0, len(full_ds), max(1, len(full_ds) // 7)):  # rotated PB copies included
                (xa, ya), (xb, yb) = full_ds[i], sub_ds[i]
                assert xb.shape == (2, *xa.shape[1:]) and xb.dtype == xa.dtype
                assert torch.equal(xb, xa[list(bands)]) and torch.equal(ya, yb)


def test_extract_errors(tmp_path):
    with pytest.raises(DataError, match="labels.tif"):
        extract_pb(tmp_path, [1], tmp_path / "pb.npz", per_class=5, car_rotations=1, seed=0)
    image, full, eroded = make_labels()
    full[full == CAR] = 0
    eroded[eroded == CAR] = 0
    write_area(tmp_path, 1, image, full, eroded)
    with pytest.raises(DataError, match="no car"):
        extract_pb(tmp_path, [1], tmp_path / "pb.npz", per_class=5, car_rotations=1, seed=0)
    assert not (tmp_path / "pb.npz").exists()
    with pytest.raises(DataError, match="smaller than the FCN patch"):
        extract_fcn(tmp_path, [1], tmp_path / "fcn.npz", size=256, overlap=0.5, seed=0)
    bad = tmp_path / "x.npz"
    np.savez(bad, area=np.zeros(3))
    with pytest.raises(DataError, match="missing"):
        load_index(bad, "fcn")


def test_pb_tiles_sample_balanced_held_in_centres_with_their_context(tmp_path):
    # band 0 carries the eroded GT, band 1 the held-out mask and band 2 the training car
    # centres of the PB index, so every sampled centre can be checked against the pixel
    # under it, through the tile's dihedral transform
    data = tmp_path / "data"
    _, full, eroded = make_labels(h=160, w=176)
    write_area(data, 1, np.zeros((5, 160, 176), np.float32), full, eroded)
    extract_pb(data, [1], tmp_path / "pb.npz", per_class=30, car_rotations=2, seed=0, val_fraction=0.2)
    idx, _ = load_index(tmp_path / "pb.npz", "pb")
    held = heldout_mask(idx, 1, full)
    car_centre = np.zeros((160, 176), np.float32)
    cars = (idx["label"] == CAR) & ~idx["val"]
    car_centre[idx["row"][cars], idx["col"][cars]] = 1
    image = np.stack([eroded.astype(np.float32), held.astype(np.float32), car_centre, *np.zeros((2, 160, 176), np.float32)])
    write_area(data, 1, image, full, eroded)
    ds = PBTiles(idx, data, tmp_path / "cache", tile_size=48, centres=8, seed=0)
    assert len(ds) == int((~idx["val"]).sum())
    batches = ds.epoch_batches(2, n_batches=7, batch_size=5)
    assert len(batches) == 7 and all(len(b) == 5 for b in batches)
    for b in batches:  # tile j anchored at a training row of class j mod 5, from epoch 2
        assert [int(ds.label[j - len(ds)]) for j in b] == [0, 1, 2, 3, 4] and all(len(ds) <= j < 2 * len(ds) for j in b)
    assert batches == ds.epoch_batches(2, n_batches=7, batch_size=5) != ds.epoch_batches(3, n_batches=7, batch_size=5)
    for b in batches:
        items = [ds[j] for j in b]
        for x, lab, j in items:
            assert x.shape == (5, 48 + 64, 48 + 64) and lab.shape == (48, 48)
            region = x[:3, 32:80, 32:80].numpy()
            # no clutter, ignored or held-out pixel; of a car only its centre in the PB index
            usable = (region[0] <= CAR) & (region[1] == 0) & ((region[0] != CAR) | (region[2] == 1))
            assert np.array_equal(lab.numpy()[usable], region[0][usable].astype(np.int64)) and (lab.numpy()[~usable] == IGNORE).all()
        xb, tile, row, col, y = ds.collate(items)
        assert xb.shape == (5, 5, 112, 112) and len(tile) == len(row) == len(col) == len(y) == 40
        assert ((row >= 0) & (row < 48) & (col >= 0) & (col < 48)).all()
        under = xb[tile, :3, row + 32, col + 32].numpy()  # the pixel under each centre
        assert np.array_equal(under[:, 0], y.numpy().astype(np.float32)) and not under[:, 1].any()
        assert (under[y.numpy() == CAR, 2] == 1).all()  # cars: centred patches only
        assert np.array_equal(np.bincount(y.numpy(), minlength=5), [8] * 5)  # every class, evenly
        again = ds.collate([ds[j] for j in b])
        assert all(torch.equal(u, v) for u, v in zip(again, (xb, tile, row, col, y)))  # seeded by the item ids
    assert not torch.equal(ds[5][0], ds[5 + len(ds)][0])  # another epoch, another tile


def test_heldout_mask_covers_held_out_cars_and_centres():
    _, full, eroded = make_labels(h=160, w=176)
    idx = {
        "area": np.array([1, 1, 1, 2], np.int16),
        "row": np.array([15, 80, 100, 80], np.int32),
        "col": np.array([20, 90, 130, 90], np.int32),
        "label": np.array([CAR, 1, CAR, 1], np.uint8),
        "val": np.array([True, True, False, True]),
    }
    m = heldout_mask(idx, 1, full)
    comp, _ = ndimage.label(full == CAR, structure=np.ones((3, 3), bool))
    assert m[comp == comp[15, 20]].all() and not m[comp == comp[100, 130]].any()  # held-out car whole; held-in car free
    assert m[78:83, 88:93].all() and m.sum() == (comp == comp[15, 20]).sum() + 25  # the 5x5 square, nothing else
