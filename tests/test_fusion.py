"""§4.4 fusion: LIBLINEAR one-vs-all SVMs on concatenated softmax, vectorised apply."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from liblinear.liblinearutil import predict

from vaiseg.classes import IGNORE
from vaiseg.errors import DataError
from vaiseg.fusion import (
    FusionModel,
    _decision_matrix,
    apply_fusion,
    calibrated_probs,
    fuse_area,
    fuse_areas,
    sample_pixels,
    train_fusion,
    train_svms,
)
from vaiseg.raster import write_raster


def _softmax(z):
    z = z - z.max(0, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(0, keepdims=True)).astype(np.float32)


def _member_probs(labels, n_out, strength, rng):
    """Noisy softmax that favours the true class (classes >= n_out are folded onto 0)."""
    C = n_out
    logits = rng.normal(0, 1, (C,) + labels.shape)
    target = np.where(labels < C, labels, 0)
    np.put_along_axis(logits, target[None].astype(np.int64), np.take_along_axis(logits, target[None].astype(np.int64), 0) + strength, 0)
    return _softmax(logits)


def _scene(tmp_path, name, shape, rng, strength=(4.0, 4.0)):
    lab = rng.integers(0, 6, shape).astype(np.uint8)
    lab[rng.random(shape) < 0.05] = IGNORE
    pb = _member_probs(np.where(lab == IGNORE, 0, lab), 5, strength[0], rng)
    fcn = _member_probs(np.where(lab == IGNORE, 0, lab), 6, strength[1], rng)
    paths = {"labels": tmp_path / f"{name}_lab.tif", "PB": tmp_path / f"{name}_pb.tif", "FCN": tmp_path / f"{name}_fcn.tif"}
    write_raster(paths["labels"], lab)
    write_raster(paths["PB"], pb)
    write_raster(paths["FCN"], fcn)
    return lab, pb, fcn, paths


def test_sampling_is_stratified_balanced_seeded_and_skips_ignored():
    rng = np.random.default_rng(0)
    a = np.full((50, 50), 0, np.uint8)
    a[:5] = 4  # rare class: 250 px
    a[40:] = IGNORE
    b = np.full((30, 30), 2, np.uint8)
    idx = sample_pixels([a, b], n=600, balanced=True, seed=1)
    got = np.concatenate([a.ravel()[idx[0]], b.ravel()[idx[1]]])
    assert IGNORE not in got
    counts = np.bincount(got, minlength=6)
    assert counts[0] == 200 and counts[2] == 200 and counts[4] == 200
    assert all(len(np.unique(i)) == len(i) for i in idx)  # without replacement
    idx2 = sample_pixels([a, b], n=600, balanced=True, seed=1)
    assert all((i == j).all() for i, j in zip(idx, idx2))
    idx3 = sample_pixels([a, b], n=600, balanced=True, seed=2)
    assert any(len(i) != len(j) or (i != j).any() for i, j in zip(idx, idx3))
    prop = sample_pixels([a, b], n=400, balanced=False, seed=0)
    got = np.concatenate([a.ravel()[prop[0]], b.ravel()[prop[1]]])
    total = np.array([1750, 0, 900, 0, 250])
    np.testing.assert_allclose(np.bincount(got, minlength=5)[[0, 2, 4]], np.round(400 * total[[0, 2, 4]] / total.sum()), atol=1)


def test_balanced_sample_takes_all_of_a_class_rarer_than_its_share():
    # the demo's regime (fusion.samples 300,000 = 50,000 per class > the 11,474 training car
    # pixels): the rare class is taken whole, the others are capped at n // K each
    a = np.zeros((40, 40), np.uint8)
    a[:2, :10] = 4  # 20 car pixels
    a[20:] = 1
    idx = sample_pixels([a], n=300, balanced=True, seed=0)
    counts = np.bincount(a.ravel()[idx[0]], minlength=6)
    assert counts[4] == 20 and counts[0] == 100 and counts[1] == 100


def test_fusion_near_perfect_on_separable_probabilities_and_files(tmp_path):
    rng = np.random.default_rng(0)
    train = [_scene(tmp_path, f"t{i}", (60, 70), rng, strength=(2.0, 3.0)) for i in range(2)]
    model = train_fusion(
        {"PB": [t[3]["PB"] for t in train], "FCN": [t[3]["FCN"] for t in train]},
        [t[3]["labels"] for t in train],
        n=3000,
        balanced=True,
        C=1.0,
        seed=0,
    )
    assert model.W.shape == (6, 11) and model.member_classes == (5, 6)
    assert list(model.classes) == [0, 1, 2, 3, 4, 5]
    assert model.info["n_train"] == 3000 - 3000 % 6 and model.temperature > 0
    # held-out area: every member alone is weaker than the fusion, which is near perfect
    lab, pb, fcn, paths = _scene(tmp_path, "val", (80, 80), rng, strength=(2.0, 3.0))
    scores, labels = apply_fusion(model, [pb, fcn])
    valid = lab != IGNORE
    acc = (labels[valid] == lab[valid]).mean()
    fcn_acc = (fcn.argmax(0)[valid] == lab[valid]).mean()
    assert acc > 0.97 and acc > fcn_acc
    # save / load / apply to files
    model.save(tmp_path / "svm.json")
    back = FusionModel.load(tmp_path / "svm.json")
    np.testing.assert_allclose(back.W, model.W)
    fuse_area(tmp_path / "svm.json", [paths["PB"], paths["FCN"]], tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "labels.tif") as src:
        np.testing.assert_array_equal(src.read(1), labels)
    with rasterio.open(tmp_path / "out" / "probs.tif") as src:
        probs = src.read()
    assert probs.shape == (6, 80, 80) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), labels)  # calibration keeps the argmax
    # one job per fusion: fuse_areas over several areas writes what fuse_area writes
    fuse_areas(tmp_path / "svm.json", {7: [paths["PB"], paths["FCN"]], 9: [train[0][3]["PB"], train[0][3]["FCN"]]},
               {7: tmp_path / "many" / "7", 9: tmp_path / "many" / "9"})
    for name in ("probs", "scores", "labels", "labels_color"):
        with rasterio.open(tmp_path / "out" / f"{name}.tif") as a, rasterio.open(tmp_path / "many" / "7" / f"{name}.tif") as b:
            np.testing.assert_array_equal(a.read(), b.read())
    with rasterio.open(tmp_path / "many" / "9" / "labels.tif") as src:
        assert src.shape == (60, 70)


def test_vectorised_apply_equals_liblinear_predict():
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 6, (40, 50))
    a = _member_probs(lab, 6, 1.0, rng)  # weakly informative: many near ties
    b = _member_probs(lab, 5, 1.0, rng)
    X = np.concatenate([a, b]).reshape(11, -1).T.astype(np.float64)
    y = lab.ravel()
    lin = train_svms(X[::2], y[::2], C=0.5)
    W, bias, classes = _decision_matrix(lin, 11)
    order = np.argsort(classes)
    model = FusionModel(W[order], bias[order], classes[order], ("A", "B"), (6, 5))
    scores, labels = apply_fusion(model, [a, b], chunk=333)  # odd chunk size on purpose
    sample = rng.choice(len(y), 500, replace=False)
    pred, _, dec = predict(y[sample].tolist(), X[sample], lin, "-q")
    dec = np.asarray(dec)[:, np.argsort(lin.get_labels())]  # LIBLINEAR label order -> class order
    np.testing.assert_allclose(scores.reshape(6, -1)[:, sample].T, dec, atol=1e-4)
    np.testing.assert_array_equal(labels.ravel()[sample], np.asarray(pred, np.int64))


def test_two_class_fusion_matches_liblinear():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 2, (30, 30)) * 3  # classes 0 and 3
    a = _member_probs(lab, 6, 1.5, rng)
    X = a.reshape(6, -1).T.astype(np.float64)
    lin = train_svms(X, lab.ravel())
    W, bias, classes = _decision_matrix(lin, 6)
    model = FusionModel(W, bias, classes, ("A",), (6,))
    _, labels = apply_fusion(model, [a])
    pred, _, _ = predict(lab.ravel().tolist(), X, lin, "-q")
    assert (labels.ravel() == np.asarray(pred)).mean() > 0.999


def test_nonfinite_pixels_are_unclassified_and_probs_nan():
    model = FusionModel(np.eye(3, 6), np.zeros(3), np.array([0, 1, 4]), ("A",), (6,), 2.0)
    p = np.full((6, 2, 2), 1 / 6, np.float32)
    p[:, 0, 0] = np.nan
    p[1, 1, 1] = 0.9
    scores, labels = apply_fusion(model, [p])
    assert labels[0, 0] == IGNORE and labels[1, 1] == 1
    probs = calibrated_probs(model, scores)
    assert probs.shape == (6, 2, 2) and np.isnan(probs[:, 0, 0]).all()
    assert (probs[[2, 3, 5]][:, 1, 1] == 0).all() and probs[:, 1, 1].sum() == pytest.approx(1.0)


def test_bad_inputs(tmp_path):
    model = FusionModel(np.eye(3, 6), np.zeros(3), np.array([0, 1, 4]), ("A",), (6,))
    with pytest.raises(ValueError, match="expected \\(6"):
        apply_fusion(model, [np.zeros((5, 2, 2), np.float32)])
    model.save(tmp_path / "svm.json")
    write_raster(tmp_path / "p.tif", np.zeros((5, 4, 4), np.float32))
    with pytest.raises(DataError, match="5 bands"):
        fuse_area(tmp_path / "svm.json", [tmp_path / "p.tif"], tmp_path / "out")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not a fusion model"):
        FusionModel.load(tmp_path / "bad.json")


def test_svms_from_csr_input_equal_liblinears_dense_row_path():
    # train_svms hands LIBLINEAR a CSR matrix (fast); its per-row path for dense rows must
    # give the same problem, exact zero features (a softmax underflow) included
    from liblinear.liblinearutil import parameter, problem, train

    from vaiseg.fusion import _decision_matrix

    rng = np.random.default_rng(3)
    X = rng.random((400, 7))
    X[rng.random(X.shape) < 0.2] = 0.0
    y = rng.integers(0, 3, 400)
    dense = train(problem(y.astype(np.float64).tolist(), X), parameter("-s 2 -c 1.0 -B 1 -q"))
    for a, b in zip(_decision_matrix(train_svms(X, y), 7), _decision_matrix(dense, 7)):
        np.testing.assert_array_equal(a, b)
