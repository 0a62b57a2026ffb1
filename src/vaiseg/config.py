"""The one place that turns a config into area lists and model names (§3).

Splits:
- ``paper``: train on areas 1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37; validate on
  11, 15, 28, 30, 34 (Paisitkriangkrai et al., as in the paper's §3).
- ``benchmark``: train on all 16 labelled areas; evaluate on the 17 others (the ISPRS
  test areas), which needs their ground truth to be supplied.
"""

from __future__ import annotations

from .errors import ConfigError

#: areas whose ground truth ISPRS released to participants
LABELLED_AREAS = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
#: the ISPRS test areas (ground truth released later, "…_COMPLETE" archives)
TEST_AREAS = (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)
ALL_AREAS = tuple(sorted(LABELLED_AREAS + TEST_AREAS))

SPLITS = {
    "paper": {
        "train": (1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37),
        "val": (11, 15, 28, 30, 34),
    },
    "benchmark": {"train": LABELLED_AREAS, "val": TEST_AREAS},
}

#: the three CNNs of Table 1 (§4.1, §4.2)
MODELS = ("PB", "FCN", "FCN-MFB")
#: the SVM fusions of Table 2 (§4.4), name -> member models
FUSIONS = {
    "PB+FCN": ("PB", "FCN"),
    "PB+FCN-MFB": ("PB", "FCN-MFB"),
    "FCN+FCN-MFB": ("FCN", "FCN-MFB"),
    "ALL": ("PB", "FCN", "FCN-MFB"),
}
ALL_MODELS = MODELS + tuple(FUSIONS)


def command_line_lists(config: dict) -> dict:
    """``config`` with the integer strings of its top-level ``seeds`` list made ints.

    Snakemake parses a list given on the command line with YAML's BaseLoader, which keeps
    every item a string: ``--config seeds=[0,1,2]`` arrives as ``['0', '1', '2']`` and would
    fail the schema ("'0' is not of type 'integer'"), though the same list in a config file
    passes. Items that are not integer strings are left for the schema to reject.
    """
    def as_int(item):
        try:
            return int(item) if isinstance(item, str) else item
        except ValueError:  # not an integer string ("x", "+-2"): the schema's to reject
            return item

    if isinstance(config.get("seeds"), list):
        config["seeds"] = [as_int(s) for s in config["seeds"]]
    return config


def split_areas(config: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train areas, validation areas) for a validated config.

    ``data.areas`` (optional ``{train: [...], val: [...]}``) overrides the split, e.g.
    for tiny test configs.
    """
    data = config["data"]
    override = data.get("areas")
    if override:
        train, val = tuple(override["train"]), tuple(override["val"])
    else:
        split = data.get("split", "paper")
        if split not in SPLITS:
            raise ConfigError(f"data.split: unknown split {split!r} (choose from {sorted(SPLITS)})")
        train, val = SPLITS[split]["train"], SPLITS[split]["val"]
    overlap = set(train) & set(val)
    if overlap:
        raise ConfigError(f"data.areas: areas {sorted(overlap)} are in both train and val")
    if not train or not val:
        raise ConfigError("data.areas: train and val must both be non-empty")
    return tuple(train), tuple(val)


def all_areas(config: dict) -> tuple[int, ...]:
    train, val = split_areas(config)
    return tuple(sorted(set(train) | set(val)))


def fusion_split(config: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(areas the CNNs train on, areas whose predictions train the fusion SVMs), §4.4.

    ``fusion.train_on: train_areas`` (default): both are the split's training areas, so the
    SVMs see in-sample CNN predictions. ``holdout``: the areas in ``fusion.holdout_areas``
    (a strict subset of the training areas) are kept from the CNNs and train the SVMs
    alone, so the SVMs learn from predictions the CNNs did not train on.
    """
    train, _ = split_areas(config)
    fusion = config.get("fusion", {})
    if fusion.get("train_on", "train_areas") != "holdout":
        return train, train
    holdout = tuple(fusion.get("holdout_areas") or ())
    if not holdout:
        raise ConfigError("fusion.holdout_areas: give the training areas kept for the SVMs (fusion.train_on: holdout)")
    stray = sorted(set(holdout) - set(train))
    if stray:
        raise ConfigError(f"fusion.holdout_areas: areas {stray} are not training areas {list(train)}")
    cnn = tuple(a for a in train if a not in holdout)
    if not cnn:
        raise ConfigError("fusion.holdout_areas: every training area is held out; the CNNs would have none")
    return cnn, tuple(a for a in train if a in holdout)
