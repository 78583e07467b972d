"""Explanations a learner can follow, built from the solver's named values, not free text alone."""

from __future__ import annotations

from runtime.solver import answers_match
from runtime.student import Solution
from runtime.thoughts import format_number


def winning_steps(solution: Solution) -> list[dict]:
    for run in solution.thoughts:
        if run.thought == solution.thought and run.sample == 0:
            return [s for s in run.result.get("steps", []) if s["name"] != "ans"]
    return []


def explain_steps(solution: Solution) -> str:
    if solution.answer is None:
        return "No thought worked out, so there are no steps to follow."
    steps = winning_steps(solution)
    if not steps:
        winner = next((r for r in solution.thoughts if r.thought == solution.thought), None)
        prose = winner.text if winner else ""
        return f"The student reasoned in words:\n\n{prose}\n\nSo the answer is {format_number(solution.answer)}."
    lines = [f"How the {solution.thought.upper()} thought gets there:"]
    for number, step in enumerate(steps, start=1):
        name = step["name"].replace("_", " ")
        how = f"  ({step['expression']})" if step.get("expression") else ""
        lines.append(f"{number}. {name} = {format_number(step['value'])}{how}")
    lines.append(f"So the answer is {format_number(solution.answer)}.")
    return "\n".join(lines)


def check_answer(solution: Solution, mine: float) -> str:
    """Tell the learner whether their answer matches, and where their working could differ."""
    if answers_match(mine, solution.answer):
        return f"Correct: {format_number(mine)} matches the student's answer."
    steps = winning_steps(solution)
    for number, step in enumerate(steps, start=1):
        if answers_match(mine, step["value"]):
            name = step["name"].replace("_", " ")
            return (f"Not quite: {format_number(mine)} is step {number} ({name}). "
                    f"You may have stopped early; {len(steps) - number + 1} more step(s) lead to "
                    f"{format_number(solution.answer)}.")
    if steps:
        first = steps[0]
        return (f"Not quite: the answer is {format_number(solution.answer)}. Compare from step 1: "
                f"{first['name'].replace('_', ' ')} = {format_number(first['value'])}.")
    return f"Not quite: the answer is {format_number(solution.answer)}."
