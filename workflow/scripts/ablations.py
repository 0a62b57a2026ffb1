"""Rule ablations: the ablation table (results/tables/ablations.csv and .md)."""

from vaiseg.reporting.ablations import ablations, paths_by_area, write_ablations
from vaiseg.step import log_to

log_to(snakemake.log[0])

p, i = snakemake.params, snakemake.input


def per_model(paths, models, areas):
    """{model: {area: path}} from a model-major list (expand order)."""
    n = len(areas)
    return {m: paths_by_area(paths[k * n : (k + 1) * n], areas) for k, m in enumerate(models)}


retrained, paths = [], list(i.retrained)
for choice, r in p.retrained.items():
    n = len(r["methods"]) * len(p.val_areas)
    retrained.append(dict(r, choice=choice, labels=per_model(paths[:n], r["methods"], p.val_areas)))
    paths = paths[n:]

df = ablations(
    val_areas=p.val_areas,
    svm_areas=p.svm_areas,
    probs=per_model(list(i.probs), p.cnns, p.areas),
    labels=per_model(list(i.labels), p.models, p.val_areas),
    eroded=paths_by_area(i.eroded, p.areas),
    fusion=p.fusion,
    seed=p.seed,
    pb_border=p.pb_border,
    pb_reflect_probs=paths_by_area(i.pb_reflect_probs, p.areas),
    pb_reflect_labels=paths_by_area(i.pb_reflect_labels, p.val_areas),
    coverage_csv=i.coverage,
    fig6_reading=p.fig6_reading,
    retrained=retrained,
    workers=snakemake.threads,
)
write_ablations(df, snakemake.output.csv, snakemake.output.md)
