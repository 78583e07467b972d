"""Chain-of-thought: take the final answer out of prose. Pure text handling, nothing runs."""

from __future__ import annotations

import re

from ..thoughts import Thought
from .numbers import NUMBER_PATTERN, parse_number
from .result import SolverResult

MAX_COT_CHARS = 20_000
_NUM = rf"(?:\$\s*)?{NUMBER_PATTERN}(?:\s*/\s*{NUMBER_PATTERN[2:]})?\s?%?"
_ANSWER_IS = re.compile(rf"answer\s+is\s*:?\s*(?:about\s+|approximately\s+)?({_NUM})", re.IGNORECASE)
_HASHES = re.compile(rf"####\s*({_NUM})")
_ANY = re.compile(_NUM)


def extract_cot_answer(text: str) -> SolverResult:
    """`The answer is N.`, else `#### N`, else the last number in the text."""
    if not isinstance(text, str) or not text.strip():
        return SolverResult.failure(Thought.COT, "no_answer", "empty rationale")
    if len(text) > MAX_COT_CHARS:
        return SolverResult.failure(Thought.COT, "too_complex", f"rationale longer than {MAX_COT_CHARS} characters")
    for pattern, how in ((_ANSWER_IS, "'The answer is'"), (_HASHES, "'####'"), (_ANY, "last number")):
        matches = pattern.findall(text)
        if matches:
            value = parse_number(matches[-1])
            if value is not None:
                note = None if how == "'The answer is'" else f"answer taken from the {how}"
                return SolverResult(thought=Thought.COT, answer=value, note=note)
    return SolverResult.failure(Thought.COT, "no_answer", "no number in the rationale")
