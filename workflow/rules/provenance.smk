# Provenance and benchmarks: bookkeeping over the finished run (no paper section).
# Both are local rules (seconds of work): on SLURM they run on the submitting node.

import os

# the archives the run extracted, {key: zip path}, whatever the data source
PROVENANCE_ARCHIVES = dict(rules.extract_archives.input.items())


localrules:
    benchmarks_table,
    provenance,


rule provenance:
    input:
        models=[seed_path(f"models/{m}/model.pt", sd) for sd in SEEDS for m in MODELS],
        archives=list(PROVENANCE_ARCHIVES.values()),
    output:
        provenance=report(
            res("provenance.json"),
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"file": "provenance.json"},
        ),
    params:
        config=config,
        # one seed: PB, FCN, FCN-MFB; several: "PB (seed 1)", ...
        models=[m if not MULTI_SEED else f"{m} (seed {sd})" for sd in SEEDS for m in MODELS],
        archive_keys=list(PROVENANCE_ARCHIVES),
        repo=workflow.basedir,
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("provenance/provenance.log"),
    benchmark:
        res("benchmarks/provenance/provenance.tsv")
    message:
        "Recording package versions, git commit, config, training devices and archive md5s"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/provenance.py"


rule benchmarks_table:
    # runs after everything else: its inputs are the final outputs of the run, then it
    # reads every results/benchmarks/**/*.tsv written so far (its own is not included)
    input:
        done=contract_outputs(),
        provenance=rules.provenance.output.provenance,
    output:
        table=report(
            res("benchmarks/rules.csv"),
            caption="../report/benchmarks.rst",
            category="Provenance",
            labels={"file": "rules.csv (per-rule time and memory)"},
        ),
    params:
        # the benchmark folder is the one that holds rules.csv
        root=lambda wildcards, output: os.path.dirname(output.table),
    threads: 1
    resources:
        mem_mb=500,
    log:
        logs("benchmarks_table/benchmarks_table.log"),
    benchmark:
        res("benchmarks/benchmarks_table/benchmarks_table.tsv")
    message:
        "Aggregating every rule's benchmark into {output.table}"
    conda:
        "../../envs/geo.yaml"
    script:
        "../scripts/benchmarks_table.py"
