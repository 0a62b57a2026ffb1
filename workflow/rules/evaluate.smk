# ISPRS evaluation (§3, §5) of every model and fusion on the validation areas: pooled and
# per-area confusion matrices against the eroded GT (primary) and the full GT (secondary).
# Per seed.


rule evaluate:
    input:
        pred=lambda w: [spath(w, f"predictions/{w.model}/{a}/labels.tif") for a in VAL_AREAS],
        eroded=expand(res("data/{area}/labels_eroded.tif"), area=VAL_AREAS),
        full=expand(res("data/{area}/labels.tif"), area=VAL_AREAS),
    output:
        metrics=sres("metrics/{model}.json"),
        confusion=sres("metrics/{model}_confusion.csv"),
    params:
        areas=list(VAL_AREAS),
    threads: 1
    resources:
        mem_mb=2000,
    log:
        slogs("evaluate/{model}.log"),
    benchmark:
        sres("benchmarks/evaluate/{model}.tsv")
    message:
        "ISPRS evaluation (§3) of {wildcards.model} on validation areas {params.areas}"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/evaluate.py"
