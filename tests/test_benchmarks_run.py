"""`benchmarks run` end to end on the tiny memorising student: every report file and field, resume,
a memory cap that is too small, and `benchmarks compare`."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.solver import answers_match

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def benchmarks(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.cli", *args], capture_output=True, text=True, timeout=timeout)


def finished_records(out: Path, label: str) -> list[dict]:
    """A finished target's records: gzipped, the plain file gone."""
    assert not (out / "records" / f"{label}.jsonl").exists()
    return [json.loads(line) for line in gzip.decompress((out / "records" / f"{label}.jsonl.gz").read_bytes()).splitlines()]


@pytest.fixture(scope="module")
def run(student, data_dir, tmp_path_factory):
    bundle, problems = student
    out = tmp_path_factory.mktemp("bench") / "tiny"
    args = ["run", "--model", f"{bundle}@all", "--datasets", "gsm8k:train=4", "--modes", "etd,pot",
            "--batch-size", "3", "--latency-sample", "3", "--max-tokens", "160", "--data-dir", str(data_dir),
            "--out", str(out)]
    proc = benchmarks(*args, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, args, json.loads(proc.stdout), bundle, problems


def test_results_json_has_every_figure(run):
    out, _, printed, bundle, problems = run
    results = json.loads((out / "results.json").read_text())
    assert printed["targets"] == results["targets"]
    assert results["complete"] is True
    labels = [t["label"] for t in results["targets"]]
    assert labels == ["bundle-f16", "bundle-ct2-float32", "bundle-fp32-reference"]
    assert results["reference"] == "bundle-fp32-reference"
    device = results["device"]
    assert device["cpu"] and device["cores"] >= 1 and device["memory_bytes"] > 0
    assert device["versions"]["python"] and device["versions"]["llama_cpp_python"] and device["versions"]["ctranslate2"]
    assert results["settings"]["datasets"] == ["gsm8k/train"] and results["settings"]["limits"] == {"gsm8k/train": 4}
    for row in results["targets"]:
        assert row["error"] is None and row["records"] == 8
        # The student memorised these four problems: every engine solves all of them, in every thought.
        for mode in ("etd", "pot"):
            figures = row["accuracy"][mode]
            assert figures["all"] == figures["datasets"]["gsm8k/train"]   # one dataset: the same figures
            assert figures["all"]["n"] == 4 and figures["all"]["accuracy"] == 100.0
        assert set(row["accuracy"]["etd"]["all"]["thoughts"]) == {"pot", "eot", "cot"}
        assert set(row["accuracy"]["pot"]["all"]["thoughts"]) == {"pot"}
        for thought in row["accuracy"]["etd"]["all"]["thoughts"].values():
            assert thought == {"n": 4, "correct": 4, "accuracy": 100.0, "wrong": 0, "failures": {}}
        for mode in ("etd", "pot"):
            latency = row["latency"][mode]
            assert latency["n"] == 3
            assert 0 < latency["p50_s"] <= latency["p90_s"] <= latency["p99_s"]
            assert latency["decode_tok_s"] > 0 and latency["solver_p50_s"] >= 0 and latency["tokens_p50"] > 0
            assert row["agreement_with_reference"][mode] == {"n": 4, "same": 4, "agreement": 100.0}
        throughput = row["throughput"]["etd"]
        assert throughput["problems"] == 4 and throughput["problems_per_s"] > 0 and throughput["tokens_per_s"] > 0
        assert "pot" not in row["throughput"]      # pot was read from the etd generations, not timed
        assert row["load_s"] > 0
        assert row["peak_rss_bytes"] > 20_000_000          # a Python process with a model loaded
        assert row["size_bytes"] > 0
    gguf, ct2, reference = results["targets"]
    assert gguf["size_bytes"] == (bundle / "model-f16.gguf").stat().st_size
    assert ct2["size_bytes"] == sum(p.stat().st_size for p in (bundle / "ct2-float32").rglob("*") if p.is_file())
    # Only the streaming engine can split prompt processing from decoding.
    assert gguf["latency"]["pot"]["first_token_p50_s"] > 0 and gguf["latency"]["pot"]["prompt_tok_s"] > 0
    assert ct2["latency"]["pot"]["first_token_p50_s"] is None and reference["latency"]["pot"]["prompt_tok_s"] is None
    assert reference["vs_reference"]["peak_rss_ratio"] == 1.0
    assert reference["vs_reference"]["modes"]["etd"] == {"accuracy_points": 0.0, "latency_p50_ratio": 1.0,
                                                         "throughput_ratio": 1.0}
    assert gguf["vs_reference"]["modes"]["etd"]["accuracy_points"] == 0.0
    assert gguf["vs_reference"]["peak_rss_ratio"] == round(gguf["peak_rss_bytes"] / reference["peak_rss_bytes"], 3)


def test_per_problem_records_are_usable_later(run):
    out, _, _, _, problems = run
    by_id = {p.id: p for p in problems}
    for label in ("bundle-f16", "bundle-ct2-float32", "bundle-fp32-reference"):
        rows = finished_records(out, label)
        assert sorted((r["mode"], r["id"]) for r in rows) == sorted((m, p.id) for m in ("etd", "pot") for p in problems)
        # A problem's rows side by side (so gzip finds the derived copies of its texts).
        ids = [r["id"] for r in rows]
        assert all(ids[i] == ids[i + 1] for i in range(0, len(ids), 2))
        for row in rows:
            problem = by_id[row["id"]]
            assert row["gold"] == problem.answer and "question" not in row   # ids only: no dataset text copied
            assert row["correct"] == answers_match(row["answer"], problem.answer)
            expected = ["pot", "eot", "cot"] if row["mode"] == "etd" else ["pot"]
            assert [t["thought"] for t in row["thoughts"]] == expected
            if row["mode"] == "pot":
                assert row["derived_from"] == "etd" and row["batch_share_s"] is None
            for thought in row["thoughts"]:
                assert thought["text"] and thought["tokens"] > 0 and thought["prompt_tokens"] > 0
                assert thought["correct"] == answers_match(thought["answer"], problem.answer)
        latency = [json.loads(line) for line in (out / "latency" / f"{label}.jsonl").read_text().splitlines()]
        assert len(latency) == 6 and all(r["total_s"] > 0 and r["generations"] for r in latency)


def test_markdown_and_plots(run):
    out, *_ = run
    markdown = (out / "results.md").read_text()
    for heading in ("## Accuracy (%)", "## Each thought alone", "## Speed and memory", "## Against the reference"):
        assert heading in markdown
    for label in ("bundle-f16", "bundle-ct2-float32", "bundle-fp32-reference"):
        assert f"| {label} | etd | 100.0 |" in markdown
        # pot was read from the etd generations: its thoughts are etd's, listed once
        assert f"| {label} | etd | pot | 100.0 |" in markdown and f"| {label} | pot | pot |" not in markdown
    # gsm8k/train 0-3 have 2, 2, 3 and 4 calculator steps in their gold solutions
    assert "## GSM8K by steps in the gold solution" in markdown
    assert "| bundle-f16 | etd | 100.0 (2) | 100.0 (2) | – (0) |" in markdown
    # The memorised gold programs compute nothing the answer does not use.
    assert "## Programs with steps the answer never uses" in markdown
    assert "| bundle-f16 | gsm8k/train | 4 | 0.0 | – | 100.0 |" in markdown
    # A section is a table and its notes (a card quotes it whole); the plots have their own.
    speed = markdown.split("## Speed and memory")[1].split("\n## ")[0]
    assert "Peak RSS is the kernel's count" in speed and "![" not in speed
    for name in ("accuracy.png", "latency.png", "tradeoff.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
        assert f"]({name})" in markdown


def test_rerun_resumes_without_duplicates(run):
    out, args, *_ = run
    records = out / "records" / "bundle-f16.jsonl"
    lines = [json.dumps(row) for row in finished_records(out, "bundle-f16")]
    # As if killed mid-write: two whole lines lost and half of a third. Then the same, the .gz still
    # there (killed between writing it and removing the plain file): the plain file, being appended, wins.
    for keep_packed in (False, True):
        if not keep_packed:
            (out / "records" / "bundle-f16.jsonl.gz").unlink()
        records.write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])
        proc = benchmarks(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        again = finished_records(out, "bundle-f16")
        assert len(again) == 8 and len({(r["mode"], r["id"]) for r in again}) == 8
        assert json.loads((out / "results.json").read_text())["complete"] is True


def test_other_settings_into_the_same_folder_are_refused(run):
    out, args, *_ = run
    changed = [a if a != "etd,pot" else "cot" for a in args]
    proc = benchmarks(*changed)
    assert proc.returncode == 2
    assert "other settings (modes)" in proc.stderr and "Traceback" not in proc.stderr


def test_memory_cap_too_small_fails_that_model_clearly(student, data_dir, tmp_path):
    bundle, _ = student
    proc = benchmarks("run", "--model", f"{bundle}@f16", "--datasets", "gsm8k:train=1", "--modes", "pot",
                      "--memory-cap", "40M", "--latency-sample", "0", "--data-dir", str(data_dir), "--out", str(tmp_path / "capped"))
    assert proc.returncode == 1
    assert "bundle-f16 failed" in proc.stderr
    results = json.loads((tmp_path / "capped" / "results.json").read_text())
    assert results["complete"] is False and results["targets"][0]["error"]
    assert results["settings"]["memory_cap"] == 40 * 2**20


def test_compare_two_runs(run, student, data_dir, tmp_path):
    out, *_ = run
    bundle, _ = student
    proc = benchmarks("run", "--model", f"{bundle}@f16", "--datasets", "gsm8k:train=2", "--modes", "pot",
                      "--threads", "1", "--latency-sample", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # One model alone: no reference column or section comparing it with itself.
    alone_md = (tmp_path / "b" / "results.md").read_text()
    assert "| bundle-f16 | pot | 100.0 | **100.0** (2/2) |\n" in alone_md
    assert "reference" not in alone_md.split("## Speed and memory")[0].lower() and "## Against the reference" not in alone_md
    proc = benchmarks("compare", str(out), str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, proc.stderr
    differences = json.loads(proc.stdout)
    assert [(t["a"], t["b"]) for t in differences["targets"]] == [("bundle-f16", "bundle-f16")]
    pot = differences["targets"][0]["modes"]["pot"]
    assert set(pot) == {"datasets", "all", "latency_p50_ratio", "throughput_ratio"} and "etd" not in differences["targets"][0]["modes"]
    assert pot["all"] == {"a": 100.0, "b": 100.0, "points": 0.0, "ratio": 1.0}
    assert pot["latency_p50_ratio"] > 0
    # Generated on its own, pot gives the texts the first run read from its etd generations.
    derived = {r["id"]: r for r in finished_records(out, "bundle-f16") if r["mode"] == "pot"}
    alone = finished_records(tmp_path / "b", "bundle-f16")
    assert len(alone) == 2 and all("derived_from" not in r for r in alone)
    for row in alone:
        assert row["thoughts"][0]["text"] == derived[row["id"]]["thoughts"][0]["text"]
        assert row["answer"] == derived[row["id"]]["answer"] and row["reason"] == derived[row["id"]]["reason"]
    table = benchmarks("compare", str(out), str(tmp_path / "b")).stdout
    assert "| bundle-f16 | bundle-f16 | pot | gsm8k/train | 100.0 | 100.0 | +0.00 | 1.0× |" in table
    missing = benchmarks("compare", str(out), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no results in" in missing.stderr and "no such folder or file" in missing.stderr


def test_compare_states_accuracy_as_a_ratio_too():
    from benchmarks.compare import compare, to_markdown

    def results(label, gsm8k, svamp):
        datasets = {"gsm8k/test": {"accuracy": gsm8k}, "svamp/test": {"accuracy": svamp}}
        return {"generated_at": label, "device": {"cpu": "same"}, "targets": [
            {"label": label, "accuracy": {"etd": {"datasets": datasets, "all": {"accuracy": (gsm8k + svamp) / 2}}},
             "latency": {}, "throughput": {}}]}

    differences = compare(results("base", 2.5, 0.0), results("student", 15.0, 4.0))
    etd = differences["targets"][0]["modes"]["etd"]
    assert etd["datasets"]["gsm8k/test"] == {"a": 2.5, "b": 15.0, "points": 12.5, "ratio": 6.0}
    assert etd["datasets"]["svamp/test"]["ratio"] is None  # no ratio against zero
    assert etd["all"]["ratio"] == 7.6
    table = to_markdown(differences)
    assert "| base | student | etd | gsm8k/test | 2.5 | 15.0 | +12.50 | 6.0× |" in table
    assert "| base | student | etd | svamp/test | 0.0 | 4.0 | +4.00 | – |" in table


def test_compare_pools_only_the_datasets_both_runs_measured():
    from benchmarks.compare import compare, to_markdown

    def results(label, counts):
        datasets = {d: {"n": n, "correct": c, "accuracy": round(100 * c / n, 2)} for d, (c, n) in counts.items()}
        c, n = sum(c for c, _ in counts.values()), sum(n for _, n in counts.values())
        return {"generated_at": label, "device": {"cpu": "same"}, "targets": [
            {"label": label, "accuracy": {"etd": {"datasets": datasets, "all": {"n": n, "correct": c,
                                                                                 "accuracy": round(100 * c / n, 2)}}},
             "latency": {}, "throughput": {}}]}

    # The base measured three sets (its own "all" is 33.3%), the student GSM8K and SVAMP only.
    base = results("base", {"gsm8k/test": (10, 1000), "svamp/test": (30, 100), "asdiv/test": (960, 1900)})
    student = results("student", {"gsm8k/test": (150, 1000), "svamp/test": (50, 100)})
    etd = compare(base, student)["targets"][0]["modes"]["etd"]
    assert set(etd["datasets"]) == {"gsm8k/test", "svamp/test"}
    assert etd["all"]["a"] == round(100 * 40 / 1100, 2)  # GSM8K and SVAMP pooled, not 33.3%
    assert etd["all"]["b"] == round(100 * 200 / 1100, 2)
    one = compare(base, results("student", {"gsm8k/test": (150, 1000)}))
    assert [line.split(" | ")[3] for line in to_markdown(one).splitlines() if line.startswith("| base |")] == ["gsm8k/test"]


def test_bad_model_entries_are_one_line_errors(student, tmp_path):
    bundle, _ = student
    for entry, message in ((f"{bundle}@q5_1", "has no q5_1 weights"), (str(tmp_path / "none"), "no bundle"),
                           (f"{bundle}@f16,{bundle}@gguf:f16", "named twice")):
        proc = benchmarks("run", "--model", entry, "--out", str(tmp_path / "x"))
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    # a bad dataset is refused before a default run folder is named (or made)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "run", "--model", str(bundle), "--datasets", "gsm8k,nosuch"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("benchmarks: error: unknown dataset 'nosuch'")
    assert not (tmp_path / "benchmark-runs").exists()


def test_reselect_applies_the_current_etd_rule_to_stored_thoughts(student, data_dir, tmp_path):
    """A run whose etd answers an older rule chose (rule 1 took a program's -N): `report --reselect`
    re-decides them from the stored thoughts, drops the etd latency timed under that rule, and the
    same `run` command times it again. Until then, resuming is refused."""
    bundle, problems = student
    out = tmp_path / "old"
    args = ["run", "--model", f"{bundle}@f16", "--datasets", "gsm8k:train=2", "--modes", "etd,pot",
            "--latency-sample", "2", "--max-tokens", "160", "--data-dir", str(data_dir), "--out", str(out)]
    assert benchmarks(*args).returncode == 0
    gold = {p.id: p.answer for p in problems}
    rows = finished_records(out, "bundle-f16")
    target = rows[0]["id"]
    for row in rows:
        if row["id"] == target:
            row["thoughts"][0] |= {"answer": -gold[target], "correct": False}   # the program's answer
            row |= {"answer": -gold[target], "correct": False, "thought": "pot"}  # what rule 1 chose
    (out / "records" / "bundle-f16.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    settings = json.loads((out / "run.json").read_text())
    del settings["etd_rule"]          # a folder written before the rule was recorded: rule 1
    (out / "run.json").write_text(json.dumps(settings))

    refused = benchmarks(*args)
    assert refused.returncode == 2 and "--reselect" in refused.stderr and "Traceback" not in refused.stderr

    proc = benchmarks("report", str(out), "--reselect", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bundle-f16: 1 etd answers changed" in proc.stderr
    after = {(r["mode"], r["id"]): r for r in finished_records(out, "bundle-f16")}
    etd = after[("etd", target)]
    assert etd["answer"] == gold[target] and etd["correct"] and etd["thought"] == "eot"
    assert "POT gave" in etd["reason"] and "negative" in etd["reason"]
    assert after[("pot", target)]["answer"] == -gold[target] and not after[("pot", target)]["correct"]
    accuracy = json.loads(proc.stdout)["targets"][0]["accuracy"]
    assert accuracy["etd"]["all"]["accuracy"] == 100.0 and accuracy["pot"]["all"]["accuracy"] == 50.0
    assert json.loads((out / "run.json").read_text())["etd_rule"] >= 2
    latency = [json.loads(line) for line in (out / "latency" / "bundle-f16.jsonl").read_text().splitlines()]
    assert sorted(r["mode"] for r in latency) == ["pot", "pot"]

    resumed = benchmarks(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    latency = [json.loads(line) for line in (out / "latency" / "bundle-f16.jsonl").read_text().splitlines()]
    assert sorted(r["mode"] for r in latency) == ["etd", "etd", "pot", "pot"]
    assert {(r["mode"], r["id"]): r["answer"] for r in finished_records(out, "bundle-f16")} == \
        {key: row["answer"] for key, row in after.items()}


def test_reselect_refuses_a_record_without_the_thoughts_the_rule_needs():
    from benchmarks.reselect import reselect_row
    from benchmarks.suite import RunError

    lazy = {"dataset": "gsm8k/test", "id": "x", "mode": "etd", "gold": 4.0, "answer": -4.0, "correct": False,
            "thoughts": [{"thought": "pot", "sample": 0, "answer": -4.0, "error": None, "error_kind": None}]}
    with pytest.raises(RunError, match="lazily"):
        reselect_row(lazy)
    settled = lazy | {"thoughts": [lazy["thoughts"][0] | {"answer": 4.0}]}
    assert reselect_row(settled)["correct"] is True


def test_records_from_other_weights_never_mix(student, data_dir, tmp_path):
    """A folder remembers which weights wrote its records; resuming it with a rebuilt bundle under the
    same label is refused instead of silently pooling two models' answers."""
    bundle, _ = student
    out = tmp_path / "one"
    args = ["run", "--model", f"{bundle}@f16", "--datasets", "gsm8k:train=1", "--modes", "pot",
            "--latency-sample", "0", "--data-dir", str(data_dir), "--out", str(out)]
    assert benchmarks(*args).returncode == 0
    summary_path = out / "targets" / "bundle-f16.json"
    summary = json.loads(summary_path.read_text())
    manifest = json.loads((bundle / "student.json").read_text())
    assert summary["weights_sha256"] == next(f["sha256"] for f in manifest["files"] if f["path"] == "model-f16.gguf")
    assert benchmarks(*args).returncode == 0              # the same weights: resumes (nothing to do)
    summary_path.write_text(json.dumps(summary | {"weights_sha256": "0" * 64}))
    proc = benchmarks(*args)
    assert proc.returncode == 2 and "from other weights" in proc.stderr and "Traceback" not in proc.stderr


def test_run_without_model_measures_the_default_student(data_dir, tmp_path):
    """No --model: the default bundle, as `runtime solve` uses it (here the untuned base, the default
    of an installation with no trained student), written under ./benchmark-runs/LABEL."""
    import os

    env = dict(os.environ, ETD_HOME=str(tmp_path / "home"), ETD_STUDENT_ADAPTER=str(tmp_path / "no-student"))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "run", "--datasets", "gsm8k:train=1", "--modes", "pot",
                           "--latency-sample", "0", "--max-tokens", "8", "--data-dir", str(data_dir), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "benchmark-runs" / "smollm2-base-q4_1"
    assert f"writing to {out.relative_to(tmp_path)}" in proc.stderr
    run_config = json.loads((out / "run.json").read_text())
    assert [t["label"] for t in run_config["targets"]] == ["smollm2-base-q4_1"]
    assert Path(run_config["targets"][0]["bundle"]) == tmp_path / "home" / "bundles" / "smollm2-base"
    assert json.loads(proc.stdout)


def test_gsm8k_steps_are_the_gold_solutions_calculator_annotations():
    from benchmarks.metrics import accuracy_by_steps, solution_steps, step_bucket

    solution = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nAltogether she sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
    assert solution_steps(solution) == 2 and solution_steps("no marks") == 0
    assert [step_bucket(n) for n in (0, 1, 2, 3, 4, 5, 9)] == [None, "1-2", "1-2", "3-4", "3-4", "5+", "5+"]
    records = [{"id": "a", "mode": "etd", "correct": True}, {"id": "b", "mode": "etd", "correct": False},
               {"id": "c", "mode": "etd", "correct": True}, {"id": "d", "mode": "etd", "correct": True}]
    table = accuracy_by_steps(records, {"a": 1, "b": 2, "c": 6})  # d has no count: not in the table
    assert table == {"etd": {"1-2": {"n": 2, "correct": 1, "accuracy": 50.0}, "3-4": {"n": 0, "correct": 0, "accuracy": None},
                             "5+": {"n": 1, "correct": 1, "accuracy": 100.0}}}


def test_other_sets_count_the_operations_of_their_gold_equation(data_dir):
    from types import SimpleNamespace

    from benchmarks.metrics import OPERATION_BUCKETS, accuracy_by_steps, equation_operations, step_bucket
    from benchmarks.report import gold_lengths

    assert equation_operations("( 76.0 - 25.0 )") == 1                      # SVAMP
    assert equation_operations("( ( 5.0 * 7.0 ) - 3.0 )") == 2
    assert equation_operations("7+2=9") == 1                                 # ASDiv: the left side
    assert equation_operations("X=((32.0+42.0)-35.0)") == 2                  # MultiArith
    assert equation_operations("-3+5") == 1                                  # a leading minus is a sign
    assert equation_operations("8.0") == 0 and step_bucket(0, OPERATION_BUCKETS) is None
    for not_arithmetic in ("17/10=1 r7; 7/5=1 r2", "15:18=5:6", "2 parts(Blue) < 3 parts(Purple)",
                           "(1 (hour)*60 (min/hour)) = 60 (min); 60 + 30 + 45 = 135", "", None):
        assert equation_operations(not_arithmetic) is None
    records = [{"id": "a", "mode": "etd", "correct": False}, {"id": "b", "mode": "etd", "correct": True},
               {"id": "c", "mode": "etd", "correct": True}]
    assert accuracy_by_steps(records, {"a": 1, "b": 1, "c": 4}, OPERATION_BUCKETS) == {"etd": {
        "1": {"n": 2, "correct": 1, "accuracy": 50.0}, "2": {"n": 0, "correct": 0, "accuracy": None},
        "3+": {"n": 1, "correct": 1, "accuracy": 100.0}}}
    # Read from the data: GSM8K by annotations, the other sets by their equations.
    steps, operations = gold_lengths(SimpleNamespace(datasets=["gsm8k/train", "svamp/test", "multiarith/test"],
                                                     data_dir=str(data_dir)))
    assert steps["gsm8k-train-0"] == 2 and "gsm8k-train-0" not in operations
    assert operations["chal-1"] == 1 and operations["multiarith-0"] == 2


def test_programs_with_steps_the_answer_never_uses_are_counted_with_their_accuracy():
    from benchmarks.metrics import unused_steps

    def record(i, program, correct, dataset="svamp/test", mode="etd"):
        return {"id": str(i), "dataset": dataset, "mode": mode, "correct": correct,
                "thoughts": [{"thought": "pot", "sample": 0, "text": program, "answer": 1.0, "correct": correct}]}

    records = [record(1, "a = 26 - 14\nb = 17 - 9\nans = a", False),   # b is worked out for nothing
               record(2, "salty = 26\nsweet = 17\nans = salty - 14", True),  # sweet: a given, not a step
               record(3, "ans = 26 - 14", True), record(4, "ans = 26 - 14", True, mode="pot"),
               record(5, "import os\nans = 1", True)]                   # not a program the solver runs: left out
    assert unused_steps(records) == {"svamp/test": {"programs": 3, "with_unused": 33.33, "accuracy_with": 0.0,
                                                    "accuracy_without": 100.0}}
