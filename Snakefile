# Kampffmeyer, Salberg & Jenssen (CVPRW 2016) on ISPRS Vaihingen: the DAG.
# Run: ./run.sh pipeline   (= snakemake --cores all --resources gpu=1 on config.yaml)

configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/patches.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/provenance.smk"


rule all:
    default_target: True
    input:
        contract_outputs(),
        "results/provenance.json",
        "results/benchmarks/rules.csv",
