# Kampffmeyer, Salberg & Jenssen (CVPRW 2016) on ISPRS Vaihingen: the DAG.
# Run: ./run.sh pipeline   (= snakemake --cores all --resources gpu=1 on config.yaml)

# Config layering, explicit: config.yaml (the default CPU demo) is read only when no
# --configfile is given. `--configfile config/vaihingen.yaml [overrides.yaml ...]` uses
# exactly those files, merged in order, then --config; a key they leave out takes the
# schema's default (workflow/schemas/config.schema.yaml), never the demo's value.
if not workflow.overwrite_configfiles:

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
include: "workflow/rules/failure.smk"
include: "workflow/rules/comparisons.smk"
include: "workflow/rules/ablations.smk"
include: "workflow/rules/realism.smk"
include: "workflow/rules/lr_range.smk"
include: "workflow/rules/provenance.smk"


rule all:
    default_target: True
    input:
        contract_outputs(),
        res("provenance.json"),
        res("benchmarks/rules.csv"),
