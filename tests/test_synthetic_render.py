"""Synthetic scenes: light (soft shadows, diffuse light), the matched DSM / nDSM and the
annotation-like ground truth (vaiseg.data.synthetic render, heights, labels), on small
hand-made canvases with known answers and on a few generated areas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import vaiseg.data.synthetic.scene as scene_mod
from vaiseg.data.erosion import erode_boundaries
from vaiseg.data.synthetic import cast_shadows, generate_scene
from vaiseg.data.synthetic.canvas import _Canvas
from vaiseg.data.synthetic.heights import _surface_models
from vaiseg.data.synthetic.labels import BUILDING, CAR, CLUTTER, IMP, LOW_VEG, TREE, _annotate
from vaiseg.data.synthetic.materials import ASPHALT, GRASS, M_ASPHALT, M_CAR, M_GRASS, M_ROOF_FLAT, M_TREE, TREE_LIT
from vaiseg.data.synthetic.render import _render, _shadow_model
from vaiseg.realism.measures import boundary_fraction


def _sun(az: float, el: float) -> np.ndarray:
    a, e = math.radians(az), math.radians(el)
    return np.array([math.sin(a) * math.cos(e), -math.cos(a) * math.cos(e), math.sin(e)], np.float32)


def _canvas(h: int, w: int, az: float = 180.0, el: float = 45.0) -> _Canvas:
    """Flat asphalt canvas, nothing on it."""
    cv = _Canvas(h, w, np.random.default_rng(0), _sun(az, el))
    cv.label[:] = IMP
    cv.albedo[:] = np.asarray(ASPHALT, np.float32)[:, None, None]
    cv.material[:] = M_ASPHALT
    return cv


def _edges(labels: np.ndarray) -> np.ndarray:
    e = np.zeros(labels.shape, bool)
    e[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    e[1:] |= labels[1:] != labels[:-1]
    return e


def _edge_offsets(raw: np.ndarray, ann: np.ndarray) -> np.ndarray:
    """Distance (px) from every edge pixel of ``ann`` to the nearest edge pixel of ``raw``."""
    return ndimage.distance_transform_edt(~_edges(raw))[_edges(ann)]


@pytest.fixture(scope="module")
def raw_and_annotated():
    """(raw canvas labels, annotated labels) of four generated 256 px areas."""
    captured = []
    original = scene_mod._annotate

    def capture(label, rng):
        out = original(label, rng)
        captured.append((label.copy(), out))
        return out

    scene_mod._annotate = capture
    try:
        for area in (1, 3, 5, 7):
            generate_scene(area, 256, 256, seed=2016)
    finally:
        scene_mod._annotate = original
    return captured


# ----------------------------------------------------------------------------- determinism


def test_every_stage_is_deterministic_for_a_seed():
    a = generate_scene(5, 128, 160, seed=11)
    b = generate_scene(5, 128, 160, seed=11)
    for f in ("irrg", "dsm", "ndsm", "labels"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    lab = a.labels
    np.testing.assert_array_equal(_annotate(lab, np.random.default_rng(3)), _annotate(lab, np.random.default_rng(3)))
    assert not np.array_equal(_annotate(lab, np.random.default_rng(3)), _annotate(lab, np.random.default_rng(4)))


def test_stages_draw_from_their_own_streams():
    """The annotation stage has its own generator: the image and the surface models do
    not depend on it (the same image with another annotation draw)."""
    original = scene_mod._annotate
    try:
        scene_mod._annotate = lambda label, rng: label.copy()
        plain = generate_scene(2, 96, 96, seed=4)
    finally:
        scene_mod._annotate = original
    s = generate_scene(2, 96, 96, seed=4)
    np.testing.assert_array_equal(plain.irrg, s.irrg)
    np.testing.assert_array_equal(plain.dsm, s.dsm)


# ----------------------------------------------------------------------------- light


def _lit_and_shadowed(seed: int):
    """Asphalt (left) and grass (right) with a 10 m wall south of them; sun due south at
    45 deg. Returns (image float (3, H, W), hidden share of the sun (H, W))."""
    cv = _canvas(200, 240)
    cv.label[:, 120:] = LOW_VEG
    cv.albedo[:, :, 120:] = np.asarray(GRASS, np.float32)[:, None, None]
    cv.material[:, 120:] = M_GRASS
    cv.label[150:170, 20:220] = BUILDING
    cv.height[150:170, 20:220] = 10.0
    cv.material[150:170, 20:220] = M_ROOF_FLAT
    cv.albedo[:, 150:170, 20:220] = 120.0
    surface = np.full((200, 240), 250.0, np.float32) + cv.height
    shadow, occluder = _shadow_model(surface, 180.0, 45.0)
    return _render(cv, shadow, occluder, np.random.default_rng(seed)).astype(np.float64), shadow


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shadows_are_darker_but_not_black(seed):
    img, shadow = _lit_and_shadowed(seed)
    b = img.mean(axis=0)
    for cols in (slice(30, 110), slice(130, 210)):  # asphalt, grass
        dark = b[60:140, cols][shadow[60:140, cols] > 0.99]
        lit = b[10:40, cols][shadow[10:40, cols] < 0.01]
        assert dark.size > 1000 and lit.size > 1000
        ratio = np.median(dark) / np.median(lit)
        # real Vaihingen area-1 crop: shadowed / sunlit road 0.37, grass 0.44
        assert 0.28 < ratio < 0.52, ratio
        assert np.median(dark) > 25  # what lies in the shadow stays visible
    # vegetation keeps its infrared glow in the shadow: IR well above R there
    ir, red = img[0, 60:140, 130:210], img[1, 60:140, 130:210]
    assert np.median(ir) > 1.05 * np.median(red)


def _penumbra_width(height_m: float) -> int:
    """Pixels of the penumbra (hidden share strictly between 0.1 and 0.9) behind a wall
    of ``height_m`` (sun due south at 45 deg: the shadow falls north, up the image)."""
    dsm = np.full((500, 120), 250.0, np.float32)
    dsm[440:460, :] += height_m
    s = cast_shadows(dsm, 180.0, 45.0)
    col = s[:440, 60]
    return int(((col > 0.1) & (col < 0.9)).sum())


def test_penumbra_widens_with_the_occluder_height():
    # physics: 2 r H / sin^2(el) along the sun (r = 0.35 deg): 1.4 px behind 5 m, 5.4 px
    # behind 20 m, plus the lateral blur, which grows with the distance too
    w5, w10, w20 = _penumbra_width(5.0), _penumbra_width(10.0), _penumbra_width(20.0)
    assert w5 <= w10 <= w20, (w5, w10, w20)
    assert w5 <= 2 and w20 >= 4 and w20 >= w5 + 3, (w5, w10, w20)
    # the geometric edge (hidden share 0.5) is where it was: 20 m / tan(45 deg) = 222 px
    dsm = np.full((500, 120), 250.0, np.float32)
    dsm[440:460, :] += 20.0
    rows = np.flatnonzero(cast_shadows(dsm, 180.0, 45.0)[:440, 60] > 0.5)
    assert abs((440 - rows.min()) - 222) <= 3


def test_crown_shadows_let_infrared_through():
    """A wall and a crown of the same height cast shadows on asphalt; the crown's
    shadow is brighter in the infrared (leaves transmit near infrared)."""
    cv = _canvas(240, 200)
    cv.label[200:215, 10:90] = BUILDING
    cv.height[200:215, 10:90] = 8.0
    cv.material[200:215, 10:90] = M_ROOF_FLAT
    cv.label[200:215, 110:190] = TREE
    cv.height[200:215, 110:190] = 8.0
    cv.material[200:215, 110:190] = M_TREE
    cv.albedo[:, 200:215, 110:190] = np.asarray(TREE_LIT, np.float32)[:, None, None]
    surface = np.full((240, 200), 250.0, np.float32) + cv.height
    shadow, occluder = _shadow_model(surface, 180.0, 50.0)
    img = _render(cv, shadow, occluder, np.random.default_rng(0)).astype(np.float64)
    wall = img[0, 150:190, 20:80][shadow[150:190, 20:80] > 0.99]
    crown = img[0, 150:190, 120:180][shadow[150:190, 120:180] > 0.99]
    assert wall.size > 500 and crown.size > 500
    assert np.median(crown) > np.median(wall) + 3


# ----------------------------------------------------------------------------- DSM / nDSM


def _block_with_cars(seed: int):
    """Canvas with a 10 m flat building and 24 cars (1.45 m) on flat asphalt."""
    cv = _canvas(260, 260)
    cv.label[60:200, 60:200] = BUILDING
    cv.height[60:200, 60:200] = 10.0
    cv.material[60:200, 60:200] = M_ROOF_FLAT
    for i in range(12):
        for r0 in (8, 222):
            c0 = 5 + 21 * i
            cv.label[r0 : r0 + 30, c0 : c0 + 14] = CAR
            cv.height[r0 : r0 + 30, c0 : c0 + 14] = 1.45
            cv.material[r0 : r0 + 30, c0 : c0 + 14] = M_CAR
    terrain = np.full((260, 260), 250.0, np.float32)
    dsm, ndsm = _surface_models(cv, terrain, np.zeros((260, 260), np.float32), np.random.default_rng(seed))
    return cv, dsm, ndsm


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dsm_edges_are_smoothed_like_dense_matching(seed):
    cv, dsm, ndsm = _block_with_cars(seed)
    assert dsm.dtype == ndsm.dtype == np.float32 and (ndsm >= 0).all()
    prof = np.median(dsm[90:170, 30:130] - 250.0, axis=0)  # across the west wall at column 60
    i10, i90 = int(np.argmax(prof > 1.0)), int(np.argmax(prof > 9.0))
    # 10-90 % ramp over 0.45-1 m (5-11 px), centred on the wall
    assert 5 <= i90 - i10 <= 11, (i10, i90)
    assert abs((i10 + i90) / 2 + 30 - 59.5) <= 2.5
    assert np.median(ndsm[100:160, 100:160]) == pytest.approx(10.0, abs=0.3)


def test_cars_are_mostly_missing_from_the_dsm():
    cv, dsm, _ = _block_with_cars(0)
    comp, n = ndimage.label(cv.label == CAR)
    assert n == 24
    peak = ndimage.maximum(dsm - 250.0, comp, index=np.arange(1, n + 1))
    # the true car tops are 1.45 m; most cars are gone from the matched surface
    assert np.mean(peak < 0.5) >= 0.5, peak
    assert np.mean(peak > 1.2) <= 0.1, peak


def test_crowns_are_lower_and_holed_and_shadows_are_noisier():
    cv = _canvas(200, 200)
    yy, xx = np.mgrid[:200, :200]
    q = np.hypot(yy - 100, xx - 100) / 70.0
    crown = q < 1
    cv.label[crown] = TREE
    cv.material[crown] = M_TREE
    cv.height[crown] = (5.0 + 7.0 * np.sqrt(np.clip(1 - q * q, 0, 1)))[crown]
    terrain = np.full((200, 200), 250.0, np.float32)
    dsm, _ = _surface_models(cv, terrain, np.zeros((200, 200), np.float32), np.random.default_rng(1))
    inner = q < 0.7
    ratio = (dsm - 250.0)[inner] / cv.height[inner]
    assert np.median(ratio) < 0.95  # matched below the top
    assert np.mean(ratio < 0.6) > 0.03  # holes where the matcher sees through
    # a flat ground half in shadow: the shadowed half is matched noisier
    flat = _canvas(200, 200)
    shadow = np.zeros((200, 200), np.float32)
    shadow[:, 100:] = 1.0
    dsm, _ = _surface_models(flat, terrain, shadow, np.random.default_rng(2))
    assert np.std(dsm[:, 110:]) > 2 * np.std(dsm[:, :90])


def test_the_hole_and_blunder_thresholds_are_live(monkeypatch):
    """heights.CROWN_HOLE_Z and BLUNDER_Z set the holes and blunders (a generator variant
    that overrides them must change the DSM, not silently nothing)."""
    import vaiseg.data.synthetic.heights as heights

    cv = _canvas(200, 200)
    yy, xx = np.mgrid[:200, :200]
    q = np.hypot(yy - 100, xx - 100) / 70.0
    cv.label[q < 1] = TREE
    cv.material[q < 1] = M_TREE
    cv.height[q < 1] = 10.0
    terrain = np.full((200, 200), 250.0, np.float32)
    inner = q < 0.7

    def holed(z):
        monkeypatch.setattr(heights, "CROWN_HOLE_Z", z)
        dsm, _ = _surface_models(cv, terrain, np.zeros((200, 200), np.float32), np.random.default_rng(1))
        return float(np.mean((dsm - 250.0)[inner] < 6.0))

    assert holed(1.175) == pytest.approx(0.12, abs=0.08)
    assert holed(np.inf) < 0.01 < 0.3 < holed(0.0)

    flat = _canvas(200, 200)
    shadow = np.ones((200, 200), np.float32)

    def blundered(z):
        monkeypatch.setattr(heights, "BLUNDER_Z", z)
        dsm, _ = _surface_models(flat, terrain, shadow, np.random.default_rng(2))
        return float(np.mean(np.abs(dsm - 250.0) > 1.0))

    assert blundered(np.inf) < 0.01 < blundered(1.88) < 0.06  # 1 m is ~3 sigma of the shadows' noise
    assert blundered(-np.inf) > 0.3


def test_ndsm_subtracts_an_estimated_terrain():
    s = generate_scene(3, 256, 256, seed=2016)
    ground = np.isin(s.labels, (IMP, LOW_VEG))
    assert np.median(s.ndsm[ground]) < 0.3
    est = s.dsm - s.ndsm  # where ndsm > 0: the estimated terrain
    pos = s.ndsm > 0
    # a smooth surface under everything, not the DSM itself: no building steps in it
    both = pos[:, 1:] & pos[:, :-1]
    assert np.abs(np.diff(est, axis=1)[both]).max() < 0.1
    assert np.ptp(s.dsm[pos] - est[pos]) > 5


def test_ndsm_keeps_a_building_that_fills_the_area_up_to_its_edge():
    """The DTM filter sees bare ground beyond the area's edge (a real nDSM is made from the
    whole town's DSM): a 10 m building of 30 x 30 m (the filter's window is 36 m) flush with two
    edges of a 448 px (40 m) area keeps its height; with the edge blocks repeated the
    filter took the roof for ground (area 28 of the default run: 37 % of its roof at < 2 m)."""
    n = 448
    cv = _canvas(n, n)
    cv.label[:336, 112:] = BUILDING
    cv.height[:336, 112:] = 10.0
    cv.material[:336, 112:] = M_ROOF_FLAT
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    terrain = (250.0 + 0.02 * 0.09 * (xx + 0.5 * yy)).astype(np.float32)  # a 2 % slope
    dsm, ndsm = _surface_models(cv, terrain, np.zeros((n, n), np.float32), np.random.default_rng(0))
    roof = np.zeros((n, n), bool)
    roof[:316, 132:] = True  # away from the smoothed walls
    assert np.mean(ndsm[roof] < 8.0) < 0.01, np.percentile(ndsm[roof], [1, 50])
    assert np.median(ndsm[roof]) == pytest.approx(10.0, abs=0.5)
    assert np.median(ndsm[360:, :]) < 0.3 and np.median(ndsm[:, :90]) < 0.3  # the ground


# ----------------------------------------------------------------------------- annotation


def test_annotation_moves_edges_by_about_a_pixel_and_keeps_every_car(raw_and_annotated):
    from vaiseg.data.synthetic.labels import _inset_cars

    # against the canvas's edges and those of the cars outlined CAR_INSET px inside their
    # bodies (the real crop's car polygons lie ~2 px inside the bodies; a car that the
    # inset leaves with less than half of its pixels is restored whole)
    off = np.concatenate(
        [
            ndimage.distance_transform_edt(~(_edges(raw) | _edges(_inset_cars(raw))))[_edges(ann)]
            for raw, ann in raw_and_annotated
        ]
    )
    assert np.percentile(off, 95) <= 2.0 + 1e-9
    # simplification (<= 2 px) + vertex jitter (<= 2 px); closed canopy gaps a bit more
    assert off.max() <= 6.0
    assert np.mean(off > 0.5) > 0.3  # the edges do move: a digitiser, not the canvas
    for raw, ann in raw_and_annotated:
        assert ann.dtype == np.uint8 and ann.shape == raw.shape and ann.max() <= 5
        comp, n = ndimage.label(raw == CAR)
        if n:
            kept = ndimage.sum(ann == CAR, comp, index=np.arange(1, n + 1))
            size = np.bincount(comp.ravel())[1:]
            assert (kept >= 0.5 * size).all()
        assert np.mean(raw != ann) < 0.05


def test_vertex_jitter_moves_edges_by_at_most_two_pixels(raw_and_annotated, monkeypatch):
    """Against the same annotation without the digitiser's jitter: the jittered edges
    lie within ~2 px of the un-jittered ones, and do move."""
    import vaiseg.data.synthetic.labels as labels_mod

    raws = [raw for raw, _ in raw_and_annotated]
    jittered = [_annotate(raw, np.random.default_rng(9)) for raw in raws]
    monkeypatch.setattr(labels_mod, "JITTER_SD", 0.0)
    straight = [_annotate(raw, np.random.default_rng(9)) for raw in raws]
    off = np.concatenate([_edge_offsets(s, j) for s, j in zip(straight, jittered)])
    assert np.percentile(off, 99) <= 2.3 and off.max() <= 3.0, np.percentile(off, [99, 100])
    assert np.mean(off > 0.5) > 0.2


def test_annotation_generalises_specks_and_keeps_small_cars():
    lab = np.full((160, 160), LOW_VEG, np.uint8)
    lab[:, 60:100] = IMP  # a road
    lab[20:40, 70:82] = CAR  # a small car on it (240 px)
    lab[100:106, 62:68] = CAR  # a crumb of a car (36 px): still a car
    specks = [(10, 10), (30, 130), (130, 20), (140, 140), (70, 30)]
    for r, c in specks:
        lab[r : r + 4, c : c + 5] = CLUTTER  # 20 px crumbs
    lab[60:110, 110:135] = TREE  # two crowns 2 px apart
    lab[60:110, 137:158] = TREE
    ann = _annotate(lab, np.random.default_rng(0))
    for r, c in specks:
        assert (ann[r : r + 4, c : c + 5] != CLUTTER).all()
    assert (ann[60:110, 135:137] == TREE).mean() > 0.9  # the gap between the crowns closed
    comp, n = ndimage.label(lab == CAR)
    for i in range(1, n + 1):
        assert (ann[comp == i] == CAR).mean() >= 0.5
    before = boundary_fraction(erode_boundaries(lab, 3))
    after = boundary_fraction(erode_boundaries(ann, 3))
    assert after < before - 0.02, (before, after)


def test_annotation_does_not_add_boundary_to_generated_scenes(raw_and_annotated):
    raw = boundary_fraction([erode_boundaries(r, 3) for r, _ in raw_and_annotated])
    ann = boundary_fraction([erode_boundaries(a, 3) for _, a in raw_and_annotated])
    assert ann <= raw + 0.002, (raw, ann)


def test_annotation_covers_the_image_border():
    """Outlines are extended past the border: jitter never opens a sliver along it."""
    lab = np.full((120, 120), IMP, np.uint8)
    lab[:, :50] = BUILDING
    for seed in range(5):
        ann = _annotate(lab, np.random.default_rng(seed))
        assert (ann[:, :45] == BUILDING).all() and (ann[:, 55:] == IMP).all()
        assert set(np.unique(ann)) == {IMP, BUILDING}
