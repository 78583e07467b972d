"""What a student reads and writes for each thought: the one definition shared by training and inference.

Input (the papers' format, as in the released ETD student):

    Question: {question}\\n{prompt}\\n

Targets:

- CoT: prose steps ending with ``The answer is N.``
- PoT: a short Python program that assigns the result to ``ans`` (PAL's ``def solution(): ... return x``
  is accepted too).
- EoT: XoT-style lines: ``%`` comments, one equation per line, unknowns allowed, ``ans = name`` last.

Any change to these strings changes what trained students expect: bump ``FORMAT_VERSION`` with it.
Datasets and model bundles store the version, and loading one with another version is an error.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

FORMAT_VERSION = "etd-1"


class Thought(str, enum.Enum):
    COT = "cot"
    POT = "pot"
    EOT = "eot"

    def __str__(self) -> str:  # argparse and f-strings show "pot", not "Thought.POT"
        return self.value


# The papers' prompts, verbatim (CoT ends with a full stop, the other two do not).
PROMPTS: dict[Thought, str] = {
    Thought.COT: "Let's think step by step.",
    Thought.POT: "Let's break down the code step by step",
    Thought.EOT: "System of linear equations: (Do not simplify)",
}

# The paper's selection order for `etd` mode: a program that runs beats equations, which beat prose.
ETD_ORDER: tuple[Thought, ...] = (Thought.POT, Thought.EOT, Thought.COT)

# A model that keeps writing after its rationale starts a new block: a "Question:", or (the untuned
# base after few-shot examples, 4-9% of its tokens) a thought's instruction line again. Stop there.
STOP_SEQUENCES: tuple[str, ...] = ("\nQuestion:", "\n\n\n", *(f"\n{line}" for line in PROMPTS.values()))

COT_ANSWER_TEMPLATE = "The answer is {answer}."

# A small student can fall into a loop (`x_2 = x * 16`, `x_3 = x_2 * 16`, ...) until max_tokens. A
# run of this many complete lines that are the same but for their numbers (or a cycle of up to three
# such lines repeated as often) ends the generation. No gold rationale in the 42,547-record ETD
# training set has such a run (legitimate chains reach 6-7 lines: the days of a week); in the
# step-1,050 student's records 24% of programs looped, and none of the looping texts was right.
LOOP_LINES = 8
LOOP_MAX_PERIOD = 3
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


class FormatVersionError(ValueError):
    """A dataset or model was made for another thought format than this runtime speaks."""


@dataclass(frozen=True)
class Example:
    """One training example: the prompt the student reads and the target it must write."""

    prompt: str
    target: str


def parse_thought(name: str | Thought) -> Thought:
    """`"pot"` -> Thought.POT, with a clear error naming the valid choices."""
    if isinstance(name, Thought):
        return name
    try:
        return Thought(str(name).strip().lower())
    except ValueError:
        choices = ", ".join(t.value for t in Thought)
        raise ValueError(f"unknown thought {name!r} (choose from {choices})") from None


def format_prompt(question: str, thought: Thought | str) -> str:
    """The exact text a student is conditioned on for `thought`."""
    thought = parse_thought(thought)
    return f"Question: {question.strip()}\n{PROMPTS[thought]}\n"


def format_target(rationale: str) -> str:
    """The text a student must produce: the rationale, trimmed, with one trailing newline."""
    return rationale.strip() + "\n"


def format_example(question: str, thought: Thought | str, rationale: str) -> Example:
    return Example(prompt=format_prompt(question, thought), target=format_target(rationale))


def format_cot_answer(answer: float | int) -> str:
    """The closing sentence of a CoT rationale, with integers written without a decimal point."""
    return COT_ANSWER_TEMPLATE.format(answer=format_number(answer))


def format_number(value: float | int) -> str:
    """12.0 -> "12", 0.5 -> "0.5", 1/3 -> "0.333333" (what a learner and a student should read)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def is_looping(text: str) -> bool:
    """Do the last complete lines of `text` repeat one line shape (numbers aside), or a cycle of
    up to `LOOP_MAX_PERIOD` shapes, `LOOP_LINES` times over? The partial last line is ignored, so a
    generation can be checked as it streams."""
    lines = text.split("\n")[:-1][-LOOP_LINES * LOOP_MAX_PERIOD:]
    shapes = [_DIGITS.sub("#", line.strip()) for line in lines]
    for period in range(1, LOOP_MAX_PERIOD + 1):
        span = LOOP_LINES * period
        tail = shapes[-span:]
        if len(tail) == span and any(tail[:period]) and all(s == tail[i % period] for i, s in enumerate(tail)):
            return True
    return False


def check_format_version(found: str | None, *, what: str = "this file") -> None:
    """Refuse data or models made for another thought format."""
    if found != FORMAT_VERSION:
        raise FormatVersionError(
            f"{what} uses thought format {found!r}, but this runtime speaks {FORMAT_VERSION!r}; "
            "rebuild it with this version of the project"
        )
