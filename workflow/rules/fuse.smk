# Combined approach (§4.4): one-vs-all linear SVMs (LIBLINEAR) on the concatenated mean
# softmax of the member CNNs, trained on a stratified sample of the TRAINING areas'
# predictions (eroded GT), applied to every area as one matrix product.

FUSION = config["fusion"]


rule fuse_train:
    input:
        # member-major (feature order): every training area of member 1, then member 2, ...
        probs=lambda w: [f"{RESULTS}/predictions/{m}/{a}/probs.tif" for m in FUSIONS[w.fusion] for a in SVM_AREAS],
        labels=expand(res("data/{area}/labels_eroded.tif"), area=SVM_AREAS),
    output:
        svm=res("fusion/{fusion}/svm.json"),
    params:
        members=lambda w: list(FUSIONS[w.fusion]),
        areas=list(SVM_AREAS),
        samples=FUSION["samples"],
        balanced=FUSION["balanced"],
        C=FUSION["C"],
        solver=FUSION["solver"],
        seed=config["seed"],
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("fuse_train/{fusion}.log"),
    benchmark:
        res("benchmarks/fuse_train/{fusion}.tsv")
    message:
        "Training the {wildcards.fusion} one-vs-all linear SVMs (§4.4, LIBLINEAR) on training-area predictions"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/fuse_train.py"


rule fuse_apply:
    input:
        svm=rules.fuse_train.output.svm,
        probs=lambda w: [f"{RESULTS}/predictions/{m}/{w.area}/probs.tif" for m in FUSIONS[w.fusion]],
    output:
        probs=res("predictions/{fusion}/{area}/probs.tif"),
        scores=res("predictions/{fusion}/{area}/scores.tif"),
        labels=res("predictions/{fusion}/{area}/labels.tif"),
        labels_color=res("predictions/{fusion}/{area}/labels_color.tif"),
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("fuse_apply/{fusion}_{area}.log"),
    benchmark:
        res("benchmarks/fuse_apply/{fusion}_{area}.tsv")
    message:
        "Applying the {wildcards.fusion} SVMs to area {wildcards.area} (§4.4)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/fuse_apply.py"
