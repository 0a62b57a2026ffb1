# Patch extraction (§4.1, §4.2): index arrays (area, row, col, ...), not pixels; the
# training datasets cut the patches from memory-mapped copies of the rasters. Per seed
# (patch sampling and the held-out split are seeded).

PATCH_CONFIG = config["patches"]


rule extract_patches_pb:
    input:
        labels=expand(res("data/{area}/labels.tif"), area=CNN_AREAS),
        eroded=expand(res("data/{area}/labels_eroded.tif"), area=CNN_AREAS),
    output:
        index=sres("patches/pb.npz"),
    params:
        data_dir=lambda w, input: data_root(input.labels),
        areas=list(CNN_AREAS),
        per_class=PATCH_CONFIG["pb"]["per_class"],
        car_rotations=PATCH_CONFIG["pb"]["car_rotations"],
        val_fraction=PATCH_CONFIG.get("val_fraction", 0.1),
        seed=seed_of,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        slogs("extract_patches_pb/extract_patches_pb.log"),
    benchmark:
        sres("benchmarks/extract_patches_pb/extract_patches_pb.tsv")
    message:
        "Sampling class-balanced 65x65 PB patch centres (cars + rotations) in areas {params.areas}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/extract_patches_pb.py"


rule extract_patches_fcn:
    input:
        images=expand(res("data/{area}/image.tif"), area=CNN_AREAS),
    output:
        index=sres("patches/fcn.npz"),
    params:
        data_dir=lambda w, input: data_root(input.images),
        areas=list(CNN_AREAS),
        size=PATCH_CONFIG["fcn"]["size"],
        overlap=PATCH_CONFIG["fcn"]["overlap"],
        val_fraction=PATCH_CONFIG.get("val_fraction", 0.1),
        seed=seed_of,
    threads: 1
    resources:
        mem_mb=1000,
    log:
        slogs("extract_patches_fcn/extract_patches_fcn.log"),
    benchmark:
        sres("benchmarks/extract_patches_fcn/extract_patches_fcn.tsv")
    message:
        "Indexing {params.size}x{params.size} FCN patches at {params.overlap} overlap x 8 transforms"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/extract_patches_fcn.py"
