"""Number perturbation: more verified data without a teacher.

Change the numbers a question states, change the same constants in its verified PoT/EoT
rationales consistently, run them again, and keep the copy only if it stays sensible: every
rationale still runs and agrees, whole-number quantities stay whole, nothing that was
non-negative turns negative, and the answer changes. The new gold answer is the executed one.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from runtime.solver import SolverResult, Step, answers_match, execute

_QUESTION_NUMBER = re.compile(r"(?<![\w.,/])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w/]|[.,]\d)")
_LITERAL = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
# Numbers that are facts of the world rather than of the problem: keep them.
_FIXED = {"1", "2", "7", "12", "24", "30", "31", "52", "60", "100", "365", "1000"}


@dataclass
class Perturbed:
    question: str
    rationales: dict[str, str]   # thought -> rationale
    answer: float


def perturb(question: str, rationales: dict[str, str], rng: random.Random, tries: int = 8) -> Perturbed | None:
    """One sensible perturbed copy of a problem with verified PoT/EoT rationales, or None."""
    originals = {thought: execute(thought, text) for thought, text in rationales.items()}
    if not originals or not all(r.ok for r in originals.values()):
        return None
    in_rationales = {m.group(1) for text in rationales.values() for m in _LITERAL.finditer(text)}
    candidates = []
    for match in _QUESTION_NUMBER.finditer(question):
        literal = match.group(1).replace(",", "") + (match.group(2) or "")
        if literal in in_rationales and literal not in _FIXED and literal not in candidates:
            candidates.append(literal)
    if not candidates:
        return None
    for _ in range(tries):
        mapping = {old: _new_value(old, rng) for old in candidates}
        if any(new == old for old, new in mapping.items()) or len(set(mapping.values())) < len(mapping):
            continue
        new_rationales = {t: _replace_literals(text, mapping) for t, text in rationales.items()}
        results = {t: execute(t, text) for t, text in new_rationales.items()}
        if _sensible(originals, results):
            answer = next(iter(results.values())).answer
            return Perturbed(_replace_in_question(question, mapping), new_rationales, answer)
    return None


def _new_value(old: str, rng: random.Random) -> str:
    if "." in old:
        places = len(old.split(".")[1])
        value = float(old) * rng.uniform(0.5, 2.0)
        return f"{max(value, 10 ** -places):.{places}f}"
    value = int(old)
    low, high = max(2, value // 2), max(value * 2, 4)
    if value >= 10 and value % 5 == 0:  # round numbers stay round
        return str(rng.randrange(max(1, low // 5), high // 5 + 1) * 5)
    return str(rng.randint(low, high))


def _replace_literals(text: str, mapping: dict[str, str]) -> str:
    return _LITERAL.sub(lambda m: mapping.get(m.group(1), m.group(1)), text)


def _replace_in_question(question: str, mapping: dict[str, str]) -> str:
    def swap(match: re.Match) -> str:
        literal = match.group(1).replace(",", "") + (match.group(2) or "")
        return mapping.get(literal, match.group(0))

    return _QUESTION_NUMBER.sub(swap, question)


def _sensible(originals: dict[str, SolverResult], results: dict[str, SolverResult]) -> bool:
    answers = [r.answer for r in results.values()]
    if any(a is None for a in answers) or not all(answers_match(a, answers[0]) for a in answers):
        return False
    for thought, result in results.items():
        original = originals[thought]
        if answers_match(result.answer, original.answer):
            return False  # the question changed but the answer did not: the numbers were not used
        before = {s.name: s.value for s in original.steps}
        for step in result.steps + [_answer_step(result)]:
            was = before.get(step.name, original.answer if step.name == "ans" else None)
            if was is None:
                continue
            if was >= 0 and step.value < 0:
                return False
            if float(was).is_integer() and not float(step.value).is_integer():
                return False
    return True


def _answer_step(result: SolverResult) -> Step:
    return Step("ans", result.answer)


# The data build's perturbation (`distill data build --perturb K --seed S`): the shipped student was
# trained on copies 0 and 1 of seed 0. A held-out variant must be none of them.
TRAINING_SEED, TRAINING_COPIES = 0, 2
HELDOUT_SEED = "heldout-1"


def heldout_variants(problems: list, *, seed: str = HELDOUT_SEED, limit: int | None = None) -> list:
    """One number-perturbed copy of each GSM8K training problem the student was not trained on: the
    same situation with new numbers and the executed gold answer (`gsm8k:train-perturbed`). The student
    has seen the problem's structure but cannot recall its answer, so these stand in for held-out
    problems (calibration, dev) where the training set used every original. Deterministic; a copy equal
    to one of the training-time copies, or to the original, is left out."""
    from .problems import Problem
    from .teachers.gold_gsm8k import NoSteps, rationales_from_solution

    variants = []
    for problem in problems:
        if limit is not None and len(variants) >= limit:
            break
        if not problem.solution:
            continue
        try:
            gold = rationales_from_solution(problem.question, problem.solution, problem.answer)
        except NoSteps:
            continue
        rationales = {"pot": gold.pot, "eot": gold.eot}
        trained = {problem.question}
        rng = random.Random(f"{TRAINING_SEED}:{problem.id}")  # as distill.build makes the training copies
        for _ in range(TRAINING_COPIES):
            copy = perturb(problem.question, rationales, rng)
            if copy is not None:
                trained.add(copy.question)
        copy = perturb(problem.question, rationales, random.Random(f"{seed}:{problem.id}"))
        if copy is None or copy.question in trained:
            continue
        variants.append(Problem(id=f"{problem.id}~{seed}", source=f"{problem.source}-perturbed",
                                question=copy.question, answer=copy.answer))
    return variants
