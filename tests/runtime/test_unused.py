"""Steps of a rationale that never reach its answer: found by the solver, conservatively."""

import ast

import pytest

from runtime.solver import SolverResult, execute
from runtime.solver.eot_grammar import parse_system
from runtime.solver.unused import unused_equation_lines, unused_program_lines, without_lines

# The kind of extra step: the overtime rate is worked out, then the answer is the regular pay.
TINA = ("hourly_wage = 18\nhours = 8\novertime_wage = hourly_wage + hourly_wage / 2\n"
        "overtime_pay = hours * overtime_wage\ntotal = hours * hourly_wage\nans = total")


@pytest.mark.parametrize("program,unused", [
    (TINA, [3, 4]),                                        # overtime_pay is dead, and with it overtime_wage
    ("a = 1\nb = a * 2\nans = a", [2]),
    ("ans = 5 + 1\nans = 7", [1]),                         # overwritten before it is read
    # A given the answer does not use is no step (the question's other numbers), nor what it reads.
    ("a = 1\nb = 2\nans = a", []), ("x = -3\nans = 1", []), ("b = x * 2\na = b\nans = 3", []),
    ("ans = 5\nans = ans + 2", []),
    ("x = 3\nx += 1\nans = x", []), ("x = 3\nx += 1\nans = 2", [2]),
    ("a = (1 +\n     2)\nans = 3", [1, 2]),                # a statement over two lines
    ("import math\nq = math.floor(2.5)\nans = 1", [2]),
    ("def solution():\n    a = 3\n    b = a * 4\n    return a\n", [3]),
    # Left alone: a line shared with a statement that stays, anything printed, loops, another function.
    ("a = 1; b = 2\nans = a", []), ("x = 3\nprint(x)\nans = 1", []), ("x = print(5)\nans = 1", []),
    ("for i in range(3):\n    t = i\nz = 9 - t\nans = t", [3]),
    ("def solution(): a = 3\nans = solution()", []),
    ("rate = 5\ndef solution():\n    return rate * 2\nans = solution()", []),
])
def test_program_lines_that_never_reach_the_answer(program, unused):
    assert unused_program_lines(ast.parse(program)) == unused


@pytest.mark.parametrize("system,unused", [
    ("% Assume x\nx + 14 = 236\nans = 5", [2]),            # the assumed unknown is never linked to ans
    ("a = 2\nb = a + 1\nc = 9 * 2\nans = b", [3]),
    ("h = 0\nx = -2\nans = 5", []),                        # givens, not steps
    ("a + b = 10\nb = 3\nans = a", []),                    # linked through a relation
])
def test_equations_that_share_no_name_with_the_answer(system, unused):
    assert unused_equation_lines(parse_system(system)) == unused


def test_the_solver_reports_them_and_the_answer_stands_without_them():
    result = execute("pot", TINA)
    assert result.answer == 144.0 and result.unused_lines == [3, 4]
    trimmed = without_lines(TINA, result.unused_lines)
    assert "overtime" not in trimmed and execute("pot", trimmed).answer == 144.0
    assert execute("eot", "% Assume x\nx + 14 = 236\nans = 5").unused_lines == [2]
    assert execute("pot", "a = 1\nans = b").unused_lines == []  # no answer: nothing to say about lines
    assert SolverResult.from_dict(result.to_dict()).unused_lines == [3, 4]


def test_the_names_those_lines_give():
    from runtime.solver.unused import unused_names

    assert unused_names("pot", TINA, [3, 4]) == {"overtime_wage", "overtime_pay"}
    assert unused_names("pot", "x = 3\nx = 5\nb += 2\nans = x", [1, 3]) == {"b"}  # x is also given where it counts
    assert unused_names("eot", "% Assume y\nx = 2\ny + 14 = 236\nans = x", [3]) == {"y"}


@pytest.mark.parametrize("thought, text, computes", [
    ("eot", "% Assume Rosie runs x minutes on Friday:\nx = 30\nans = x", False),   # a teacher's guess, kept before
    ("eot", "% Assume Kendra saw x birds at each site:\nans = 7", False),
    ("eot", "x = -3\nans = x", False),                                            # a sign is no operation
    ("eot", "% Assume x blind students:\n4x = 180\nans = x", True),               # implicit product
    ("eot", "x = lcm(2, 3, 4)\nans = x", True),
    ("eot", "x + 6.5 * 31 = 8.5 * 31\nans = x", True),
    ("pot", "cost = 4\nspent = 28\ncandy = cost\nans = candy", False),
    ("pot", "ans = 5\nprint(ans)", False),
    ("pot", "def solution():\n    a = 3\n    return a\nans = solution()", False),  # its own function is no step
    ("pot", "ans = 48 / 2", True),
    ("pot", "ans = max(3, 4)", True),
    ("pot", "a = 3\na += 1\nans = a", True),
    ("pot", "ans = 3 if 2 > 1 else 4", True),
])
def test_a_rationale_that_only_writes_numbers_has_no_step(thought, text, computes):
    from runtime.solver.unused import has_step

    assert execute(thought, text).ok  # each one runs: whether it computes is a question of its own
    assert has_step(thought, text) is computes
