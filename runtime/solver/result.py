"""What the solver returns for one rationale: never an exception, always this record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..thoughts import Thought

# Why a rationale gave no answer. Stable strings: they appear in datasets, reports and --json.
ERROR_KINDS = (
    "syntax",        # PoT: not Python; EoT: not the equation grammar
    "unsafe",        # PoT: outside the allow-list
    "timeout",       # CPU or wall-clock limit
    "memory",        # memory limit
    "output_limit",  # printed too much
    "runtime",       # raised while running (ZeroDivisionError, NameError, ...)
    "no_answer",     # PoT: no `ans`/`solution()`; EoT: no `ans = ...`; CoT: no number
    "non_numeric",   # the answer is not a number (a string, a list, a symbol)
    "too_large",     # a number too large to represent or an exponent over the cap
    "no_solution",   # EoT: inconsistent system
    "many_solutions",  # EoT: `ans` not determined, or several values
    "too_complex",   # EoT: too many equations or unknowns, nesting too deep
    "repeating",     # the generation looped (thoughts.is_looping) and was stopped; not run
    "crashed",       # the sandbox worker died in a way it should not
    "internal",      # a bug in the solver itself
)


@dataclass
class Step:
    """One named quantity a learner can follow: `clips_may = 48 / 2` -> 24."""

    name: str
    value: float
    expression: str | None = None


@dataclass
class SolverResult:
    thought: Thought
    answer: float | None
    error: str | None = None
    error_kind: str | None = None
    steps: list[Step] = field(default_factory=list)
    output: str = ""           # what a program printed
    note: str | None = None    # a choice the solver made, e.g. picking the non-negative root
    seconds: float = 0.0
    unused_lines: list[int] = field(default_factory=list)  # lines that never reach the answer (`solver.unused`)

    @property
    def ok(self) -> bool:
        return self.answer is not None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["thought"] = self.thought.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SolverResult":
        """A stored result (`to_dict`, or a benchmark record's thought) back as the object the
        selection rules take."""
        return cls(Thought(data["thought"]), data.get("answer"), data.get("error"), data.get("error_kind"),
                   [Step(**step) for step in data.get("steps") or []], data.get("output") or "", data.get("note"),
                   data.get("seconds") or 0.0, list(data.get("unused_lines") or []))

    @classmethod
    def failure(cls, thought: Thought, kind: str, error: str) -> "SolverResult":
        return cls(thought=thought, answer=None, error=error, error_kind=kind)
