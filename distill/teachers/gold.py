"""The `gold` teacher: rationales rewritten from the human solutions that ship with the data."""

from __future__ import annotations

from runtime.thoughts import Thought, format_cot_answer, format_number

from ..problems import Problem
from .base import Candidate, TeacherError
from .gold_equations import UnsupportedFormula, rationales_from_equation
from .gold_gsm8k import NoSteps, clean_cot, rationales_from_solution


class GoldTeacher:
    name = "gold"
    concurrency = 1

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        dataset = problem.source.split("/")[0]
        texts: dict[Thought, str | None] = {}
        if problem.solution:
            texts[Thought.COT] = clean_cot(problem.solution, problem.answer)
            try:
                gold = rationales_from_solution(problem.question, problem.solution, problem.answer)
                texts[Thought.POT], texts[Thought.EOT] = gold.pot, gold.eot
            except NoSteps:
                pass
        elif problem.equation:
            try:
                gold = rationales_from_equation(dataset, problem.equation, problem.question)
            except UnsupportedFormula as exc:
                raise TeacherError(f"unsupported gold equation: {exc}") from None
            texts[Thought.POT], texts[Thought.EOT] = gold.pot, gold.eot
            # The equation's single expression, read as prose.
            expression = gold.eot.splitlines()[-1].removeprefix("ans = ")
            if "\n" not in gold.eot and "=" not in expression:
                texts[Thought.COT] = f"We compute {expression} = {format_number(problem.answer)}.\n{format_cot_answer(problem.answer)}"
        else:
            raise TeacherError("no gold solution or equation")
        return [Candidate(t, texts[t]) for t in thoughts if texts.get(t)]
