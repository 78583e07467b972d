"""The embedded solver: runs what a student wrote, safely, and says what came of it.

    from runtime.solver import execute
    result = execute("pot", "clips_may = 48 / 2\\nans = 48 + clips_may")
    result.answer   # 72.0
    result.steps    # [Step("clips_may", 24.0, "48 / 2"), Step("ans", 72.0, "48 + clips_may")]

`execute` never raises on model output: every failure is a result with `error` and `error_kind`.
Programs run in a confined worker process, equations are parsed by our own grammar and solved by
sympy in another; nothing the model wrote runs in the caller's process.
"""

from __future__ import annotations

import time

from ..thoughts import Thought, parse_thought
from .numbers import answers_match, parse_number
from .result import ERROR_KINDS, SolverResult, Step
from .select import ETD_RULE, Selection, select_etd, select_vote

DEFAULT_TIMEOUT = 3.0

__all__ = [
    "DEFAULT_TIMEOUT", "ERROR_KINDS", "ETD_RULE", "Selection", "SolverResult", "Step", "answers_match",
    "confinement", "execute", "parse_number", "select_etd", "select_vote", "warm_up",
]


def execute(thought: Thought | str, text: str, *, timeout: float = DEFAULT_TIMEOUT) -> SolverResult:
    """Run one rationale of the given thought and return its answer or a clear error."""
    thought = parse_thought(thought)
    started = time.perf_counter()
    try:
        if not isinstance(text, str):
            result = SolverResult.failure(thought, "syntax", "the rationale is not text")
        elif thought is Thought.POT:
            from .pot import run_program

            result = run_program(text, timeout)
        elif thought is Thought.EOT:
            from .eot import solve_equations

            result = solve_equations(text, timeout)
        else:
            from .cot import extract_cot_answer

            result = extract_cot_answer(text)
    except Exception as exc:  # a solver bug must not take the caller down with it
        result = SolverResult.failure(thought, "internal", f"internal solver error: {type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - started
    return result


def warm_up(*thoughts: Thought | str) -> None:
    """Start the sandbox workers now (sympy's import takes ~0.5 s) instead of on first use."""
    for thought in thoughts or (Thought.POT, Thought.EOT):
        thought = parse_thought(thought)
        if thought is Thought.POT:
            from .pot import POOL
        elif thought is Thought.EOT:
            from .eot import POOL
        else:
            continue
        POOL.warm()


def confinement() -> dict[str, dict]:
    """Per sandboxed thought, the limits its warm worker reported as in force (for `runtime doctor`)."""
    from .eot import POOL as EOT_POOL
    from .pot import POOL as POT_POOL

    return {"pot": POT_POOL.warm(), "eot": EOT_POOL.warm()}
