# Learning-rate range test (Smith 2017; issue 12's candidate levers): target `lr_range`, not
# part of `all`. For each CNN and seed of lr_range.seeds, the training's first steps with
# the rate rising geometrically (vaiseg.lr_range): the loss curve, the rates it suggests,
# and a table beside each CNN's configured rate. Reads the run's patches; trains nothing
# the pipeline uses.

LR_RANGE = config["lr_range"]
LR_RANGE_SEEDS = [int(s) for s in (LR_RANGE.get("seeds") or [config["seed"]])]


rule lr_range_test:
    input:
        unpack(lr_range_inputs),
    output:
        curve=res("lr_range/{model}/seed{seed}.csv"),
        summary=res("lr_range/{model}/seed{seed}.json"),
        plot=res("lr_range/{model}/seed{seed}.png"),
    wildcard_constraints:
        model="PB|FCN|FCN-MFB",
        seed=r"\d+",
    params:
        settings=lambda w: train_params(w.model, int(w.seed)),
        test={k: v for k, v in LR_RANGE.items() if k != "seeds"},
        data_dir=lambda w, input: data_root(input.images),
        cache_dir=res("cache"),
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        logs("lr_range/{model}_seed{seed}.log"),
    benchmark:
        res("benchmarks/lr_range/{model}_seed{seed}.tsv")
    message:
        "Learning-rate range test of {wildcards.model}, seed {wildcards.seed}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/lr_range.py"


rule lr_range_table:
    input:
        summaries=expand(res("lr_range/{model}/seed{seed}.json"), model=MODELS, seed=LR_RANGE_SEEDS),
    output:
        csv=res("lr_range/summary.csv"),
        md=res("lr_range/summary.md"),
    threads: 1
    resources:
        mem_mb=1000,
    log:
        logs("lr_range/summary.log"),
    benchmark:
        res("benchmarks/lr_range/summary.tsv")
    message:
        "Learning-rate range tests: the suggested against the configured rates"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/lr_range_table.py"


rule lr_range:
    input:
        rules.lr_range_table.output,
