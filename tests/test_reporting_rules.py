"""The report rules (workflow/rules/report.smk) run by Snakemake on a tiny fake results
tree: tables, paper diff, uncertainty curve, calibration, maps and history plots."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from vaiseg.config import ALL_MODELS, MODELS
from vaiseg.metrics import evaluate_model, write_metrics

sys.path.insert(0, str(Path(__file__).parent))
from test_reporting_analysis import AREAS, make_results  # noqa: E402

pytestmark = pytest.mark.slow


def test_report_rules_end_to_end(tmp_path, repo_root):
    paper = repo_root / "paper"  # the shipped copy of the paper's numbers
    res = tmp_path / "results"
    data, pred = make_results(res)
    for m in ALL_MODELS:
        r = evaluate_model(
            [pred / m / str(a) / "labels.tif" for a in AREAS],
            [data / str(a) / "labels_eroded.tif" for a in AREAS],
            [data / str(a) / "labels.tif" for a in AREAS],
            areas=list(AREAS),
        )
        write_metrics(r, res / "metrics" / f"{m}.json")
    for m in MODELS:
        (res / "models" / m).mkdir(parents=True)
        pd.DataFrame(dict(epoch=[1, 2], train_loss=[1.0, 0.5], val_overall_acc=[0.5, 0.7])).to_csv(
            res / "models" / m / "history.csv", index=False)
    rules = repo_root / "workflow" / "rules"
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""\
        data:
          source: synthetic
          areas: {{train: [1], val: [{AREAS[0]}, {AREAS[1]}]}}
        report:
          figure_area: 30
          paper_dir: {paper}
        """))
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""\
        configfile: "config.yaml"
        include: "{rules / 'common.smk'}"
        include: "{rules / 'report.smk'}"
        include: "{rules / 'comparisons.smk'}"
        rule all:
            input: rules.paper_diff.output, rules.figures.output, rules.calibration.output, rules.history_plots.output
        """))
    snakemake = Path(sys.executable).parent / "snakemake"
    p = subprocess.run([str(snakemake), "--cores", "1", "--snakefile", "Snakefile", "--directory", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-4000:]
    for f in ["tables/table1.csv", "tables/table2.tex", "paper_diff.md", "paper_diff.csv",
              "figures/accuracy_vs_uncertainty.csv", "figures/accuracy_vs_uncertainty.png",
              "figures/uncertainty_coverage.csv", "figures/calibration.csv", "figures/calibration.png",
              "figures/maps_area30.png", "figures/area30_FCN_acc97.5.png", "figures/history_FCN-MFB.png"]:
        assert (res / f).is_file() and (res / f).stat().st_size > 0, f
    assert len(pd.read_csv(res / "paper_diff.csv")) == 84
    md = (res / "paper_diff.md").read_text()
    assert "NOT comparable" in md and "## Fig. 6" in md and "| FCN | validation | two thresholds (configured) | 97.5 |" in md and "| FCN | area 30 | one threshold | 97.5 |" in md
    # `snakemake --report` finds every caption and embeds the annotated outputs
    r = subprocess.run([str(snakemake), "--snakefile", "Snakefile", "--directory", str(tmp_path), "--report", "report.html"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    html = (tmp_path / "report.html").read_bytes()
    assert len(html) > 10000 and b"paper_diff" in html
    for rule in ("tables", "paper_diff", "uncertainty_curve", "calibration", "figures"):
        assert (tmp_path / "logs" / rule / f"{rule}.log").exists(), rule
        assert (res / "benchmarks" / rule / f"{rule}.tsv").exists(), rule
