"""`distill data build` end to end with the gold teacher: rates, resume after kill -9, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distill.build import build
from distill.problems import load_problems
from distill.records import read_records
from distill.teachers.gold import GoldTeacher
from runtime.solver import answers_match, execute
from runtime.thoughts import FORMAT_VERSION, Thought

DISTILL = [sys.executable, "-m", "distill.cli"]
ALL = [Thought.COT, Thought.POT, Thought.EOT]


def test_gold_teacher_rates_on_all_of_gsm8k_train(data_dir, tmp_path):
    problems = load_problems("gsm8k", "train", data_dir).problems
    stats = build(problems, GoldTeacher(), ALL, tmp_path / "etd.jsonl")
    total = len(problems)
    kept = {name: s.kept for name, s in stats.by_thought.items()}
    print(f"\ngold teacher on GSM8K train ({total}): " + ", ".join(f"{k} {v} ({100 * v / total:.2f}%)" for k, v in kept.items()))
    assert kept["pot"] >= 0.95 * total
    assert kept["eot"] >= 0.90 * total
    assert kept["cot"] >= 0.98 * total


def test_records_have_the_schema_and_reverify(data_dir, tmp_path):
    out = tmp_path / "etd.jsonl"
    problems = load_problems("gsm8k", "train", data_dir).problems[:25]
    build(problems, GoldTeacher(), ALL, out, perturb_copies=2)
    records = list(read_records(out))
    assert {r.thought for r in records} == {"cot", "pot", "eot"}
    assert any(r.source == "gsm8k/train+perturb" for r in records)
    assert len({r.id for r in records}) == len(records)
    for record in records:
        assert record.format_version == FORMAT_VERSION
        result = execute(record.thought, record.rationale)
        assert answers_match(result.answer, record.gold), record.id
    # Some EoT systems carry an equation with the unknown on the left, not only definitions.
    assert any("+" in r.rationale.splitlines()[-2].split("=")[0] or "*" in r.rationale.splitlines()[-2].split("=")[0]
               for r in records if r.thought == "eot")


def test_equation_datasets_build(data_dir, tmp_path):
    out = tmp_path / "svamp.jsonl"
    stats = build(load_problems("svamp", "test", data_dir).problems[:40], GoldTeacher(), ALL, out)
    assert stats.by_thought["pot"].kept >= 39 and stats.by_thought["eot"].kept >= 39


def _run(*args, **kwargs):
    return subprocess.run([*DISTILL, *args], capture_output=True, timeout=300, **kwargs)


def test_kill_and_resume_gives_the_same_file(data_dir, tmp_path):
    args = ["data", "build", "--dataset", "gsm8k", "--split", "train", "--limit", "120", "--perturb", "1",
            "--data-dir", str(data_dir)]
    whole = tmp_path / "whole.jsonl"
    assert _run(*args, "--out", str(whole)).returncode == 0

    cut = tmp_path / "cut.jsonl"
    proc = subprocess.Popen([*DISTILL, *args, "--out", str(cut)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "cut.jsonl.progress"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if progress.exists() and progress.read_text().count("\n") >= 30:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = progress.read_text().count("\n")
    assert 30 <= finished_before < 120, "the kill must land mid-build"

    resumed = _run(*args, "--out", str(cut))
    assert resumed.returncode == 0
    assert "resumed" in resumed.stdout.decode()
    assert cut.read_bytes() == whole.read_bytes()


def test_a_resumed_build_keeps_records_with_a_line_separator_in_their_text(data_dir, tmp_path):
    # GSM8K train 2381's question holds U+2028 ("balls.\u2028 The box"), written raw in its records:
    # a resume that split the file at it dropped the record as half-written
    problems = load_problems("gsm8k", "train", data_dir).problems
    problem = next(p for p in problems if p.id == "gsm8k-train-2381")
    assert "\u2028" in problem.question
    out = tmp_path / "etd.jsonl"
    build([problem], GoldTeacher(), ALL, out)
    written = out.read_bytes()
    assert len(list(read_records(out))) == 3
    again = build([problem], GoldTeacher(), ALL, out)
    assert again.resumed == 1 and out.read_bytes() == written


def test_stats_command(data_dir, tmp_path):
    out = tmp_path / "etd.jsonl"
    build(load_problems("gsm8k", "train", data_dir).problems[:10], GoldTeacher(), ALL, out)
    proc = _run("data", "stats", str(out), "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["counts"]["by_thought"]["cot"] == 10
    assert data["funnel"]["cot"]["generated"] == 10 and data["problems"] == 10
    # --out: the same object as stats.json, and tables a model card takes as generated blocks
    written = _run("data", "stats", str(out), "--out", str(tmp_path / "stats"))
    assert written.returncode == 0, written.stderr.decode()
    assert json.loads((tmp_path / "stats" / "stats.json").read_text()) == data
    from benchmarks.card import generate

    per_thought = generate("stats/stats.md#Per thought", tmp_path).splitlines()
    assert per_thought[0].startswith("| thought | problems (of attempted) | records |") and len(per_thought) == 2 + 3
    assert any(row.startswith("| cot | 10 (100.0%) | 10 | 1.00 | - |") for row in per_thought)
    summary = generate("stats/stats.md#Summary", tmp_path)
    assert "| problems attempted | 10 |" in summary and "(100.0%)" in summary
    assert data["sha256"] in generate("stats/stats.md#Files", tmp_path)
    refused = _run("data", "stats", str(out), "--out", str(out))
    assert refused.returncode == 2 and "is a file" in refused.stderr.decode()


def test_stats_of_two_builds_over_the_same_problems(data_dir, tmp_path):
    # e.g. a PoT run and an EoT-only run: a problem attempted by both counts once, records and funnels add up
    problems = load_problems("gsm8k", "train", data_dir).problems
    first, second = tmp_path / "pot.jsonl", tmp_path / "eot.jsonl"
    build(problems[:6], GoldTeacher(), [Thought.POT], first)
    build(problems[3:8], GoldTeacher(), [Thought.EOT], second)
    proc = _run("data", "stats", str(first), str(second), "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert data["problems"] == 8 and data["counts"]["problems"] == 8
    assert data["counts"]["by_thought"] == {"pot": 6, "eot": 5}
    assert data["funnel"]["pot"]["generated"] == 6 and data["funnel"]["eot"]["generated"] == 5
    assert data["diversity"]["pot_and_eot"]["problems"] == 3 and data["diversity"]["covered"] == 1.0
    assert set(data["sha256"]) == {str(first), str(second)}


@pytest.mark.parametrize("args, message", [
    (["data", "build", "--dataset", "mnist", "--out", "x.jsonl"], "unknown dataset"),
    (["data", "build", "--dataset", "gsm8k", "--data-dir", "/nonexistent", "--out", "x.jsonl"], "does not exist"),
    (["data", "build", "--dataset", "gsm8k", "--thoughts", "pot,sql", "--out", "x.jsonl"], "thoughts"),
    (["data", "stats", "/nonexistent.jsonl"], "no such dataset file"),
    (["data", "build", "--dataset", "gsm8k", "--skip", "-1", "--out", "x.jsonl"], "--skip"),
    (["data", "build", "--dataset", "gsm8k", "--paths", "pot:0", "--out", "x.jsonl"], "--paths"),  # the gold teacher too
    (["data", "build", "--dataset", "gsm8k", "--batch", "0", "--out", "x.jsonl"], "--batch"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    proc = _run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert message in err and "Traceback" not in err


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n')
    proc = _run("data", "stats", str(path))
    assert proc.returncode == 2 and "bad.jsonl:1: missing field" in proc.stderr.decode()


def test_existing_foreign_file_is_not_overwritten(data_dir, tmp_path):
    out = tmp_path / "mine.jsonl"
    out.write_text("precious\n")
    proc = _run("data", "build", "--dataset", "gsm8k", "--limit", "2", "--data-dir", str(data_dir), "--out", str(out))
    assert proc.returncode == 2 and "choose another --out" in proc.stderr.decode()
    assert out.read_text() == "precious\n"


def test_skip_builds_a_disjoint_dev_set(data_dir, tmp_path):
    """--skip N --limit M holds the problems N..N+M-1: the same records as building them directly."""
    dev = tmp_path / "dev.jsonl"
    proc = _run("data", "build", "--dataset", "gsm8k", "--skip", "3", "--limit", "2", "--data-dir", str(data_dir),
                "--out", str(dev))
    assert proc.returncode == 0, proc.stderr.decode()
    expected = tmp_path / "expected.jsonl"
    build(load_problems("gsm8k", "train", data_dir).problems[3:5], GoldTeacher(), ALL, expected)
    assert dev.read_text() == expected.read_text()
    first_three = {p.id for p in load_problems("gsm8k", "train", data_dir).problems[:3]}
    ids = {r.problem_id for r in read_records(dev)}
    assert len(ids) == 2 and not ids & first_three
