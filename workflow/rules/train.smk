# Training (§4.1, §4.2, §5): median-frequency weights and one rule per CNN (per seed).
# Checkpoints live in results/checkpoints/{model}/ (not outputs: a failed or killed job keeps them and
# a rerun resumes); memory-mapped raster copies in results/cache/.

TRAIN_CONFIG = config["train"]


rule mfb_weights:
    input:
        labels=expand(res("data/{area}/{labels}.tif"), area=CNN_AREAS, labels=FCN_LABELS),
    output:
        weights=res("models/mfb_weights.json"),
    params:
        median_over=config["train"]["mfb_median"],
    threads: 1
    resources:
        mem_mb=2000,
    log:
        logs("mfb_weights/mfb_weights.log"),
    benchmark:
        res("benchmarks/mfb_weights/mfb_weights.tsv")
    message:
        "Median-frequency class weights (eq. 2) from {FCN_LABELS} of the training areas"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mfb_weights.py"


rule train_pb:
    input:
        index=rules.extract_patches_pb.output.index,
        images=expand(res("data/{area}/image.tif"), area=CNN_AREAS),
    output:
        model=sres("models/PB/model.pt"),
        history=sres("models/PB/history.csv"),
    params:
        model="PB",
        settings=lambda w: train_params("PB", seed_of(w)),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir=res("cache"),
        checkpoint_dir=sres("checkpoints/PB"),
        stats=res("data/stats.json"),
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        slogs("train_pb/train_pb.log"),
    benchmark:
        sres("benchmarks/train_pb/train_pb.tsv")
    message:
        "Training the patch-based CNN (PB, §4.1) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule train_fcn:
    input:
        index=rules.extract_patches_fcn.output.index,
        images=expand(res("data/{area}/image.tif"), area=CNN_AREAS),
        labels=expand(res("data/{area}/{labels}.tif"), area=CNN_AREAS, labels=FCN_LABELS),
    output:
        model=sres("models/FCN/model.pt"),
        history=sres("models/FCN/history.csv"),
    params:
        model="FCN",
        settings=lambda w: train_params("FCN", seed_of(w)),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir=res("cache"),
        checkpoint_dir=sres("checkpoints/FCN"),
        stats=res("data/stats.json"),
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        slogs("train_fcn/train_fcn.log"),
    benchmark:
        sres("benchmarks/train_fcn/train_fcn.tsv")
    message:
        "Training the pixel-to-pixel FCN (§4.2, plain cross-entropy) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule train_fcn_mfb:
    input:
        index=rules.extract_patches_fcn.output.index,
        images=expand(res("data/{area}/image.tif"), area=CNN_AREAS),
        labels=expand(res("data/{area}/{labels}.tif"), area=CNN_AREAS, labels=FCN_LABELS),
        mfb=rules.mfb_weights.output.weights,
    output:
        model=sres("models/FCN-MFB/model.pt"),
        history=sres("models/FCN-MFB/history.csv"),
    params:
        model="FCN-MFB",
        settings=lambda w: train_params("FCN-MFB", seed_of(w)),
        data_dir=lambda w, input: data_root(input.images),
        cache_dir=res("cache"),
        checkpoint_dir=sres("checkpoints/FCN-MFB"),
        stats=res("data/stats.json"),
        device=config["device"],
        workers=TRAIN_CONFIG.get("workers", 0),
    threads: 8
    resources:
        gpu=1,
        mem_mb=16000,
    log:
        slogs("train_fcn_mfb/train_fcn_mfb.log"),
    benchmark:
        sres("benchmarks/train_fcn_mfb/train_fcn_mfb.tsv")
    message:
        "Training the FCN with median-frequency balancing (FCN-MFB, §4.2 eq. 1-2) on {params.device}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"
