# Uncertainty as failure detection (beyond the paper's Figs. 6-7): AUROC, AUPR, AURC,
# E-AURC and PAvPU of each CNN's uncertainty measures as detectors of its misclassified
# pixels. The science lives in vaiseg.reporting.failure; the script is a thin adapter.
# Included after report.smk (appends to its REPORT_EXTRAS).

# Scored pixels per CNN beyond which the metrics use a seeded uniform subsample (the
# demo's ~0.9 M pixels are all used; on the real validation set, ~60 M, scikit-learn's
# ROC/PR code would need more than the rule's 4 GB: ~125 B per pixel, ~4 s per measure
# and million pixels; a 10 M subsample moves AUROC by ~1e-4). None = always every pixel.
FAILURE_MAX_PIXELS = 10_000_000


rule uncertainty_metrics:
    input:
        probs=expand(primary("predictions/{cnn}/{area}/probs.tif"), cnn=MODELS, area=VAL_AREAS),
        uncertainty=expand(primary("predictions/{cnn}/{area}/uncertainty.tif"), cnn=MODELS, area=VAL_AREAS),
        entropy=expand(primary("predictions/{cnn}/{area}/entropy.tif"), cnn=MODELS, area=VAL_AREAS),
        mutual_info=expand(primary("predictions/{cnn}/{area}/mutual_info.tif"), cnn=MODELS, area=VAL_AREAS),
        labels=expand(primary("predictions/{cnn}/{area}/labels.tif"), cnn=MODELS, area=VAL_AREAS),
        eroded=expand(res("data/{area}/labels_eroded.tif"), area=VAL_AREAS),
    output:
        metrics=report(res("tables/uncertainty_metrics.csv"), caption="../report/uncertainty_metrics.rst", category="Uncertainty"),
        curve=res("figures/risk_coverage.csv"),
        plot=report(res("figures/risk_coverage.png"), caption="../report/uncertainty_metrics.rst", category="Uncertainty"),
    params:
        models=list(MODELS),
        areas=list(VAL_AREAS),
        max_pixels=FAILURE_MAX_PIXELS,
        seed=PRIMARY_SEED,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("uncertainty_metrics/uncertainty_metrics.log"),
    benchmark:
        res("benchmarks/uncertainty_metrics/uncertainty_metrics.tsv")
    message:
        "Uncertainty as failure detection: AUROC, AUPR, AURC, E-AURC, PAvPU per CNN and measure"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/uncertainty_metrics.py"


# part of the default target (common.smk's contract_outputs reads REPORT_EXTRAS when called)
REPORT_EXTRAS += list(rules.uncertainty_metrics.output)
