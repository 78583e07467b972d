"""The offline `perturb` teacher of feedback-driven distillation: new questions without an LLM.

- `similar`: a question of the same difficulty as a hard one, by consistent number perturbation
  of its verified programs (`distill.perturb`), the new answer computed by execution.
- `harder`: an easy question with one more verified step: a follow-up about its answer
  ("If that amount were 3 times as large, what would it be?"), appended to the programs and
  equations and computed by execution.

Each variant carries rationales in all three thoughts (the CoT one is written from the executed
steps) and is kept only when the executed PoT and EoT answers agree.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from runtime.solver import SolverResult, answers_match, execute
from runtime.thoughts import Thought, format_number

from ..perturb import perturb

_ANSWER_LINE = re.compile(r"^ans\s*=\s*([A-Za-z_]\w*)\s*$", re.MULTILINE)

# (question text, operator, is it sensible for this answer and factor)
FOLLOW_UPS = [
    ("If that amount were {k} times as large, what would it be?", "*", lambda a, k: True),
    ("If {k} more were added to that, what would the total be?", "+", lambda a, k: True),
    ("If that were shared equally among {k} people, how much would each get?", "/",
     lambda a, k: float(a).is_integer() and a % k == 0 and a > 0),
    ("If {k} were taken away from that, how much would be left?", "-", lambda a, k: a - k >= 0),
]


@dataclass
class Variant:
    question: str
    rationales: dict[str, str]   # thought value -> rationale, all three thoughts
    answer: float
    kind: str                    # "similar" or "harder"
    parent: str                  # id of the question it came from


def cot_from_steps(result: SolverResult) -> str:
    """A chain of thought that states each executed step, `name = expression = value`."""
    lines, known = [], {}
    for step in result.steps:
        if step.name == "ans":
            continue
        expression = (step.expression or "").split("=", 1)[-1].strip()
        for name in sorted(known, key=len, reverse=True):  # earlier quantities by their values
            expression = re.sub(rf"\b{re.escape(name)}\b", known[name], expression)
        label, value = step.name.replace("_", " ").capitalize(), format_number(step.value)
        lines.append(f"{label}: {expression} = {value}." if expression and expression != value else f"{label}: {value}.")
        known[step.name] = value
    lines.append(f"The answer is {format_number(result.answer)}.")
    return "\n".join(lines)


def verified(question: str, programs: dict[str, str], *, kind: str, parent: str) -> Variant | None:
    """Run PoT and EoT; keep the question only when both run and agree (no gold to compare with)."""
    pot, eot = execute(Thought.POT, programs["pot"]), execute(Thought.EOT, programs["eot"])
    if not (pot.ok and eot.ok and answers_match(pot.answer, eot.answer)):
        return None
    cot = cot_from_steps(pot)
    if not answers_match(execute(Thought.COT, cot).answer, pot.answer):
        return None
    return Variant(question, {"pot": programs["pot"], "eot": programs["eot"], "cot": cot}, pot.answer, kind, parent)


def similar(question: str, rationales: dict[str, str], rng: random.Random, *, parent: str) -> Variant | None:
    copy = perturb(question, {t: rationales[t] for t in ("pot", "eot") if t in rationales}, rng)
    if copy is None or set(copy.rationales) != {"pot", "eot"}:
        return None
    return verified(copy.question, copy.rationales, kind="similar", parent=parent)


def harder(question: str, rationales: dict[str, str], answer: float, rng: random.Random, *,
           parent: str) -> Variant | None:
    """One more step on top of a verified question, computed by execution."""
    if not all(_ANSWER_LINE.search(rationales.get(t, "")) for t in ("pot", "eot")):
        return None
    for template, operator, fits in rng.sample(FOLLOW_UPS, len(FOLLOW_UPS)):
        k = rng.choice([2, 3, 4, 5]) if operator in "*/" else rng.choice([5, 10, 12, 20, 25])
        if not fits(answer, k):
            continue
        programs = {t: _extend(rationales[t], operator, k) for t in ("pot", "eot")}
        variant = verified(f"{question.rstrip()} {template.format(k=k)}", programs, kind="harder", parent=parent)
        if variant is not None:
            return variant
    return None


def _extend(program: str, operator: str, k: int) -> str:
    """`ans = total` -> `follow_up = total * 3` / `ans = follow_up` (valid PoT and EoT alike)."""
    matches = list(_ANSWER_LINE.finditer(program))
    last = matches[-1]
    name = last.group(1)
    extra = f"follow_up = {name} {operator} {k}\nans = follow_up"
    return program[:last.start()] + extra + program[last.end():]
