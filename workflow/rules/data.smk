# Data stage (§3): archives -> extracted members -> train-only statistics -> normalised rasters.
# Both sources share one code path: synthetic scenes are written as ISPRS archives first.

from vaiseg.data.layout import ARCHIVES, archives_needed
from vaiseg.data.code_digest import synthetic_code_digest

SYNTHETIC_DIR = resource("synthetic")
ISPRS_ARCHIVES = config["data"].get("isprs", {}).get("archives", {})


# archives the extraction needs: isprs: the main archive and the eroded GT, the
# ..._ground_truth_COMPLETE.zip only for areas outside the 16 labelled ones (the main
# archive's gts_for_participants/ holds their full GT), ndsm when configured; synthetic:
# all four (the generator writes them)
DATA_ARCHIVE_KEYS = archives_needed(SOURCE, AREAS, ISPRS_ARCHIVES)
# synthetic: fetch from the generator's folder (md5s from its md5.json); isprs: the
# configured path/url is a param, so a missing source gives vaiseg's DataError (how to
# get the data) instead of a snakemake MissingInputException
FETCH_INPUT = {"md5": f"{SYNTHETIC_DIR}/md5.json"} if SOURCE == "synthetic" else {}


SYNTHETIC_CODE = synthetic_code_digest()  # without importing the generator: vaiseg.data.code_digest


rule synthesize_archives:
    output:
        md5=f"{SYNTHETIC_DIR}/md5.json",
        frequencies=f"{SYNTHETIC_DIR}/class_frequencies.csv",
        **{key: f"{SYNTHETIC_DIR}/{name}" for key, name in ARCHIVES.items()},
    params:
        areas=AREAS,
        height=config["data"]["synthetic"]["height"],
        width=config["data"]["synthetic"]["width"],
        seed=config["data"]["synthetic"]["seed"],
        # the generator's code: a change re-synthesizes the scenes (and reruns what follows)
        generator=SYNTHETIC_CODE,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("synthesize_archives/synthesize_archives.log"),
    benchmark:
        res("benchmarks/synthesize_archives/synthesize_archives.tsv")
    message:
        "Synthesizing Vaihingen-like scenes of areas {params.areas} as ISPRS archives"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/synthesize_archives.py"


rule fetch_archive:
    input:
        **FETCH_INPUT,
    output:
        archive=resource("archives/{key}.zip"),
    params:
        source=SOURCE,
        archives=ISPRS_ARCHIVES,
    wildcard_constraints:
        key="|".join(ARCHIVES),
    threads: 1
    resources:
        mem_mb=500,
    log:
        logs("fetch_archive/{key}.log"),
    benchmark:
        res("benchmarks/fetch_archive/{key}.tsv")
    message:
        "Fetching archive {wildcards.key} ({params.source}) with md5 check"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/fetch_archive.py"


rule extract_archives:
    input:
        **{key: f"{RESOURCES}/archives/{key}.zip" for key in DATA_ARCHIVE_KEYS},
    output:
        manifest=resource("extracted/manifest.json"),
    params:
        areas=AREAS,
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("extract_archives/extract_archives.log"),
    benchmark:
        res("benchmarks/extract_archives/extract_archives.tsv")
    message:
        "Extracting TOP, DSM and ground truth of areas {params.areas}"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/extract_archives.py"


rule normalize_stats:
    input:
        manifest=rules.extract_archives.output.manifest,
    output:
        stats=res("data/stats.json"),
    params:
        train_areas=TRAIN_AREAS,
        max_nodata_fraction=config["data"]["max_nodata_fraction"],
        ndsm=config["data"]["ndsm"],
    threads: 1
    resources:
        mem_mb=2000,
    log:
        logs("normalize_stats/normalize_stats.log"),
    benchmark:
        res("benchmarks/normalize_stats/normalize_stats.tsv")
    message:
        "Per-band mean/std over the training areas {params.train_areas}"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/normalize_stats.py"


rule normalize:
    input:
        manifest=rules.extract_archives.output.manifest,
        stats=rules.normalize_stats.output.stats,
    output:
        image=res("data/{area}/image.tif"),
        labels=res("data/{area}/labels.tif"),
        labels_eroded=res("data/{area}/labels_eroded.tif"),
    params:
        max_nodata_fraction=config["data"]["max_nodata_fraction"],
        ndsm=config["data"]["ndsm"],
    threads: 1
    resources:
        mem_mb=2000,
    log:
        logs("normalize/{area}.log"),
    benchmark:
        res("benchmarks/normalize/{area}.tsv")
    message:
        "Normalising area {wildcards.area}: 5-band image (IR, R, G, DSM, nDSM) and labels"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/normalize.py"
