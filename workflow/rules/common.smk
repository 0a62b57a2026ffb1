# Config validation and the helpers that turn the config into targets.
# Area lists and model names come from vaiseg.config (one place for them).

import os

from snakemake.utils import validate

from vaiseg.config import ALL_MODELS, FUSIONS, MODELS, all_areas, command_line_lists, fusion_split, split_areas

command_line_lists(config)  # --config seeds=[0,1,2] arrives as strings
validate(config, schema="../schemas/config.schema.yaml")

# Output roots (§3b of issue 10): with `run_name` set, every output, log, benchmark and
# downloaded/generated resource of this run lives under results/<run_name>/,
# logs/<run_name>/ and resources/<run_name>/, so runs of different configs sit side by side.
# Without it the paths are today's results/, logs/, resources/ (the output contract).
RUN_NAME = config.get("run_name") or ""
RESULTS = os.path.join("results", RUN_NAME) if RUN_NAME else "results"
LOGS = os.path.join("logs", RUN_NAME) if RUN_NAME else "logs"
RESOURCES = os.path.join("resources", RUN_NAME) if RUN_NAME else "resources"


def res(path):
    """A path under this run's results folder."""
    return f"{RESULTS}/{path}"


def logs(path):
    """A path under this run's log folder."""
    return f"{LOGS}/{path}"


def resource(path):
    """A path under this run's resources folder (archives, extracted members)."""
    return f"{RESOURCES}/{path}"


# Seeds (issue 12): `seeds: [s1, s2, ...]` trains and evaluates every CNN and fusion once
# per seed. One seed (the default, `seeds: null` = [seed]): the per-seed files sit at the
# output contract's paths. Several: under results/seeds/{seed}/, Tables 1-2 at the contract
# paths are mean +- std over the seeds, and the one-seed analyses (maps, uncertainty,
# calibration, comparisons, ablations) use the first seed (PRIMARY_SEED).
SEEDS = [int(s) for s in (config.get("seeds") or [config["seed"]])]
MULTI_SEED = len(SEEDS) > 1
PRIMARY_SEED = SEEDS[0]


def sres(path):
    """A per-seed results path pattern: res(path) with one seed, else with a {seed} wildcard."""
    return res(f"seeds/{{seed}}/{path}") if MULTI_SEED else res(path)


def slogs(path):
    """A per-seed log/benchmark name pattern (see sres)."""
    return logs(f"seeds/{{seed}}/{path}") if MULTI_SEED else logs(path)


def seed_path(path, seed):
    """sres(path) for one given seed."""
    return sres(path).replace("{seed}", str(seed))


def seed_of(wildcards):
    """The seed of a per-seed job (its {seed} wildcard; the first seed for one-seed jobs)."""
    return int(wildcards.get("seed", PRIMARY_SEED))


def spath(wildcards, path):
    """sres(path) for the seed of this job (for input functions)."""
    return seed_path(path, seed_of(wildcards))


def primary(path):
    """The first seed's file (what the one-seed analyses read)."""
    return seed_path(path, PRIMARY_SEED)


def project_path(path):
    """``path`` as given when absolute, else relative to the project folder (where the
    Snakefile is), so shipped files are found whatever the working directory."""
    return path if os.path.isabs(path) else os.path.join(workflow.basedir, path)


TRAIN_AREAS, VAL_AREAS = split_areas(config)
# the areas the CNNs train on and the areas whose predictions train the fusion SVMs
# (the same unless fusion.train_on: holdout; §4.4)
CNN_AREAS, SVM_AREAS = fusion_split(config)
AREAS = all_areas(config)
# what MC inference / fusion run on: validation areas (evaluation) + training areas
# (pixels the fusion SVMs are trained on, §4.4)
PRED_AREAS = AREAS
SOURCE = config["data"]["source"]
# the label raster the FCNs train on (and MFB counts): full GT or eroded GT
FCN_LABELS = "labels_eroded" if config["patches"]["fcn"].get("labels", "full") == "eroded" else "labels"


wildcard_constraints:
    area=r"\d+",
    model="|".join(m.replace("+", r"\+") for m in ALL_MODELS),
    cnn="|".join(MODELS),
    fusion="|".join(f.replace("+", r"\+") for f in FUSIONS),


def contract_outputs():
    """Every file of the output contract (ARCHITECTURE.md) plus the report's extras."""
    out = []
    for a in AREAS:
        out += [f"{RESULTS}/data/{a}/image.tif", f"{RESULTS}/data/{a}/labels.tif", f"{RESULTS}/data/{a}/labels_eroded.tif"]
    for m in ALL_MODELS:  # several seeds: the first seed's (the others are inputs of the tables)
        for a in VAL_AREAS:
            out += [primary(f"predictions/{m}/{a}/probs.tif"), primary(f"predictions/{m}/{a}/labels.tif")]
            if m in MODELS:
                out.append(primary(f"predictions/{m}/{a}/uncertainty.tif"))
    for t in ("table1", "table2"):
        out += [f"{RESULTS}/tables/{t}.{ext}" for ext in ("csv", "md", "tex")]
    out += [
        res("figures/accuracy_vs_uncertainty.csv"),
        res("figures/accuracy_vs_uncertainty.png"),
        res("paper_diff.md"),
        res("paper_diff.csv"),
    ]
    out += [f for f in REPORT_EXTRAS if f not in out]  # report.smk: coverage, calibration, maps, history
    return out


def data_root(per_area_files):
    """results/data: the folder holding the per-area folders of a rule's raster inputs."""
    return os.path.dirname(os.path.dirname(per_area_files[0]))


def train_params(model, seed=None):
    """The config values one CNN's training depends on (changing another model's does not
    rerun it); ``seed``: the job's seed (default: the first seed)."""
    settings = dict(config["train"].get(model, {}))
    if settings.get("clip_grad_norm", 0) is None:
        del settings["clip_grad_norm"]  # unclipped (the default): the params runs had before it existed
    if settings.get("sampling", "patches") == "patches":  # patchwise PB (the default): the tile keys do nothing
        for key in ("sampling", "tile_size", "centres_per_tile"):
            settings.pop(key, None)
    return {
        **settings,
        "amp": config["train"].get("amp", False),
        **({"amp_cpu": True} if config["train"].get("amp_cpu") else {}),  # off: the params runs had before it existed
        "width": config["models"]["width"],
        "dropout": config["models"]["dropout"],
        "seed": PRIMARY_SEED if seed is None else int(seed),
        **({"pb_fc_width": config["models"]["pb_fc_width"]} if model == "PB" else {}),
        **({"fcn_labels": FCN_LABELS, "fcn_dropout": config["models"]["fcn_dropout"]} if model != "PB" else {}),
    }


def lr_range_inputs(wildcards):
    """A CNN's range test reads what its training reads: the train rule's named inputs."""
    train = {"PB": rules.train_pb, "FCN": rules.train_fcn, "FCN-MFB": rules.train_fcn_mfb}[wildcards.model]
    return dict(train.input.items())


# --- MC inference outputs (infer.smk) and the retrain ablations (ablations.smk)
MC_OUTPUTS = ("probs", "uncertainty", "labels", "class_std", "entropy", "mutual_info", "probs_deterministic", "labels_color")


def mc_outputs(folder):
    """The rasters one MC-inference job writes into ``folder`` (name -> path)."""
    return {name: f"{folder}/{name}.tif" for name in MC_OUTPUTS}


def ablation_dir(choice, option):
    """Where the retrain ablation {choice}={option} keeps its models and predictions."""
    return res(f"ablations/{choice}/{option}")


def ablation_settings(model, choice, option):
    """train_params of ``model`` with one retrain switch set to ``option``."""
    return {**train_params(model), **({"fcn_dropout": option} if choice == "fcn_dropout" else {})}


def ablation_mfb(choice, option):
    """The MFB weights a retrained FCN-MFB uses (its own for the mfb_median switch)."""
    if choice == "mfb_median":
        return rules.mfb_weights_ablation.output.weights.format(option=option)
    return rules.mfb_weights.output.weights


def mc_area_outputs(folder_pattern, areas):
    """mc_outputs() of every area: name -> list of paths (``folder_pattern`` has {area})."""
    return {name: [path.replace("{area}", str(a)) for a in areas] for name, path in mc_outputs(folder_pattern).items()}


# --- Tables 1-2 (report.smk): the tables rule writes them per seed, seed_tables over seeds
TABLE_FILES = {
    "table1_csv": "tables/table1.csv",
    "table1_md": "tables/table1.md",
    "table1_tex": "tables/table1.tex",
    "table1_extended": "tables/table1_extended.csv",
    "table2_csv": "tables/table2.csv",
    "table2_md": "tables/table2.md",
    "table2_tex": "tables/table2.tex",
    "table2_extended": "tables/table2_extended.csv",
}
TABLE_CAPTIONS = {"table1_csv": "table1", "table1_extended": "table_extended", "table2_csv": "table2", "table2_extended": "table_extended"}


def table_outputs(root):
    """The tables rule's named outputs under ``root`` (res or sres), csv files in the report."""
    return {
        key: report(root(path), caption=f"../report/{TABLE_CAPTIONS[key]}.rst", category="Tables") if key in TABLE_CAPTIONS else root(path)
        for key, path in TABLE_FILES.items()
    }
