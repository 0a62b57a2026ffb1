# MC-dropout inference (§4.3): per CNN x area (training areas too: the fusion SVMs of §4.4
# are trained on the training areas' predictions). Shared trunk, tiled, seeded masks.

INFER = config["infer"]


rule mc_infer:
    input:
        model=res("models/{cnn}/model.pt"),
        image=res("data/{area}/image.tif"),
    output:
        **mc_outputs(res("predictions/{cnn}/{area}")),
    params:
        T=INFER["mc_samples"],
        tile_size=INFER["tile_size"],
        pb_border=INFER["pb_border"],
        shared_trunk=INFER["shared_trunk"],
        pb_fft_block=INFER["pb_fft_block"],
        seed=config["seed"],
        device=config["device"],
    threads: 4
    resources:
        gpu=1,
        mem_mb=4000,
    log:
        logs("mc_infer/{cnn}_{area}.log"),
    benchmark:
        res("benchmarks/mc_infer/{cnn}_{area}.tsv")
    message:
        "MC-dropout inference (§4.3, T={params.T}) of {wildcards.cnn} on area {wildcards.area}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mc_infer.py"
