"""Program-of-thought: check a program against the allow-list, then run it in a sandbox worker."""

from __future__ import annotations

from ..thoughts import Thought
from .sandbox import pot_policy
from .result import SolverResult, Step
from .unused import unused_program_lines
from .workers import WorkerError, WorkerPool

MEMORY_BYTES = 512 * 1024 * 1024

# One warm stdlib-only worker (`python -I -S`): a typical program costs well under a millisecond.
POOL = WorkerPool("pot_worker.py", site=False, memory_bytes=MEMORY_BYTES, startup_timeout=20.0)


def run_program(source: str, timeout: float) -> SolverResult:
    # Checked here first for a fast, clear refusal; the worker checks again before it runs.
    try:
        tree = pot_policy.parse_program(source)
    except SyntaxError as exc:
        return SolverResult.failure(Thought.POT, "syntax", f"syntax error: {exc}")
    except pot_policy.PolicyError as exc:
        return SolverResult.failure(Thought.POT, "unsafe", f"unsafe program: {exc}")
    try:
        reply = POOL.call({"src": source, "cpu": timeout}, timeout + 0.5)
    except WorkerError as exc:
        return SolverResult.failure(Thought.POT, exc.kind, str(exc))
    answer = reply.get("answer")
    return SolverResult(
        thought=Thought.POT,
        answer=answer,
        error=reply.get("error"),
        error_kind=reply.get("kind"),
        steps=[Step(name, value, expression) for name, value, expression in reply.get("steps", [])],
        output=reply.get("output", ""),
        unused_lines=unused_program_lines(tree) if answer is not None else [],
    )
