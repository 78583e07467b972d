"""Choosing one answer from several thoughts and samples, and saying why."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..thoughts import ETD_ORDER, Thought
from .numbers import answers_match
from .result import SolverResult


@dataclass
class Selection:
    answer: float | None
    thought: Thought | None   # the thought whose answer was chosen
    index: int | None         # its position in the candidates given
    rule: str                 # "etd" or "vote"
    reason: str
    agreement: list[int] = field(default_factory=list)  # candidates that gave the chosen answer


def select_etd(candidates: list[SolverResult]) -> Selection:
    """The papers' rule: the PoT answer if the program ran, else EoT, else CoT."""
    for thought in ETD_ORDER:
        for index, result in enumerate(candidates):
            if result.thought is thought and result.ok:
                agree = [i for i, r in enumerate(candidates) if answers_match(r.answer, result.answer)]
                failed = [t.value.upper() for t in ETD_ORDER[: ETD_ORDER.index(thought)]
                          if any(r.thought is t for r in candidates)]
                why = f"{thought.value.upper()} gave an answer"
                if failed:
                    why += f" ({', '.join(failed)} failed)"
                if len(candidates) > 1:
                    why += f"; {len(agree)} of {len(candidates)} thoughts agree"
                return Selection(result.answer, thought, index, "etd", why, agree)
    return Selection(None, None, None, "etd", _none_reason(candidates))


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
