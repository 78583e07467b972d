"""What every teacher provides: candidate rationales for a problem, in the runtime's formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from runtime.thoughts import Thought

from ..problems import Problem


# How a local teacher spends `--paths K` beyond the greedy path: all K at once, or one sampled path at a
# time while none verifies (see `LlamaCppTeacher`).
EXTRA_PATHS = ("always", "until-verified")


class TeacherError(Exception):
    """The teacher could not answer for this problem (timeout, server error, no gold solution).
    The builder counts it and moves on."""


@dataclass
class Candidate:
    thought: Thought
    text: str
    path: int = 0               # 0: the teacher's greedy answer; 1.. its sampled paths
    shown_answer: bool = False  # the teacher saw a worked solution (rationalize): copying its answer is not solving
    # A derived question (a sub-question the teacher wrote): its text, its gold answer and the suffix of
    # its id after the parent problem's (`~s1`). None: the rationale answers the problem itself.
    question: str | None = None
    gold: float | None = None
    suffix: str = ""


class Teacher(Protocol):
    name: str          # stored in every record: "gold", "openai:<model>", "llamacpp:<file>"
    concurrency: int   # problems the builder may ask about at once

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        """Candidate rationales (any number per thought); raise TeacherError to skip."""
        ...

# A teacher may also offer `generate_many(problems, thoughts) -> list[list[Candidate]]` and
# `problems_per_call`: the builder then hands it that many problems at once (a local model decodes
# them in one batch).
