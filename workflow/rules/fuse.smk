# Combined approach (§4.4): one-vs-all linear SVMs (LIBLINEAR) on the concatenated mean
# softmax of the member CNNs, trained on a stratified sample of the TRAINING areas'
# predictions (eroded GT), applied to every area as one matrix product (one job per
# fusion). Per seed: the SVM's pixel sample is seeded.

FUSION = config["fusion"]


rule fuse_train:
    input:
        # member-major (feature order): every training area of member 1, then member 2, ...
        probs=lambda w: [spath(w, f"predictions/{m}/{a}/probs.tif") for m in FUSIONS[w.fusion] for a in SVM_AREAS],
        labels=expand(res("data/{area}/labels_eroded.tif"), area=SVM_AREAS),
    output:
        svm=sres("fusion/{fusion}/svm.json"),
    params:
        members=lambda w: list(FUSIONS[w.fusion]),
        areas=list(SVM_AREAS),
        samples=FUSION["samples"],
        balanced=FUSION["balanced"],
        C=FUSION["C"],
        solver=FUSION["solver"],
        seed=seed_of,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        slogs("fuse_train/{fusion}.log"),
    benchmark:
        sres("benchmarks/fuse_train/{fusion}.tsv")
    message:
        "Training the {wildcards.fusion} one-vs-all linear SVMs (§4.4, LIBLINEAR) on training-area predictions"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/fuse_train.py"


rule fuse_apply:
    input:
        svm=rules.fuse_train.output.svm,
        # area-major: every member of the first area, then of the second, ...
        probs=lambda w: [spath(w, f"predictions/{m}/{a}/probs.tif") for a in PRED_AREAS for m in FUSIONS[w.fusion]],
    output:
        **{
            name: [sres(f"predictions/{{fusion}}/{a}/{name}.tif") for a in PRED_AREAS]
            for name in ("probs", "scores", "labels", "labels_color")
        },
    params:
        members=lambda w: list(FUSIONS[w.fusion]),
        areas=list(PRED_AREAS),
    threads: 1
    resources:
        mem_mb=4000,
    log:
        slogs("fuse_apply/{fusion}.log"),
    benchmark:
        sres("benchmarks/fuse_apply/{fusion}.tsv")
    message:
        "Applying the {wildcards.fusion} SVMs to areas {params.areas} (§4.4)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/fuse_apply.py"
