"""vaiseg.provenance: benchmark table and provenance record on tiny hand-made inputs."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import zipfile

import pandas as pd
import pytest
import torch
import yaml

from conftest import TINY_CONFIG

from vaiseg.errors import DataError
from vaiseg.models import PatchCNN, save_model
from vaiseg.provenance import (
    BENCHMARK_COLUMNS,
    benchmarks_table,
    collect_provenance,
    read_benchmark,
    write_benchmarks_table,
    write_provenance,
)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, *rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t0.1\n" for s, rss in rows))
    return path


def test_read_benchmark_rule_and_wildcards(tmp_path):
    root = tmp_path / "results" / "benchmarks"
    r = read_benchmark(bench(root / "mc_infer" / "FCN" / "11.tsv", (2.5, 120.25)), root)
    assert r == {"rule": "mc_infer", "wildcards": "FCN/11", "seconds": 2.5, "max_rss_mb": 120.25}
    r = read_benchmark(bench(root / "normalize_stats" / "normalize_stats.tsv", (1.0, 5.0)), root)
    assert r["rule"] == "normalize_stats" and r["wildcards"] == ""


def test_repeats_mean_seconds_max_rss_and_na(tmp_path):
    root = tmp_path / "b"
    r = read_benchmark(bench(root / "train_pb" / "PB.tsv", (1.0, 100.0), (3.0, 300.0)), root)
    assert r["seconds"] == 2.0 and r["max_rss_mb"] == 300.0
    r = read_benchmark(bench(root / "fetch_archive" / "top.tsv", (0.5, "NA")), root)
    assert r["seconds"] == 0.5 and math.isnan(r["max_rss_mb"])


def test_write_table_sorted_and_complete(tmp_path):
    root = tmp_path / "results" / "benchmarks"
    bench(root / "normalize" / "3.tsv", (2.0, 50.0))
    bench(root / "normalize" / "1.tsv", (1.0, 40.0))
    bench(root / "extract_archives" / "extract_archives.tsv", (0.1234567, 10.04))
    (root / "normalize" / ".1.tsv.part.tsv").write_text("garbage")  # a temporary file: skipped
    out = tmp_path / "rules.csv"
    write_benchmarks_table(root, out)
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == list(BENCHMARK_COLUMNS)
    assert list(zip(df["rule"], df["wildcards"].astype(str))) == [
        ("extract_archives", ""), ("normalize", "1"), ("normalize", "3")]
    assert df["seconds"].tolist() == [0.123, 1.0, 2.0]


@pytest.mark.parametrize("text", ["", "a\tb\n1\t2\n", HEADER])
def test_bad_benchmark_is_a_data_error(tmp_path, text):
    root = tmp_path / "b"
    p = root / "rule" / "x.tsv"
    p.parent.mkdir(parents=True)
    p.write_text(text)
    with pytest.raises(DataError, match="x.tsv"):
        read_benchmark(p, root)


def test_no_benchmarks_no_output(tmp_path):
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="no benchmark files"):
        write_benchmarks_table(tmp_path / "b", tmp_path / "rules.csv")
    assert not (tmp_path / "rules.csv").exists()


def test_benchmark_outside_root_rejected(tmp_path):
    p = bench(tmp_path / "elsewhere" / "r" / "x.tsv", (1, 1))
    with pytest.raises(DataError, match="not below"):
        benchmarks_table([p], tmp_path / "b")


def tiny_model(path, device="cpu"):
    net = PatchCNN(width=0.125)
    save_model(path, net, {"model": "PB", "training": {"device": device, "epochs_done": 1, "seconds": 0.5}})
    return path


def tiny_zip(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", payload)
    return path


def test_provenance_record(tmp_path, repo_root):
    models = {"PB": tiny_model(tmp_path / "pb.pt", "cuda:0"), "FCN": tiny_model(tmp_path / "fcn.pt")}
    archives = {"top": tiny_zip(tmp_path / "top.zip", b"one"), "gt": tiny_zip(tmp_path / "gt.zip", b"two")}
    config = {"seed": 3, "data": {"source": "synthetic", "synthetic": {"height": 64}}}
    out = tmp_path / "provenance.json"
    write_provenance(out, config, models, archives, repo_root)
    rec = json.loads(out.read_text())
    assert rec["config"] == config
    assert rec["training"]["PB"]["device"] == "cuda:0" and rec["training"]["FCN"]["device"] == "cpu"
    want = hashlib.md5((tmp_path / "top.zip").read_bytes()).hexdigest()
    assert rec["data"]["source"] == "synthetic"
    assert rec["data"]["archives"]["top"]["md5"] == want
    assert rec["data"]["archives"]["gt"]["md5"] != want
    assert rec["packages"]["torch"] == torch.__version__
    assert rec["packages"]["vaiseg"] is not None
    assert rec["git"]["commit"] == "unknown" or len(rec["git"]["commit"]) == 40


def test_provenance_without_git(tmp_path):
    rec = collect_provenance({"data": {"source": "isprs", "isprs": {"archives": {"top": {"path": "x.zip"}}}}},
                             {}, {}, tmp_path)
    assert rec["git"] == {"commit": "unknown", "dirty": None}
    assert rec["data"]["configured"] == {"top": {"path": "x.zip"}}


def test_model_without_device_is_a_data_error(tmp_path):
    p = tmp_path / "m.pt"
    save_model(p, PatchCNN(width=0.125), {"model": "PB"})
    with pytest.raises(DataError, match="training.device"):
        collect_provenance({"data": {"source": "synthetic"}}, {"PB": p}, {}, tmp_path)
    with pytest.raises(DataError, match="cannot read"):
        (tmp_path / "bad.pt").write_bytes(b"not a model")
        collect_provenance({"data": {"source": "synthetic"}}, {"PB": tmp_path / "bad.pt"}, {}, tmp_path)
    assert not (tmp_path / "provenance.json").exists()


# ------------------------------------------------------------------ the tiny run's report
def report_results(html: str) -> dict:
    """{path: entry} of the ``var results = {...}`` object of a Snakemake HTML report."""
    m = re.search(r"var results = (\{.*?\});\s*</script>", html, flags=re.S)
    assert m, "no results object in the report"
    return json.loads(m.group(1))


def decode_data_uri(uri: str) -> bytes:
    head, _, payload = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:80]
    return base64.b64decode(payload + "=" * (-len(payload) % 4))


@pytest.mark.slow
def test_report_contains_tables_and_benchmarks(tiny_local_run):
    """`snakemake --report results/report.html` on the tiny run embeds Tables 1-2 and
    rules.csv byte-for-byte, with their captions; provenance.json describes the run."""
    from conftest import snakemake_log_tail, snakemake_tiny

    r = snakemake_tiny(tiny_local_run, "--report", "results/report.html")
    assert r.returncode == 0, snakemake_log_tail(tiny_local_run)
    html = (tiny_local_run / "results" / "report.html").read_text()
    entries = report_results(html)
    for rel in ("results/tables/table1.csv", "results/tables/table2.csv", "results/benchmarks/rules.csv"):
        assert rel in entries, f"{rel} not in the report (has {sorted(entries)})"
        assert decode_data_uri(entries[rel]["data_uri"]) == (tiny_local_run / rel).read_bytes()
        assert entries[rel]["caption"].strip(), f"{rel} has no caption"
    table1 = pd.read_csv(tiny_local_run / "results" / "tables" / "table1.csv")
    assert list(table1["method"]) == ["PB", "FCN", "FCN-MFB"]
    assert "Kampffmeyer" in html  # workflow/report/workflow.rst

    bench = pd.read_csv(tiny_local_run / "results" / "benchmarks" / "rules.csv", keep_default_na=False)
    assert {"train_pb", "train_fcn", "train_fcn_mfb", "mc_infer", "normalize", "provenance"} <= set(bench["rule"])
    assert (bench["seconds"] > 0).all()

    prov = json.loads((tiny_local_run / "results" / "provenance.json").read_text())
    assert set(prov["training"]) == {"PB", "FCN", "FCN-MFB"}
    assert {t["device"] for t in prov["training"].values()} <= {"cpu", "cuda", "cuda:0"}
    for key, a in prov["data"]["archives"].items():
        path = tiny_local_run / "resources" / "archives" / f"{key}.zip"
        assert a["md5"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert prov["config"]["data"]["areas"] == yaml.safe_load(TINY_CONFIG.read_text())["data"]["areas"]
