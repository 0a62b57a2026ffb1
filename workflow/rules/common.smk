# Config validation and the helpers that turn the config into targets.
# Area lists and model names come from vaiseg.config (one place for them).

import os

from snakemake.utils import validate

from vaiseg.config import ALL_MODELS, FUSIONS, MODELS, all_areas, split_areas

validate(config, schema="../schemas/config.schema.yaml")

TRAIN_AREAS, VAL_AREAS = split_areas(config)
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
        out += [f"results/data/{a}/image.tif", f"results/data/{a}/labels.tif", f"results/data/{a}/labels_eroded.tif"]
    for m in ALL_MODELS:
        for a in VAL_AREAS:
            out += [f"results/predictions/{m}/{a}/probs.tif", f"results/predictions/{m}/{a}/labels.tif"]
            if m in MODELS:
                out.append(f"results/predictions/{m}/{a}/uncertainty.tif")
    for t in ("table1", "table2"):
        out += [f"results/tables/{t}.{ext}" for ext in ("csv", "md", "tex")]
    out += [
        "results/figures/accuracy_vs_uncertainty.csv",
        "results/figures/accuracy_vs_uncertainty.png",
        "results/paper_diff.md",
        "results/paper_diff.csv",
    ]
    out += [f for f in REPORT_EXTRAS if f not in out]  # report.smk: coverage, calibration, maps, history
    return out


def data_root(per_area_files):
    """results/data: the folder holding the per-area folders of a rule's raster inputs."""
    return os.path.dirname(os.path.dirname(per_area_files[0]))


def train_params(model):
    """The config values one CNN's training depends on (changing another model's does not rerun it)."""
    return {
        **config["train"].get(model, {}),
        "amp": config["train"].get("amp", False),
        "width": config["models"]["width"],
        "dropout": config["models"]["dropout"],
        "seed": config["seed"],
        **({"fcn_labels": FCN_LABELS} if model != "PB" else {}),
    }
