"""The offline FDD teacher (similar and harder variants, all verified by execution) and the
test-set leakage check, on real GSM8K problems."""

import random

import pytest

from distill.fdd.leakage import NgramIndex, ngrams, summarize
from distill.fdd.variants import cot_from_steps, harder, similar
from distill.problems import load_problems
from distill.teachers.gold import GoldTeacher
from runtime.solver import answers_match, execute
from runtime.thoughts import Thought


@pytest.fixture(scope="module")
def verified_problems(data_dir):
    problems = load_problems("gsm8k", "train", data_dir).problems[:40]
    teacher, chosen = GoldTeacher(), []
    for problem in problems:
        rationales = {c.thought.value: c.text for c in teacher.generate(problem, [Thought.POT, Thought.EOT])}
        if all(t in rationales and answers_match(execute(t, rationales[t]).answer, problem.answer) for t in ("pot", "eot")):
            chosen.append((problem, rationales))
    assert len(chosen) >= 35
    return chosen


def check(variant):
    results = {t: execute(t, variant.rationales[t]) for t in ("pot", "eot", "cot")}
    assert all(r.ok for r in results.values()), (variant, results)
    assert all(answers_match(r.answer, variant.answer) for r in results.values())


def test_harder_variants_add_one_verified_step(verified_problems):
    rng, made = random.Random(0), 0
    for problem, rationales in verified_problems:
        variant = harder(problem.question, rationales, problem.answer, rng, parent=problem.id)
        if variant is None:
            continue
        made += 1
        check(variant)
        assert variant.kind == "harder" and variant.parent == problem.id
        assert variant.question.startswith(problem.question.rstrip()) and len(variant.question) > len(problem.question)
        assert not answers_match(variant.answer, problem.answer) or "times" in variant.question
        assert variant.rationales["pot"].count("\n") == rationales["pot"].count("\n") + 1
        if "shared equally" in variant.question:
            assert float(variant.answer).is_integer()
        if "taken away" in variant.question:
            assert variant.answer >= 0
    assert made >= 0.9 * len(verified_problems)


def test_similar_variants_change_the_numbers_and_the_answer(verified_problems):
    rng, made = random.Random(1), 0
    for problem, rationales in verified_problems:
        variant = similar(problem.question, rationales, rng, parent=problem.id)
        if variant is None:
            continue
        made += 1
        check(variant)
        assert variant.question != problem.question and not answers_match(variant.answer, problem.answer)
    assert made >= 0.5 * len(verified_problems)


def test_cot_states_each_step_with_values():
    result = execute(Thought.POT, "eggs = 16 - 3 - 4\nincome = eggs * 2\nans = income")
    text = cot_from_steps(result)
    assert text == "Eggs: 16 - 3 - 4 = 9.\nIncome: 9 * 2 = 18.\nThe answer is 18."
    assert execute(Thought.COT, text).answer == 18


def test_leakage_finds_test_questions_and_their_variants(data_dir, verified_problems):
    test = load_problems("gsm8k", "test", data_dir).problems
    index = NgramIndex({p.id: p.question for p in test})
    exact = index.overlap(test[5].question)
    assert exact.share == 1.0 and exact.closest == test[5].id
    # a harder variant of a test question is still a near-duplicate of it
    rationale = "x = 3\nans = x"
    variant = harder(test[5].question, {"pot": rationale, "eot": rationale}, 3, random.Random(0), parent=test[5].id)
    assert index.overlap(variant.question).share >= 0.5 and index.overlap(variant.question).closest == test[5].id
    unrelated = index.overlap("A wizard keeps seventeen purple owls in a tower above the quiet northern sea.")
    assert unrelated.share == 0.0 and unrelated.closest is None
    train_shares = [index.overlap(p.question).share for p, _ in verified_problems]
    summary = summarize(train_shares + [1.0], threshold=0.5)
    assert summary["questions"] == len(train_shares) + 1 and summary["removed"] >= 1
    assert sum(summary["bands"].values()) == summary["questions"]
    assert ngrams("One two three", 2) == {("one", "two"), ("two", "three")}
