"""Normalised 5-band images, train-only statistics, label rasters and their checks (§3)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from skimage.morphology import dilation, disk, erosion

from fake_isprs import colour_gt, fake_area, fake_labels, write_fake_archives
from vaiseg.classes import IGNORE, N_CLASSES, index_to_rgb
from vaiseg.data.archives import extract_archives, load_manifest
from vaiseg.data.normalize import (
    BAND_NAMES,
    compute_stats,
    derive_ndsm,
    normalize_area,
    normalize_from_manifest,
)
from vaiseg.errors import DataError
from vaiseg.raster import read_raster

TRAIN, VAL = (1, 3), (11,)
KW = dict(opening_size_px=31, smooth_sigma_px=3.0)


def _setup(tmp_path, areas=(1, 3, 11), **fake_kwargs):
    paths = write_fake_archives(tmp_path / "zips", areas=areas, **fake_kwargs)
    extract_archives(paths, tmp_path / "ex", list(areas), progress=False)
    return tmp_path / "ex" / "manifest.json"


def _outs(tmp_path, area=1):
    d = tmp_path / "data" / str(area)
    return d / "image.tif", d / "labels.tif", d / "labels_eroded.tif"


def _assert_no_outputs(tmp_path):
    d = tmp_path / "data"
    assert not d.exists() or not [p for p in d.rglob("*") if p.is_file()]


@pytest.fixture
def prepared(tmp_path):
    manifest = _setup(tmp_path, with_ndsm=True)
    stats = compute_stats(manifest, TRAIN, out=tmp_path / "data" / "stats.json", progress=False, **KW)
    return manifest, stats


def test_band_order_and_standardisation(tmp_path, prepared):
    manifest, stats = prepared
    outs = _outs(tmp_path, 11)
    normalize_from_manifest(manifest, 11, tmp_path / "data" / "stats.json", *outs, **KW)
    img, geo = read_raster(outs[0])
    assert img.dtype == np.float32 and img.shape == (5, 64, 80)
    raw = fake_area(11)
    expected = np.stack([*raw["top"].astype(np.float32), raw["dsm"], raw["ndsm"]])
    mean = np.array(stats["mean"], dtype=np.float32)[:, None, None]
    std = np.array(stats["std"], dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(img * std + mean, expected, rtol=1e-5, atol=1e-3)
    import rasterio

    with rasterio.open(outs[0]) as src:
        assert src.descriptions == BAND_NAMES
        assert src.crs.to_epsg() == 32632
        assert src.transform.c == pytest.approx(497000.0 + 100 * 11) and src.transform.a == pytest.approx(0.09)


def test_stats_use_training_areas_only(tmp_path):
    # the validation area has a wildly different DSM: it must not move the statistics
    h, w = 64, 80
    manifest = _setup(tmp_path, dsm_override={11: np.full((h, w), 5000.0, np.float32)}, with_ndsm=True)
    stats = compute_stats(manifest, TRAIN, progress=False, **KW)
    stack = np.concatenate(
        [np.stack([*fake_area(a)["top"].astype(np.float64), fake_area(a)["dsm"], fake_area(a)["ndsm"]]).reshape(5, -1)
         for a in TRAIN], axis=1,
    )
    np.testing.assert_allclose(stats["mean"], stack.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(stats["std"], stack.std(axis=1), rtol=1e-6)
    assert stats["areas"] == list(TRAIN) and stats["bands"] == list(BAND_NAMES) and stats["pixels"] == 2 * h * w
    with_val = compute_stats(manifest, TRAIN + VAL, progress=False, **KW)
    assert with_val["mean"][3] > stats["mean"][3] + 1000  # the val DSM would have leaked in


def test_stats_file_written(tmp_path, prepared):
    _, stats = prepared
    assert json.loads((tmp_path / "data" / "stats.json").read_text()) == stats
    assert stats["ndsm"] == "supplied"


def test_label_round_trip_and_frequencies(tmp_path, prepared, caplog):
    manifest, stats = prepared
    outs = _outs(tmp_path, 3)
    with caplog.at_level(logging.INFO, logger="vaiseg.data.normalize"):
        freqs = normalize_area(load_manifest(manifest)[3], stats, *outs, **KW)
    labels, _ = read_raster(outs[1])
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[0], fake_labels(3))
    # index -> ISPRS colour -> file -> index is the identity
    np.testing.assert_array_equal(index_to_rgb(labels[0]).transpose(2, 0, 1), colour_gt(fake_labels(3)))
    truth = np.bincount(fake_labels(3).ravel(), minlength=N_CLASSES) / fake_labels(3).size
    np.testing.assert_allclose(list(freqs.values()), truth)
    assert "car" in caplog.text and "building" in caplog.text


def test_eroded_boundary_matches_independent_erosion(tmp_path, prepared):
    manifest, stats = prepared
    outs = _outs(tmp_path, 1)
    normalize_area(load_manifest(manifest)[1], stats, *outs, **KW)
    full = read_raster(outs[1])[0][0]
    eroded = read_raster(outs[2])[0][0]
    # independent: a pixel keeps its class iff the disk(3) around it holds only that class
    # (per-class binary erosion); the image border counts as the same class
    se = disk(3)
    keep = np.zeros(full.shape, bool)
    for c in range(N_CLASSES):
        m = np.pad(full == c, 3, mode="edge")
        keep |= erosion(m.astype(np.uint8), se)[3:-3, 3:-3].astype(bool) & (full == c)
    boundary = ~keep
    np.testing.assert_array_equal(eroded == IGNORE, boundary)
    np.testing.assert_array_equal(eroded[~boundary], full[~boundary])
    # sanity: the boundary band around the car is what a grey dilation/erosion shows
    car = (full == 4).astype(np.uint8)
    ring = dilation(car, se).astype(bool) & ~erosion(car, se).astype(bool)
    assert boundary[ring].all()


def test_derived_ndsm_used_when_not_supplied(tmp_path):
    manifest = _setup(tmp_path, areas=(1, 3))
    stats = compute_stats(manifest, (1,), progress=False, **KW)
    assert stats["ndsm"] == {"derived": KW}
    outs = _outs(tmp_path, 3)
    normalize_area(load_manifest(manifest)[3], stats, *outs, **KW)
    img = read_raster(outs[0])[0]
    ndsm = img[4] * stats["std"][4] + stats["mean"][4]
    lab = fake_labels(3)
    # building (8 m, 20 x 24 px < 31 px window) recovered in its interior
    inner = np.zeros_like(lab, bool)
    inner[10:22, 8:24] = True
    assert np.median(ndsm[inner & (lab == 1)]) == pytest.approx(8.0, abs=0.8)


def test_derive_ndsm_recovers_box_on_slope():
    h, w = 200, 240
    yy, xx = np.mgrid[0:h, 0:w]
    ground = 100 + 0.004 * xx + 0.003 * yy  # 0.4 cm and 0.3 cm per 9 cm pixel: a ~5 % slope
    box = np.zeros((h, w), np.float32)
    box[80:120, 90:140] = 12.0  # 40 x 50 px box, 12 m
    ndsm = derive_ndsm((ground + box).astype(np.float32), opening_size_px=71, smooth_sigma_px=5)
    assert ndsm.dtype == np.float32 and ndsm.shape == (h, w)
    np.testing.assert_allclose(ndsm[85:115, 95:135], 12.0, atol=0.15)  # slope bias, see docstring
    outside = np.ones((h, w), bool)
    outside[65:135, 75:155] = False
    assert np.abs(ndsm[outside]).max() < 0.05  # also at the tile borders
    assert (ndsm >= 0).all()
    flat = derive_ndsm((100 + box).astype(np.float32), opening_size_px=71, smooth_sigma_px=5)
    np.testing.assert_allclose(flat, box, atol=1e-3)  # exact on flat ground


def test_derive_ndsm_full_size_runs():
    dsm = np.random.default_rng(0).random((2500, 2000), dtype=np.float32)
    assert derive_ndsm(dsm).shape == (2500, 2000)


# ----------------------------------------------------------------- error cases


def test_shape_mismatch(tmp_path, prepared):
    manifest, stats = prepared
    entry = dict(load_manifest(manifest)[1])
    from fake_isprs import tif_bytes

    bad = tmp_path / "dsm_small.tif"
    bad.write_bytes(tif_bytes(np.zeros((60, 80), np.float32)))
    entry["dsm"] = bad
    with pytest.raises(DataError) as e:
        normalize_area(entry, stats, *_outs(tmp_path), **KW)
    msg = str(e.value)
    assert "dsm_small.tif" in msg and "(60, 80)" in msg and "(64, 80)" in msg
    _assert_no_outputs_except_stats(tmp_path)


def _assert_no_outputs_except_stats(tmp_path):
    d = tmp_path / "data"
    assert not [p for p in d.rglob("*") if p.is_file() and p.name != "stats.json"]


def test_unknown_colour_reported_with_count(tmp_path):
    rgb = colour_gt(fake_labels(1))
    rgb[:, 0, :7] = np.array([12, 34, 56], np.uint8)[:, None]  # 7 px of an unknown colour
    rgb[:, 1, :3] = 0  # black is not allowed in the FULL GT
    manifest = _setup(tmp_path, areas=(1,), gt_override={1: rgb})
    with pytest.raises(DataError) as e:
        normalize_area(load_manifest(manifest)[1], {"bands": list(BAND_NAMES), "mean": [0] * 5, "std": [1] * 5},
                       *_outs(tmp_path), **KW)
    msg = str(e.value)
    assert "top_mosaic_09cm_area1.tif" in msg and "(12, 34, 56) x 7 px" in msg and "(0, 0, 0) x 3 px" in msg
    _assert_no_outputs(tmp_path)


def test_too_much_nodata_fails(tmp_path):
    dsm = fake_area(1)["dsm"].copy()
    dsm[:10, :] = np.nan  # 10 / 64 rows = 15.6 %
    manifest = _setup(tmp_path, areas=(1,), dsm_override={1: dsm})
    with pytest.raises(DataError) as e:
        compute_stats(manifest, (1,), progress=False, max_nodata_fraction=0.01, **KW)
    msg = str(e.value)
    assert "dsm_09cm_matching_area1.tif" in msg and "15.62%" in msg and "max_nodata_fraction" in msg
    with pytest.raises(DataError, match="15.62%"):
        normalize_area(load_manifest(manifest)[1], {"bands": list(BAND_NAMES), "mean": [0] * 5, "std": [1] * 5},
                       *_outs(tmp_path), max_nodata_fraction=0.01, **KW)
    _assert_no_outputs(tmp_path)


def test_small_holes_filled(tmp_path):
    ref = fake_area(1)["dsm"]
    dsm = ref.copy()
    dsm[40, 70] = np.nan  # inside impervious background
    dsm[41, 70] = -9999.0  # declared nodata below
    from fake_isprs import tif_bytes

    manifest = _setup(tmp_path, areas=(1,))
    entry = dict(load_manifest(manifest)[1])
    p = tmp_path / "dsm_holes.tif"
    p.write_bytes(tif_bytes(dsm, 1, nodata=-9999.0))
    entry["dsm"] = p
    stats = {"bands": list(BAND_NAMES), "mean": [0] * 5, "std": [1] * 5}
    normalize_area(entry, stats, *_outs(tmp_path), max_nodata_fraction=0.01, **KW)
    img = read_raster(_outs(tmp_path)[0])[0]
    assert np.isfinite(img).all()
    # filled from a nearest neighbour: within one pixel's slope step of the truth
    assert abs(img[3, 40, 70] - ref[40, 70]) < 0.1 and abs(img[3, 41, 70] - ref[41, 70]) < 0.1


def test_bad_top_band_count(tmp_path):
    manifest = _setup(tmp_path, areas=(1,))
    entry = dict(load_manifest(manifest)[1])
    from fake_isprs import tif_bytes

    p = tmp_path / "top_gray.tif"
    p.write_bytes(tif_bytes(np.zeros((64, 80), np.uint8)))
    entry["top"] = p
    with pytest.raises(DataError, match="top_gray.tif.*3-band uint8"):
        normalize_area(entry, {"bands": list(BAND_NAMES), "mean": [0] * 5, "std": [1] * 5}, *_outs(tmp_path), **KW)
    _assert_no_outputs(tmp_path)


def test_failed_third_write_removes_the_first_two(tmp_path, prepared):
    manifest, stats = prepared
    image, labels, _ = _outs(tmp_path, 1)
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a folder is needed")
    with pytest.raises(Exception):
        normalize_area(load_manifest(manifest)[1], stats, image, labels, blocker / "labels_eroded.tif", **KW)
    assert not image.exists() and not labels.exists()


# ----------------------------------------------------------------- real ISPRS crop

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_samples"


@pytest.mark.skipif(not (REAL / "vaihingen_area1_0_0_512_irrg.png").exists(),
                    reason="../shared/real_samples (real Vaihingen crop) is absent")
def test_real_vaihingen_crop_ingested(tmp_path):
    """A real Vaihingen area-1 crop written as ISPRS archives reads back exactly.

    mmseg's label convention (0 = eroded boundary, 1..6 = classes) becomes an ISPRS
    colour eroded GT; the full GT fills the boundary with the nearest class; the DSM is
    flat (so its std over the training area is 0 and is replaced by 1)."""
    from scipy import ndimage as ndi

    from fake_isprs import tif_bytes, write_zip
    from vaiseg.data.layout import ARCHIVES, DSM_MEMBER, GT_ERODED_MEMBER, GT_MEMBER, TOP_MEMBER

    irrg = read_raster(REAL / "vaihingen_area1_0_0_512_irrg.png")[0]
    mm = read_raster(REAL / "vaihingen_area1_0_0_512_label.png")[0][0]
    eroded = np.where(mm == 0, IGNORE, mm.astype(np.int16) - 1).astype(np.uint8)
    _, (iy, ix) = ndi.distance_transform_edt(mm == 0, return_indices=True)
    full = eroded[iy, ix]
    zips = tmp_path / "zips"
    paths = {
        "top": write_zip(zips / ARCHIVES["top"], {
            TOP_MEMBER.format(area=1): tif_bytes(irrg, 1),
            DSM_MEMBER.format(area=1): tif_bytes(np.full(mm.shape, 265.0, np.float32), 1),
        }),
        "gt": write_zip(zips / ARCHIVES["gt"], {GT_MEMBER.format(area=1): tif_bytes(colour_gt(full), 1)}),
        "gt_eroded": write_zip(zips / ARCHIVES["gt_eroded"], {
            GT_ERODED_MEMBER.format(area=1): tif_bytes(colour_gt(full, eroded == IGNORE), 1)}),
    }
    extract_archives(paths, tmp_path / "ex", [1], progress=False)
    stats = compute_stats(tmp_path / "ex" / "manifest.json", [1], progress=False)
    assert stats["std"][3] == 1.0 and stats["std"][4] == 1.0  # flat DSM -> constant bands
    outs = _outs(tmp_path, 1)
    freqs = normalize_from_manifest(tmp_path / "ex" / "manifest.json", 1, stats, *outs)
    np.testing.assert_array_equal(read_raster(outs[2])[0][0], eroded)
    np.testing.assert_array_equal(read_raster(outs[1])[0][0], full)
    img = read_raster(outs[0])[0]
    assert np.isfinite(img).all() and np.allclose(img[3:], 0)
    np.testing.assert_allclose(img[:3].reshape(3, -1).mean(axis=1), 0, atol=1e-4)  # its own statistics
    assert 0.005 < freqs["car"] < 0.05  # the README: cars ~1.9 % of the crop


def test_rgba_gt_with_opaque_alpha_accepted_other_band_counts_refused(tmp_path):
    from fake_isprs import tif_bytes
    from vaiseg.data.normalize import read_labels

    rgb = colour_gt(fake_labels(1))
    p = tmp_path / "gt_rgba.tif"
    p.write_bytes(tif_bytes(np.concatenate([rgb, np.full((1, 64, 80), 255, np.uint8)])))
    np.testing.assert_array_equal(read_labels(p), fake_labels(1))
    p.write_bytes(tif_bytes(np.concatenate([rgb, np.zeros((1, 64, 80), np.uint8)])))
    with pytest.raises(DataError, match="gt_rgba.tif.*4 band"):
        read_labels(p)
