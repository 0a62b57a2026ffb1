"""Synthetic Vaihingen-like scenes and their ISPRS-layout archives (issue 2, source 2)."""

from __future__ import annotations

import hashlib
import json
import zipfile

from pathlib import Path

import numpy as np
import pytest
import rasterio
from skimage.measure import label as cc_label
from skimage.measure import regionprops

from conftest import ROOT

from vaiseg.classes import CAR, CLASSES, IGNORE, rgb_to_index
from vaiseg.config import LABELLED_AREAS
from vaiseg.data import layout
from vaiseg.data.erosion import erode_boundaries
from vaiseg.data.synthetic import class_frequencies, generate_scene, write_archives
from vaiseg.data.synthetic.heights import block_means

IMP, BUILDING, LOW_VEG, TREE, CLUTTER = 0, 1, 2, 3, 5
AREAS = (1, 3, 5, 7, 11, 13, 15, 17)
SIZE = 448


@pytest.fixture(scope="module")
def scenes():
    return {a: generate_scene(a, SIZE, SIZE, seed=2016) for a in AREAS}


def test_scene_types_and_shapes(scenes):
    s = scenes[1]
    assert s.irrg.shape == (3, SIZE, SIZE) and s.irrg.dtype == np.uint8
    assert s.dsm.shape == s.ndsm.shape == s.labels.shape == (SIZE, SIZE)
    assert s.dsm.dtype == s.ndsm.dtype == np.float32 and s.labels.dtype == np.uint8
    assert s.labels.max() <= 5
    assert np.isfinite(s.dsm).all() and (s.ndsm >= 0).all()
    assert 200 < s.dsm.min() < s.dsm.max() < 350  # metres above sea level
    assert abs(s.geo.transform.a - 0.09) < 1e-9 and s.geo.crs.to_epsg() == 32632


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = generate_scene(2, 160, 192, seed=7)
    b = generate_scene(2, 160, 192, seed=7)
    for f in ("irrg", "dsm", "ndsm", "labels"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = generate_scene(2, 160, 192, seed=8)
    d = generate_scene(4, 160, 192, seed=7)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.irrg, d.irrg)


def test_pooled_class_frequencies_close_to_vaihingen(scenes):
    counts = sum(np.bincount(s.labels.ravel(), minlength=6)[:6] for s in scenes.values())
    f = counts / counts.sum()
    # Vaihingen: ~27 / 26 / 21 / 23 / 1-2 / <=1 %; eight 40 m tiles vary, so +-10 points
    assert 0.17 <= f[IMP] <= 0.37, f
    assert 0.16 <= f[BUILDING] <= 0.36, f
    assert 0.11 <= f[LOW_VEG] <= 0.31, f
    assert 0.13 <= f[TREE] <= 0.33, f
    assert 0.007 <= f[CAR] <= 0.035, f
    assert f[CLUTTER] <= 0.02, f
    assert sum(s.labels.__eq__(CAR).any() for s in scenes.values()) >= len(AREAS) - 1


def _car_props(scenes):
    props = []
    for s in scenes.values():
        cars = cc_label(s.labels == CAR, connectivity=1)
        # components touched by a tree crown (or the tile border) are partly hidden
        near_tree = np.zeros_like(cars, dtype=bool)
        t = s.labels == TREE
        near_tree[1:] |= t[:-1]
        near_tree[:-1] |= t[1:]
        near_tree[:, 1:] |= t[:, :-1]
        near_tree[:, :-1] |= t[:, 1:]
        for r in regionprops(cars):
            y0, x0, y1, x1 = r.bbox
            if near_tree[cars == r.label].any() or y0 == 0 or x0 == 0 or y1 == SIZE or x1 == SIZE:
                continue
            props.append(r)
    return props


def test_car_size_and_orientation(scenes):
    more = {a: generate_scene(a, SIZE, SIZE, seed=99) for a in (2, 4, 6, 8)}
    props = _car_props(scenes) + _car_props(more)
    assert len(props) >= 10
    length = np.median([r.axis_major_length for r in props])
    width = np.median([r.axis_minor_length for r in props])
    # ~2 x 4.5 m at 9 cm/px; axis lengths of a rectangle are ~1.15 x its sides
    assert 42 <= length <= 62, length
    assert 17 <= width <= 26, width
    assert 1.8 <= length / width <= 3.2
    # orientation varies across scenes (rotated street grids, both directions)
    ang = np.array([r.orientation for r in props])
    doubled = np.exp(2j * ang)  # orientation is axial: fold modulo pi
    assert abs(doubled.mean()) < 0.9


def test_infrared_bright_on_vegetation_dark_on_roads(scenes):
    ir_veg, ir_road, r_veg, r_road = [], [], [], []
    for s in scenes.values():
        ir, red = s.irrg[0].astype(float), s.irrg[1].astype(float)
        lit = s.irrg.astype(float).mean(axis=0) >= 60  # out of cast shadows
        veg = np.isin(s.labels, (LOW_VEG, TREE)) & lit
        road = (s.labels == IMP) & lit
        ir_veg.append(ir[veg].mean())
        ir_road.append(ir[road].mean())
        r_veg.append(red[veg].mean())
        r_road.append(red[road].mean())
    assert np.mean(ir_veg) > 1.15 * np.mean(ir_road)  # real area-1 crop: 1.4
    # vegetation: IR >> R (NDVI > 0); roads: IR ~ R (grey)
    assert np.mean(ir_veg) > 1.6 * np.mean(r_veg)
    assert 0.8 < np.mean(ir_road) / np.mean(r_road) < 1.25


def test_heights_ordered_by_class(scenes):
    nd = np.concatenate([s.ndsm.ravel() for s in scenes.values()])
    lab = np.concatenate([s.labels.ravel() for s in scenes.values()])
    med = {c: float(np.median(nd[lab == c])) for c in (IMP, BUILDING, LOW_VEG, TREE, CAR)}
    assert med[IMP] < 0.3 and med[LOW_VEG] < 0.8
    # dense image matching loses most parked cars (heights.CAR_LOST): mostly ground
    assert med[CAR] < 0.8
    assert 5.5 < med[BUILDING] < 16 and 4.5 < med[TREE] < 20
    assert med[BUILDING] > max(med[CAR], med[LOW_VEG], med[IMP]) + 4
    # nDSM is DSM minus a terrain with a slope: the DSM itself is not flat
    s = scenes[1]
    ground = s.labels == IMP
    assert np.ptp(s.dsm[ground] - s.ndsm[ground]) > 0.2


def test_class_frequencies_ignores_boundary_pixels():
    lab = np.array([[0, 0, 1, IGNORE], [4, 4, 4, IGNORE]], np.uint8)
    f = class_frequencies(lab)
    assert list(f) == [c.name for c in CLASSES]
    assert f["Car"] == pytest.approx(0.5) and f["Building"] == pytest.approx(1 / 6)
    assert sum(f.values()) == pytest.approx(1.0)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_write_archives_layout_md5_and_determinism(tmp_path):
    areas = (2, 1)  # area 1 is labelled (gts_for_participants), area 2 is not
    paths = write_archives(tmp_path / "a", areas, 96, 112, seed=5, progress=False)
    assert set(paths) == set(layout.ARCHIVES)
    for key, p in paths.items():
        assert p.name == layout.ARCHIVES[key] and p.exists()
    md5 = json.loads((tmp_path / "a" / "md5.json").read_text())
    assert md5 == {k: _md5(p) for k, p in paths.items()}

    names = {k: sorted(zipfile.ZipFile(p).namelist()) for k, p in paths.items()}
    assert 1 in LABELLED_AREAS and 2 not in LABELLED_AREAS
    assert names["top"] == sorted(
        [layout.TOP_MEMBER.format(area=a) for a in areas]
        + [layout.DSM_MEMBER.format(area=a) for a in areas]
        + [layout.GT_PARTICIPANTS_MEMBER.format(area=1)]
    )
    assert names["gt"] == sorted(layout.GT_MEMBER.format(area=a) for a in areas)
    assert names["gt_eroded"] == sorted(layout.GT_ERODED_MEMBER.format(area=a) for a in areas)
    assert names["ndsm"] == sorted(layout.NDSM_MEMBER.format(area=a) for a in areas)
    # ingestion finds them with layout's patterns (group 1 = the area)
    for (key, kind), template in {
        ("top", "top"): layout.TOP_MEMBER,
        ("top", "dsm"): layout.DSM_MEMBER,
        ("gt", "gt"): layout.GT_MEMBER,
        ("gt_eroded", "gt_eroded"): layout.GT_ERODED_MEMBER,
        ("ndsm", "ndsm"): layout.NDSM_MEMBER,
    }.items():
        for a in areas:
            m = layout.PATTERNS[(key, kind)].search(template.format(area=a))
            assert m and int(m.group(1)) == a

    # rasters: types, georeferencing, GT colours round trip, eroded GT = erode(GT)
    scene = generate_scene(1, 96, 112, seed=5)

    def read(key, member):
        with rasterio.open(f"/vsizip/{paths[key]}/{member.format(area=1)}") as src:
            return src.read(), src.transform, src.crs

    top, tr, crs = read("top", layout.TOP_MEMBER)
    assert top.dtype == np.uint8 and top.shape == (3, 96, 112)
    np.testing.assert_array_equal(top, scene.irrg)
    assert crs.to_epsg() == 32632 and tr == scene.geo.transform and tr.a == pytest.approx(0.09)
    dsm, tr2, _ = read("top", layout.DSM_MEMBER)
    assert dsm.dtype == np.float32 and tr2 == tr
    np.testing.assert_array_equal(dsm[0], scene.dsm)
    ndsm, _, _ = read("ndsm", layout.NDSM_MEMBER)
    np.testing.assert_array_equal(ndsm[0], scene.ndsm)
    gt, _, _ = read("gt", layout.GT_MEMBER)
    lab, unknown = rgb_to_index(np.moveaxis(gt, 0, -1))
    assert not unknown
    np.testing.assert_array_equal(lab, scene.labels)
    part, _, _ = read("top", layout.GT_PARTICIPANTS_MEMBER)
    np.testing.assert_array_equal(part, gt)
    er, _, _ = read("gt_eroded", layout.GT_ERODED_MEMBER)
    lab_e, unknown = rgb_to_index(np.moveaxis(er, 0, -1), allow_boundary=True)
    assert not unknown and (lab_e == IGNORE).any()
    np.testing.assert_array_equal(lab_e, erode_boundaries(scene.labels, 3))

    freq = (tmp_path / "a" / "class_frequencies.csv").read_text().splitlines()
    assert freq[0] == "area," + ",".join(c.key for c in CLASSES)
    assert [r.split(",")[0] for r in freq[1:]] == ["1", "2", "pooled"]

    # same inputs -> byte-identical archives; another seed -> different ones
    again = write_archives(tmp_path / "b", areas, 96, 112, seed=5, progress=False)
    assert {k: _md5(p) for k, p in again.items()} == md5
    other = write_archives(tmp_path / "c", areas, 96, 112, seed=6, progress=False)
    assert _md5(other["top"]) != md5["top"]
    # no temporary files are left behind
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        list(layout.ARCHIVES.values()) + ["md5.json", "class_frequencies.csv"]
    )


def test_cast_shadow_length_and_direction():
    from vaiseg.data.synthetic import cast_shadows

    dsm = np.full((300, 200), 250.0, np.float32)
    dsm[190:210, 90:110] += 9.0  # a 9 m block
    # sun due south (azimuth 180 deg) at 45 deg: the shadow falls north, 9 m = 100 px long
    sh = cast_shadows(dsm, 180.0, 45.0) > 0.5
    assert not sh[211:, :].any() and not sh[:, :85].any() and not sh[:, 115:].any()
    rows = np.flatnonzero(sh[:190, 100])
    assert rows.size and abs((190 - rows.min()) - 100) <= 3
    assert not sh[192:208, 92:108].any()  # the roof itself is lit
    # sun from the east (90 deg) at 60 deg: shadow to the west, 9 / tan(60) m = 58 px
    sh = cast_shadows(dsm, 90.0, 60.0) > 0.5
    cols = np.flatnonzero(sh[200, :90])
    assert cols.size and abs((90 - cols.min()) - 58) <= 3 and not sh[200, 110:].any()


# generate_scene(area, height, width, seed) pinned in tests/synthetic_digests.json: the
# sha256 of the uint8 arrays (IR-R-G, labels) and the 16 x 16 block means of the float
# ones (DSM, nDSM; to 1e-3 m, because their last bits differ between CPUs — see
# tools/pin_synthetic.py). A refactor must leave them unchanged; after a deliberate change
# of the generator regenerate them with tools/pin_synthetic.py (issue 11). They also pin
# numpy's PCG64 streams and scipy's filters: a numpy / scipy upgrade may move them with no
# change here.
PINNED = json.loads((Path(__file__).parent / "synthetic_digests.json").read_text())


@pytest.mark.parametrize("pin", PINNED, ids=lambda p: "-".join(map(str, p["args"])))
def test_scene_arrays_pinned(pin):
    s = generate_scene(*pin["args"])
    got = {f: hashlib.sha256(np.ascontiguousarray(getattr(s, f)).tobytes()).hexdigest() for f in pin["sha256"]}
    assert got == pin["sha256"]
    for f, want in pin["block_means"].items():
        np.testing.assert_allclose(block_means(getattr(s, f), pin["block"]), np.array(want), rtol=0, atol=1e-3, err_msg=f)


def test_block_pins_catch_a_small_local_change():
    # one roof corner 0.5 m lower over 4 x 4 px moves its block's mean by 0.03 m >> 1e-3
    pin = PINNED[0]
    s = generate_scene(*pin["args"])
    dsm = s.dsm.copy()
    dsm[:4, :4] -= 0.5
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(block_means(dsm, pin["block"]), np.array(pin["block_means"]["dsm"]), rtol=0, atol=1e-3)


def test_public_api_importable_from_the_package():
    import vaiseg.data.synthetic as synthetic

    for name in synthetic.__all__:
        assert getattr(synthetic, name) is not None, name
    assert synthetic.PIXEL_SIZE == 0.09 and synthetic.CRS_EPSG == 32632
    geo = synthetic.area_geoinfo(1)
    assert geo.transform.a == synthetic.PIXEL_SIZE and geo.crs.to_epsg() == synthetic.CRS_EPSG
    assert isinstance(generate_scene(1, 64, 64, 0), synthetic.Scene)


def test_code_digest_changes_with_the_generator_code(tmp_path):
    """synthesize_archives takes the generator's code digest as a param, so a changed
    generator re-synthesizes the scenes (Snakemake does not track package code)."""
    import shutil
    from pathlib import Path

    import vaiseg.data.synthetic as synthetic

    src = Path(synthetic.__file__).parent
    copy = tmp_path / "synthetic"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert synthetic.code_digest() == synthetic.code_digest(copy) == synthetic.code_digest()
    (copy / "render.py").write_text((copy / "render.py").read_text() + "\n# changed\n")
    assert synthetic.code_digest(copy) != synthetic.code_digest()


def test_code_digest_does_not_import_the_generator():
    """The Snakefile computes the digest at every parse (twice per SLURM job), so its
    module must not pull in the generator and its scipy/scikit-image imports."""
    import subprocess
    import sys

    code = ("import sys; from vaiseg.data.code_digest import synthetic_code_digest as d; d(); "
            "heavy = [m for m in ('vaiseg.data.synthetic', 'scipy', 'skimage') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    from vaiseg.data import code_digest
    from vaiseg.data import synthetic

    assert synthetic.code_digest is code_digest.synthetic_code_digest
    assert "from vaiseg.data.code_digest import" in (ROOT / "workflow" / "rules" / "data.smk").read_text()
