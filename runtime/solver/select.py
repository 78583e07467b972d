"""Choosing one answer from several thoughts and samples, and saying why."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..thoughts import ETD_ORDER, Thought
from .numbers import answers_match
from .result import SolverResult


# Which etd rule chose the answers a benchmark run stored: 1, the papers' (the first thought that
# gave any answer); 2, implausible answers count as failures (`settles`).
ETD_RULE = 2


@dataclass
class Selection:
    answer: float | None
    thought: Thought | None   # the thought whose answer was chosen
    index: int | None         # its position in the candidates given
    rule: str                 # "etd" or "vote"
    reason: str
    agreement: list[int] = field(default_factory=list)  # candidates that gave the chosen answer
    settled: bool = False     # etd: an answer passed the plausibility check, so no later thought is needed


def plausible(answer: float | None) -> bool:
    """What a grade-school word problem's answer looks like: a count or an amount, non-negative and
    (nearly always) whole. 1,317 of GSM8K's 1,319 test answers are; a small student's wrong programs
    often are not (an operation in the wrong order gives -4 or 0.375)."""
    return answer is not None and math.isfinite(answer) and answer >= 0 and answers_match(answer, round(answer))


def settles(result: SolverResult, earlier: list[SolverResult]) -> bool:
    """Whether an answer ends etd's search: a plausible one, or a non-negative one an earlier thought
    reached on its own (two thoughts agreeing on 3.5 is evidence that the question asks for 3.5)."""
    if not result.ok or not math.isfinite(result.answer) or result.answer < 0:
        return False
    return plausible(result.answer) or any(answers_match(result.answer, r.answer) for r in earlier)


def select_etd(candidates: list[SolverResult]) -> Selection:
    """The papers' rule, PoT first, EoT if PoT fails, CoT last, where an implausible answer (negative,
    or a fraction no earlier thought agrees with) counts as a failure. The decision at each thought
    depends only on the thoughts before it, so the runtime can generate them one at a time and stop at
    the first that settles the question. When none settles it, the first answer in that order stands."""
    ordered = [(index, result) for thought in ETD_ORDER
               for index, result in enumerate(candidates) if result.thought is thought]
    for position, (index, result) in enumerate(ordered):
        earlier = [r for _, r in ordered[:position]]
        if settles(result, earlier):
            first = next((i for i, r in ordered if answers_match(r.answer, result.answer)), index)
            return _etd_choice(candidates, first, earlier, settled=True)
    answered = [index for index, result in ordered if result.ok]
    if answered:
        return _etd_choice(candidates, answered[0], [r for _, r in ordered], settled=False)
    return Selection(None, None, None, "etd", _none_reason(candidates))


def _etd_choice(candidates: list[SolverResult], index: int, passed: list[SolverResult], settled: bool) -> Selection:
    chosen = candidates[index]
    agree = [i for i, r in enumerate(candidates) if answers_match(r.answer, chosen.answer)]
    passed = [r for r in passed if r is not chosen and not answers_match(r.answer, chosen.answer)]
    why = f"{chosen.thought.value.upper()} gave an answer"
    if not settled:
        why += " (no thought gave a non-negative whole number; the first answer stands)"
    elif passed:
        why += " (" + ", ".join(f"{r.thought.value.upper()} {_failure(r)}" for r in passed) + ")"
    elif not plausible(chosen.answer):
        why += " (not a whole number, but another thought agrees)"
    if len(candidates) > 1:
        why += f"; {len(agree)} of {len(candidates)} thoughts agree"
    return Selection(chosen.answer, chosen.thought, index, "etd", why, agree, settled)


def _failure(result: SolverResult) -> str:
    if not result.ok:
        return "failed"
    return f"gave {result.answer:g}, {'negative' if result.answer < 0 else 'not a whole number'}"


def select_vote(candidates: list[SolverResult]) -> Selection:
    """Majority over every answer given; ties go to the ETD order, then to the earliest."""
    groups: list[list[int]] = []
    for index, result in enumerate(candidates):
        if not result.ok:
            continue
        for group in groups:
            if answers_match(candidates[group[0]].answer, result.answer):
                group.append(index)
                break
        else:
            groups.append([index])
    if not groups:
        return Selection(None, None, None, "vote", _none_reason(candidates))

    def rank(group: list[int]):
        best_thought = min(ETD_ORDER.index(candidates[i].thought) for i in group)
        return (-len(group), best_thought, group[0])

    winner = min(groups, key=rank)
    first = min(winner, key=lambda i: (ETD_ORDER.index(candidates[i].thought), i))
    answered = sum(len(g) for g in groups)
    thoughts = sorted({candidates[i].thought.value for i in winner}, key=lambda t: ETD_ORDER.index(Thought(t)))
    why = f"{len(winner)} of {answered} answers agree ({', '.join(thoughts)})"
    tied = [g for g in groups if len(g) == len(winner) and g is not winner]
    if tied:
        why += "; tie broken by the ETD order"
    return Selection(candidates[first].answer, candidates[first].thought, first, "vote", why, winner)


def _none_reason(candidates: list[SolverResult]) -> str:
    if not candidates:
        return "no thoughts were given"
    kinds = ", ".join(f"{r.thought.value}: {r.error_kind or 'no answer'}" for r in candidates)
    return f"no thought gave an answer ({kinds})"
