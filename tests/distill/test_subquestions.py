"""Sub-questions (one- and two-step questions from a worked solution's intermediate values), what the
builder keeps of them, and the dataset statistics that say whether the data is diverse."""

import hashlib
import json
import subprocess
import sys

import pytest

from distill import subquestions
from distill.build import build
from distill.dataset_stats import dataset_stats, differ_in_structure, has_unknown, operations, steps
from distill.problems import Problem
from distill.records import read_records
from distill.teachers.base import Candidate
from runtime.solver import answers_match, execute
from runtime.thoughts import PROMPTS, Thought

THOUGHTS = [Thought.POT, Thought.EOT]

# A three-step GSM8K-style problem: 5*4 = 20 (one step), 20+7 = 27 (two steps), 27*2 = 54 (the answer).
PROBLEM = Problem(
    id="toy-0", source="toy/train",
    question="Ann buys 5 packs of 4 cards and gets 7 more cards from a friend. Her brother has twice as many "
             "cards as Ann. How many cards does her brother have?",
    answer=54.0,
    solution="Ann buys 5*4 = <<5*4=20>>20 cards.\nWith her friend's she has 20+7 = <<20+7=27>>27 cards.\n"
             "Her brother has 27*2 = <<27*2=54>>54 cards.\n#### 54",
)


def test_targets_are_the_first_one_step_and_two_step_values_never_the_answer():
    targets = subquestions.targets(PROBLEM)
    assert [(t.suffix, t.depth, t.value) for t in targets] == [("~s1", 1, 20.0), ("~s2", 2, 27.0)]
    assert targets[0].solution == "Ann buys 5*4 = 20 cards."
    assert targets[1].solution.endswith("she has 20+7 = 27 cards.")
    two_steps = Problem(id="t", source="toy/train", question="Tom has 3 bags of 6 apples. He eats 2. How many are left?",
                        answer=16.0, solution="3*6 = <<3*6=18>>18\n18-2 = <<18-2=16>>16\n#### 16")
    assert [t.value for t in subquestions.targets(two_steps)] == [18.0]  # its two-step value is the answer
    assert subquestions.targets(Problem(id="n", source="x", question="q?", answer=1.0)) == []  # no solution


def test_the_worked_examples_pass_the_question_checks():
    for parent, solution, value, asked in subquestions.EXAMPLES:
        sub = subquestions.compose(parent, asked)
        assert sub.startswith(subquestions.statement(parent)) and sub.endswith(asked)
        assert subquestions.check_question(parent, sub, value) is None
        assert f"= {value} " in solution  # the shown solution ends at the asked value


def test_question_checks_refuse_new_numbers_a_stated_answer_and_non_questions():
    parent = PROBLEM.question
    assert subquestions.check_question(parent, "Ann buys 5 packs of 4 cards. How many cards does she buy?", 20) is None
    assert subquestions.check_question(parent, "Ann buys 6 packs of 4 cards. How many cards?", 24) == "new numbers"
    assert subquestions.check_question(parent, "Ann has 20 cards. How many cards does she have?", 20) == "answer given"
    assert subquestions.check_question(parent, "Ann buys 5 packs of 4 cards.", 20) == "not a question"


def test_a_subquestion_is_the_parents_statement_and_the_written_question():
    assert subquestions.statement("How many, if Ann has 3? She has 4.") == ""
    assert subquestions.statement("Ann has 3. Bob has 4! How many in all? Say it.") == "Ann has 3. Bob has 4!"
    assert subquestions.compose("Ann has 3. Bob has 4. How many in all?", " How many does Bob have?") == \
        "Ann has 3. Bob has 4. How many does Bob have?"


def test_a_subquestion_keeps_only_the_sentences_whose_numbers_its_steps_start_from():
    problem = Problem(
        id="t", source="toy/train", answer=10.0,
        question="Tim works 5 days a week. His office is 20 miles away. He also rides 50 miles on Sundays. "
                 "His bike is red. If he rides at 25 mph, how many hours does he ride a week?",
        solution="He rides 20*2 = <<20*2=40>>40 miles a day.\nSo 40*5 = <<40*5=200>>200 miles for work.\n"
                 "In all 200+50 = <<200+50=250>>250 miles.\n250/25 = <<250/25=10>>10 hours.\n#### 10")
    one, two = subquestions.targets(problem)
    assert (one.value, one.uses) == (40.0, frozenset({20.0, 2.0}))
    assert (two.value, two.uses) == (200.0, frozenset({20.0, 2.0, 5.0}))
    # The first sentence always stays (it says who); a sentence with only unused numbers goes; one
    # without digits stays.
    assert subquestions.statement(problem.question, one.uses) == \
        "Tim works 5 days a week. His office is 20 miles away. His bike is red."
    assert subquestions.compose(problem.question, "How far does he ride a day?", one.uses) == \
        "Tim works 5 days a week. His office is 20 miles away. His bike is red. How far does he ride a day?"
    # A condition opening the question sentence stays when it states a number the steps use, and the
    # written question continues it.
    assert subquestions.compose(problem.question, "How many hours does 50 miles take?", frozenset({25.0, 50.0})) == \
        "Tim works 5 days a week. He also rides 50 miles on Sundays. His bike is red. If he rides at 25 mph, " \
        "how many hours does 50 miles take?"
    assert subquestions.question_prompt(problem, one).endswith(
        "His bike is red.\nStep: He rides 20*2 = 40 miles a day.\nThe step as a question, answer 40:")


def test_the_question_prompt_ends_with_the_step_and_asks_for_its_value():
    target = subquestions.targets(PROBLEM)[1]
    prompt = subquestions.question_prompt(PROBLEM, target)
    statement = "Ann buys 5 packs of 4 cards and gets 7 more cards from a friend. Her brother has twice as many cards as Ann."
    assert subquestions.statement(PROBLEM.question) == statement
    assert target.step == "With her friend's she has 20+7 = 27 cards."
    assert prompt.endswith(f"\n{statement}\nStep: {target.step}\nThe step as a question, answer 27:")
    assert prompt.count("The step as a question") == len(subquestions.EXAMPLES) + 1
    assert "brother have?" not in prompt  # the parent's own question is never shown
    assert subquestions.written_question(" How many cards does she buy?\nPython code:\nans = 20") == \
        "How many cards does she buy?"
    assert subquestions.written_question("How many cards? Let's break it down.") == "How many cards?"


class SubTeacher:
    """Writes fixed sub-questions: s1 with both thoughts right, s2 with a wrong EoT, s3 leaking a test question."""
    name = "fake-sub"
    concurrency = 1

    def generate(self, problem, thoughts):
        good = "Ann buys 5 packs of 4 cards. How many cards does she buy?"
        two = "Ann buys 5 packs of 4 cards and gets 7 more. How many cards does she have?"
        return [
            Candidate(Thought.POT, "packs = 5\ncards = packs * 4\nans = cards", question=good, gold=20.0, suffix="~s1", shown_answer=True),
            Candidate(Thought.EOT, "% Assume x cards:\nx / 4 = 5\nans = x", question=good, gold=20.0, suffix="~s1", shown_answer=True),
            Candidate(Thought.POT, "cards = 5 * 4 + 7\nans = cards", question=two, gold=27.0, suffix="~s2", shown_answer=True),
            Candidate(Thought.EOT, "x = 5 * 4\nans = x", question=two, gold=27.0, suffix="~s2", shown_answer=True),
            Candidate(Thought.POT, "ans = 5 * 4", question="LEAK How many cards?", gold=20.0, suffix="~s3", shown_answer=True),
            Candidate(Thought.EOT, "ans = 5 * 4", question="LEAK How many cards?", gold=20.0, suffix="~s3", shown_answer=True),
        ]


def test_a_subquestion_is_kept_only_with_every_thought_verified_and_no_test_overlap(tmp_path):
    out = tmp_path / "sub.jsonl"
    stats = build([PROBLEM], SubTeacher(), THOUGHTS, out,
                  refuse_question=lambda q: "test overlap" if q.startswith("LEAK") else None)
    records = list(read_records(out))
    assert sorted((r.id, r.parent, r.source, r.gold) for r in records) == [
        ("toy-0~s1:eot:0", "toy-0", "toy/train+sub", 20.0), ("toy-0~s1:pot:0", "toy-0", "toy/train+sub", 20.0)]
    assert stats.subquestion_targets == 3 and stats.subquestions_kept == 1
    assert stats.by_thought["pot"].failures["other thought failed"] == 1  # s2's right program, dropped
    assert stats.by_thought["eot"].failures["wrong answer"] == 1
    assert stats.by_thought["pot"].failures["test overlap"] == 1
    again = build([PROBLEM], SubTeacher(), THOUGHTS, out)  # resumed: nothing redone, nothing lost
    assert again.resumed == 1 and len(list(read_records(out))) == 2


def test_an_unknown_is_a_name_no_assignment_gives():
    assert has_unknown("% Assume x\nx + spent = 23\nspent = 5 * 3\nans = x")   # a relation, in any order
    assert has_unknown("x - 15 = 27\nans = x")
    assert not has_unknown("% Assume x\ntotal = 48 + 24\nx = total\nans = x")  # assignments only
    assert not has_unknown("b = a + 1\na = 2\nans = b")                         # out of order, still assignments
    assert not has_unknown("this is not a system")


def test_structure_differs_only_beyond_names_numbers_inlined_and_equals_signs():
    pot = "april = 48\nmay = april / 2\ntotal = april + may\nans = total"
    assert not differ_in_structure(pot, "% Assume x\nmay = 48 / 2\nx = 48 + may\nans = x")
    assert differ_in_structure(pot, "% Assume x\nmay = 48 / 2\nx - may = 48\nans = x")    # an unknown
    assert differ_in_structure(pot, "% Assume x\nx = 48 * 3 / 2\nans = x")                # other operations
    assert steps("pot", pot) == 2 and steps("eot", "% Assume x\nx - 15 = 27\nans = x") == 1
    assert steps("cot", "A two-step plan.\nShe has 23 - 15 = 8 left.\nThe answer is 8.") == 1
    assert steps("cot", "She has 23-15=8 left.") == 1                          # no spaces: still a subtraction
    assert steps("pot", "may = 48 / 2\nans = 48 + may") == 2                  # an `ans` line may compute
    assert steps("pot", "x = -3\nans = x") == 0                               # a sign is no operation
    assert operations("pot", "a = 7 - 2\nb = a * -1\nans = -(b + 1)") == ("-", "*", "+")


def test_stats_report_coverage_paths_unknowns_structure_and_steps(tmp_path):
    from distill.records import Record

    def record(pid, thought, rationale, path=0):
        return Record(id=f"{pid}:{thought}:{path}", source="toy/train", question="q?", thought=thought,
                      rationale=rationale, answer=1.0, gold=1.0, teacher="t", path=path)

    records = [record("a", "pot", "x = 1 + 0\nans = x"), record("a", "pot", "y = 2 - 1\nans = y", 1),
               record("a", "eot", "x + 1 = 2\nans = x"), record("b", "pot", "x = 1 * 1\nans = x"),
               record("b", "eot", "x = 1 * 1\nans = x")]
    stats = dataset_stats(records)
    assert stats["thoughts"]["pot"]["problems"] == 2 and stats["thoughts"]["pot"]["paths_per_problem"] == 1.5
    assert stats["thoughts"]["eot"]["with_unknown"] == 0.5
    assert stats["pot_and_eot"] == {"problems": 2, "differ_in_structure": 0.5}
    assert stats["thoughts"]["pot"]["steps"]["1"] == 3
    out = tmp_path / "d.jsonl"
    out.write_text("".join(r.to_json() + "\n" for r in records))
    shown = subprocess.run([sys.executable, "-m", "distill.cli", "data", "stats", str(out), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["diversity"]["pot_and_eot"]["differ_in_structure"] == 0.5
    assert json.loads(shown.stdout)["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    table = subprocess.run([sys.executable, "-m", "distill.cli", "data", "stats", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "with an unknown" in table.stdout and "differ in structure" in table.stdout


@pytest.mark.parametrize("teacher", ["gold", "openai"])
def test_subquestions_need_a_local_teacher(tmp_path, teacher):
    result = subprocess.run([sys.executable, "-m", "distill.cli", "data", "build", "--dataset", "gsm8k", "--teacher",
                             teacher, "--subquestions", "--limit", "1", "--out", str(tmp_path / "o.jsonl")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "needs a local teacher" in result.stderr and "Traceback" not in result.stderr


class StagedEngine:
    """Stands in for the llama.cpp engine: answers the stage-1 prompts with a question per asked value
    and the stage-2 prompts with a program or a system computing it; keeps every prompt it saw."""
    batch_size = 4

    def __init__(self):
        self.prompts = []

    def decode_together(self, prompts, temperatures, **_):
        from runtime.engines.base import Generation

        self.prompts.append(prompts)
        out = []
        for prompt in prompts:
            if prompt.rstrip().endswith(PROMPTS[Thought.POT]) or prompt.rstrip().endswith(PROMPTS[Thought.EOT]):
                asked = prompt.rsplit("Question: ", 1)[1]
                pot = "ans = 5 * 4" if "buy?" in asked else "cards = 5 * 4 + 7\nans = cards"
                eot = "% Assume x cards:\nx / 4 = 5\nans = x" if "buy?" in asked else "x = 5 * 4\nans = x"
                text = pot if prompt.rstrip().endswith(PROMPTS[Thought.POT]) else eot
            elif prompt.endswith("answer 20:"):
                text = " How many cards does Ann buy?"
            else:
                text = " How many cards does Ann have after her friend gives her some?"
            out.append(Generation(text=text, prompt_tokens=1, tokens=1, seconds=0.0, first_token_s=None))
        return out


def test_the_teacher_writes_the_question_then_rationalizes_it_with_the_usual_prompts(tmp_path):
    from distill.teachers.llamacpp import LlamaCppTeacher
    from distill.teachers.prompts import teacher_prompt

    teacher = object.__new__(LlamaCppTeacher)  # the model itself is stood in for
    teacher.engine, teacher.subquestions, teacher.max_tokens, teacher.tokens = StagedEngine(), True, 64, 0
    teacher.paths, teacher.temperature, teacher.extra_paths, teacher.modes = 1, 0.0, "always", "rationalize"
    teacher.timing, teacher.name, teacher.concurrency = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}, "staged", 1
    stats = build([PROBLEM], teacher, THOUGHTS, tmp_path / "sub.jsonl")
    stage1, stage2 = teacher.engine.prompts
    assert len(stage1) == 2 and all(p.startswith(subquestions.statement(subquestions.EXAMPLES[0][0])) for p in stage1)
    first = subquestions.targets(PROBLEM)[0]
    question = subquestions.compose(PROBLEM.question, "How many cards does Ann buy?")
    # Rationalized up to its value, with the student's examples: EoT as named steps, not a relation around x.
    assert stage2[0] == teacher_prompt(question, Thought.POT, THOUGHTS, first.solution, subquestions.RATIONALE_EXAMPLES)
    assert "x + 5 * 3 = 23" not in stage2[1] and "x + 5 * 3 = 23" in teacher_prompt(question, Thought.EOT, THOUGHTS)
    records = sorted((r.id, r.question, r.gold) for r in read_records(tmp_path / "sub.jsonl"))
    assert records == [("toy-0~s1:eot:0", question, 20.0), ("toy-0~s1:pot:0", question, 20.0)]
    assert stats.subquestion_targets == 2 and stats.subquestions_kept == 1  # s2's programs compute 27, the EoT does not
    assert stats.by_thought["eot"].failures["wrong answer"] == 1


class WrongWhenAlone(StagedEngine):
    """As StagedEngine, but a program written from the second sub-question alone computes 20, not 27."""

    def decode_together(self, prompts, temperatures, **kwargs):
        out = super().decode_together(prompts, temperatures, **kwargs)
        for prompt, generation in zip(prompts, out):
            if prompt.rstrip().endswith(PROMPTS[Thought.POT]) and "Solution:" not in prompt.rsplit("Question: ", 1)[1]:
                generation.text = "ans = 5 * 4"
        return out


@pytest.mark.parametrize("engine", [StagedEngine, WrongWhenAlone])
def test_a_thought_in_solve_mode_sees_the_sub_question_alone(tmp_path, engine):
    """Rationalized from the solution, a path computes the value whatever the new question asks; a
    thought solved from the question alone shows the question asks for it. The solved thought goes
    first, and the others are written only where it reached the value."""
    from distill.teachers.llamacpp import LlamaCppTeacher
    from distill.teachers.prompts import teacher_prompt

    teacher = object.__new__(LlamaCppTeacher)
    teacher.engine, teacher.subquestions, teacher.max_tokens, teacher.tokens = engine(), True, 64, 0
    teacher.paths, teacher.temperature, teacher.extra_paths = 1, 0.0, "always"
    teacher.modes = {Thought.POT: "solve", Thought.EOT: "rationalize"}
    teacher.timing, teacher.name, teacher.concurrency = {"prompt_tokens": 0, "generated": 0, "seconds": 0.0}, "staged", 1
    [candidates] = teacher.generate_many([PROBLEM], THOUGHTS)
    _, solving, rationalizing = teacher.engine.prompts
    one, two = subquestions.targets(PROBLEM)
    first = subquestions.compose(PROBLEM.question, "How many cards does Ann buy?")
    second = subquestions.compose(PROBLEM.question, "How many cards does Ann have after her friend gives her some?",
                                  two.uses)
    assert solving == [teacher_prompt(q, Thought.POT, THOUGHTS, None, subquestions.RATIONALE_EXAMPLES)
                       for q in (first, second)]
    both = engine is StagedEngine  # the second sub-question's program from the question alone is right
    assert rationalizing == [teacher_prompt(q, Thought.EOT, THOUGHTS, t.solution, subquestions.RATIONALE_EXAMPLES)
                             for q, t in ((first, one), (second, two))][:2 if both else 1]
    assert [(c.suffix, c.thought, c.shown_answer) for c in candidates] == [
        ("~s1", Thought.POT, False), ("~s1", Thought.EOT, True), ("~s2", Thought.POT, False)] + \
        ([("~s2", Thought.EOT, True)] if both else [])
    teacher.engine = engine()
    stats = build([PROBLEM], teacher, THOUGHTS, tmp_path / "sub.jsonl")
    assert stats.subquestion_targets == 2 and stats.subquestions_kept == 1  # s2's EoT computes 20 in any case
    assert stats.by_thought["eot"].generated == (2 if both else 1)


def test_a_local_teacher_writes_each_target_once_with_every_thought(tmp_path):
    from distill.teachers.llamacpp import LlamaCppTeacher
    from runtime.base_model import smollm2_gguf_path

    teacher = LlamaCppTeacher(str(smollm2_gguf_path()), max_tokens=40, threads=2, batch_size=4, subquestions=True,
                              modes="rationalize")
    try:
        [candidates] = teacher.generate_many([PROBLEM], THOUGHTS)
        assert [(c.suffix, c.thought, c.gold) for c in candidates] == [
            ("~s1", Thought.POT, 20.0), ("~s1", Thought.EOT, 20.0), ("~s2", Thought.POT, 27.0), ("~s2", Thought.EOT, 27.0)]
        assert all(c.shown_answer and isinstance(c.question, str) for c in candidates)
        stats = build([PROBLEM], teacher, THOUGHTS, tmp_path / "sub.jsonl")
        assert stats.subquestion_targets == 2 and teacher.timing["generated"] > 0
        assert all(r.parent == "toy-0" for r in read_records(tmp_path / "sub.jsonl"))
    finally:
        teacher.close()


def test_a_kept_rationale_leaves_out_the_lines_that_never_reach_the_answer(tmp_path):
    class Padding:
        name, concurrency = "fake-padding", 1

        def generate(self, problem, thoughts):
            return [Candidate(Thought.POT, "packs = 5\nwasted = packs * 7\ncards = packs * 4\nans = (cards + 7) * 2"),
                    Candidate(Thought.EOT, "% Assume x cards:\nx = (5 * 4 + 7) * 2\ny - 3 = 9\nans = x")]

    out = tmp_path / "padded.jsonl"
    stats = build([PROBLEM], Padding(), THOUGHTS, out)
    kept = {r.thought: r.rationale for r in read_records(out)}
    assert kept == {"pot": "packs = 5\ncards = packs * 4\nans = (cards + 7) * 2",
                    "eot": "% Assume x cards:\nx = (5 * 4 + 7) * 2\nans = x"}
    assert stats.by_thought["pot"].trimmed == 1 and stats.by_thought["eot"].trimmed == 1
    shown = subprocess.run([sys.executable, "-m", "distill.cli", "data", "stats", str(out)], capture_output=True,
                           text=True, timeout=120)
    assert "kept without steps their answer never uses: pot 1, eot 1" in shown.stdout

