"""Explanations a learner can follow, built from the solver's named values, not free text alone."""

from __future__ import annotations

from runtime.solver import answers_match
from runtime.solver.unused import unused_names
from runtime.student import Solution
from runtime.thoughts import format_number


def _winning_run(solution: Solution):
    return next((run for run in solution.thoughts if run.thought == solution.thought and run.sample == 0), None)


def _steps(solution: Solution) -> tuple[list[dict], list[dict]]:
    """The chosen thought's named values: those on the way to the answer, and those it never uses."""
    run = _winning_run(solution)
    if run is None:
        return [], []
    unused = unused_names(run.thought, run.text, run.result.get("unused_lines") or [])
    steps = [s for s in run.result.get("steps", []) if s["name"] != "ans"]
    return [s for s in steps if s["name"] not in unused], [s for s in steps if s["name"] in unused]


def winning_steps(solution: Solution) -> list[dict]:
    """The steps that lead to the answer (a value the answer never uses is no step a learner needs)."""
    return _steps(solution)[0]


def explain_steps(solution: Solution) -> str:
    if solution.answer is None:
        return "No thought worked out, so there are no steps to follow."
    steps, extra = _steps(solution)
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
    if extra:
        lines.append("It also worked out " + ", ".join(f"{s['name'].replace('_', ' ')} = {format_number(s['value'])}"
                                                       for s in extra) + ", which the answer does not need.")
    return "\n".join(lines)


def attempts(solution: Solution) -> list:
    """Every path that gave an answer: the greedy thoughts, then the sampled paths."""
    return [run for run in solution.thoughts + solution.samples if run.result.get("answer") is not None]


def attempts_reaching(solution: Solution, value: float) -> list:
    return [run for run in attempts(solution) if answers_match(run.result["answer"], value)]


def describe_attempts(solution: Solution) -> str:
    """"3 of 8 attempts say 43; 2 say 16; 3 found no answer", from the sampled paths."""
    paths = solution.samples
    if not paths:
        return ""
    parts = []
    for group in solution.distribution[:3]:
        parts.append(f"{group['count']} say {format_number(group['answer'])}")
    failed = sum(1 for run in paths if run.result.get("answer") is None)
    if failed:
        parts.append(f"{failed} found no answer")
    first, *rest = parts or ["none answered"]
    return f"Of {len(paths)} attempts, {first}" + "".join(f"; {part}" for part in rest) + "."


def _working(run) -> str:
    steps = [s for s in run.result.get("steps", []) if s["name"] != "ans"]
    if steps:
        return ", ".join(f"{s['name'].replace('_', ' ')} = {format_number(s['value'])}" for s in steps[:4])
    return run.text.splitlines()[0] if run.text else ""


def check_answer(solution: Solution, mine: float) -> str:
    """What to tell a learner about their answer. Only a `sure` student may suggest that an answer
    looks wrong, and then as a question; an unsure one says so, shows which of its attempts agree
    with the learner, and hands the checking to the learner's own working."""
    sure = solution.verdict == "sure"
    confidence = f" (confidence {solution.confidence:.2f})" if solution.confidence is not None else ""
    if answers_match(mine, solution.answer):
        if sure:
            return f"Correct: {format_number(mine)} matches the student's answer, and the student is sure of it{confidence}."
        return (f"{format_number(mine)} matches the student's answer, but the student is not sure of it{confidence}: "
                "check it by putting your answer back into the question: does every sentence still hold?")
    if not sure:
        reaching = attempts_reaching(solution, mine)
        lines = [f"The student is unsure here{confidence}, so it cannot tell you whether {format_number(mine)} is right."]
        if reaching:
            lines.append(f"{len(reaching)} of its attempts also reached {format_number(mine)}, e.g. the "
                         f"{reaching[0].thought.upper()} one: {_working(reaching[0])}.")
        else:
            lines.append(f"None of its attempts reached {format_number(mine)}; they do not agree with each other either.")
        lines.append(f"Check your own working: put {format_number(mine)} back into the question, one relation at a "
                     "time (what is given, what changes, what is left), and see that each one still holds.")
        return " ".join(lines)
    steps = winning_steps(solution)
    for number, step in enumerate(steps, start=1):
        if answers_match(mine, step["value"]):
            name = step["name"].replace("_", " ")
            return (f"Your {format_number(mine)} is the student's step {number} ({name}). Is there a step after it? "
                    f"The student is sure{confidence} the question needs {len(steps) - number + 1} more step(s).")
    if steps:
        first = steps[0]
        return (f"The student is sure{confidence} of a different answer. Let's compare step 1: it has "
                f"{first['name'].replace('_', ' ')} = {format_number(first['value'])}. What did you get there?")
    return f"The student is sure{confidence} of a different answer. Can you walk through your working step by step?"


def other_ways(solution: Solution) -> list:
    """Distinct paths the solver verified (they ran and gave an answer), the chosen one first: the
    greedy thoughts, then the sampled paths. Two texts that differ only in spacing are one path."""
    seen, ways = set(), []
    for run in sorted(attempts(solution), key=lambda r: (r.thought != solution.thought or r.sample != 0)):
        key = " ".join(run.text.split())
        if key and key not in seen:
            seen.add(key)
            ways.append(run)
    return ways
