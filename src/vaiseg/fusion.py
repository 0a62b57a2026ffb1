"""Combined approach: one-vs-all linear SVMs on the concatenated softmax (§4.4).

§4.4: "We combine the softmax probabilities of the different methods by training
one-vs-all linear SVMs on the combined softmax probabilities ... LIBLINEAR was used to
train the SVM." Features of a pixel are the member models' mean MC softmax
(``probs.tif``) concatenated in member order (PB contributes 5 features, each FCN 6).

Choices where the paper is silent (documented in the README):

- Training pixels: the paper does not say on which pixels the SVMs are trained. We use
  the members' predictions on the TRAINING areas against their eroded ground truth
  (boundary pixels ignored), a seeded, stratified sample of ``n`` pixels: balanced
  (``n // K`` per class present, all of a class if it has fewer) or proportional to the
  class frequencies. The CNNs were trained on these areas, so the SVMs see *in-sample*
  CNN outputs (more confident than on unseen areas); the validation areas stay untouched
  for evaluation. Pixels with a non-finite feature (PB border left unclassified) are
  dropped from the sample.
- Solver: LIBLINEAR ``-s 2`` (L2-regularised L2-loss SVC, primal trust-region Newton,
  deterministic), ``-B 1`` (a bias feature, regularised like the weights, as LIBLINEAR
  does), cost ``C``. For more than two classes LIBLINEAR's ``-s 0..3`` train one-vs-rest
  (one-vs-all) machines and predict the class of largest decision value — the paper's
  one-vs-all SVMs. (``-s 1``, the dual solver, is selectable.)
- Apply: the decision values of all K machines for every pixel are ONE matrix product
  ``W @ X + b`` (W (K, F), X (F, pixels)), in column chunks; labels = argmax (equals
  LIBLINEAR's ``predict``; tested).
- Calibrated score (``probs.tif`` of a fusion): softmax of the decision values divided
  by a temperature fitted by minimising the negative log-likelihood on the SVM training
  sample (Platt-style scaling with one parameter; it keeps the argmax = the SVM labels).
  Always six bands in class order; a class absent from the training sample gets 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import IGNORE, N_CLASSES, NAMES
from .errors import DataError

log = logging.getLogger(__name__)

FORMAT = "vaiseg-fusion/1"


@dataclass
class FusionModel:
    """K one-vs-all linear SVMs over F = sum of member class counts features.

    ``W`` (K, F) float64, ``b`` (K,) float64, ``classes`` (K,) class indices (row k of W
    scores class ``classes[k]``), ``members`` model names in feature order,
    ``member_classes`` number of softmax bands per member, ``temperature`` of the
    calibrated score, ``info`` training details (solver, C, sample sizes, accuracy).
    """

    W: np.ndarray
    b: np.ndarray
    classes: np.ndarray
    members: tuple[str, ...]
    member_classes: tuple[int, ...]
    temperature: float = 1.0
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(sum(self.member_classes))

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "members": list(self.members),
            "member_classes": list(self.member_classes),
            "classes": [int(c) for c in self.classes],
            "W": np.asarray(self.W, np.float64).tolist(),
            "b": np.asarray(self.b, np.float64).tolist(),
            "temperature": float(self.temperature),
            "info": self.info,
        }

    def save(self, path) -> None:
        from .atomic import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> "FusionModel":
        import json

        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise DataError(path, f"cannot read fusion model ({e})") from e
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise DataError(path, f"not a fusion model (expected format {FORMAT!r})")
        W, b = np.asarray(obj["W"], np.float64), np.asarray(obj["b"], np.float64)
        classes = np.asarray(obj["classes"], np.int64)
        if W.ndim != 2 or W.shape[0] != len(b) or len(classes) != len(b) or W.shape[1] != sum(obj["member_classes"]):
            raise DataError(path, f"inconsistent shapes W {W.shape}, b {b.shape}, classes {classes.shape}")
        return cls(W, b, classes, tuple(obj["members"]), tuple(obj["member_classes"]), float(obj["temperature"]),
                   obj.get("info", {}))


# --------------------------------------------------------------------------- sampling
def _read_labels(path) -> np.ndarray:
    from .raster import read_raster

    data, _ = read_raster(path)
    if data.shape[0] != 1 or data.dtype != np.uint8:
        raise DataError(path, f"expected a single-band uint8 label raster, got {data.shape[0]} bands {data.dtype}")
    lab = data[0]
    bad = (lab >= N_CLASSES) & (lab != IGNORE)
    if bad.any():
        raise DataError(path, f"label values {sorted(set(np.unique(lab[bad]).tolist()))} outside 0..5 and 255")
    return lab


def sample_pixels(labels: list[np.ndarray], n: int, balanced: bool, seed: int) -> list[np.ndarray]:
    """Seeded stratified sample of labelled pixels over several areas.

    ``labels``: per area (H, W) uint8 (``IGNORE`` excluded). Returns per area the sorted
    flat indices of the sampled pixels. Balanced: ``n // K`` per present class (all of a
    rarer class); otherwise ``round(n * share_c)`` per class (proportional). Sampling
    without replacement, ``numpy.random.default_rng(seed)``.
    """
    counts = np.stack([np.bincount(lab.ravel(), minlength=256)[:N_CLASSES] for lab in labels])  # (A, K)
    total = counts.sum(0)
    present = np.flatnonzero(total)
    if len(present) < 2:
        raise DataError(None, f"fusion training needs at least two classes in the training labels, found {present.tolist()}")
    if balanced:
        want = {c: min(int(total[c]), n // len(present)) for c in present}
    else:
        want = {c: min(int(total[c]), int(round(n * total[c] / total.sum()))) for c in present}
    rng = np.random.default_rng(seed)
    chosen: list[list[np.ndarray]] = [[] for _ in labels]
    for c in present:
        ranks = np.sort(rng.choice(int(total[c]), size=want[c], replace=False))
        bounds = np.concatenate([[0], np.cumsum(counts[:, c])])
        for a, lab in enumerate(labels):
            sel = ranks[(ranks >= bounds[a]) & (ranks < bounds[a + 1])] - bounds[a]
            if len(sel):
                chosen[a].append(np.flatnonzero(lab.ravel() == c)[sel])
    return [np.sort(np.concatenate(ch)) if ch else np.zeros(0, np.int64) for ch in chosen]


def read_probs(model: str, path) -> np.ndarray:
    """A member's (C, H, W) probabilities from its probs.tif (the default reader)."""
    from .raster import read_raster

    return read_raster(path)[0]


def gather_features(prob_paths_by_model: dict, label_paths: list, n: int, balanced: bool, seed: int, read=read_probs):
    """(X (N, F) float64, y (N,) int64, member_classes) for :func:`train_fusion`.

    ``prob_paths_by_model``: model name -> list of probs.tif paths, one per area, in the
    order of ``label_paths`` (eroded GT of the same areas). ``read(model, path)`` returns
    the (C, H, W) array (the ablations pass one that masks the PB border).
    """
    members = list(prob_paths_by_model)
    for m in members:
        if len(prob_paths_by_model[m]) != len(label_paths):
            raise ValueError(f"{m}: {len(prob_paths_by_model[m])} probability rasters for {len(label_paths)} label rasters")
    labels = [_read_labels(p) for p in label_paths]
    idx = sample_pixels(labels, n, balanced, seed)
    Xs, ys = [], []
    member_classes: list[int | None] = [None] * len(members)
    for a, (lp, lab, ix) in enumerate(zip(label_paths, labels, idx)):
        feats = []
        for j, m in enumerate(members):
            pp = prob_paths_by_model[m][a]
            probs = read(m, pp)
            if probs.shape[1:] != lab.shape:
                raise DataError(pp, f"probabilities {probs.shape[1:]} do not match labels {lp} {lab.shape}")
            if member_classes[j] is None:
                member_classes[j] = probs.shape[0]
            elif member_classes[j] != probs.shape[0]:
                raise DataError(pp, f"{probs.shape[0]} bands, other areas of {m} have {member_classes[j]}")
            feats.append(probs.reshape(probs.shape[0], -1)[:, ix])
        Xs.append(np.concatenate(feats, 0).T.astype(np.float64))
        ys.append(lab.ravel()[ix].astype(np.int64))
    X, y = np.concatenate(Xs), np.concatenate(ys)
    finite = np.isfinite(X).all(1)
    return X[finite], y[finite], tuple(int(c) for c in member_classes), int((~finite).sum())


# --------------------------------------------------------------------------- training
def _decision_matrix(model, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LIBLINEAR model -> (W (K, F), b (K,), classes (K,)) in LIBLINEAR's label order."""
    labels = np.asarray(model.get_labels(), np.int64)
    if len(labels) == 2:  # LIBLINEAR keeps one machine: label[0] vs label[1]
        w, b = model.get_decfun(0)
        w = np.asarray(w, np.float64)
        return np.stack([w, -w]), np.array([b, -b], np.float64), labels
    rows = [model.get_decfun(k) for k in range(len(labels))]
    W = np.array([np.asarray(w, np.float64) for w, _ in rows])
    b = np.array([bb for _, bb in rows], np.float64)
    if W.shape[1] != n_features:
        raise RuntimeError(f"LIBLINEAR returned {W.shape[1]} weights for {n_features} features")
    return W, b, labels


def fit_temperature(scores: np.ndarray, y_index: np.ndarray) -> float:
    """Temperature tau > 0 minimising the NLL of softmax(scores / tau) (scores (N, K),
    y_index (N,) row indices of the true class); searched over log tau in [-6, 6]."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    def nll(log_tau: float) -> float:
        ls = log_softmax(scores / np.exp(log_tau), axis=1)
        return float(-ls[np.arange(len(y_index)), y_index].mean())

    res = minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def train_svms(X: np.ndarray, y: np.ndarray, C: float = 1.0, solver: int = 2):
    """Train LIBLINEAR one-vs-rest linear SVMs -> the LIBLINEAR model (X (N, F), y (N,))."""
    from liblinear.liblinearutil import parameter, problem, train
    from scipy import sparse

    if solver not in (1, 2):
        raise ValueError(f"solver must be 1 or 2 (L2-loss SVC dual / primal), got {solver}")
    # CSR input: liblinear-official fills its feature nodes with numpy slices, ~3x faster
    # than its per-row Python path for a dense array (8.4 -> 2.9 s for 212,861 x 17); both
    # skip zero features, so LIBLINEAR gets the same problem and returns the same weights (tested)
    prob = problem(y.astype(np.float64), sparse.csr_matrix(np.asarray(X, dtype=np.float64)))
    return train(prob, parameter(f"-s {solver} -c {float(C)} -B 1 -q"))


def train_fusion(
    prob_paths_by_model: dict,
    label_paths: list,
    n: int = 300000,
    balanced: bool = True,
    C: float = 1.0,
    seed: int = 0,
    solver: int = 2,
    read=read_probs,
) -> FusionModel:
    """Train the §4.4 fusion on the training areas' predictions (see module docstring).

    ``prob_paths_by_model``: {model name: [probs.tif per training area]} (dict order =
    feature order); ``label_paths``: eroded-GT label rasters of the same areas; ``read``
    as in :func:`gather_features`.
    """
    X, y, member_classes, dropped = gather_features(prob_paths_by_model, label_paths, n, balanced, seed, read)
    if len(np.unique(y)) < 2:
        raise DataError(None, "fusion training sample holds fewer than two classes")
    lin = train_svms(X, y, C, solver)
    W, b, classes = _decision_matrix(lin, X.shape[1])
    order = np.argsort(classes)  # store rows in class order
    W, b, classes = W[order], b[order], classes[order]
    scores = X @ W.T + b
    y_index = np.searchsorted(classes, y)
    tau = fit_temperature(scores, y_index)
    info = {
        "solver": f"liblinear -s {solver} -B 1",
        "C": float(C),
        "seed": int(seed),
        "balanced": bool(balanced),
        "n_requested": int(n),
        "n_train": int(len(y)),
        "dropped_nonfinite": dropped,
        "per_class_train": {NAMES[c]: int((y == c).sum()) for c in classes},
        "train_accuracy": float((classes[scores.argmax(1)] == y).mean()),
        "areas": len(label_paths),
    }
    log.info("fusion %s: %s", list(prob_paths_by_model), info)
    return FusionModel(W, b, classes, tuple(prob_paths_by_model), member_classes, tau, info)


# --------------------------------------------------------------------------- applying
def apply_fusion(model: FusionModel, probs_list: list[np.ndarray], chunk: int = 1 << 14):
    """Decision values and labels of every pixel (§4.4), vectorised.

    ``probs_list``: the members' (C_m, H, W) float softmax arrays in ``model.members``
    order. Returns ``scores`` (K, H, W) float32 (row k = class ``model.classes[k]``) and
    ``labels`` (H, W) uint8 class indices (``IGNORE`` where a feature is not finite).
    Per chunk of 2**14 pixels (stays in cache) the features are stacked into (F, n) and
    multiplied once by W; the argmax is a running maximum over the K rows.
    """
    if len(probs_list) != len(model.members):
        raise ValueError(f"fusion of {model.members} needs {len(model.members)} probability arrays, got {len(probs_list)}")
    H, W_ = probs_list[0].shape[1:]
    for m, c, p in zip(model.members, model.member_classes, probs_list):
        if p.ndim != 3 or p.shape[0] != c or p.shape[1:] != (H, W_):
            raise ValueError(f"{m}: expected ({c}, {H}, {W_}) probabilities, got {p.shape}")
    K, F, N = len(model.classes), model.n_features, H * W_
    Wf = np.asarray(model.W, np.float32)
    bf = np.asarray(model.b, np.float32)[:, None]
    flat = [p.reshape(p.shape[0], N) for p in probs_list]
    scores = np.empty((K, N), np.float32)
    labels = np.empty(N, np.uint8)
    buf = np.empty((F, min(chunk, N)), np.float32)
    best = np.empty(min(chunk, N), np.float32)
    tmp = np.empty((K, min(chunk, N)), np.float32)
    cls = np.asarray(model.classes, np.uint8)
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        X = buf[:, : e - s]
        r = 0
        for p in flat:
            X[r : r + p.shape[0]] = p[:, s:e]
            r += p.shape[0]
        sc = tmp[:, : e - s]
        np.matmul(Wf, X, out=sc)  # the one matrix product (K, F) @ (F, n)
        sc += bf
        scores[:, s:e] = sc
        # argmax over the K rows (first maximum wins, as numpy/LIBLINEAR), NaN -> IGNORE
        bb, lab = best[: e - s], labels[s:e]
        bb[:] = sc[0]
        lab[:] = cls[0]
        for k in range(1, K):
            g = sc[k] > bb
            np.maximum(bb, sc[k], out=bb)
            lab[g] = cls[k]
        lab[~np.isfinite(bb)] = IGNORE
    return scores.reshape(K, H, W_), labels.reshape(H, W_)


def calibrated_probs(model: FusionModel, scores: np.ndarray) -> np.ndarray:
    """(K, H, W) decision values -> (6, H, W) float32 softmax(scores / temperature), bands
    in class order (classes absent from the model get 0; NaN stays NaN)."""
    z = scores.astype(np.float32) / np.float32(model.temperature)
    z -= z.max(0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(0, keepdims=True)
    out = np.zeros((N_CLASSES,) + scores.shape[1:], np.float32)
    out[np.asarray(model.classes)] = z
    out[:, ~np.isfinite(z).all(0)] = np.nan
    return out


def fuse_area(svm_path, prob_paths: list, out_dir) -> dict:
    """Apply a saved fusion to one area: probs.tif (6 calibrated bands), labels.tif
    (uint8 + ISPRS colour map), labels_color.tif (RGB), scores.tif (K decision values);
    georeferencing of the first member's probs.tif. ``prob_paths`` in member order."""
    from .raster import read_raster, write_label_raster, write_raster

    model = FusionModel.load(svm_path)
    if len(prob_paths) != len(model.members):
        raise ValueError(f"{svm_path}: {len(model.members)} members, {len(prob_paths)} probability rasters given")
    probs, geo = [], None
    for m, c, pp in zip(model.members, model.member_classes, prob_paths):
        p, g = read_raster(pp)
        if p.shape[0] != c:
            raise DataError(pp, f"{p.shape[0]} bands, the fusion was trained with {c} for {m}")
        if probs and p.shape[1:] != probs[0].shape[1:]:
            raise DataError(pp, f"size {p.shape[1:]} differs from {prob_paths[0]} {probs[0].shape[1:]}")
        probs.append(p.astype(np.float32, copy=False))
        geo = geo or g
    scores, labels = apply_fusion(model, probs)
    out_dir = Path(out_dir)
    write_raster(out_dir / "probs.tif", calibrated_probs(model, scores), geo, nodata=np.nan, band_names=list(NAMES))
    write_raster(out_dir / "scores.tif", scores, geo, nodata=np.nan,
                 band_names=[f"SVM decision value: {NAMES[c]}" for c in model.classes])
    write_label_raster(out_dir / "labels.tif", labels, geo, out_dir / "labels_color.tif")
    return {"height": labels.shape[0], "width": labels.shape[1], "members": list(model.members)}


def fuse_areas(svm_path, prob_paths: dict, out_dirs: dict) -> dict:
    """:func:`fuse_area` for several areas in one process (one job per fusion instead of
    one per fusion x area). ``prob_paths``: area -> the members' probs.tif in member
    order; ``out_dirs``: area -> output folder."""
    return {area: fuse_area(svm_path, list(paths), out_dirs[area]) for area, paths in prob_paths.items()}
