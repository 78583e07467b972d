"""Which steps of a rationale never reach its answer: `overtime = 18 * 1.5` in a program that answers
with the regular pay, or a relation about a name nothing links to `ans`. Such a line is an extra step
(the failure the student learned from GSM8K: adding steps a question does not need), and a teacher's
rationale is kept without it. A step computes (an operation or a call); a given the answer does not use
(`sweet = 17` beside a question's other numbers) is the rationale's reading of the question, and stays.

Pure functions over what the solver already parsed (the policy-checked syntax tree of a program, the
grammar's equation system); nothing here runs what the model wrote. The analysis is conservative: a
line is reported only when removing it cannot change the answer (straight-line assignments whose names
are never read on the way to the answer, with nothing printed); anything inside a loop, a condition or
a function other than `solution()` is left alone.
"""

from __future__ import annotations

import ast
import re

from .eot_grammar import EquationError, System, names_in, parse_system
from .sandbox.pot_policy import PolicyError, parse_program

_TARGET = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:[-+*/%]|//|\*\*)?=(?!=)")
_NAME = re.compile(r"[A-Za-z_]\w*")


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _prints(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print" for n in ast.walk(node))


def _assigned(statement: ast.stmt) -> set[str] | None:
    """The names a plain assignment gives (`a = ...`, `a = b = ...`, `a += ...`, `a: int = ...`), else None."""
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        return {t.id for t in statement.targets}
    if isinstance(statement, (ast.AugAssign, ast.AnnAssign)) and isinstance(statement.target, ast.Name):
        return {statement.target.id} if statement.value is not None else None
    return None


def _dead(body: list[ast.stmt], live: set[str]) -> tuple[list[ast.stmt], set[str]]:
    """Backward over one straight-line body: the assignments whose names are not live after them, and
    the names live before the body."""
    dead = []
    live = set(live)
    for statement in reversed(body):
        given = _assigned(statement)
        if given is None or _prints(statement):
            live |= _names(statement)  # kept whole: what it reads or writes stays live
            continue
        if given & live:
            live -= given
            live |= _names(statement.value) if statement.value is not None else set()
            if isinstance(statement, ast.AugAssign):
                live |= given  # `a += 1` reads a
        elif _computes(statement):
            dead.append(statement)
        else:  # a given the answer does not use (`sweet = 17` beside the question's other numbers) stays
            live |= _names(statement.value)
    return dead, live


def _computes(statement: ast.stmt) -> bool:
    """A step: an operation or a call (`x = 3`, `x = -3` and `x = y` compute nothing)."""
    return isinstance(statement, ast.AugAssign) or any(isinstance(n, (ast.BinOp, ast.Call)) for n in ast.walk(statement.value))


def _return_names(function: ast.FunctionDef) -> set[str] | None:
    """The names `solution()` returns, when its body is straight-line ending in `return`."""
    *body, last = function.body
    if not isinstance(last, ast.Return) or any(not isinstance(s, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr))
                                                   for s in body):
        return None
    return _names(last.value) if last.value is not None else set()


def _lines(statements: list[ast.stmt]) -> set[int]:
    return {line for s in statements for line in range(s.lineno, (s.end_lineno or s.lineno) + 1)}


def unused_program_lines(tree: ast.Module) -> list[int]:
    """1-based lines of a program's assignments that never reach `ans` (or what `solution()` returns)."""
    dead: list[ast.stmt] = []
    assigns_ans = any("ans" in (_assigned(s) or set()) for s in tree.body)
    functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    if assigns_ans:
        found, _ = _dead(tree.body, {"ans"})
        dead += found
    elif "solution" in functions:
        returned = _return_names(functions["solution"])
        if returned is not None:
            found, _ = _dead(functions["solution"].body[:-1], returned)
            dead += found
    if not dead:
        return []
    # A line that also holds a statement that stays (`a = 1; b = 2`, `def solution(): a = 1`) is not reported.
    keep: set[int] = set()
    for statement in ast.walk(tree):
        if isinstance(statement, ast.stmt) and not any(statement is d for d in dead):
            body = getattr(statement, "body", None)
            end = max(statement.lineno + 1, body[0].lineno) if body else (statement.end_lineno or statement.lineno) + 1
            keep.update(range(statement.lineno, end))  # a compound statement: its header line(s)
    return sorted(_lines(dead) - keep)


def unused_equation_lines(system: System) -> list[int]:
    """1-based lines of equations that share no name, directly or through other equations, with `ans`."""
    names = [set(names_in(eq.lhs)) | set(names_in(eq.rhs)) for eq in system.equations]
    linked, reached = {"ans"}, set()
    grew = True
    while grew:
        grew = False
        for index, used in enumerate(names):
            if index not in reached and used & linked:
                reached.add(index)
                linked |= used
                grew = True
    return sorted(eq.line for index, eq in enumerate(system.equations)
                  if index not in reached and (_operates(eq.lhs) or _operates(eq.rhs)))


def _operates(node: list) -> bool:
    kind = node[0]
    return kind not in ("num", "var", "neg") or (kind == "neg" and _operates(node[1]))


def without_lines(text: str, lines: list[int]) -> str:
    """The text with those 1-based lines left out."""
    drop = set(lines)
    return "\n".join(line for number, line in enumerate(text.splitlines(), start=1) if number not in drop)


def unused_names(thought: str, text: str, lines: list[int]) -> set[str]:
    """The names those lines give: a program line's assignment target; every name of an equation (none of
    them reaches `ans`). Text only: for labelling a solver's steps as not needed."""
    def given(row: str) -> set[str]:
        if thought == "pot":
            match = _TARGET.match(row)
            return {match.group(1)} if match else set()
        return set() if row.lstrip().startswith("%") else set(_NAME.findall(row))  # `% Assume ...` is a comment

    rows = text.splitlines()
    unused = {number for number in lines if 0 < number <= len(rows)}
    found = set().union(*(given(rows[n - 1]) for n in unused))
    # A name also given on a line that reaches the answer (`x = 3` dropped, `x = 5` used) is needed.
    return found - set().union(*(given(row) for n, row in enumerate(rows, start=1) if n not in unused))


def has_step(thought: str, text: str) -> bool:
    """Does the rationale compute anything: an operation, a call (not `print`, not its own `solution()`), a
    comparison, or an equation with one (`4x = 180`, `x = lcm(2, 3, 4)`)? `x = 30` then `ans = x` answers
    by writing a number: right only when it guesses the answer (a teacher's "% Assume Rosie runs x
    minutes: x = 30"), and a student trained on it learns to guess. True when the text does not parse."""
    try:
        if thought == "pot":
            tree = parse_program(text)
            own = {"print"} | {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}  # not steps
            return any(isinstance(node, (ast.BinOp, ast.AugAssign, ast.Compare, ast.BoolOp, ast.IfExp))
                       or (isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in own))
                       for node in ast.walk(tree))
        if thought == "eot":
            return any(_operates(eq.lhs) or _operates(eq.rhs) for eq in parse_system(text).equations)
    except (SyntaxError, PolicyError, EquationError, RecursionError):
        return True
    return True


def unused_lines_of(thought: str, text: str) -> list[int] | None:
    """The unused lines of a stored rationale, from its text alone (None: it does not parse), for
    records written before the solver reported them."""
    try:
        if thought == "pot":
            return unused_program_lines(parse_program(text))
        if thought == "eot":
            return unused_equation_lines(parse_system(text))
    except (SyntaxError, PolicyError, EquationError, RecursionError):
        return None
    return []

