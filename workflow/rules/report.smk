# Report stage (§5): Tables 1-2, the paper diff, the uncertainty analysis (Figs. 6-7),
# calibration (beyond the paper), the maps (Figs. 3-6) and training-history plots.
# The science lives in vaiseg.reporting; scripts are thin adapters.

from vaiseg.reporting.figures import choose_figure_area, figure_files

REPORT = config["report"]
# the paper's published numbers (shipped in paper/; relative paths from the project folder)
PAPER_DIR = project_path(REPORT["paper_dir"])
# the default run's committed Tables 1-2 (docs/reference), which the paper diff also compares with
REFERENCE_DIR = project_path(REPORT["reference_dir"]) if REPORT["reference_dir"] else None
REFERENCE_TABLES = [f"{REFERENCE_DIR}/table{i}.csv" for i in (1, 2)] if REFERENCE_DIR else []
# the reference run's per-block confusion matrices, when committed: intervals of ours -
# reference (single-seed runs)
REFERENCE_BLOCKS = [p for p in [f"{REFERENCE_DIR}/block_confusions.csv"] if REFERENCE_DIR and os.path.exists(p)]
# area 30 on real data; the first validation area when the configured one is not one
FIGURE_AREA, FIGURE_NOTE = choose_figure_area(REPORT["figure_area"], VAL_AREAS)
FIGURE_FILES = figure_files(res("figures"), FIGURE_AREA, ALL_MODELS, MODELS)
# the one-seed analyses read the first seed's predictions (common.smk: primary)
PRED_DIR = primary("predictions")
DATA_DIR = res("data")


rule tables:
    input:
        metrics=expand(sres("metrics/{model}.json"), model=ALL_MODELS, allow_missing=True),
    output:
        # one seed: the contract's results/tables/; several: results/seeds/<seed>/tables/
        **table_outputs(sres),
    params:
        models=list(ALL_MODELS),
    threads: 1
    resources:
        mem_mb=1000,
    log:
        slogs("tables/tables.log"),
    benchmark:
        sres("benchmarks/tables/tables.tsv")
    message:
        "Writing Tables 1-2 (csv, md, tex) from the pooled confusion matrices"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"


if MULTI_SEED:

    rule seed_tables:
        input:
            # per-seed tables, in the order of params.seeds (workflow/scripts/seed_tables.py)
            table1=expand(sres(TABLE_FILES["table1_csv"]), seed=SEEDS),
            table2=expand(sres(TABLE_FILES["table2_csv"]), seed=SEEDS),
            table1_extended=expand(sres(TABLE_FILES["table1_extended"]), seed=SEEDS),
            table2_extended=expand(sres(TABLE_FILES["table2_extended"]), seed=SEEDS),
        output:
            **table_outputs(res),
        params:
            seeds=SEEDS,
        threads: 1
        resources:
            mem_mb=1000,
        log:
            logs("seed_tables/seed_tables.log"),
        benchmark:
            res("benchmarks/seed_tables/seed_tables.tsv")
        message:
            "Tables 1-2 as mean +- std over seeds {params.seeds}"
        conda:
            "../../envs/report.yaml"
        script:
            "../scripts/seed_tables.py"


rule uncertainty_curve:
    input:
        uncertainty=expand(f"{PRED_DIR}/{{cnn}}/{{area}}/uncertainty.tif", cnn=MODELS, area=VAL_AREAS),
        labels=expand(f"{PRED_DIR}/{{cnn}}/{{area}}/labels.tif", cnn=MODELS, area=VAL_AREAS),
        eroded=expand(f"{DATA_DIR}/{{area}}/labels_eroded.tif", area=VAL_AREAS),
        full=expand(f"{DATA_DIR}/{{area}}/labels.tif", area=VAL_AREAS),
    output:
        curve=report(res("figures/accuracy_vs_uncertainty.csv"), caption="../report/uncertainty_curve.rst", category="Uncertainty"),
        plot=report(res("figures/accuracy_vs_uncertainty.png"), caption="../report/uncertainty_curve.rst", category="Uncertainty"),
        coverage=report(res("figures/uncertainty_coverage.csv"), caption="../report/uncertainty_coverage.rst", category="Uncertainty"),
        summary=res("figures/uncertainty_summary.json"),
    params:
        models=list(MODELS),
        areas=list(VAL_AREAS),
        paper_dir=PAPER_DIR,
        thresholds=REPORT["thresholds"],
        figure_area=FIGURE_AREA,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("uncertainty_curve/uncertainty_curve.log"),
    benchmark:
        res("benchmarks/uncertainty_curve/uncertainty_curve.tsv")
    message:
        "Accuracy vs. normalised uncertainty threshold and coverage at 97.5/95/90 % OA (Figs. 6-7)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/uncertainty_curve.py"


rule calibration:
    input:
        probs=expand(f"{PRED_DIR}/{{cnn}}/{{area}}/probs.tif", cnn=MODELS, area=VAL_AREAS),
        probs_deterministic=expand(f"{PRED_DIR}/{{cnn}}/{{area}}/probs_deterministic.tif", cnn=MODELS, area=VAL_AREAS),
        eroded=expand(f"{DATA_DIR}/{{area}}/labels_eroded.tif", area=VAL_AREAS),
    output:
        metrics=report(res("figures/calibration.csv"), caption="../report/calibration.rst", category="Calibration"),
        bins=res("figures/calibration_bins.csv"),
        plot=report(res("figures/calibration.png"), caption="../report/calibration.rst", category="Calibration"),
    params:
        models=list(MODELS),
        areas=list(VAL_AREAS),
        bins=REPORT["calibration_bins"],
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("calibration/calibration.log"),
    benchmark:
        res("benchmarks/calibration/calibration.tsv")
    message:
        "Expected calibration error and reliability diagrams: MC mean vs. deterministic pass"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/calibration.py"


rule figures:
    input:
        image=f"{DATA_DIR}/{FIGURE_AREA}/image.tif",
        labels=f"{DATA_DIR}/{FIGURE_AREA}/labels.tif",
        predictions=expand(f"{PRED_DIR}/{{model}}/{FIGURE_AREA}/labels.tif", model=ALL_MODELS),
        uncertainty=expand(f"{PRED_DIR}/{{cnn}}/{FIGURE_AREA}/uncertainty.tif", cnn=MODELS),
        summary=rules.uncertainty_curve.output.summary,
        coverage=rules.uncertainty_curve.output.coverage,
    output:
        **{
            key: report(path, caption="../report/maps.rst", category="Maps (Figs. 3-6)")
            for key, path in FIGURE_FILES.items()
        },
    params:
        area=FIGURE_AREA,
        note=FIGURE_NOTE,
        models=list(ALL_MODELS),
        cnns=list(MODELS),
        fig6_reading=REPORT["fig6_reading"],
    threads: 1
    resources:
        mem_mb=4000,
    log:
        logs("figures/figures.log"),
    benchmark:
        res("benchmarks/figures/figures.tsv")
    message:
        "Maps of validation area {params.area}: IRRG, GT, predictions, uncertainty, FCN thresholded (Figs. 3-6)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figures.py"


rule history_plots:
    input:
        histories=expand(primary("models/{cnn}/history.csv"), cnn=MODELS),
    output:
        plots=report(
            expand(res("figures/history_{cnn}.png"), cnn=MODELS), caption="../report/history.rst", category="Training"
        ),
    params:
        models=list(MODELS),
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("history_plots/history_plots.log"),
    benchmark:
        res("benchmarks/history_plots/history_plots.tsv")
    message:
        "Plotting the training histories of {params.models}"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/history_plots.py"


rule convergence:
    input:
        histories=[seed_path(f"models/{m}/history.csv", sd) for sd in SEEDS for m in MODELS],
    output:
        csv=report(res("tables/convergence.csv"), caption="../report/convergence.rst", category="Training"),
        md=res("tables/convergence.md"),
    params:
        runs=[(m, sd) for sd in SEEDS for m in MODELS],
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("convergence/convergence.log"),
    benchmark:
        res("benchmarks/convergence/convergence.tsv")
    message:
        "Has every CNN reached its held-out plateau? (last 20 % of the evaluations vs the 20 % before)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/convergence.py"


rule paper_diff:
    input:
        # the contract's tables: the run's, or mean +- std over the seeds
        table1=res("tables/table1.csv"),
        table2=res("tables/table2.csv"),
        # the committed reference tables, when present (a change reruns the diff)
        reference=[p for p in REFERENCE_TABLES if os.path.exists(p)] + REFERENCE_BLOCKS,
        # this run's per-block matrices (comparisons rule), for the intervals against the
        # reference's: one seed only (with several the tables are means over the seeds)
        blocks=res("tables/block_confusions.csv") if REFERENCE_BLOCKS and not MULTI_SEED else [],
        curve=rules.uncertainty_curve.output.curve,
        summary=rules.uncertainty_curve.output.summary,
        coverage=rules.uncertainty_curve.output.coverage,
    output:
        md=report(res("paper_diff.md"), caption="../report/paper_diff.rst", category="Paper diff"),
        csv=report(res("paper_diff.csv"), caption="../report/paper_diff.rst", category="Paper diff"),
    params:
        paper_dir=PAPER_DIR,
        reference_dir=lambda w: REFERENCE_DIR,
        source=SOURCE,
        fig6_reading=REPORT["fig6_reading"],
        bootstrap=REPORT["bootstrap"],
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("paper_diff/paper_diff.log"),
    benchmark:
        res("benchmarks/paper_diff/paper_diff.tsv")
    message:
        "Comparing every table cell with the paper ({params.source} data)"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/paper_diff.py"


# report outputs beyond the output contract (common.smk's contract_outputs adds them to
# the default target)
REPORT_EXTRAS = (
    # the contract's tables (with several seeds, seed_tables' mean +- std, which pulls in
    # the per-seed tables)
    [res(path) for path in TABLE_FILES.values()]
    + list(rules.uncertainty_curve.output)
    + list(rules.calibration.output)
    + list(rules.figures.output)
    + list(rules.history_plots.output)
    + list(rules.convergence.output)
)
