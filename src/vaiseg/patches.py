"""Training patches for the two CNN families (§4.1, §4.2), as index arrays.

Nothing here materialises pixels on disk: at Vaihingen scale the FCN set with its 8
augmentations would be tens of GB in float32. The extraction rules write *index* arrays
(``results/patches/pb.npz``, ``fcn.npz``); the datasets cut patches on the fly from
memory-mapped ``.npy`` copies of the normalised rasters (:func:`ensure_cache`).

PB index (§4.1), one row per patch, 65x65 centred on (row, col):
  ``area`` int16, ``row``/``col`` int32 centre pixel, ``label`` uint8 (0..4),
  ``angle`` float32 degrees (0 = not rotated), ``group`` int32 (car id, -1 for other
  classes; the rotated copies of a car share its id), ``val`` bool (held out).
FCN index (§4.2), one row per patch x transform, size x size with top-left (row, col):
  ``area`` int16, ``row``/``col`` int32, ``transform`` uint8 0..7 (dihedral group,
  :func:`dihedral`), ``val`` bool. Every epoch iterates over every training row, i.e.
  every patch in all 8 transforms.

Choices where the paper is silent (documented here and in the README):
- PB never samples clutter: the paper's PB has a 5-way softmax (classes 0..4). Centres
  come from the *eroded* GT, so ignored boundary pixels are never centres.
- Cars are 8-connected components of the car class in the full GT; the centred patch of
  a car is at the component's non-ignored car pixel closest to its centroid (components
  that erosion removes entirely are skipped and counted).
- Class balance: every class gets ``T = max(per_class, n_cars * (1 + car_rotations))``
  patches (``per_class=None``: ``T = n_cars * (1 + car_rotations)``, the paper's rule
  alone: §4.1 centres one patch on every car, adds rotations, and samples the other
  classes to the same count; a ``per_class`` floor above that only repeats rotated cars,
  so ``car_rotations`` no longer matters); cars are all centred once, each with ``car_rotations`` rotated copies at
  uniform random angles, then extra rotated copies (cycling over the cars) up to T.
  The other classes are drawn uniformly over their (non-ignored) pixels of all training
  areas, without replacement when there are enough pixels.
- Rotated copies: a 93x93 window (>= 65 * sqrt 2) is rotated about its centre pixel
  (bilinear for the image, nearest for labels) and the centre 65x65 is kept, so there are
  no empty corners; the centre pixel stays the centre.
- Windows that cross the raster edge are filled by reflection (``numpy.pad`` mode
  "reflect"), the same rule the PB inference uses for its 32-px border.
- The FCN grid has stride ``size * (1 - overlap)`` with the last row/column of patches
  aligned to the raster edge so every pixel is covered.
- Validation for the per-epoch history: a seeded fraction (``val_fraction``) of the
  patches is held out, grouped so that no car's rotated copies and no FCN position's
  transforms straddle train and validation. It only monitors training (no model
  selection). FCN validation uses the identity transform of the held-out positions.
- FCN held-out pixels stay unseen as targets: held-out positions are drawn only from a
  non-overlapping sub-grid of the positions (:func:`fcn_val_candidates`), with a
  probability that makes them about ``val_fraction`` of each area's *pixels*, and the
  training patches that overlap one see its pixels as ignored (255) in their labels
  (:func:`fcn_heldout_mask`); the image around them stays visible as context, as in loss
  sampling. With 50 % overlap a held-out patch drawn from the full grid shares every pixel
  with up to 8 training patches, and its held-out loss measured how well the FCN fit its
  own training pixels: it kept falling while the validation areas' OA was flat (README
  "Convergence").
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset
from tqdm import tqdm

from .atomic import atomic_path
from .classes import CAR, CLUTTER, IGNORE
from .errors import DataError
from .raster import read_raster

log = logging.getLogger(__name__)

PB_SIZE = 65
PB_CLASSES = (0, 1, 2, 3, 4)  # clutter (5) is not a PB class (5-way softmax, §4.1)
#: side of the window rotated for rotated car copies: ceil(65 * sqrt(2)) rounded up to odd
ROT_WINDOW = 93
N_TRANSFORMS = 8


# --------------------------------------------------------------------------- geometry


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into [0, n) like ``numpy.pad(mode="reflect")`` (edge not repeated)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def cut_window(array: np.ndarray, row0: int, col0: int, size: int) -> np.ndarray:
    """(..., size, size) window of a (..., H, W) array with top-left (row0, col0).

    Inside the raster it is a plain slice (cheap on a memory map); pixels outside are
    filled by reflection.
    """
    h, w = array.shape[-2:]
    if row0 >= 0 and col0 >= 0 and row0 + size <= h and col0 + size <= w:
        return np.asarray(array[..., row0 : row0 + size, col0 : col0 + size])
    rows = reflect_index(np.arange(row0, row0 + size), h)
    cols = reflect_index(np.arange(col0, col0 + size), w)
    return np.asarray(array[..., rows, :][..., cols])


def dihedral(array: np.ndarray, t: int) -> np.ndarray:
    """Transform ``t`` in 0..7 of the dihedral group on the last two axes (§4.2).

    t = 4 * flip + k: optional left-right flip, then k counter-clockwise 90° rotations.
    t = 0 is the identity; the 8 values give all flips and 90° rotations of a square.
    """
    if not 0 <= t < N_TRANSFORMS:
        raise ValueError(f"transform must be in 0..7, got {t}")
    if t >= 4:
        array = array[..., ::-1]
    return np.ascontiguousarray(np.rot90(array, k=t % 4, axes=(-2, -1)))


def cut_pb_patch(image: np.ndarray, labels: np.ndarray | None, row: int, col: int, angle: float = 0.0):
    """PB patch centred on (row, col), optionally rotated by ``angle`` degrees (§4.1).

    image (C, H, W) float32 -> (C, 65, 65) float32; labels (H, W) -> (65, 65) uint8 or
    None. A rotated patch is cut from a 93x93 window rotated about its centre pixel and
    cropped, so no corner is empty.
    """
    half = PB_SIZE // 2
    if angle == 0:
        img = np.array(cut_window(image, row - half, col - half, PB_SIZE), dtype=np.float32)
        lab = None if labels is None else cut_window(labels, row - half, col - half, PB_SIZE)
        return img, lab
    r = ROT_WINDOW // 2
    big = cut_window(image, row - r, col - r, ROT_WINDOW).astype(np.float32)
    rot = ndimage.rotate(big, angle, axes=(-1, -2), reshape=False, order=1, mode="reflect")
    crop = slice(r - half, r + half + 1)
    img = np.ascontiguousarray(rot[..., crop, crop])
    lab = None
    if labels is not None:
        bl = cut_window(labels, row - r, col - r, ROT_WINDOW)
        lab = np.ascontiguousarray(ndimage.rotate(bl, angle, axes=(-1, -2), reshape=False, order=0, mode="reflect")[crop, crop])
    return img, lab


# --------------------------------------------------------------------------- samplers


def _read_labels(path: Path) -> np.ndarray:
    data, _ = read_raster(path)
    if data.ndim != 3 or data.shape[0] != 1 or data.dtype != np.uint8:
        raise DataError(path, f"expected a 1-band uint8 label raster, got {data.shape} {data.dtype}")
    lab = data[0]
    bad = (lab > CLUTTER) & (lab != IGNORE)
    if bad.any():
        raise DataError(path, f"label values must be 0..5 or 255, found {sorted(np.unique(lab[bad]).tolist())[:5]}")
    return lab


def car_centres(full: np.ndarray, eroded: np.ndarray) -> tuple[np.ndarray, int]:
    """Centre pixel of every car (§4.1) -> ((n, 2) int rows/cols, number skipped).

    A car is an 8-connected component of class CAR in the full GT ``full`` (H, W); its
    centre is the component pixel that is a (non-ignored) car pixel in ``eroded`` and
    closest to the component centroid. Components without such a pixel are skipped.
    """
    comp, n = ndimage.label(full == CAR, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64), 0
    valid = (comp > 0) & (eroded == CAR)
    rr, cc = np.nonzero(comp > 0)
    ids = comp[rr, cc]
    cnt = np.bincount(ids, minlength=n + 1).astype(np.float64)
    cy = np.bincount(ids, weights=rr, minlength=n + 1) / np.maximum(cnt, 1)
    cx = np.bincount(ids, weights=cc, minlength=n + 1) / np.maximum(cnt, 1)
    vr, vc = np.nonzero(valid)
    vid = comp[vr, vc]
    d2 = (vr - cy[vid]) ** 2 + (vc - cx[vid]) ** 2
    order = np.lexsort((d2, vid))  # by component, then by distance
    first = np.unique(vid[order], return_index=True)[1]
    best = order[first]
    centres = np.stack([vr[best], vc[best]], axis=1)
    return centres, n - len(best)


def sample_pb(
    areas: list[int],
    full_labels: list[np.ndarray],
    eroded_labels: list[np.ndarray],
    per_class: int | None,
    car_rotations: int,
    seed: int,
    val_fraction: float = 0.1,
    label_paths: list | None = None,
) -> dict[str, np.ndarray]:
    """The PB training set of §4.1 as an index (see the module docstring for the columns).

    ``full_labels`` / ``eroded_labels``: per area (H, W) uint8 GT (0..5; eroded also 255).
    Raises DataError when a PB class has no pixel in the training areas.
    """
    rng = np.random.default_rng(seed)
    # cars: one centred patch each, then rotated copies
    cars = []
    skipped = 0
    for a, full, ero in zip(areas, full_labels, eroded_labels):
        c, s = car_centres(full, ero)
        skipped += s
        cars += [(a, int(r), int(q)) for r, q in c]
    if skipped:
        log.warning("PB sampler: %d car components vanish in the eroded GT and are skipped", skipped)
    n_cars = len(cars)
    where = label_paths if label_paths else areas
    if n_cars == 0:
        raise DataError(where[0] if label_paths else None, f"no car in the training areas {areas}: PB needs car centres")
    total = max(per_class or 0, n_cars * (1 + car_rotations))
    car_idx = np.concatenate([np.arange(n_cars), np.tile(np.arange(n_cars), car_rotations)])
    extra = total - len(car_idx)
    car_idx = np.concatenate([car_idx, np.arange(extra) % n_cars])
    angles = np.zeros(total, dtype=np.float32)
    angles[n_cars:] = rng.uniform(0.0, 360.0, size=total - n_cars).astype(np.float32)
    angles[n_cars:][angles[n_cars:] == 0] = 180.0  # a "rotated" copy is never the identity
    car_arr = np.array(cars, dtype=np.int64)[car_idx]
    cols = {
        "area": [car_arr[:, 0]],
        "row": [car_arr[:, 1]],
        "col": [car_arr[:, 2]],
        "label": [np.full(total, CAR)],
        "angle": [angles],
        "group": [car_idx.astype(np.int64)],
    }
    # other classes: uniform over their non-ignored pixels in all training areas
    for c in PB_CLASSES:
        if c == CAR:
            continue
        flat = [np.flatnonzero(ero == c) for ero in eroded_labels]
        sizes = np.array([len(f) for f in flat])
        n_pix = int(sizes.sum())
        if n_pix == 0:
            raise DataError(where[0] if label_paths else None, f"class {c} has no pixel in the training areas {areas}")
        pick = rng.choice(n_pix, size=total, replace=n_pix < total)
        pick.sort()
        which = np.searchsorted(np.cumsum(sizes), pick, side="right")
        offs = pick - np.concatenate([[0], np.cumsum(sizes)])[which]
        a_rows, a_cols, a_ids = [], [], []
        for k in np.unique(which):
            sel = which == k
            r, q = np.unravel_index(flat[k][offs[sel]], eroded_labels[k].shape)
            a_rows.append(r)
            a_cols.append(q)
            a_ids.append(np.full(sel.sum(), areas[k]))
        cols["area"].append(np.concatenate(a_ids))
        cols["row"].append(np.concatenate(a_rows))
        cols["col"].append(np.concatenate(a_cols))
        cols["label"].append(np.full(total, c))
        cols["angle"].append(np.zeros(total, dtype=np.float32))
        cols["group"].append(np.full(total, -1))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    # held-out validation: whole cars (with their rotations), other patches individually
    n = len(out["label"])
    val = rng.random(n) < val_fraction
    car_val = rng.random(n_cars) < val_fraction
    is_car = out["group"] >= 0
    val[is_car] = car_val[out["group"][is_car]]
    out["val"] = val
    return {
        "area": out["area"].astype(np.int16),
        "row": out["row"].astype(np.int32),
        "col": out["col"].astype(np.int32),
        "label": out["label"].astype(np.uint8),
        "angle": out["angle"].astype(np.float32),
        "group": out["group"].astype(np.int32),
        "val": out["val"].astype(bool),
    }


def fcn_grid(length: int, size: int, overlap: float) -> np.ndarray:
    """Patch start offsets along one axis: stride ``size * (1 - overlap)``, last one at
    ``length - size`` so the axis is covered. Raises ValueError if ``length < size``."""
    if length < size:
        raise ValueError(f"raster side {length} is smaller than the FCN patch {size}")
    stride = max(1, int(round(size * (1 - overlap))))
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return np.array(starts, dtype=np.int64)


def index_fcn(
    areas: list[int], shapes: list[tuple[int, int]], size: int, overlap: float, seed: int, val_fraction: float = 0.1
) -> dict[str, np.ndarray]:
    """The FCN training set of §4.2 as an index: every ``size`` x ``size`` patch at
    ``overlap`` over each area (H, W) = ``shapes[i]``, each in all 8 transforms."""
    rng = np.random.default_rng(seed)
    pos, val_pos = [], []
    for a, (h, w) in zip(areas, shapes):
        rows, cols = fcn_grid(h, size, overlap), fcn_grid(w, size, overlap)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        pos.append(np.stack([np.full(rr.size, a), rr.ravel(), cc.ravel()], axis=1))
        cand = np.isin(rr, fcn_val_candidates(rows, size)) & np.isin(cc, fcn_val_candidates(cols, size))
        # about val_fraction of the area's pixels: candidates are disjoint size x size windows
        p = min(1.0, val_fraction * h * w / (int(cand.sum()) * size * size))
        val_pos.append((cand & (rng.random(cand.shape) < p)).ravel())
    pos, val_pos = np.concatenate(pos), np.concatenate(val_pos)
    rep = np.repeat(np.arange(len(pos)), N_TRANSFORMS)
    return {
        "area": pos[rep, 0].astype(np.int16),
        "row": pos[rep, 1].astype(np.int32),
        "col": pos[rep, 2].astype(np.int32),
        "transform": np.tile(np.arange(N_TRANSFORMS), len(pos)).astype(np.uint8),
        "val": val_pos[rep],
    }


def fcn_val_candidates(starts: np.ndarray, size: int) -> np.ndarray:
    """The starts along one axis that a held-out FCN position may use: greedily from the
    first, each at least ``size`` after the last kept, so held-out windows never overlap."""
    kept: list[int] = []
    for s in starts.tolist():
        if not kept or s >= kept[-1] + size:
            kept.append(s)
    return np.array(kept, dtype=np.int64)


def fcn_heldout_mask(index: dict[str, np.ndarray], area: int, shape: tuple[int, int], size: int) -> np.ndarray:
    """(H, W) bool: the pixels of ``area`` under a held-out FCN position (``val`` row), whose
    labels the training patches must not see."""
    mask = np.zeros(shape, dtype=bool)
    sel = index["val"] & (index["area"] == area)
    for r, c in set(zip(index["row"][sel].tolist(), index["col"][sel].tolist())):
        mask[r : r + size, c : c + size] = True
    return mask


def _area_path(data_dir: Path, area: int, name: str) -> Path:
    p = Path(data_dir) / str(area) / name
    if not p.is_file():
        raise DataError(p, "missing (run the normalize rule first)")
    return p


def extract_pb(
    data_dir: str | Path,
    areas: list[int],
    out: str | Path,
    *,
    per_class: int | None,
    car_rotations: int,
    seed: int,
    val_fraction: float = 0.1,
) -> dict:
    """Rule ``extract_patches_pb``: sample the PB index from the training areas' GT and
    write it to ``out`` (npz, atomically). Returns a summary (counts per class, cars)."""
    data_dir = Path(data_dir)
    fulls, erodeds, paths = [], [], []
    for a in areas:
        fp, ep = _area_path(data_dir, a, "labels.tif"), _area_path(data_dir, a, "labels_eroded.tif")
        f, e = _read_labels(fp), _read_labels(ep)
        if f.shape != e.shape:
            raise DataError(ep, f"shape {e.shape} differs from labels.tif {f.shape}")
        fulls.append(f)
        erodeds.append(e)
        paths.append(ep)
    idx = sample_pb(list(areas), fulls, erodeds, per_class, car_rotations, seed, val_fraction, paths)
    meta = {"size": PB_SIZE, "areas": np.array(areas, dtype=np.int16), "seed": seed}
    _save_npz(out, idx, meta)
    counts = np.bincount(idx["label"], minlength=len(PB_CLASSES)).tolist()
    summary = {"patches": len(idx["label"]), "per_class": counts, "cars": int((idx["angle"] == 0)[idx["group"] >= 0].sum()), "val": int(idx["val"].sum())}
    log.info("PB index: %s", summary)
    return summary


def extract_fcn(
    data_dir: str | Path, areas: list[int], out: str | Path, *, size: int, overlap: float, seed: int, val_fraction: float = 0.1
) -> dict:
    """Rule ``extract_patches_fcn``: the FCN index over the training areas -> ``out`` (npz)."""
    from .raster import raster_shape

    shapes = []
    for a in areas:
        p = _area_path(Path(data_dir), a, "image.tif")
        _, h, w = raster_shape(p)
        if h < size or w < size:
            raise DataError(p, f"raster {h}x{w} is smaller than the FCN patch size {size}")
        shapes.append((h, w))
    idx = index_fcn(list(areas), shapes, size, overlap, seed, val_fraction)
    _save_npz(out, idx, {"size": size, "areas": np.array(areas, dtype=np.int16), "seed": seed})
    summary = {"rows": len(idx["area"]), "positions": len(idx["area"]) // N_TRANSFORMS, "val_positions": int(idx["val"].sum()) // N_TRANSFORMS}
    held = sum(int(fcn_heldout_mask(idx, a, hw, size).sum()) for a, hw in zip(areas, shapes))
    summary["val_pixel_fraction"] = round(held / sum(h * w for h, w in shapes), 4)
    log.info("FCN index: %s", summary)
    return summary


def _save_npz(out, idx: dict, meta: dict) -> None:
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **idx, **{f"meta_{k}": v for k, v in meta.items()})


def load_index(path: str | Path, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read a pb.npz / fcn.npz -> (columns, meta). DataError when it is not one."""
    need = {"pb": ("area", "row", "col", "label", "angle", "group", "val"), "fcn": ("area", "row", "col", "transform", "val")}[kind]
    try:
        with np.load(path) as z:
            cols = {k: z[k] for k in z.files if not k.startswith("meta_")}
            meta = {k[5:]: z[k] for k in z.files if k.startswith("meta_")}
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot read patch index ({e})") from e
    missing = [k for k in need if k not in cols]
    if missing:
        raise DataError(path, f"not a {kind} patch index: missing {missing}")
    return cols, meta


# --------------------------------------------------------------------------- datasets


def ensure_cache(data_dir: str | Path, cache_dir: str | Path, area: int, name: str) -> np.ndarray:
    """Memory-mapped (bands, H, W) copy of ``data_dir/{area}/{name}.tif``.

    The raster is converted once to ``cache_dir/{area}/{name}.npy`` (atomically; redone
    when the .tif is newer) and opened with ``np.load(mmap_mode="r")``.
    """
    src = _area_path(Path(data_dir), area, f"{name}.tif")
    dst = Path(cache_dir) / str(area) / f"{name}.npy"
    if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
        data, _ = read_raster(src)
        with atomic_path(dst) as tmp:
            np.save(tmp, np.ascontiguousarray(data))
    return np.load(dst, mmap_mode="r")


def _band_list(bands) -> list[int] | None:
    return None if bands is None else [int(b) for b in bands]


#: memory :class:`PBPatches` may keep its rotated car copies in (bytes)
PB_ROTATED_KEEP_BYTES = 2 << 30


class PBPatches(Dataset):
    """PB patches of an index (§4.1): item -> (image (5, 65, 65) float32, label int64 0..4).

    ``split``: "train" (rows not held out), "val" or "all". ``bands``: indices of the
    image bands to yield, in this order (None: all five; else the image is (len(bands), 65, 65)).

    A rotated car copy (its angle is fixed in the index) is rotated once and kept, up to
    ``keep_bytes`` in all (then the rest are rotated on every access, as before): the
    rotation of its 93x93 window was two thirds of an epoch's loading time in the demo
    (874 rotated copies: 2.3 of 3.4 s per epoch on 2 cores). A copy takes ~84 KB at 5
    bands: the demo keeps ~74 MB, the paper config (every car x 8 rotations) ~0.7 GB per
    thousand training cars.
    """

    def __init__(
        self, index: dict[str, np.ndarray], data_dir, cache_dir, split: str = "train", bands=None,
        keep_bytes: int = PB_ROTATED_KEEP_BYTES,
    ):
        sel = _split(index["val"], split)
        self.bands = _band_list(bands)
        self.area = index["area"][sel]
        self.row = index["row"][sel]
        self.col = index["col"][sel]
        self.label = index["label"][sel]
        self.angle = index["angle"][sel]
        self.images = {int(a): ensure_cache(data_dir, cache_dir, int(a), "image") for a in np.unique(self.area)}
        self._rotated: dict[int, np.ndarray] = {}
        self._keep_left = int(keep_bytes)

    def __len__(self) -> int:
        return len(self.label)

    def prepare(self, progress: bool = False) -> int:
        """Rotate every rotated car copy now (up to ``keep_bytes``), in this process.

        DataLoader workers are forked copies made anew each epoch: the copies they rotate
        die with them, so with ``num_workers > 0`` every epoch rotated its cars again (a
        loader of 2 workers: ~3,000 patches/s in every epoch, against ~12,000 from the
        second epoch on without workers, on the GPU pilot's data; PB waited for its 8
        workers 36 % of the time on an H200). Copies made here are inherited by the
        workers. Returns the number of copies kept."""
        todo = [int(i) for i in np.flatnonzero(self.angle != 0) if int(i) not in self._rotated]
        for i in tqdm(todo, desc="rotating car patches", unit="patch", disable=not progress, file=sys.stderr,
                      mininterval=1.0):
            self[i]
            if i not in self._rotated:  # keep_bytes reached: the rest are rotated on access
                break
        return len(self._rotated)

    def __getitem__(self, i):
        i = int(i)
        img = self._rotated.get(i)
        if img is None:
            img, _ = cut_pb_patch(self.images[int(self.area[i])], None, int(self.row[i]), int(self.col[i]), float(self.angle[i]))
            if self.angle[i] != 0 and img.nbytes <= self._keep_left:
                self._keep_left -= img.nbytes
                self._rotated[i] = img
                img = img.copy()  # the kept copy stays unchanged whatever the caller does
        else:
            img = img.copy()
        if self.bands is not None:
            img = np.ascontiguousarray(img[self.bands])  # rotation is per band: same as selecting first
        return torch.from_numpy(img), torch.tensor(int(self.label[i]), dtype=torch.int64)


def heldout_mask(index: dict[str, np.ndarray], area: int, full: np.ndarray, radius: int = 2) -> np.ndarray:
    """(H, W) bool: the pixels of ``area`` that tile training (:class:`PBTiles`) must not use
    as centres, because a held-out PB patch (``val`` row) is centred on or next to them:
    the whole car (8-connected component of CAR in the full GT ``full``) of a held-out car
    patch, and the (2 radius + 1)^2 square around every other held-out centre."""
    mask = np.zeros(full.shape, dtype=bool)
    sel = index["val"] & (index["area"] == area)
    rows, cols, labs = index["row"][sel], index["col"][sel], index["label"][sel]
    car = labs == CAR
    if car.any():
        comp, _ = ndimage.label(full == CAR, structure=np.ones((3, 3), dtype=bool))
        ids = np.unique(comp[rows[car], cols[car]])
        mask |= np.isin(comp, ids[ids > 0])
    for r, c in zip(rows[~car], cols[~car]):
        mask[max(0, r - radius) : r + radius + 1, max(0, c - radius) : c + radius + 1] = True
    return mask


class PBTiles(Dataset):
    """PB training by loss sampling (``train.PB.sampling: tiles``; Long et al. 2015, §4.4
    "patchwise training is loss sampling"): item -> (image (C, S+64, S+64) float32, labels
    (S, S) int64 of the candidate centres, 255 elsewhere, item id); :meth:`collate` draws a
    batch's centres.

    The same objective per centre as :class:`PBPatches` (the class of a 65x65 patch's centre
    pixel, classes weighted equally), with the convolutions shared by the patches cut from
    one tile (:meth:`~vaiseg.models.PatchCNN.forward_centres`). Choices (not in the paper,
    which trains patch by patch; this switch is off in both configs, docs/results.md "Convergence"):

    - the epoch's tiles are anchored at training rows of the PB classes in turn (tile t at
      class t mod 5, :meth:`epoch_batches`), so a batch of 5 tiles holds every class, cars
      included; the anchor falls at a seeded-random position of the tile's S x S centre
      region (moved inside the raster at its edges; the 32-px context beyond it is reflected
      like the patches' and the inference's);
    - the tile (image and labels) gets a random dihedral transform (§4.2's eight) instead of
      PB's arbitrary car rotations;
    - a batch's ``batch_size * centres`` centres are split evenly over the PB classes and
      drawn uniformly, with replacement, from that class's candidate pixels in all the
      batch's tiles (:meth:`collate`): class-balanced like PB's patches. The candidates of
      the four area classes are all their (eroded, held-in) pixels, uniform like the PB
      index's; a car's only candidate is its centre pixel of the PB index (§4.1: one patch
      centred on each car), so the car class means the same as patchwise (with every car
      pixel as a car centre, PB learned "a car nearby" and called the impervious surfaces
      around cars car: impervious F1 58 and 10 in two of three trainings); clutter and
      ignored pixels are never centres;
    - pixels of held-out patches (:func:`heldout_mask`) are never centres, so the history's
      held-out patches stay unseen as centres.

    Item ids are ``epoch * n + i`` (``n`` = training rows): anchor row i with the epoch's own
    random draws (seeded by ``seed``, epoch and i); a batch's centres are seeded by its item
    ids, so a resumed run draws the same tiles and centres.
    """

    def __init__(self, index: dict[str, np.ndarray], data_dir, cache_dir, *, tile_size: int, centres: int, seed: int, bands=None):
        if tile_size < 1 or centres < 1:
            raise ValueError(f"tile_size and centres must be >= 1, got {tile_size}, {centres}")
        sel = _split(index["val"], "train")
        self.bands = _band_list(bands)
        self.size, self.k, self.seed = int(tile_size), int(centres), int(seed)
        self.area = index["area"][sel]
        self.row = index["row"][sel]
        self.col = index["col"][sel]
        self.label = index["label"][sel]
        self.images, self.labels = {}, {}
        for a in (int(a) for a in np.unique(index["area"])):
            self.images[a] = ensure_cache(data_dir, cache_dir, a, "image")
            lab = np.array(ensure_cache(data_dir, cache_dir, a, "labels_eroded")[0])
            lab[(lab > CAR) | heldout_mask(index, a, np.asarray(ensure_cache(data_dir, cache_dir, a, "labels")[0]))] = IGNORE
            # a car's only centre is its centre pixel of the PB index (§4.1), as patchwise
            centre = np.zeros(lab.shape, dtype=bool)
            mine = (self.area == a) & (self.label == CAR)
            centre[self.row[mine], self.col[mine]] = True
            lab[(lab == CAR) & ~centre] = IGNORE
            self.labels[a] = lab

    def __len__(self) -> int:
        return len(self.area)

    def epoch_batches(self, epoch: int, n_batches: int, batch_size: int) -> list[list[int]]:
        """Item ids of an epoch's batches: the epoch's tile t is anchored at the next training
        row of class t mod 5 in a seeded per-class permutation (cycled when it runs out)."""
        rng = np.random.default_rng([self.seed, epoch, 1])
        perms = [rng.permutation(np.flatnonzero(self.label == c)) for c in PB_CLASSES]
        if any(len(p) == 0 for p in perms):
            raise DataError(None, f"tile sampling needs a training patch of every PB class, got counts {[len(p) for p in perms]}")
        base, n = (epoch - 1) * len(self), len(PB_CLASSES)
        ids = [base + int(perms[t % n][(t // n) % len(perms[t % n])]) for t in range(n_batches * batch_size)]
        return [ids[k : k + batch_size] for k in range(0, len(ids), batch_size)]

    def __getitem__(self, j):
        epoch, i = divmod(int(j), len(self))
        rng = np.random.default_rng([self.seed, epoch, i])
        a, s, pad = int(self.area[i]), self.size, PB_SIZE // 2
        lab_all = self.labels[a]
        h, w = lab_all.shape
        top = int(np.clip(int(self.row[i]) - rng.integers(s), 0, max(0, h - s)))
        left = int(np.clip(int(self.col[i]) - rng.integers(s), 0, max(0, w - s)))
        t = int(rng.integers(N_TRANSFORMS))
        win = cut_window(self.images[a], top - pad, left - pad, s + 2 * pad)
        if self.bands is not None:
            win = win[self.bands]
        img = np.array(dihedral(win, t), dtype=np.float32)
        lab = dihedral(cut_window(lab_all, top, left, s), t).astype(np.int64)
        return torch.from_numpy(img), torch.from_numpy(lab), int(j)

    def collate(self, batch):
        """-> (images (B, C, S+64, S+64), tile (N,), row (N,), col (N,), labels (N,)): ``B * K``
        centres split evenly over the PB classes present in the batch (remainder to random
        classes), each drawn uniformly over that class's candidate pixels in the batch's
        tiles; a
        centre (row, col) of the S x S region is the top-left corner of its 65x65 patch in
        the padded image."""
        imgs, labs, ids = zip(*batch)
        rng = np.random.default_rng([self.seed, 2, *ids])
        lab = torch.stack(labs).numpy()
        flat = lab.ravel()
        present = [c for c in PB_CLASSES if (flat == c).any()]
        total = self.k * len(batch)
        counts = np.full(len(present), total // max(1, len(present)))
        counts[rng.permutation(len(present))[: total - counts.sum()]] += 1
        picks = [rng.choice(np.flatnonzero(flat == c), size=m) for c, m in zip(present, counts) if m]
        pix = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
        tile, row, col = (torch.from_numpy(v.astype(np.int64)) for v in np.unravel_index(pix, lab.shape))
        return torch.stack(imgs), tile, row, col, torch.from_numpy(flat[pix])


class FCNPatches(Dataset):
    """FCN patches of an index (§4.2): item -> (image (5, S, S) float32, labels (S, S)
    int64 with 255 = ignored), both under the row's dihedral transform.

    ``labels``: "labels" (full GT) or "labels_eroded". ``split``: "train" (every held-in
    patch x 8 transforms; pixels under a held-out position are 255, :func:`fcn_heldout_mask`),
    "val" (held-out positions, identity transform only) or "all" (nothing masked).
    ``bands``: indices of the image bands to yield, in this order (None: all).
    """

    def __init__(self, index: dict[str, np.ndarray], size: int, data_dir, cache_dir, split: str = "train", labels: str = "labels", bands=None):
        sel = _split(index["val"], split)
        self.bands = _band_list(bands)
        if split == "val":
            sel &= index["transform"] == 0
        self.size = int(size)
        self.area = index["area"][sel]
        self.row = index["row"][sel]
        self.col = index["col"][sel]
        self.transform = index["transform"][sel]
        areas = [int(a) for a in np.unique(self.area)]
        self.images = {a: ensure_cache(data_dir, cache_dir, a, "image") for a in areas}
        self.labels = {a: ensure_cache(data_dir, cache_dir, a, labels) for a in areas}
        self.heldout = {}
        if split == "train":
            for a in areas:
                m = fcn_heldout_mask(index, a, self.labels[a].shape[1:], self.size)
                if m.any():
                    self.heldout[a] = m

    def __len__(self) -> int:
        return len(self.area)

    def __getitem__(self, i):
        a, r, c, t = int(self.area[i]), int(self.row[i]), int(self.col[i]), int(self.transform[i])
        win = cut_window(self.images[a], r, c, self.size)
        if self.bands is not None:
            win = win[self.bands]
        img = np.array(dihedral(win, t), dtype=np.float32)
        lab = cut_window(self.labels[a][0], r, c, self.size).astype(np.int64)
        if a in self.heldout:
            lab[cut_window(self.heldout[a], r, c, self.size)] = IGNORE
        return torch.from_numpy(img), torch.from_numpy(np.ascontiguousarray(dihedral(lab, t)))


def _split(val: np.ndarray, split: str) -> np.ndarray:
    if split == "train":
        return ~val
    if split == "val":
        return val.copy()
    if split == "all":
        return np.ones_like(val)
    raise ValueError(f"split must be train, val or all, got {split!r}")
