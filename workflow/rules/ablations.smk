# The ablation table (beyond the paper): which unstated choice moves which number.
# Cheap switches (fusion sample, SVM training predictions, PB border, Fig. 6 reading) are
# computed in memory from the run's predictions (vaiseg.reporting.ablations); switches
# listed in ablations.retrain train the affected FCNs again with the other option, under
# results/ablations/<choice>/<option>/, and run them on the validation areas.

# the other option of each retrain switch and the CNNs it retrains
RETRAIN = {
    "fcn_dropout": {
        "configured": config["models"]["fcn_dropout"],
        "other": {"encoder_output": "last_two_sets", "last_two_sets": "encoder_output"}[config["models"]["fcn_dropout"]],
        "methods": ["FCN", "FCN-MFB"],
    },
    "mfb_median": {
        "configured": config["train"]["mfb_median"],
        "other": {"with_clutter": "without_clutter", "without_clutter": "with_clutter"}[config["train"]["mfb_median"]],
        "methods": ["FCN-MFB"],
    },
}
RETRAINED = {choice: RETRAIN[choice] for choice in config["ablations"]["retrain"]}
# the PB's reflect-padded predictions: the run's own, or one more PB inference when the
# run leaves the 32-px border unclassified (infer.pb_border: none)
PB_REFLECT_DIR = PRED_DIR if INFER["pb_border"] == "reflect" else res("ablations/pb_border/reflect/predictions")
SVM_VAL_AREAS = sorted(set(SVM_AREAS) | set(VAL_AREAS))


wildcard_constraints:
    choice="|".join(RETRAIN),
    option="encoder_output|last_two_sets|with_clutter|without_clutter",


use rule mfb_weights as mfb_weights_ablation with:
    output:
        weights=res("ablations/mfb_median/{option}/mfb_weights.json"),
    params:
        median_over=lambda w: w.option,
    log:
        logs("mfb_weights/ablation_{option}.log"),
    benchmark:
        res("benchmarks/mfb_weights/ablation_{option}.tsv")
    message:
        "Median-frequency class weights (eq. 2), median {wildcards.option} (ablation)"


use rule train_fcn as train_fcn_ablation with:
    input:
        index=primary("patches/fcn.npz"),
        images=rules.train_fcn.input.images,
        labels=rules.train_fcn.input.labels,
    output:
        model=res("ablations/{choice}/{option}/models/FCN/model.pt"),
        history=res("ablations/{choice}/{option}/models/FCN/history.csv"),
    params:
        settings=lambda w: ablation_settings("FCN", w.choice, w.option),
        checkpoint_dir=lambda w: f"{ablation_dir(w.choice, w.option)}/checkpoints/FCN",
    log:
        logs("train_fcn/ablation_{choice}_{option}.log"),
    benchmark:
        res("benchmarks/train_fcn/ablation_{choice}_{option}.tsv")
    message:
        "Training the FCN again with {wildcards.choice}={wildcards.option} (ablation)"


use rule train_fcn_mfb as train_fcn_mfb_ablation with:
    input:
        index=primary("patches/fcn.npz"),
        images=rules.train_fcn_mfb.input.images,
        labels=rules.train_fcn_mfb.input.labels,
        mfb=lambda w: ablation_mfb(w.choice, w.option),
    output:
        model=res("ablations/{choice}/{option}/models/FCN-MFB/model.pt"),
        history=res("ablations/{choice}/{option}/models/FCN-MFB/history.csv"),
    params:
        settings=lambda w: ablation_settings("FCN-MFB", w.choice, w.option),
        checkpoint_dir=lambda w: f"{ablation_dir(w.choice, w.option)}/checkpoints/FCN-MFB",
    log:
        logs("train_fcn_mfb/ablation_{choice}_{option}.log"),
    benchmark:
        res("benchmarks/train_fcn_mfb/ablation_{choice}_{option}.tsv")
    message:
        "Training the FCN-MFB again with {wildcards.choice}={wildcards.option} (ablation)"


# the retrained FCNs are scored on the validation areas only
use rule mc_infer as mc_infer_ablation with:
    input:
        model=res("ablations/{choice}/{option}/models/{cnn}/model.pt"),
        images=expand(res("data/{area}/image.tif"), area=VAL_AREAS),
    output:
        **mc_area_outputs(res("ablations/{choice}/{option}/predictions/{cnn}/{area}"), VAL_AREAS),
    params:
        areas=list(VAL_AREAS),
    log:
        logs("mc_infer/ablation_{choice}_{option}_{cnn}.log"),
    benchmark:
        res("benchmarks/mc_infer/ablation_{choice}_{option}_{cnn}.tsv")
    message:
        "MC-dropout inference of {wildcards.cnn} ({wildcards.choice}={wildcards.option}, ablation) on areas {params.areas}"


use rule mc_infer as mc_infer_pb_reflect with:
    input:
        model=primary("models/PB/model.pt"),
        images=expand(res("data/{area}/image.tif"), area=SVM_VAL_AREAS),
    output:
        **mc_area_outputs(res("ablations/pb_border/reflect/predictions/PB/{area}"), SVM_VAL_AREAS),
    params:
        areas=SVM_VAL_AREAS,
        pb_border="reflect",
    log:
        logs("mc_infer/ablation_pb_reflect.log"),
    benchmark:
        res("benchmarks/mc_infer/ablation_pb_reflect.tsv")
    message:
        "MC-dropout inference of PB with a reflect-padded border (ablation) on areas {params.areas}"


rule ablations:
    input:
        probs=expand(f"{PRED_DIR}/{{cnn}}/{{area}}/probs.tif", cnn=MODELS, area=SVM_VAL_AREAS),
        labels=expand(f"{PRED_DIR}/{{model}}/{{area}}/labels.tif", model=ALL_MODELS, area=VAL_AREAS),
        eroded=expand(f"{DATA_DIR}/{{area}}/labels_eroded.tif", area=SVM_VAL_AREAS),
        pb_reflect_probs=expand(f"{PB_REFLECT_DIR}/PB/{{area}}/probs.tif", area=SVM_VAL_AREAS),
        pb_reflect_labels=expand(f"{PB_REFLECT_DIR}/PB/{{area}}/labels.tif", area=VAL_AREAS),
        coverage=rules.uncertainty_curve.output.coverage,
        retrained=[
            f"{ablation_dir(c, r['other'])}/predictions/{m}/{a}/labels.tif"
            for c, r in RETRAINED.items()
            for m in r["methods"]
            for a in VAL_AREAS
        ],
    output:
        csv=report(res("tables/ablations.csv"), caption="../report/ablations.rst", category="Tables"),
        md=res("tables/ablations.md"),
    params:
        cnns=list(MODELS),
        models=list(ALL_MODELS),
        val_areas=list(VAL_AREAS),
        svm_areas=list(SVM_AREAS),
        areas=SVM_VAL_AREAS,
        fusion=config["fusion"],
        seed=PRIMARY_SEED,
        pb_border=INFER["pb_border"],
        fig6_reading=REPORT["fig6_reading"],
        retrained=RETRAINED,
    threads: 4  # one process per fusion variant's SVM training (LIBLINEAR uses one core)
    resources:
        mem_mb=lambda wildcards, threads: 2000 + 1500 * threads,  # 1.6 GB peak with 2 (demo)
    log:
        logs("ablations/ablations.log"),
    benchmark:
        res("benchmarks/ablations/ablations.tsv")
    message:
        "Ablation table: each unstated choice's options on this run's data"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/ablations.py"


# the ablation table is part of every run (common.smk's contract_outputs)
REPORT_EXTRAS += list(rules.ablations.output)
