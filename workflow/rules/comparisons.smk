# Paired bootstrap comparisons of the paper's claims (§5, beyond the paper): the
# validation areas are cut into blocks, both methods of a claim are scored on the same
# resampled blocks, and each difference gets a percentile interval
# (vaiseg.reporting.comparisons). Reads the first seed's predictions (PRIMARY_SEED).
# block_confusions.csv keeps the per-block confusion matrices the bootstrap resamples.

BOOTSTRAP = config["report"]["bootstrap"]  # schema defaults: block 256, samples 2000, confidence 0.95


rule comparisons:
    input:
        labels=expand(primary("predictions/{model}/{area}/labels.tif"), model=ALL_MODELS, area=VAL_AREAS),
        eroded=expand(res("data/{area}/labels_eroded.tif"), area=VAL_AREAS),
    output:
        csv=report(res("tables/comparisons.csv"), caption="../report/comparisons.rst", category="Tables"),
        md=res("tables/comparisons.md"),
        # what the bootstrap resamples: a run committed as the reference keeps it, so the
        # paper diff can give intervals against the reference (report.reference_dir)
        blocks=res("tables/block_confusions.csv"),
    params:
        models=list(ALL_MODELS),
        areas=list(VAL_AREAS),
        block=BOOTSTRAP["block"],
        samples=BOOTSTRAP["samples"],
        confidence=BOOTSTRAP["confidence"],
        seed=PRIMARY_SEED,
    threads: 1
    resources:
        mem_mb=2000,
    log:
        logs("comparisons/comparisons.log"),
    benchmark:
        res("benchmarks/comparisons/comparisons.tsv")
    message:
        "Paired bootstrap ({params.samples} resamples of {params.block}-px blocks) of the paper's claims"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/comparisons.py"


# beyond the output contract: in the default target (common.smk's contract_outputs)
REPORT_EXTRAS += list(rules.comparisons.output)
