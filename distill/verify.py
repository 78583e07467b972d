"""Is a teacher's rationale right? One rule for the builder (which keeps and counts) and for a teacher
deciding whether a question needs another sampled path.

Every rationale goes through the embedded solver (`runtime.solver.execute`, confined, never in this
process); it is right when its answer equals the gold one and, when the teacher was shown the worked
solution, it computes the answer instead of writing it down.
"""

from __future__ import annotations

import re

from runtime.solver import SolverResult, answers_match, execute
from runtime.thoughts import Thought

_LITERAL = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def check_rationale(thought: Thought, text: str, question: str, gold: float,
                    shown_answer: bool) -> tuple[SolverResult, str | None]:
    """The solver's result and why the rationale is not kept (the builder's failure names: the
    solver's error kind, "no answer", "wrong answer", "answer copied"), or None when it is right."""
    result = execute(thought, text)
    if not result.ok:
        return result, result.error_kind or "no answer"
    if not answers_match(result.answer, gold):
        return result, "wrong answer"
    if shown_answer and thought != Thought.COT and copies_answer(question, text, gold):
        return result, "answer copied"
    return result, None


def copies_answer(question: str, rationale: str, answer: float) -> bool:
    """Does the rationale write the answer as a number the question does not state? A teacher shown
    the worked solution can pass verification by `ans = 72`; such a rationale computes nothing."""
    stated = {float(n) for n in _LITERAL.findall(question.replace(",", ""))}
    written = {float(n) for n in _LITERAL.findall(rationale.replace(",", ""))}
    return any(answers_match(value, answer) for value in written - stated)
