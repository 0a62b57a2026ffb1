# MC-dropout inference (§4.3): one job per CNN over every area it is needed for (the
# validation areas for evaluation, the training areas because the fusion SVMs of §4.4 are
# trained on their predictions). Shared trunk, tiled, seeded masks. One job per CNN, not
# per CNN x area: process and torch start-up (~2 s a job) dominated the demo's small
# areas; finished areas are cached under results/cache/mc/ so a killed job resumes.

INFER = config["infer"]


rule mc_infer:
    input:
        model=sres("models/{cnn}/model.pt"),
        images=expand(res("data/{area}/image.tif"), area=PRED_AREAS),
    output:
        **mc_area_outputs(sres("predictions/{cnn}/{area}"), PRED_AREAS),
    params:
        areas=list(PRED_AREAS),
        T=INFER["mc_samples"],
        tile_size=INFER["tile_size"],
        pb_border=INFER["pb_border"],
        shared_trunk=INFER["shared_trunk"],
        pb_fft_block=INFER["pb_fft_block"],
        seed=seed_of,
        device=config["device"],
        cache_dir=res("cache/mc"),
    threads: 4
    resources:
        gpu=1,
        mem_mb=4000,
    log:
        slogs("mc_infer/{cnn}.log"),
    benchmark:
        sres("benchmarks/mc_infer/{cnn}.tsv")
    message:
        "MC-dropout inference (§4.3, T={params.T}) of {wildcards.cnn} on areas {params.areas}"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/mc_infer.py"
