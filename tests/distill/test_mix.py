"""`distill data mix`: teacher paths kept once, gold only where the teacher has nothing."""

import json
import subprocess
import sys

from distill.build import build
from distill.problems import load_problems
from distill.records import Record, read_records
from distill.teachers.gold import GoldTeacher
from runtime.files import sha256_file
from runtime.thoughts import Thought


def test_mix_keeps_teacher_paths_once_and_fills_with_gold(data_dir, tmp_path):
    problems = load_problems("gsm8k", "train", data_dir).problems[:3]
    gold = tmp_path / "gold.jsonl"
    build(problems, GoldTeacher(), [Thought.POT, Thought.EOT], gold)
    gold_records = list(read_records(gold))
    gold_pot_1 = next(r for r in gold_records if r.problem_id == problems[1].id and r.thought == "pot")

    def teacher(problem, rationale, path, thought="pot"):
        return Record(id=f"{problem.id}:{thought}:{path}", source="gsm8k/train", question=problem.question,
                      thought=thought, rationale=rationale, answer=problem.answer, gold=problem.answer,
                      teacher="local:qwen", path=path)

    renamed = "\n".join(line.replace("=", "= ", 1) for line in gold_pot_1.rationale.splitlines())  # same program
    teacher_records = [teacher(problems[0], "a = 48\nb = a / 2\nans = a + b", 0),
                       teacher(problems[0], "ans = 48 + 48 / 2", 1),
                       teacher(problems[0], "a = 48\nb = a / 2\nans = a + b", 2),     # its own duplicate
                       teacher(problems[1], renamed, 0)]
    sampled = tmp_path / "teacher.jsonl"
    sampled.write_text("".join(r.to_json() + "\n" for r in teacher_records))
    out = tmp_path / "mix.jsonl"
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "data", "mix", str(sampled), "--fill", str(gold),
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    mixed = list(read_records(out))
    assert summary["sha256"] == sha256_file(out) and summary["records"] == len(mixed)
    assert summary["duplicates"] == 1
    # problem 0 and 1's PoT come from the teacher only; their EoT and all of problem 2 from gold
    by_slot = {(r.problem_id, r.thought): r.teacher for r in mixed}
    assert by_slot[(problems[0].id, "pot")] == by_slot[(problems[1].id, "pot")] == "local:qwen"
    assert {by_slot[(p.id, "eot")] for p in problems} == {"gold"} and by_slot[(problems[2].id, "pot")] == "gold"
    assert summary["fill_not_needed"] == sum(1 for r in gold_records if r.thought == "pot" and r.problem_id != problems[2].id)
    assert len({r.id for r in mixed}) == len(mixed)  # renumbered: two files' ":pot:0" never collide
    assert sorted(r.id for r in mixed if r.problem_id == problems[0].id and r.thought == "pot") == \
        [f"{problems[0].id}:pot:0", f"{problems[0].id}:pot:1"]
    assert [r.path for r in mixed if r.problem_id == problems[0].id and r.thought == "pot"] == [0, 1]

    again = subprocess.run([sys.executable, "-m", "distill.cli", "data", "mix", str(sampled), "--out", str(sampled)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "one of the inputs" in again.stderr and "Traceback" not in again.stderr
