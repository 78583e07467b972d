"""Feedback-driven distillation end to end: two rounds with a tiny student, once with the offline
`perturb` teacher and once with an OpenAI-compatible teacher served on 127.0.0.1."""

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from distill.build import build
from distill.fdd.loop import MODES, FeedbackConfig, run_feedback
from distill.fdd.prompts import SYSTEM as QUESTION_SYSTEM
from distill.problems import load_problems
from distill.records import read_records
from distill.teachers.gold import GoldTeacher
from runtime.solver import answers_match, execute
from runtime.thoughts import PROMPTS, Thought, format_example
from tests.tiny_models import make_llama, make_tokenizer

TRAIN = {"max_steps": 150, "batch_size": 6, "lr": 3e-3, "warmup": 10, "threads": 2, "max_length": 256}


@pytest.fixture(scope="module")
def start(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fdd")
    data = folder / "etd.jsonl"
    build(load_problems("gsm8k", "train", data_dir).problems[:4], GoldTeacher(), [Thought.POT, Thought.EOT, Thought.COT], data)
    texts = [format_example(r.question, r.thought, r.rationale).prompt + r.rationale for r in read_records(data)]
    texts += ["If that amount were 3 times as large, what would it be? follow_up = ans * 3 Sam apples buys more"] * 5
    tokenizer = make_tokenizer(texts, folder / "tokenizer")
    return data, make_llama(folder / "base", tokenizer)


def etd_answer(answers: dict) -> float | None:
    for thought in ("pot", "eot", "cot"):
        if answers[thought][0] is not None:
            return answers[thought][0]
    return None


def check_run(out, data, rounds: int) -> dict:
    report = json.loads((out / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == list(range(rounds + 1))
    assert "| round | records |" in (out / "report.md").read_text()
    previous = list(read_records(data))
    assert report["rounds"][0]["dataset"]["records"] == len(previous)
    for summary in report["rounds"]:
        measured = summary["test"]["gsm8k"]
        assert set(measured) == {"problems", "answered", *MODES}
        assert all(0 <= measured[m] <= 1 for m in MODES)
        # a right answer is an answer: each thought's accuracy is at most the share it answered
        assert set(measured["answered"]) == {"pot", "eot", "cot"}
        assert all(measured[t] <= measured["answered"][t] <= 1 for t in ("pot", "eot", "cot"))
        assert (out / f"round-{summary['round']}" / "student" / "training.json").exists()
    for r in range(1, rounds + 1):
        folder = out / f"round-{r}"
        summary = report["rounds"][r]
        feedback = [json.loads(line) for line in (folder / "feedback.jsonl").read_text().splitlines()]
        # the classification is what the evaluation records say
        assert len(feedback) == len({rec.problem_id for rec in previous})
        for row in feedback:
            assert row["easy"] == answers_match(etd_answer(row["answers"]), row["gold"])
        assert summary["easy"] == sum(row["easy"] for row in feedback) and summary["hard"] == len(feedback) - summary["easy"]
        easy = {row["id"]: row["easy"] for row in feedback}
        # the dataset grows by verified records only
        generated = list(read_records(folder / "generated.jsonl"))
        current = list(read_records(folder / "data.jsonl"))
        assert [rec.to_json() for rec in current] == [rec.to_json() for rec in previous + generated]
        assert summary["added_records"] == len(generated) and summary["dataset"]["records"] == len(current)
        by_question = {}
        for rec in generated:
            assert answers_match(execute(rec.thought, rec.rationale).answer, rec.answer), rec
            by_question.setdefault(rec.problem_id, {})[rec.thought] = rec
            parent = rec.problem_id.split("~fdd")[0]
            assert rec.source == f"fdd/round-{r}/{'harder' if easy[parent] else 'similar'}"
        for thoughts in by_question.values():
            assert {"pot", "eot"} <= set(thoughts)
            assert answers_match(thoughts["pot"].answer, thoughts["eot"].answer)
        assert summary["leakage"]["questions"] == len(by_question) + summary["leakage"]["removed"]
        previous = current
    return report


def test_two_rounds_with_the_perturb_teacher(start, data_dir, tmp_path):
    data, base = start
    config = FeedbackConfig(base=str(base), data=str(data), out=str(tmp_path / "fdd"), teacher="perturb", rounds=2,
                            test=["gsm8k"], test_limit=2, data_dir=str(data_dir), max_new_tokens=96, train=TRAIN)
    run_feedback(config, log=lambda _: None)
    report = check_run(tmp_path / "fdd", data, 2)
    assert sum(r.get("added_questions", 0) for r in report["rounds"]) >= 3
    # A rerun resumes: every round is finished, nothing is trained again.
    messages = []
    again = run_feedback(config, log=messages.append)
    assert again["rounds"] == report["rounds"] and all("finished earlier" in m for m in messages)


class _Teacher(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint: new questions on request, and rationales for them that
    the solver can check (one question in three gets disagreeing PoT/EoT answers, to be dropped)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        messages = body["messages"]
        last = messages[-1]["content"]
        digest = int(hashlib.sha256(last.encode()).hexdigest(), 16)
        if messages[0]["content"] == QUESTION_SYSTEM:
            a, b = 3 + digest % 40, 2 + digest // 40 % 30
            reply = f"New problem: Sam has {a} apples and buys {b} more. How many apples does Sam have now?"
        else:
            numbers = [int(n) for n in re.findall(r"\d+", last.split("\n")[0])]
            a, b = (numbers + [1, 1])[:2]
            wrong = digest % 3 == 0
            system = messages[0]["content"]
            if "Python program" in system:
                reply = f"```python\napples = {a} + {b}\nans = apples\n```"
            elif "system of equations" in system:
                reply = f"apples = {a} + {b + (1 if wrong else 0)}\nans = apples"
            else:
                reply = f"Sam has {a} + {b} = {a + b} apples.\nThe answer is {a + b}."
        data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_two_rounds_with_a_local_openai_teacher(start, data_dir, tmp_path):
    data, base = start
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = FeedbackConfig(base=str(base), data=str(data), out=str(tmp_path / "fdd"), teacher="openai", rounds=2,
                                test=["gsm8k"], test_limit=2, data_dir=str(data_dir), max_new_tokens=96, train=TRAIN,
                                teacher_options={"base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
                                                 "model": "teacher", "cache_dir": str(tmp_path / "cache"), "timeout": 10})
        run_feedback(config, log=lambda _: None)
    finally:
        server.shutdown()
    report = check_run(tmp_path / "fdd", data, 2)
    generation = report["rounds"][1]["generation"]
    asked = sum(kind.get("asked", 0) for kind in generation.values())
    dropped = sum(kind.get("not verified", 0) for kind in generation.values())
    assert asked == 4 and 0 < dropped < asked       # disagreeing PoT/EoT answers were refused
    generated = list(read_records(tmp_path / "fdd" / "round-1" / "generated.jsonl"))
    assert generated and all(r.teacher == "openai:teacher" and r.question.startswith("Sam has") for r in generated)
    assert {r.thought for r in generated} == {"pot", "eot", "cot"}


class _VariantEngine:
    """Stands in for the local teacher's llama.cpp engine: writes a new question for each "New problem:"
    prompt and PoT/EoT/CoT rationales for it (the EoT wrong for one question in three, so it is refused).
    Keeps how many prompts each call decoded together."""
    batch_size, seed = 8, 0

    def __init__(self):
        self.calls: list[int] = []

    def decode_together(self, prompts, temperatures, seed=None, **_):
        from runtime.engines.base import Generation

        self.calls.append(len(prompts))
        texts = []
        for prompt in prompts:
            digest = int(hashlib.sha256(prompt.rsplit("Problem:", 1)[-1].encode()).hexdigest(), 16)
            if prompt.endswith("New problem:"):
                texts.append(" Sam has %d apples and buys %d more. How many apples does Sam have now?\n"
                             % (3 + digest % 40, 2 + digest // 40 % 30) if digest % 5 else " I cannot.")
                continue
            a, b = map(int, re.findall(r"Sam has (\d+) apples and buys (\d+)", prompt)[-1])
            wrong = int(hashlib.sha256(f"{a},{b}".encode()).hexdigest(), 16) % 3 == 0
            if prompt.rstrip().endswith(PROMPTS[Thought.POT]):
                texts.append(f"apples = {a} + {b}\nans = apples")
            elif prompt.rstrip().endswith(PROMPTS[Thought.EOT]):
                texts.append(f"% Assume Sam has x apples:\nx - {b + wrong} = {a}\nans = x")
            else:
                texts.append(f"Sam has {a} + {b} = {a + b} apples.\nThe answer is {a + b}.")
        return [Generation(text=t, prompt_tokens=1, tokens=3, seconds=0.0, first_token_s=None) for t in texts]


def _local_teacher(engine):
    from distill.teachers.llamacpp import LlamaCppTeacher

    teacher = object.__new__(LlamaCppTeacher)  # the model itself is stood in for
    teacher.engine, teacher.subquestions, teacher.max_tokens, teacher.tokens = engine, False, 64, 0
    teacher.paths, teacher.temperature, teacher.modes, teacher.extra_paths = 1, 0.0, "solve", "always"
    teacher.timing, teacher.name, teacher.concurrency = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}, "local:t", 1
    teacher.problems_per_call = 32
    return teacher


def test_a_local_teacher_writes_a_rounds_variants_in_batches_and_a_rerun_replays_them(data_dir, tmp_path):
    from distill.fdd.loop import _generate

    problems = load_problems("gsm8k", "train", data_dir).problems[:12]
    feedback = [{"id": p.id, "question": p.question, "gold": p.answer, "easy": i % 2 == 0} for i, p in enumerate(problems)]
    config = FeedbackConfig(base="b", data="d", out=str(tmp_path / "fdd"), teacher="llamacpp", variants=2)
    engine = _VariantEngine()
    made, stats = _generate(config, feedback, [], 1, _local_teacher(engine), lambda _: None)
    # 24 requests fit one call: their questions decoded together, then every rationale of the questions written
    asked = sum(s["asked"] for s in stats.values())
    no_question = sum(s.get("no question in reply", 0) for s in stats.values())
    assert asked == 24 and engine.calls[0] == 24 and engine.calls[1:] == [3 * (24 - no_question)]
    assert 0 < no_question < 24 and 0 < sum(s.get("not verified", 0) for s in stats.values()) - no_question
    assert made and {r.source for r in made} == {"fdd/round-1/harder", "fdd/round-1/similar"}
    by_question = {}
    for record in made:
        assert answers_match(execute(record.thought, record.rationale).answer, record.answer), record
        by_question.setdefault(record.problem_id, set()).add(record.thought)
    assert all(thoughts == {"pot", "eot", "cot"} for thoughts in by_question.values())

    # A rerun (a killed round, another machine with the committed transcript) asks the teacher nothing.
    idle = _VariantEngine()
    again, again_stats = _generate(config, feedback, [], 1, _local_teacher(idle), lambda _: None)
    assert idle.calls == [] and again_stats == stats
    assert [r.to_json() for r in again] == [r.to_json() for r in made]


def test_a_reply_that_runs_on_into_more_problems_keeps_the_first():
    from distill.fdd.prompts import parse_question

    # what the 1.5B teacher wrote for a "similar" request: two problems on one line
    reply = (" A farmer harvested 150 apples. Over the next two weeks, he harvested 30 apples each week. How many "
             "apples does he have? New problem: A teacher gave out 100 stickers. How many are left?")
    assert parse_question(reply) == ("A farmer harvested 150 apples. Over the next two weeks, he harvested 30 apples "
                                     "each week. How many apples does he have?")
    assert parse_question("New problem: Ann has 3 pens and buys 2. How many pens?") == "Ann has 3 pens and buys 2. How many pens?"
    assert parse_question("I cannot write that.") is None


def test_an_installed_local_teacher_is_opened_by_name_at_the_batch_asked(tmp_path, monkeypatch):
    import subprocess
    import sys

    from distill.fdd import loop
    from distill.teachers import install
    from runtime.base_model import smollm2_gguf_path

    monkeypatch.setenv("ETD_HOME", str(tmp_path))
    config = FeedbackConfig(base="b", data="d", out=str(tmp_path / "fdd"), teacher="local:qwen2.5-coder-1.5b",
                            teacher_options={"batch_size": 4})
    with pytest.raises(loop.FeedbackError, match="distill teacher install qwen2.5-coder-1.5b"):
        loop._open_teacher(config)
    # Not installed: the command says so before round 0 trains, in one line.
    env = {"ETD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    refused = subprocess.run([sys.executable, "-m", "distill.cli", "feedback", "--data", str(tmp_path / "none.jsonl"),
                              "--out", str(tmp_path / "run"), "--teacher", "local:qwen2.5-coder-1.5b", "--batch", "4"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and "distill teacher install" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "run").exists()

    monkeypatch.setattr(install, "resolve", lambda name: smollm2_gguf_path() if name == "qwen2.5-coder-1.5b" else None)
    teacher = loop._open_teacher(config)
    try:
        assert teacher.name == "local:qwen2.5-coder-1.5b" and teacher.engine.batch_size == 4
    finally:
        teacher.close()


def test_round_zero_can_be_a_trained_student_classified_from_its_benchmark_records(start, data_dir, tmp_path):
    from distill.fdd.loop import FeedbackError
    from distill.train.loop import TrainConfig, train

    data, base = start
    v2 = tmp_path / "v2"
    trained = train(TrainConfig(data=str(data), out=str(v2), base=str(base), dev_size=0, save_every=0, **TRAIN))
    ids = list(dict.fromkeys(r.problem_id for r in read_records(data)))
    gold = {r.problem_id: r.gold for r in read_records(data)}
    rows = [{"dataset": "gsm8k/train", "id": pid, "mode": "etd", "gold": gold[pid], "correct": i % 2 == 0,
             "answer": gold[pid] if i % 2 == 0 else gold[pid] + 1} for i, pid in enumerate(ids[:-1])]  # the last: absent
    rows.append({"dataset": "gsm8k/train", "id": ids[0], "mode": "pot", "gold": gold[ids[0]], "correct": False})
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = FeedbackConfig(base=str(base), data=str(data), out=str(tmp_path / "fdd"), teacher="perturb", rounds=1,
                            test=["gsm8k"], test_limit=2, data_dir=str(data_dir), max_new_tokens=96, train=TRAIN,
                            student=str(v2), feedback_records=str(records))
    report = run_feedback(config, log=lambda _: None)

    assert not (tmp_path / "fdd" / "round-0" / "student").exists()  # round 0 was not trained again
    assert report["rounds"][0]["training"]["steps"] == trained["steps"]
    feedback = [json.loads(line) for line in (tmp_path / "fdd" / "round-1" / "feedback.jsonl").read_text().splitlines()]
    assert [row["id"] for row in feedback] == ids[:-1]
    assert [row["easy"] for row in feedback] == [i % 2 == 0 for i in range(len(ids) - 1)]
    easy = {row["id"]: row["easy"] for row in feedback}
    generated = list(read_records(tmp_path / "fdd" / "round-1" / "generated.jsonl"))
    assert generated
    for record in generated:
        parent = record.problem_id.split("~fdd")[0]
        assert parent in easy and record.source == f"fdd/round-1/{'harder' if easy[parent] else 'similar'}"
    assert (tmp_path / "fdd" / "round-1" / "student" / "training.json").exists()

    # A student of other data, or records of other questions under the same ids, are refused in one line.
    other = tmp_path / "other.jsonl"
    other.write_text(data.read_text().replace("Natalia", "Natalie"))
    with pytest.raises(FeedbackError, match="trained on other data"):
        run_feedback(FeedbackConfig(**{**config.__dict__, "data": str(other), "out": str(tmp_path / "o1")}), log=lambda _: None)
    records.write_text("".join(json.dumps(row | {"gold": row["gold"] + 7}) + "\n" for row in rows))
    with pytest.raises(FeedbackError, match="another question set"):
        run_feedback(FeedbackConfig(**{**config.__dict__, "out": str(tmp_path / "o2")}), log=lambda _: None)


def test_a_student_setting_out_of_range_is_refused_before_round_0(tmp_path):
    import subprocess
    import sys

    refused = subprocess.run([sys.executable, "-m", "distill.cli", "feedback", "--data", str(tmp_path / "none.jsonl"),
                              "--out", str(tmp_path / "run"), "--lora-r", "-1"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--lora-r must be at least 0" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "run").exists()
