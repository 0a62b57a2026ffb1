# Training (§4.1, §4.2, §5): median-frequency weights and one rule per CNN. Checkpoints
# live in results/checkpoints/{model}/ (not outputs: a failed or killed job keeps them and
# a rerun resumes); memory-mapped raster copies in results/cache/.

TRAIN_CONFIG = config["train"]


rule mfb_weights:
    input:
        labels=expand("results/data/{area}/{labels}.tif", area=TRAIN_AREAS, labels=FCN_LABELS),
    output:
        weights="results/models/mfb_weights.json",
    threads: 1
    resources:
        mem_mb=2000,
    log:
        "logs/mfb_weights/mfb_weights.log",
    benchmark:
        "results/benchmarks/mfb_weights/mfb_weights.tsv"
    message:
        "Median-frequency class weights (eq. 2) from {FCN_LABELS} of the training areas"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mfb_weights.py"


rule train_pb:
    input:
        index=rules.extract_patches_pb.output.index,
        images=expand("results/data/{area}/image.tif", area=TRAIN_AREAS),
    output:
        model="results/models/PB/model.pt",
        history="results/models/PB/history.csv",
    params:
        model="PB",
        settings=train_params("PB"),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir="results/cache",
        checkpoint_dir="results/checkpoints/PB",
        stats="results/data/stats.json",
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        "logs/train_pb/train_pb.log",
    benchmark:
        "results/benchmarks/train_pb/train_pb.tsv"
    message:
        "Training the patch-based CNN (PB, §4.1) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule train_fcn:
    input:
        index=rules.extract_patches_fcn.output.index,
        images=expand("results/data/{area}/image.tif", area=TRAIN_AREAS),
        labels=expand("results/data/{area}/{labels}.tif", area=TRAIN_AREAS, labels=FCN_LABELS),
    output:
        model="results/models/FCN/model.pt",
        history="results/models/FCN/history.csv",
    params:
        model="FCN",
        settings=train_params("FCN"),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir="results/cache",
        checkpoint_dir="results/checkpoints/FCN",
        stats="results/data/stats.json",
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        "logs/train_fcn/train_fcn.log",
    benchmark:
        "results/benchmarks/train_fcn/train_fcn.tsv"
    message:
        "Training the pixel-to-pixel FCN (§4.2, plain cross-entropy) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule train_fcn_mfb:
    input:
        index=rules.extract_patches_fcn.output.index,
        images=expand("results/data/{area}/image.tif", area=TRAIN_AREAS),
        labels=expand("results/data/{area}/{labels}.tif", area=TRAIN_AREAS, labels=FCN_LABELS),
        mfb=rules.mfb_weights.output.weights,
    output:
        model="results/models/FCN-MFB/model.pt",
        history="results/models/FCN-MFB/history.csv",
    params:
        model="FCN-MFB",
        settings=train_params("FCN-MFB"),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir="results/cache",
        checkpoint_dir="results/checkpoints/FCN-MFB",
        stats="results/data/stats.json",
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        "logs/train_fcn_mfb/train_fcn_mfb.log",
    benchmark:
        "results/benchmarks/train_fcn_mfb/train_fcn_mfb.tsv"
    message:
        "Training the FCN with median-frequency balancing (FCN-MFB, §4.2 eq. 1-2) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"
