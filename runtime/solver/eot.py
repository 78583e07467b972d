"""Equation-of-thought: parse with our grammar here, solve with sympy in a sandbox worker."""

from __future__ import annotations

from ..thoughts import Thought
from .eot_grammar import EquationError, parse_system
from .result import SolverResult, Step
from .unused import unused_equation_lines
from .workers import WorkerError, WorkerPool

MEMORY_BYTES = 1024 * 1024 * 1024

# sympy takes ~0.5 s to import: one warm worker holds it. It gets sympy from site-packages (no -S).
POOL = WorkerPool("eot_worker.py", site=True, memory_bytes=MEMORY_BYTES, startup_timeout=60.0)


def solve_equations(text: str, timeout: float) -> SolverResult:
    try:
        system = parse_system(text)
    except EquationError as exc:
        return SolverResult.failure(Thought.EOT, exc.kind, str(exc))
    except RecursionError:
        return SolverResult.failure(Thought.EOT, "too_complex", "expression nested too deeply")
    request = system.to_request()
    request["cpu"] = timeout
    try:
        reply = POOL.call(request, timeout + 0.5)
    except WorkerError as exc:
        return SolverResult.failure(Thought.EOT, exc.kind, str(exc))
    answer = reply.get("answer")
    return SolverResult(
        thought=Thought.EOT,
        answer=answer,
        error=reply.get("error"),
        error_kind=reply.get("kind"),
        steps=[Step(name, value, expression) for name, value, expression in reply.get("steps", [])],
        note=reply.get("note"),
        unused_lines=unused_equation_lines(system) if answer is not None else [],
    )
