"""Confidence in the benchmark suite: calibration figures (ECE, AUROC, reliability, coverage, verdicts,
self-consistency), a run with sampled paths on the tiny student, re-rating, and `benchmarks calibrate`."""

import gzip
import json
import subprocess
import sys

import pytest

from benchmarks.calibration import auroc, choose_k, coverage_curve, ece, first_paths, reliability, self_consistency
from runtime.confidence import Calibration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def benchmarks(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_auroc_and_ece_on_known_cases():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    assert auroc([0.9, 0.8], [True, True]) is None
    # Two bins: 0.25 said, half right (|0.5-0.25|), and 0.95 said, all right (|1-0.95|), equal weights.
    assert ece([0.25, 0.25, 0.95, 0.95], [True, False, True, True]) == pytest.approx(0.15)
    bins = reliability([0.25, 0.25, 0.95, 0.95], [True, False, True, True])
    assert [b["n"] for b in bins] == [0, 0, 2, 0, 0, 0, 0, 0, 0, 2] and bins[2]["accuracy"] == 0.5
    curve = coverage_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    assert curve == [{"coverage": 0.25, "accuracy": 1.0, "threshold": 0.9},
                     {"coverage": 0.75, "accuracy": 0.6667, "threshold": 0.5},
                     {"coverage": 1.0, "accuracy": 0.5, "threshold": 0.1}]


def test_k_is_the_smallest_near_best_auroc_within_the_latency_budget():
    table = {2: {"auroc": 0.70}, 4: {"auroc": 0.78}, 6: {"auroc": 0.785}, 8: {"auroc": 0.80}}
    latency = {2: {"p50_s": 1.2}, 4: {"p50_s": 1.8}, 6: {"p50_s": 2.4}, 8: {"p50_s": 3.0}}
    assert choose_k(table, latency, 2.0) == 4
    assert choose_k(table, latency, 5.0) == 8
    assert choose_k(table, {k: {"p50_s": 9.0} for k in table}, 2.0) == 2


def test_self_consistency_and_first_paths():
    samples = [{"thought": t, "answer": a, "error": None, "error_kind": None}
               for t, a in (("pot", 5.0), ("pot", 7.0), ("eot", 7.0), ("eot", 7.0))]
    record = {"answer": 5.0, "thought": "pot", "samples": samples}
    assert self_consistency(record) == 7.0
    assert [s["answer"] for s in first_paths(samples, 2)] == [5.0, 7.0]
    assert self_consistency(record, 2) == 5.0  # 5 (greedy) and 5, 7: the greedy answer wins the tie


@pytest.fixture(scope="module")
def rated_run(student, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("confidence") / "run"
    bundle, problems = student
    proc = benchmarks("run", "--model", str(bundle), "--datasets", "gsm8k:train=6", "--modes", "etd", "--paths", "4",
                      "--batch-size", "3", "--latency-sample", "2", "--max-tokens", "160", "--data-dir", str(data_dir),
                      "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, json.loads(proc.stdout), bundle


def test_a_run_with_paths_reports_calibration_figures_plots_and_both_latencies(rated_run):
    out, results, _ = rated_run
    target = results["targets"][0]
    figures = target["confidence"]["gsm8k/train"]
    assert figures["n"] == 6 and figures["paths"] == 4 and figures["calibrated"] is False
    assert set(figures["verdicts"]) == {"sure", "unsure", "no answer"}
    assert sum(v["n"] for v in figures["verdicts"].values()) == 6
    assert 0 <= figures["ece"] <= 1 and len(figures["reliability"]) == 10 and figures["coverage"][-1]["coverage"] == 1.0
    assert {"etd", "etd+confidence"} <= set(target["latency"])
    for name in ("reliability.png", "coverage.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "results.md").read_text()
    assert "## Confidence (etd with sampled paths)" in markdown and "| etd+confidence |" in markdown
    rows = [json.loads(line) for line in gzip.decompress((out / "records" / f"{target['label']}.jsonl.gz").read_bytes()).splitlines()]
    assert all(len(r["samples"]) == 4 and r["verdict"] in ("sure", "unsure", "no answer") for r in rows)


def test_rerate_applies_a_calibration_to_the_stored_paths(rated_run, tmp_path):
    out, _, _ = rated_run
    mapping = Calibration(weights=[0.0, 0.0, 0.0, 0.0], bias=-10.0, sure=0.9, unsure=0.5, paths=4)
    path = tmp_path / "confidence.json"
    path.write_text(mapping.to_json())
    proc = benchmarks("report", str(out), "--rerate", str(path), "--json")
    assert proc.returncode == 0, proc.stderr[-1000:]
    figures = json.loads(proc.stdout)["targets"][0]["confidence"]["gsm8k/train"]
    assert figures["calibrated"] is True and figures["verdicts"]["no answer"]["n"] == 6
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = benchmarks("report", str(out), "--rerate", str(bad))
    assert refused.returncode == 2 and "not a confidence calibration" in refused.stderr


def test_calibrate_refuses_a_test_split(tmp_path):
    proc = benchmarks("calibrate", "--datasets", "gsm8k:test=60", "--work", str(tmp_path / "w"), "--out",
                      str(tmp_path / "c.json"))
    assert proc.returncode == 2 and "never on a test split" in proc.stderr and not (tmp_path / "c.json").exists()


def test_calibrate_solves_held_out_problems_compares_k_and_writes_the_map(student, data_dir, tmp_path):
    import os

    bundle, _ = student
    env = dict(os.environ, ETD_DATA_DIR=str(data_dir))
    out = tmp_path / "confidence.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "calibrate", "--model", str(bundle), "--datasets",
                           "gsm8k:train=20", "--work", str(tmp_path / "work"), "--candidates", "2,4",
                           "--latency-sample", "2", "--min-problems", "20", "--out", str(out)], capture_output=True, text=True, timeout=1200,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mapping = Calibration.from_json(out.read_text())
    assert mapping.paths in (2, 4) and 0 <= mapping.unsure <= mapping.sure
    assert mapping.fitted_on["problems"] == 20 and mapping.fitted_on["datasets"] == ["gsm8k/train"]
    assert set(mapping.fitted_on["chosen_from"]) == {"2", "4"}
    assert all("p50_s" in row and "auroc" in row for row in mapping.fitted_on["chosen_from"].values())
    assert f"| {mapping.paths} (chosen) |" in proc.stdout
    from runtime.bundle import load_manifest

    assert mapping.fitted_for == load_manifest(bundle).source["source_sha256"]  # it belongs to these weights
