"""Generator variants scored by the pipeline's ``realism`` target (issue 11; benchmarks/README.md,
"Realism sweep").

A *variant* overrides some of the synthetic generator's module constants (``VARIANTS``):
each aims at one gap the yardstick measured between the default areas and the real
Vaihingen crop (README, "How realistic the default data are"). ``realism_sweep.sh`` runs
the pipeline's own rules once per variant, each under its own ``run_name``: the data stage
(which draws the variant's areas), one sim-to-real FCN per seed (rule
``realism_train_fcn``, side by side on one GPU) and the ``realism`` rule over the seeds
that finished in the time given. The variant reaches every Python process Snakemake starts
through a ``sitecustomize`` module (``hook``) that applies ``VAISEG_GENERATOR_VARIANT``
at start-up; the generator itself has no switch for them.

*Towns*: the same generator draws a different town for another ``data.synthetic.seed``,
and the town drawn for the 11 training areas moves the sim-to-real figures more than the
FCN's seed does (README, "How realistic the default data are"). With ``--town T`` a run
also sets that seed (run_name ``sweep_VARIANT_tT``), and the report pools a variant's
FCNs over its towns: the headline statistics over every (town, seed) FCN, each town's
mean, and the spread of the town means; every variant is also compared with ``base``
town by town (``paired``: the towns' differences, paired t-test and Wilcoxon p).

Subcommands:
  hook DIR                        write DIR/sitecustomize.py
  check VARIANT                   exit 1 unless this process runs with the variant applied
  config VARIANT --out F ...      the run's overlay config (run_name, town, realism seeds, crop)
  seeds VARIANT [--town T]        the seeds whose sim-to-real model exists
  report --out F.json [--md F.md] every variant's realism summary in one file, with the
         [--towns T ...]          mean, std and standard error of the headline numbers
  prior-shift VARIANT --towns T ... --out F.json
                                  each of the variant's sim-to-real FCNs re-scored on the
                                  crop with its prediction moved to the base town's class mix
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from vaiseg.data.synthetic.materials import TEXTURE

ENV = "VAISEG_GENERATOR_VARIANT"
PKG = "vaiseg.data.synthetic."
HEADLINE = ("sim_to_real_oa", "sim_to_real_avg_f1", "sim_to_real_car_f1")
#: yardstick keys put beside the headline in the markdown table (synthetic, real)
YARDSTICK = (
    ("band_w1_mean", None),
    ("boundary_fraction_synthetic", "boundary_fraction_real"),
    ("shadow_fraction_synthetic", "shadow_fraction_real"),
    ("gradient_median_synthetic", "gradient_median_real"),
    ("separability_low_veg_vs_tree_synthetic", "separability_low_veg_vs_tree_real"),
    # the same FCNs on the run's own validation areas: a variant that makes the scenes
    # harder lowers these, and the gap to the sim-to-real columns is the domain's cost
    ("sim_to_real_in_domain_oa", None),
    ("sim_to_real_in_domain_car_f1", None),
)

_DENSER = np.array(  # town.KIND_P with every density's mix moved half a step toward the old-town core
    [
        [0.07, 0.10, 0.13, 0.44, 0.13, 0.06, 0.07],
        [0.38, 0.16, 0.10, 0.18, 0.10, 0.05, 0.03],
        [0.62, 0.18, 0.05, 0.05, 0.05, 0.03, 0.02],
    ]
)
_SUN_LOW = {"scene:HOUR_ANGLE": (-72.0, -40.0)}  # 7:10-9:20 solar time: sun 25-41 deg up (default 36-59)
_BLUR = {"render:BLUR_SIGMA": (0.9, 1.5)}  # optics blur sigma, px (default 0.5-1.0)
_URBAN = {"town:KIND_P": _DENSER}
_BLUR_MORE = {"render:BLUR_SIGMA": (1.3, 2.0)}
_SHRUBS = {"town:SHRUB_BEDS": 8.0}  # shrub beds on lawns: crown-like low vegetation 4 % -> 33 % of its pixels
_FINE_HALF = {"render:TEXTURE": TEXTURE * np.array([0.5, 1.0, 1.0], np.float32)}  # ~1-px texture halved


def _no_heights(cv, rng):
    """``heights._matched_heights`` of a matcher that sees no object at all: the DSM is the
    terrain plus matching noise and blunders, the nDSM only that and the terrain estimate's
    errors (images and labels are drawn from their own streams and do not change)."""
    return np.zeros((cv.h, cv.w), np.float32)


_DSM_FLAT = {"heights:_matched_heights": _no_heights}
_NO_CROWNS = {"heights:CROWN_MATCHED": (0.0, 0.0), "heights:CROWN_HOLE_HEIGHT": (0.0, 0.0)}
#: name -> {"module:CONSTANT": value} under vaiseg.data.synthetic; why each:
#: sun_low - the crop lies 47 % in shadow (synthetic 31 %), its street 61 % (42 %): the
#:   sim-to-real FCN's largest error is the shaded street called roof;
#: blur - the synthetic median brightness gradient is 2.13 DN/px against the crop's 1.37;
#: urban - the crop is a street block (55 % impervious, 32 % building);
#: all - the three together;
#: shrubs - the crop's low vegetation is mostly shrubbery that looks like its trees (image-only
#:   separability of low vegetation and tree: AUC 0.85 real, 0.98 synthetic, where 4 % of the
#:   low vegetation is crown-like).
#: dsm_flat, no_crowns - not realism variants but bounds for the in-domain goal (FCN OA <= 95 %):
#:   what the default run's FCN scores when the nDSM shows nothing, or no trees and hedges;
#:   dsm_flat_shrubs - the image alone with the shrub beds' harder vegetation;
#:   shrubs_no_crowns - the shrub beds with an nDSM that shows the buildings but no crowns
#:   (docs/measurements.md, "How much of the in-domain accuracy is the nDSM's?").
#: The values are those the sweep tried. `blur` became the generator's default in commit
#: e7ffdec, so since then `blur` is `base` and the others are relative to the blurred scenes
#: where they leave the blur alone (benchmarks/results/realism_sweep_h200.json was measured
#: before: its `base` is the sharper generator).
VARIANTS: dict[str, dict] = {
    "base": {},
    "sun_low": _SUN_LOW,
    "blur": _BLUR,
    "urban": _URBAN,
    "all": {**_SUN_LOW, **_BLUR, **_URBAN},
    # second round, around the first round's best (blur)
    "blur_more": _BLUR_MORE,
    "blur_fine": {**_BLUR, **_FINE_HALF},
    "blur_urban": {**_BLUR, **_URBAN},
    "blur_more_urban": {**_BLUR_MORE, **_URBAN},
    # third round (CPU, README "How realistic the default data are")
    "shrubs": _SHRUBS,
    # in-domain bounds (the nDSM only; images and labels unchanged)
    "dsm_flat": _DSM_FLAT,
    "no_crowns": _NO_CROWNS,
    "dsm_flat_shrubs": {**_DSM_FLAT, **_SHRUBS},
    "shrubs_no_crowns": {**_SHRUBS, **_NO_CROWNS},
}


def _constants(name: str):
    """(key, module, constant name, value) of each override of variant ``name``."""
    for key, value in VARIANTS[name].items():
        mod_name, const = key.split(":")
        yield key, importlib.import_module(PKG + mod_name), const, value


def apply(name: str) -> dict:
    """Set the variant's constants in the generator's modules; returns {key: old value}.
    KeyError naming the known variants for an unknown one, AttributeError for a
    constant the module lacks (a variant that silently did nothing would be worse)."""
    if name not in VARIANTS:
        raise KeyError(f"unknown generator variant {name!r}; known: {sorted(VARIANTS)}")
    old = {}
    for key, mod, const, value in _constants(name):
        old[key] = getattr(mod, const)  # AttributeError: a renamed constant
        setattr(mod, const, value)
    return old


HOOK = f"""# written by benchmarks/realism_sweep.py: applies ${ENV} in every Python process
import os
if os.environ.get({ENV!r}):
    import realism_sweep
    realism_sweep.apply(os.environ[{ENV!r}])
"""


def applied(name: str) -> list[str]:
    """The constants of variant ``name`` that do NOT hold its values in this process
    (empty: applied; the sweep checks a fresh process before each run, because Python
    only prints a warning when a sitecustomize module fails)."""
    return [key for key, mod, const, value in _constants(name) if not _same(getattr(mod, const), value)]


def _same(current, value) -> bool:
    """Whether a module attribute holds a variant's value: arrays and numbers by value, a
    function by its name (the hook's copy of this module is not ``__main__``)."""
    if callable(value):
        return getattr(current, "__qualname__", None) == value.__qualname__
    return np.array_equal(np.asarray(current), np.asarray(value))


def write_hook(directory) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "sitecustomize.py").write_text(HOOK)
    return d / "sitecustomize.py"


def run_name(variant: str, town: int | None = None) -> str:
    """The run_name of a variant (and town): sweep_VARIANT, sweep_VARIANT_tTOWN
    (realism_sweep.sh reads it from here)."""
    return f"sweep_{variant}" if town is None else f"sweep_{variant}_t{int(town)}"


def overlay(variant: str, seeds, irrg, labels, town: int | None = None) -> dict:
    """The overlay config of one run: its run_name, realism seeds and crop, and with
    ``town`` the generator's seed (``data.synthetic.seed``; None: the config's)."""
    cfg = {
        "run_name": run_name(variant, town),
        "realism": {
            "seeds": [int(s) for s in seeds],
            "reference": {"crop": {"irrg": str(Path(irrg).resolve()), "labels": str(Path(labels).resolve())}},
        },
    }
    if town is not None:
        cfg["data"] = {"synthetic": {"seed": int(town)}}
    return cfg


def finished_seeds(results: Path, seeds) -> list[int]:
    return [int(s) for s in seeds if (results / "realism" / "fcn_irrg" / f"seed{int(s)}" / "model.pt").is_file()]


def _stats(values) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    out = {"n": int(v.size), "mean": float(v.mean()) if v.size else None}
    if v.size >= 2:
        out["std"] = float(v.std(ddof=1))
        out["se"] = out["std"] / math.sqrt(v.size)
    return out


def _yardstick(summary: dict) -> dict:
    return {k: val for k, val in summary.items() if isinstance(val, (int, float)) and k not in HEADLINE
            and not k.endswith("_std")}


def collect(results_root: Path, variants, towns=None) -> dict:
    """{variant: {headline key: {n, mean, std, se}, seeds: [...], yardstick: {...}}} for
    every variant whose realism summary exists (others: {"missing": path}).

    With ``towns`` (generator seeds), a variant's row pools the FCNs of all its towns
    whose summary exists: the headline statistics over every (town, seed) FCN, ``seeds``
    each FCN's figures with its ``town``, ``towns`` {town: the town's headline stats, or
    {"missing": path}}, ``town_means`` the statistics of the town means (their std is the
    spread between towns), and ``yardstick`` the mean of the towns' yardstick scalars."""
    out = {}
    for v in variants:
        runs = [(None, results_root / run_name(v) / "realism" / "summary.json")] if not towns else [
            (int(t), results_root / run_name(v, t) / "realism" / "summary.json") for t in towns]
        found = [(t, json.loads(p.read_text())) for t, p in runs if p.is_file()]
        if not found:
            out[v] = {"missing": str(runs[0][1]) if len(runs) == 1 else [str(p) for _, p in runs]}
            continue
        per_seed = [dict(r, **({"town": t} if t is not None else {})) for t, s in found for r in s.get("sim_to_real_seeds", [])]
        row = {k: _stats([r.get(k) for r in per_seed]) for k in HEADLINE}
        row["seeds"] = per_seed
        row["overrides"] = {k: np.asarray(val).tolist() for k, val in VARIANTS[v].items()}
        ys = [_yardstick(s) for _, s in found]
        row["yardstick"] = ys[0] if not towns else {k: float(np.mean([y[k] for y in ys])) for k in ys[0] if all(k in y for y in ys)}
        if towns:
            done = {t: s for t, s in found}
            row["towns"] = {}
            for t, p in runs:
                if t not in done:
                    row["towns"][str(t)] = {"missing": str(p)}
                    continue
                fcns = done[t].get("sim_to_real_seeds", [])
                row["towns"][str(t)] = {k: _stats([r.get(k) for r in fcns]) for k in HEADLINE}
            row["town_means"] = {k: _stats([row["towns"][str(t)][k]["mean"] for t in done
                                            if row["towns"][str(t)][k]["mean"] is not None]) for k in HEADLINE}
        out[v] = row
    return out


def baseline_towns(path) -> dict:
    """The base generator's town means from an earlier run, for ``paired``: ``path`` is a
    report of this script (its ``variants.base.towns``) or a JSON object with
    ``base_town_means`` {town: [OA, avg F1, car F1]} (the headline's order). Returns
    {town: {headline key: {"mean": value}}}; a file with neither is an error naming it."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a readable JSON file ({e})") from None
    if isinstance(d, dict) and isinstance(d.get("variants", {}).get("base", {}).get("towns"), dict):
        return {str(t): st for t, st in d["variants"]["base"]["towns"].items() if "missing" not in st}
    means = d.get("base_town_means") if isinstance(d, dict) else None
    if not isinstance(means, dict) or not all(isinstance(v, list) and len(v) == len(HEADLINE) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in means.values()):
        raise ValueError(f"{p}: neither a sweep report with variants.base.towns nor "
                         f"base_town_means {{town: [{', '.join(HEADLINE)}]}} (numbers)")
    return {str(t): {k: {"mean": float(x)} for k, x in zip(HEADLINE, v)} for t, v in means.items()}


def paired(variants: dict, baseline: str = "base", base_towns: dict | None = None) -> dict:
    """Each variant against ``baseline``, paired by town: {variant: {headline key: {towns,
    diffs, n, mean, std, se, up, t_p, wilcoxon_p}}} over the towns where both have a mean
    (``collect``'s ``towns``). The town moves the sim-to-real figures more than the
    variants do (README, "How realistic the default data are"), so the difference of the
    two town means is compared town by town: a paired t-test (scipy ``ttest_rel``) and
    the Wilcoxon signed-rank test (``wilcoxon``, exact for small n), ``up`` the towns
    where the variant scored higher. A variant that keeps the rest of the town pixel for
    pixel (``shrubs``: its beds have a random stream of their own) gains most from the
    pairing; one that redraws the layout (``urban``) is still paired fairly, by the town
    seed, with less to gain. Fewer than two common towns: no p-values. ``base_towns``
    (``baseline_towns``: an earlier run's base) fills the towns that ``baseline`` lacks
    here, so a variant can be run alone and still be paired."""
    from scipy import stats

    base = {**(base_towns or {}), **{t: st for t, st in variants.get(baseline, {}).get("towns", {}).items()
                                     if "missing" not in st}}
    out = {}
    if not base:
        return out
    for v, row in variants.items():
        if v == baseline or "towns" not in row:
            continue
        out[v] = {}
        for k in HEADLINE:
            towns = [t for t, st in row["towns"].items() if t in base and st.get(k, {}).get("mean") is not None
                     and base[t].get(k, {}).get("mean") is not None]
            a = np.array([row["towns"][t][k]["mean"] for t in towns])
            b = np.array([base[t][k]["mean"] for t in towns])
            d = a - b
            res = {"towns": [int(t) for t in towns], "diffs": d.tolist(), **_stats(d), "up": int((d > 0).sum())}
            if d.size >= 2 and np.any(d != 0):
                res["t_p"] = float(stats.ttest_rel(a, b).pvalue)
                res["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
            out[v][k] = res
    return out


def prior_shift(results_root: Path, variant: str, towns, irrg, labels, *, T: int = 10, tile_size: int = 512) -> dict:
    """How much of a variant's sim-to-real score is its training class mix? Each FCN of
    ``variant`` in each town (``results/sweep_VARIANT_tTOWN``: its data stage, stats.json
    and realism FCNs; a town without them: {"missing": path, "seeds": []}) predicts the crop again as the realism rule does (T MC samples, mask
    seed = FCN seed, so ``raw`` is the summary's OA) and is re-scored after
    :func:`vaiseg.realism.sim_to_real.label_shift` of its mean softmax from the variant
    town's class shares (its training areas' full labels) to (``to_base``) the base
    generator's shares for the same town seed, drawn here with ``generate_scene`` — so
    this process must run the base generator, without the sweep's hook — and (``to_crop``,
    an oracle for scale) the crop's own eroded-label shares. A ``to_base`` that keeps the
    variant's gain over base says the gain is what the FCN learned from the images, not
    its prior. Returns {crop_prior, towns: {town: {prior_variant, prior_base, seeds: [{seed,
    raw, to_base, to_crop, ..._avg_f1, ..._building_share}], mean_raw, mean_to_base,
    mean_to_crop}}, mean_raw, mean_to_base, mean_to_crop} (OA and F1 in percent; scored
    classes only)."""
    from vaiseg.classes import SCORED
    from vaiseg.data.synthetic.scene import generate_scene
    from vaiseg.mfb import class_frequencies
    from vaiseg.raster import read_raster
    from vaiseg.realism.sim_to_real import crop_scores, label_shift, predict_crop, read_real_crop, standardise_real

    if os.environ.get(ENV) not in (None, "", "base"):
        raise RuntimeError(f"prior-shift draws the base generator's towns: unset {ENV} (it is {os.environ[ENV]!r})")

    def shares(label_arrays):  # the scored classes' shares (class_frequencies: pixel counts, IGNORE left out)
        n = class_frequencies(label_arrays)[1][list(SCORED)].astype(np.float64)
        return n / n.sum()

    crop, truth = read_real_crop(irrg, labels)
    crop_prior = shares([truth])
    out = {"crop_prior": crop_prior.tolist(), "towns": {}}
    for t in towns:
        res = Path(results_root) / run_name(variant, t)
        if not (res / "data" / "stats.json").is_file():  # the town was not run (or its data stage failed)
            out["towns"][str(t)] = {"missing": str(res / "data" / "stats.json"), "seeds": []}
            continue
        stats = json.loads((res / "data" / "stats.json").read_text())
        labs = {int(a): read_raster(res / "data" / str(a) / "labels.tif")[0][0] for a in stats["areas"]}
        p_var = shares(labs.values())
        p_base = shares(generate_scene(a, *lab.shape, int(t)).labels for a, lab in labs.items())
        image = standardise_real(crop, stats)
        # clutter (unscored, no prior here) keeps its probability: ratio 1
        pf = np.append(p_var, 1.0)
        targets = {"to_base": np.append(p_base, 1.0), "to_crop": np.append(crop_prior, 1.0)}
        rows = []
        for model in sorted((res / "realism" / "fcn_irrg").glob("seed*/model.pt")):
            sd = int(model.parent.name[4:])
            mc = predict_crop(model, image, T=T, seed=sd, tile_size=tile_size, device="cpu", return_all=True)
            probs = np.asarray(mc["probs"], dtype=np.float64)
            n = probs.shape[0]
            row = {"seed": sd, "raw": crop_scores(truth, mc["labels"])["sim_to_real_oa"]}
            for name, pt in targets.items():
                sc = crop_scores(truth, label_shift(probs, pf[:n], pt[:n]).argmax(0).astype(np.uint8))
                row.update({name: sc["sim_to_real_oa"], f"{name}_avg_f1": sc["sim_to_real_avg_f1"],
                            f"{name}_building_share": sc["predicted_share"]["building"]})
            rows.append(row)
        town = {"prior_variant": p_var.tolist(), "prior_base": p_base.tolist(), "seeds": rows}
        town.update({f"mean_{c}": float(np.mean([r[c] for r in rows])) if rows else None for c in ("raw", "to_base", "to_crop")})
        out["towns"][str(t)] = town
    done = [v for v in out["towns"].values() if v["seeds"]]
    out.update({f"mean_{c}": float(np.mean([v[f"mean_{c}"] for v in done])) if done else None
                for c in ("raw", "to_base", "to_crop")})
    return out


def _fmt(st: dict) -> str:
    if not st or st.get("mean") is None:
        return "—"
    if "se" not in st:
        return f"{st['mean']:.1f} (n {st['n']})"
    return f"{st['mean']:.1f} ± {st['std']:.1f} (se {st['se']:.1f}, n {st['n']})"


def markdown(report: dict) -> str:
    """The report as a markdown table: a row per variant, and with towns a column of each
    town's mean sim-to-real OA and the std of those means."""
    with_towns = any("towns" in row for row in report["variants"].values())
    cols = ["variant", "sim-to-real OA", "avg F1", "car F1"] + (["OA per town (std of the town means)"] if with_towns else [])
    cols += [a.replace("_synthetic", "") for a, _ in YARDSTICK]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    real = None
    for v, row in report["variants"].items():
        if "missing" in row:
            lines.append(f"| {v} | missing | | |" + " |" * (len(cols) - 4))
            continue
        y = row["yardstick"]
        real = real or y
        cells = [v] + [_fmt(row[k]) for k in HEADLINE]
        if with_towns:
            per = [f"{t}: " + ("missing" if "missing" in st else "—" if st["sim_to_real_oa"]["mean"] is None
                                 else f"{st['sim_to_real_oa']['mean']:.1f}") for t, st in row.get("towns", {}).items()]
            spread = row.get("town_means", {}).get("sim_to_real_oa", {})
            cells.append(", ".join(per) + (f" ({spread['std']:.1f})" if "std" in spread else ""))
        cells += [f"{y[a]:.3g}" if a in y else "—" for a, _ in YARDSTICK]
        lines.append("| " + " | ".join(cells) + " |")
    if real:
        lines.append("| real crop | | | | " + ("| " if with_towns else "")
                     + " | ".join(f"{real[b]:.3g}" if b in real else "—" for _, b in YARDSTICK) + " |")
    if report.get("paired"):
        src = f"; base towns not run here from {report['baseline']}" if report.get("baseline") else ""
        lines += ["", "Paired by town, variant − base (mean ± std of the town differences; towns up; "
                  f"paired t-test p, Wilcoxon p{src}):", "",
                  "| variant | towns | " + " | ".join(("OA", "avg F1", "car F1")) + " |", "|---|---|---|---|---|"]
        for v, by in report["paired"].items():
            cells = []
            for k in HEADLINE:
                d = by[k]
                if not d["n"]:
                    cells.append("—")
                    continue
                sd = f" ± {d['std']:.1f}" if "std" in d else ""
                ps = f"; p {d['t_p']:.3f}, {d['wilcoxon_p']:.3f}" if "t_p" in d else ""
                cells.append(f"{d['mean']:+.1f}{sd} ({d['up']} of {d['n']} up{ps})")
            lines.append(f"| {v} | {', '.join(map(str, by[HEADLINE[0]]['towns']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hook")
    h.add_argument("dir")
    k = sub.add_parser("check")
    k.add_argument("variant", choices=sorted(VARIANTS))
    c = sub.add_parser("config")
    c.add_argument("variant", choices=sorted(VARIANTS))
    c.add_argument("--out", required=True)
    c.add_argument("--seeds", type=int, nargs="+", required=True)
    c.add_argument("--irrg", required=True)
    c.add_argument("--labels", required=True)
    c.add_argument("--town", type=int, help="the generator's seed (data.synthetic.seed; default: the config's)")
    s = sub.add_parser("seeds")
    s.add_argument("variant", choices=sorted(VARIANTS))
    s.add_argument("--seeds", type=int, nargs="+", required=True)
    s.add_argument("--results", default="results")
    s.add_argument("--town", type=int)
    n = sub.add_parser("run-name")
    n.add_argument("variant", choices=sorted(VARIANTS))
    n.add_argument("--town", type=int)
    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--md")
    r.add_argument("--variants", nargs="+", default=list(VARIANTS))
    r.add_argument("--results", default="results")
    r.add_argument("--meta", default="{}", help="JSON, or a JSON file, merged into the report (machine, times)")
    r.add_argument("--towns", type=int, nargs="*", help="pool each variant over these towns (generator seeds)")
    r.add_argument("--baseline", help="an earlier report, or a JSON file with base_town_means, whose base towns "
                   "fill those not run here (the pairing of --towns)")
    ps = sub.add_parser("prior-shift")
    ps.add_argument("variant", choices=sorted(VARIANTS))
    ps.add_argument("--towns", type=int, nargs="+", required=True)
    ps.add_argument("--results", default="results")
    ps.add_argument("--irrg", required=True)
    ps.add_argument("--labels", required=True)
    ps.add_argument("--T", type=int, default=10, help="MC samples (the realism rule's infer.mc_samples)")
    ps.add_argument("--tile-size", type=int, default=512)
    ps.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "prior-shift":
        rep = prior_shift(Path(a.results), a.variant, a.towns, a.irrg, a.labels, T=a.T, tile_size=a.tile_size)
        Path(a.out).write_text(json.dumps(rep, indent=1) + "\n")
        for t, v in rep["towns"].items():
            if not v["seeds"]:
                print(f"{a.variant} town {t}: nothing to score ({v.get('missing') or 'no sim-to-real model'})")
                continue
            print(f"{a.variant} town {t}: OA raw {v['mean_raw']:.2f}, moved to the base mix {v['mean_to_base']:.2f}, "
                  f"to the crop's {v['mean_to_crop']:.2f}")
        return 0
    if a.cmd == "hook":
        print(write_hook(a.dir))
    elif a.cmd == "check":
        wrong = applied(a.variant)
        if wrong:
            print(f"generator variant {a.variant!r} not applied in this process ({ENV}={os.environ.get(ENV)!r}): "
                  f"{wrong} keep their defaults; is the sitecustomize hook on PYTHONPATH?", file=sys.stderr)
            return 1
    elif a.cmd == "config":
        import yaml

        Path(a.out).write_text(yaml.safe_dump(overlay(a.variant, a.seeds, a.irrg, a.labels, a.town)))
    elif a.cmd == "seeds":
        print(" ".join(map(str, finished_seeds(Path(a.results) / run_name(a.variant, a.town), a.seeds))))
    elif a.cmd == "run-name":
        print(run_name(a.variant, a.town))
    else:
        try:  # JSON first: a long JSON string is no file name (the OS refuses to stat it)
            meta = json.loads(a.meta)
        except json.JSONDecodeError:
            try:
                meta = json.loads(Path(a.meta).read_text())
            except (OSError, json.JSONDecodeError) as e:
                ap.error(f"--meta {a.meta!r}: neither a JSON object nor a file holding one ({e})")
        if not isinstance(meta, dict):
            ap.error(f"--meta {a.meta!r}: a JSON object ({{...}}) is needed, not {type(meta).__name__}")
        try:
            base_towns = baseline_towns(a.baseline) if a.baseline else None
        except ValueError as e:
            ap.error(f"--baseline: {e}")
        report = {**meta, "variants": collect(Path(a.results), a.variants, a.towns)}
        if a.towns:
            report["towns"] = [int(t) for t in a.towns]
            report["paired"] = paired(report["variants"], base_towns=base_towns)
            if a.baseline:
                report["baseline"] = str(a.baseline)
        Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
        md = markdown(report)
        if a.md:
            Path(a.md).write_text(md)
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
