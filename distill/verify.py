"""Is a teacher's rationale right? One rule for the builder (which keeps and counts) and for a teacher
deciding whether a question needs another sampled path.

Every rationale goes through the embedded solver (`runtime.solver.execute`, confined, never in this
process); it is right when its answer equals the gold one by calculating it (a rationale that only
writes numbers down guesses) and, when the teacher was shown the worked solution, it calculates what the
solution calculates instead of writing down the solution's numbers.
"""

from __future__ import annotations

from runtime.solver import SolverResult, answers_match, execute
from runtime.solver.unused import has_step, without_lines
from runtime.thoughts import Thought

from .numbers import numbers, stated_values
from .teachers.gold_gsm8k import solution_results


def check_rationale(thought: Thought, text: str, question: str, gold: float,
                    shown: str | None) -> tuple[SolverResult, str | None, str]:
    """The solver's result, why the rationale is not kept (the builder's failure names: the solver's
    error kind, "no answer", "wrong answer", "unused lines", "no calculation", "answer copied", "result
    copied") or None
    when it is right, and the text to keep: without the lines that never reach the answer (an extra
    step the student would learn to add; `runtime.solver.unused`), run again to the same answer.
    `shown`: the worked solution the teacher was shown (rationalize), else None."""
    result = execute(thought, text)
    if not result.ok:
        return result, result.error_kind or "no answer", text
    if not answers_match(result.answer, gold):
        return result, "wrong answer", text
    if result.unused_lines:
        trimmed = without_lines(text, result.unused_lines)
        again = execute(thought, trimmed)
        if not (again.ok and answers_match(again.answer, result.answer)):  # the analysis erred: keep nothing
            return result, "unused lines", text
        result, text = again, trimmed
    if thought != Thought.COT and not has_step(thought.value, text):
        return result, "no calculation", text
    if shown is not None and thought != Thought.COT:
        copied = copied_value(question, text, gold, shown)
        if copied:
            return result, copied, text
    return result, None, text


def copied_value(question: str, rationale: str, answer: float, solution: str) -> str | None:
    """Does the rationale write, as a number the question does not state, the answer ("answer copied")
    or another value the worked solution calculates ("result copied")? A teacher shown the solution
    passes verification with `ans = 72`, or with `x * 600 = 1800` where the solution worked out 1800:
    such a rationale skips the calculation it stands for, and a student trained on it learns to write
    numbers no question gives it."""
    stated = stated_values(question)
    written = [value for value in numbers(rationale) if not any(answers_match(value, s) for s in stated)]
    if any(answers_match(value, answer) for value in written):
        return "answer copied"
    results = solution_results(solution)
    if any(answers_match(value, r) for value in written for r in results):
        return "result copied"
    return None
