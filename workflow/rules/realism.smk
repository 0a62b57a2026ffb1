# The realism yardstick and the sim-to-real check (issue 11; beyond the paper): target
# `realism`, not part of `all`. The run's synthetic areas against real ISPRS pixels, and
# the pipeline's FCN trained on the synthetic training areas' IR, R, G bands scored on
# the real pixels. The default reference is the Vaihingen crop beside the project
# (../shared/real_samples, which a user's clone lacks: then the target stops saying what
# to configure); realism.reference.isprs takes real ISPRS archives instead.

REALISM = config["realism"]
REALISM_ISPRS = REALISM["reference"].get("isprs")
REALISM_CROP = {k: project_path(v) for k, v in REALISM["reference"]["crop"].items()}
# synthetic areas measured: configured, else the CNN training areas (all extracted)
REALISM_AREAS = list(REALISM["areas"] or CNN_AREAS)
# one sim-to-real FCN per seed (headline = mean +- std over them); null: the run's seed
REALISM_SEEDS = [int(s) for s in (REALISM.get("seeds") or [config["seed"]])]
REALISM_PREDS = (
    {f"area{a}": res(f"realism/real_area{a}_pred.tif") for a in REALISM_ISPRS["areas"]}
    if REALISM_ISPRS
    else {"crop": res("realism/real_crop_pred.tif")}
)


use rule train_fcn as realism_train_fcn with:
    output:
        model=res("realism/fcn_irrg/seed{seed}/model.pt"),
        history=res("realism/fcn_irrg/seed{seed}/history.csv"),
    params:
        settings=lambda w: {
            **train_params("FCN", int(w.seed)),
            "bands": [0, 1, 2],
            **({"epochs": REALISM["epochs"]} if REALISM["epochs"] else {}),
        },
        checkpoint_dir=lambda w: res(f"realism/fcn_irrg/seed{w.seed}/checkpoint"),
    log:
        logs("realism/train_fcn_irrg_seed{seed}.log"),
    benchmark:
        res("benchmarks/realism/train_fcn_irrg_seed{seed}.tsv")
    message:
        "Training the FCN on the synthetic training areas' IR, R, G bands (sim-to-real, seed {wildcards.seed})"


if REALISM_ISPRS:

    use rule fetch_archive as realism_fetch_archive with:
        output:
            archive=resource("realism/archives/{key}.zip"),
        params:
            source="isprs",
            archives=REALISM_ISPRS["archives"],
        log:
            logs("realism/fetch_archive_{key}.log"),
        benchmark:
            res("benchmarks/realism/fetch_archive_{key}.tsv")
        message:
            "Fetching the real reference archive {wildcards.key} (realism)"

    use rule extract_archives as realism_extract_archives with:
        input:
            top=resource("realism/archives/top.zip"),
            gt_eroded=resource("realism/archives/gt_eroded.zip"),
        output:
            manifest=resource("realism/extracted/manifest.json"),
        params:
            areas=REALISM_ISPRS["areas"],
        log:
            logs("realism/extract_archives.log"),
        benchmark:
            res("benchmarks/realism/extract_archives.tsv")
        message:
            "Extracting the real reference areas {params.areas} (realism)"


rule realism:
    input:
        models=expand(res("realism/fcn_irrg/seed{seed}/model.pt"), seed=REALISM_SEEDS),
        stats=rules.normalize_stats.output.stats,
        manifest=rules.extract_archives.output.manifest,
        **({"reference": resource("realism/extracted/manifest.json")} if REALISM_ISPRS else {}),
    output:
        summary=res("realism/summary.json"),
        csv=res("realism/realism.csv"),
        md=res("realism/realism.md"),
        figure=res("realism/realism.png"),
        cars=res("realism/real_cars.csv"),
        **REALISM_PREDS,
    params:
        synthetic_areas=REALISM_AREAS,
        validation_areas=VAL_AREAS,
        crop=None if REALISM_ISPRS else REALISM_CROP,
        reference_areas=REALISM_ISPRS["areas"] if REALISM_ISPRS else [],
        T=INFER["mc_samples"],
        tile_size=INFER["tile_size"],
        seeds=REALISM_SEEDS,
        device=config["device"],
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
    log:
        logs("realism/realism.log"),
    benchmark:
        res("benchmarks/realism/realism.tsv")
    message:
        "Realism yardstick and sim-to-real: synthetic areas {params.synthetic_areas} against real pixels"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/realism.py"
